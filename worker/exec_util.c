/* exec_util.c — what the runners that exec a command share (exec_util.h). */
#include "exec_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *exec_resolve_program(const char *prog)
{
    if (strchr(prog, '/'))
        return strdup(prog);
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t dlen = end ? (size_t)(end - path) : strlen(path);
        char *cand = malloc(dlen + strlen(prog) + 2);
        if (!cand)
            return NULL;
        snprintf(cand, dlen + strlen(prog) + 2, "%.*s/%s", (int)dlen, path, prog);
        if (access(cand, X_OK) == 0)
            return cand;
        free(cand);
        if (!end)
            break;
        path = end + 1;
    }
    return strdup(prog); /* execve reports ENOENT in the child's stderr */
}

void exec_free_env(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}

static int is_identity_var(const char *e)
{
    return !strncmp(e, "HOME=", 5) || !strncmp(e, "USER=", 5) || !strncmp(e, "LOGNAME=", 8);
}

char **exec_env_base(const tenant *t, size_t extra, size_t *n)
{
    size_t have = 0;
    while (environ[have])
        have++;
    char **env = calloc(have + 3 + extra + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < have; i++) {
        if (strncmp(environ[i], "LANEWORK_", 9) == 0 || (t->run_as && is_identity_var(environ[i])))
            continue;
        if (!(env[k] = strdup(environ[i])))
            goto oom;
        k++;
    }
    for (int i = 0; t->run_as && i < 3; i++) {
        if (!(env[k] = strdup(t->user_env[i])))
            goto oom;
        k++;
    }
    *n = k;
    return env;
oom:
    exec_free_env(env);
    return NULL;
}

int exec_env_add(char **env, size_t *n, const char *name, const char *value)
{
    size_t len = strlen(name) + strlen(value) + 2;
    char *e = malloc(len);
    if (!e)
        return -1;
    snprintf(e, len, "%s=%s", name, value);
    env[(*n)++] = e;
    return 0;
}
