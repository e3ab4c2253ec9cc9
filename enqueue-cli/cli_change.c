/*
 * cli_change.c — what the commands that change jobs share (cli.h): a
 * state-change script run and confirmed on the replicas, and a job record
 * turned into the JSON `lanework status` prints.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "views.h"

redisReply *cli_change(cli *c, cli_tenant *pt, const lw_script *s, int nkeys, lw_argv *a,
                       const char *what)
{
    char err[512], line[800];
    redisReply *r = cli_script(pt->conn, s, nkeys, a, err, sizeof err);
    if (!r) {
        cli_redis_err(pt->conn, NULL, err);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        cli_redis_err(pt->conn, r, NULL);
        freeReplyObject(r);
        return NULL;
    }
    if (cli_confirm(c, pt->conn, pt->prefix, err, sizeof err) != 0) {
        snprintf(line, sizeof line, "%s recorded on the primary, but %s", what, err);
        cli_redis_err(pt->conn, NULL, line);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

char *cli_job_json(const char *tenant, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
        return NULL;
    const char **fv = malloc(r->elements * sizeof *fv);
    size_t *lens = malloc(r->elements * sizeof *lens);
    char *json = NULL;
    if (fv && lens) {
        for (size_t i = 0; i < r->elements; i++) {
            fv[i] = r->element[i]->str ? r->element[i]->str : "";
            lens[i] = r->element[i]->str ? r->element[i]->len : 0;
        }
        json = lw_view_job(tenant, fv, lens, r->elements);
    }
    free(fv);
    free(lens);
    return json;
}
