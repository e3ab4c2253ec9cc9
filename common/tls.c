/*
 * tls.c — finding and loading lanework-tls.so (tls.h), and the calls into
 * it.
 *
 * Where it is looked for, first found wins: $LANEWORK_TLS_MODULE (a path:
 * for packagers and tests), the install location meson compiled in
 * (LW_TLS_MODULE_PATH), then beside the build tree's binaries
 * (EXE_DIR/../common/lanework-tls.so: a binary run from its build
 * directory). Loaded once per process; a failure is kept and said again on
 * every later try (the files do not appear by themselves).
 */
#include "tls.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef LW_TLS_MODULE_PATH
#define LW_TLS_MODULE_PATH ""
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const lw_tls_module *mod;
static char load_error[512];

/* Tries one path; 1 when the module is loaded from it. */
static int try_path(const char *path)
{
    if (!path || !*path)
        return 0;
    if (access(path, R_OK) != 0) {
        snprintf(load_error, sizeof load_error, "TLS: cannot load %s: not found", path);
        return 0;
    }
    /* RTLD_LOCAL: OpenSSL's symbols stay the module's. */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(load_error, sizeof load_error, "TLS: cannot load %s: %s", path, e ? e : "?");
        return 0;
    }
    const lw_tls_module *m = dlsym(h, "lw_tls_module_v1");
    if (!m || m->version != LW_TLS_MODULE_VERSION) {
        snprintf(load_error, sizeof load_error,
                 "TLS: %s is not this lanework's TLS module (reinstall lanework)", path);
        dlclose(h);
        return 0;
    }
    mod = m;
    return 1;
}

static void load(void)
{
    const char *env = getenv("LANEWORK_TLS_MODULE");
    if (env && *env) {
        try_path(env); /* named: nothing else is tried */
        return;
    }
    if (try_path(LW_TLS_MODULE_PATH))
        return;
    char exe[PATH_MAX], path[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(path, sizeof path, "%s/../common/lanework-tls.so", exe);
            if (try_path(path))
                return;
        }
    }
    if (!load_error[0])
        snprintf(load_error, sizeof load_error, "TLS: lanework-tls.so not found");
}

/* The module, or NULL with why in err. */
static const lw_tls_module *module(char *err, size_t errlen)
{
    pthread_once(&once, load);
    if (!mod && err && errlen)
        snprintf(err, errlen, "%s", load_error);
    return mod;
}

lw_tls_ctx *lw_tls_context_new(const lw_url *u, int *file_error, char *err, size_t errlen)
{
    const lw_tls_module *m = module(err, errlen);
    if (file_error)
        *file_error = 0;
    return m ? m->context_new(u, file_error, err, errlen) : NULL;
}

void lw_tls_context_free(lw_tls_ctx *ctx)
{
    if (ctx && mod)
        mod->context_free(ctx);
}

lw_tls_ssl *lw_tls_session_new(lw_tls_ctx *ctx, const lw_url *u, char *err, size_t errlen)
{
    const lw_tls_module *m = module(err, errlen);
    return m ? m->session_new(ctx, u, err, errlen) : NULL;
}

void lw_tls_session_free(lw_tls_ssl *ssl)
{
    if (ssl && mod)
        mod->session_free(ssl);
}

void lw_tls_failure(lw_tls_ssl *ssl, unsigned long e, const char *fallback, char *out,
                    size_t outlen)
{
    if (mod)
        mod->failure(ssl, e, fallback, out, outlen);
    else
        snprintf(out, outlen, "TLS: %s", fallback);
}

int lw_tls_verify_failed(lw_tls_ssl *ssl) { return mod && ssl && mod->verify_failed(ssl); }

struct bufferevent *lw_tls_bufferevent(struct event_base *base, int fd, lw_tls_ssl *ssl)
{
    return mod->bufferevent(base, fd, ssl); /* ssl came from the module */
}

unsigned long lw_tls_bufferevent_error(struct bufferevent *bev)
{
    return mod ? mod->bufferevent_error(bev) : 0;
}

int lw_tls_attach(lw_tls_ssl *ssl, int fd) { return mod->attach(ssl, fd); }
int lw_tls_connect(lw_tls_ssl *ssl) { return mod->connect(ssl); }
int lw_tls_read(lw_tls_ssl *ssl, void *buf, int n) { return mod->read(ssl, buf, n); }
int lw_tls_write(lw_tls_ssl *ssl, const void *buf, int n) { return mod->write(ssl, buf, n); }
int lw_tls_want(lw_tls_ssl *ssl, int rc) { return mod->want(ssl, rc); }

const char *lw_tls_insecure_warning(const lw_url *u, char *buf, size_t buflen)
{
    if (!u->tls || !u->tls_insecure)
        return NULL;
    snprintf(buf, buflen,
             "%s: insecure=1: the server's certificate is not verified (anyone on the path can "
             "pose as this Redis)",
             u->redacted);
    return buf;
}
