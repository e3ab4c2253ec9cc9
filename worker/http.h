/* http.h — GET /healthz, /livez and /metrics on --http HOST:PORT (a small
 * HTTP/1.x responder of our own on libevent's core: worker/http.c). */
#ifndef LW_HTTP_H
#define LW_HTTP_H

#include <stddef.h>

struct worker;
struct http_server;

/* Binds HOST:PORT. Returns NULL with "why" in err. */
struct http_server *http_start(struct worker *w, const char *hostport, char *err, size_t errlen);
/* Closes the listener and every open connection. NULL is ignored. */
void http_free(struct http_server *h);

#endif
