/*
 * sock.c — sockets for Redis connections (sock.h).
 */
#include "sock.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

/* Every address of host:port, IPv4 first: a Redis bound to 127.0.0.1 is
 * reached as "localhost" on a host whose resolver lists ::1 first. Fills at
 * most max entries of out; returns how many, or -1 with err. */
static int resolve(const lw_url *u, struct sockaddr_storage *out, socklen_t *lens, int max,
                   char *err, size_t errlen)
{
    static const int families[2] = {AF_INET, AF_INET6};
    char port[8];
    int n = 0, rc = 0;
    snprintf(port, sizeof port, "%d", u->port);
    for (int f = 0; f < 2 && n < max; f++) {
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = families[f];
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;
        rc = getaddrinfo(u->host, port, &hints, &res);
        if (rc != 0)
            continue;
        for (struct addrinfo *a = res; a && n < max; a = a->ai_next) {
            if (a->ai_addrlen > sizeof *out)
                continue;
            memcpy(&out[n], a->ai_addr, a->ai_addrlen);
            lens[n++] = a->ai_addrlen;
        }
        freeaddrinfo(res);
    }
    if (n == 0)
        snprintf(err, errlen, "cannot resolve \"%s\": %s", u->host,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc ? rc : EAI_NONAME));
    return n ? n : -1;
}

int lw_sock_open(const lw_url *u, unsigned attempt, struct sockaddr_storage *addr,
                 socklen_t *addrlen, char *err, size_t errlen)
{
    memset(addr, 0, sizeof *addr);
    if (u->kind == LW_URL_UNIX) {
        struct sockaddr_un *sun = (struct sockaddr_un *)addr;
        sun->sun_family = AF_UNIX;
        snprintf(sun->sun_path, sizeof sun->sun_path, "%s", u->path);
        *addrlen = (socklen_t)sizeof *sun;
    } else {
        struct sockaddr_storage all[8];
        socklen_t lens[8];
        int n = resolve(u, all, lens, 8, err, errlen);
        if (n < 0)
            return -1;
        memcpy(addr, &all[attempt % (unsigned)n], lens[attempt % (unsigned)n]);
        *addrlen = lens[attempt % (unsigned)n];
    }
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (u->kind != LW_URL_UNIX) {
        int on = 1;
        /* Best effort: a connection without them still works. */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
        int idle = 15, intvl = 5, cnt = 3;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    }
    return fd;
}

int lw_sock_connect(int fd, const struct sockaddr_storage *addr, socklen_t addrlen, char *err,
                    size_t errlen)
{
    int rc;
    do
        rc = connect(fd, (const struct sockaddr *)addr, addrlen);
    while (rc < 0 && errno == EINTR);
    if (rc == 0 || errno == EINPROGRESS || errno == EAGAIN)
        return 0;
    snprintf(err, errlen, "connect: %s", strerror(errno));
    return -1;
}

int lw_sock_connect_result(int fd, char *err, size_t errlen)
{
    int e = 0;
    socklen_t len = sizeof e;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
        e = errno;
    if (e == 0)
        return 0;
    snprintf(err, errlen, "connect: %s", strerror(e));
    return -1;
}
