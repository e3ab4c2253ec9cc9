/* test_discovery.c — reading CLUSTER SLOTS (common/discovery.c) into the
 * masters a Cluster URL's fleet-wide reads talk to: replies built by hand,
 * no server. */
#include <check.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "discovery.h"
#include "slot.h"
#include "tutil.h"

/* Replies freed with freeReplyObject, as hiredis's own. */
static redisReply *new_reply(int type)
{
    redisReply *r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    r->type = type;
    return r;
}

static redisReply *str(const char *s)
{
    redisReply *r = new_reply(REDIS_REPLY_STRING);
    r->str = strdup(s);
    r->len = strlen(s);
    return r;
}

static redisReply *num(long long v)
{
    redisReply *r = new_reply(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}

static redisReply *arr(size_t n)
{
    redisReply *r = new_reply(REDIS_REPLY_ARRAY);
    r->element = calloc(n, sizeof *r->element);
    r->elements = n;
    return r;
}

/* One range of CLUSTER SLOTS: lo-hi served by host:port (id may be NULL:
 * a server too old to say), with one replica. */
static redisReply *range(int lo, int hi, const char *host, int port, const char *id)
{
    redisReply *e = arr(4);
    e->element[0] = num(lo);
    e->element[1] = num(hi);
    redisReply *m = arr(id ? 3 : 2);
    m->element[0] = str(host);
    m->element[1] = num(port);
    if (id)
        m->element[2] = str(id);
    e->element[2] = m;
    redisReply *rep = arr(2);
    rep->element[0] = str(host);
    rep->element[1] = num(port + 100);
    e->element[3] = rep;
    return e;
}

static int16_t first[LW_SLOTS];

START_TEST(one_range_per_master)
{
    redisReply *r = arr(3);
    r->element[0] = range(0, 5460, "10.0.0.1", 7000, "a");
    r->element[1] = range(5461, 10922, "10.0.0.2", 7000, "b");
    r->element[2] = range(10923, 16383, "10.0.0.3", 7000, "c");
    char why[128] = "";
    ck_assert_int_eq(lw_cluster_read_masters(r, first, why, sizeof why), 3);
    ck_assert_int_eq(first[0], 0);
    ck_assert_int_eq(first[5460], 0);
    ck_assert_int_eq(first[5461], 5461);
    ck_assert_int_eq(first[16383], 10923);
    freeReplyObject(r);
}
END_TEST

/* After a resharding a master serves several ranges, listed in any order:
 * all of its slots name its lowest one. */
START_TEST(a_master_of_several_ranges_is_one)
{
    redisReply *r = arr(4);
    r->element[0] = range(200, 5460, "10.0.0.1", 7000, "a");
    r->element[1] = range(5461, 16383, "10.0.0.2", 7000, "b");
    r->element[2] = range(100, 199, "10.0.0.2", 7000, "b");
    r->element[3] = range(0, 99, "10.0.0.1", 7000, "a");
    char why[128] = "";
    ck_assert_int_eq(lw_cluster_read_masters(r, first, why, sizeof why), 2);
    ck_assert_int_eq(first[300], 0);
    ck_assert_int_eq(first[50], 0);
    ck_assert_int_eq(first[150], 100);
    ck_assert_int_eq(first[9000], 100);
    freeReplyObject(r);
}
END_TEST

/* Without node ids the address tells masters apart; slots nobody serves
 * (a cluster being fixed) are -1. */
START_TEST(addresses_without_ids_and_unserved_slots)
{
    redisReply *r = arr(3);
    r->element[0] = range(0, 10, "h", 7000, NULL);
    r->element[1] = range(20, 30, "h", 7001, NULL);
    r->element[2] = range(40, 50, "h", 7000, NULL);
    char why[128] = "";
    ck_assert_int_eq(lw_cluster_read_masters(r, first, why, sizeof why), 2);
    ck_assert_int_eq(first[45], 0);
    ck_assert_int_eq(first[25], 20);
    ck_assert_int_eq(first[15], -1);
    ck_assert_int_eq(first[16383], -1);
    freeReplyObject(r);
}
END_TEST

START_TEST(errors_are_said)
{
    redisReply *e = new_reply(REDIS_REPLY_ERROR);
    e->str = strdup("ERR This instance has cluster support disabled");
    e->len = strlen(e->str);
    char why[128] = "";
    ck_assert_int_eq(lw_cluster_read_masters(e, first, why, sizeof why), -1);
    ck_assert_str_eq(why, "CLUSTER SLOTS: ERR This instance has cluster support disabled");
    freeReplyObject(e);
    redisReply *s = str("OK");
    ck_assert_int_eq(lw_cluster_read_masters(s, first, why, sizeof why), -1);
    ck_assert_str_eq(why, "CLUSTER SLOTS: not an array");
    freeReplyObject(s);
}
END_TEST

static int moved(const char *s, char *host, int *port)
{
    return lw_cluster_read_moved(s, strlen(s), host, 64, port);
}

START_TEST(moved_names_the_node)
{
    char host[64];
    int port = 0;
    ck_assert_int_eq(moved("MOVED 3999 127.0.0.1:6381", host, &port), 1);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_int_eq(port, 6381);
    ck_assert_int_eq(moved("MOVED 12 ::1:7000", host, &port), 1);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, 7000);
    ck_assert_int_eq(moved("MOVED 12 :7000", host, &port), 0); /* no address announced */
    ck_assert_int_eq(moved("ASK 12 h:7000", host, &port), 0);
    ck_assert_int_eq(moved("MOVED 12 h:70000", host, &port), 0);
    ck_assert_int_eq(moved("MOVED 12 h:", host, &port), 0);
    ck_assert_int_eq(moved("MOVED 12", host, &port), 0);
    ck_assert_int_eq(moved("MOVEDX 12 h:1", host, &port), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("discovery");
    TCase *tc = tcase_create("cluster_masters");
    tcase_add_test(tc, one_range_per_master);
    tcase_add_test(tc, a_master_of_several_ranges_is_one);
    tcase_add_test(tc, addresses_without_ids_and_unserved_slots);
    tcase_add_test(tc, errors_are_said);
    tcase_add_test(tc, moved_names_the_node);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
