/*
 * sock.h — the socket under a Redis connection: name resolution and a
 * non-blocking, close-on-exec socket for a lw_url, shared by both transports
 * (resp_async.h, resp_sync.h).
 */
#ifndef LW_SOCK_H
#define LW_SOCK_H

#include <stddef.h>
#include <sys/socket.h>

#include "url.h"

/* Resolves u (unix path, or host:port: IPv4 addresses first, as hiredis
 * does, then IPv6) and opens a socket for address number `attempt` modulo
 * their count, so that successive attempts try each address of a name in
 * turn. The socket is non-blocking and close-on-exec from its creation (a
 * program a tenant module starts must never inherit an authenticated
 * connection); TCP gets TCP_NODELAY and keep-alive (a half-open connection
 * is noticed). The caller connects it to *addr (connect(2) then completes
 * in the background). Returns the fd, or -1 with one line in err (the
 * resolver's or the system's reason, naming the host). Blocking: name
 * resolution runs getaddrinfo(3). */
int lw_sock_open(const lw_url *u, unsigned attempt, struct sockaddr_storage *addr,
                 socklen_t *addrlen, char *err, size_t errlen);

/* Starts connect(2) of fd to addr. Returns 0 when it completed or is in
 * progress, -1 with err. */
int lw_sock_connect(int fd, const struct sockaddr_storage *addr, socklen_t addrlen, char *err,
                    size_t errlen);

/* The outcome of a connect in progress on fd, once it is writable: 0, or
 * -1 with the reason in err ("Connection refused"). */
int lw_sock_connect_result(int fd, char *err, size_t errlen);

#endif
