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
