/* fuzz_znode: the znode readers (src/cluster/znode.c) on arbitrary bytes, as any ZooKeeper
 * client could write them under a broker's paths. Nothing may crash, hang or read past the
 * value's length (the input is copied to an exact-size buffer, so ASan sees any overread).
 * Invariants: a topic read gives its partitions 0..n-1 each once; what the writers produce
 * from an accepted value reads back to the same value (config znodes, change notifications and
 * the producer id block included). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/znode.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct parts {
    int32_t n;
    uint8_t *seen;
    int calls;
};

static void on_part(void *arg, int32_t p, const int32_t *replicas, int n)
{
    struct parts *ps = arg;
    GREGOR_ASSERT(p >= 0 && p < ps->n && !ps->seen[p]);
    GREGOR_ASSERT(n >= 0 && n <= ZNODE_REPLICAS_MAX);
    for (int i = 0; i < n; i++)
        (void)replicas[i];
    ps->seen[p] = 1;
    ps->calls++;
}

#define CONFIGS_MAX 64

struct configs {
    int n;
    char *keys[CONFIGS_MAX], *values[CONFIGS_MAX];
};

static void on_config(void *arg, const char *key, const char *value)
{
    struct configs *c = arg;
    GREGOR_ASSERT(strlen(key) < ZNODE_CONFIG_KEY_MAX && strlen(value) < ZNODE_CONFIG_VALUE_MAX);
    if (c->n < CONFIGS_MAX) {
        c->keys[c->n] = strdup(key);
        c->values[c->n] = strdup(value);
        GREGOR_ASSERT(c->keys[c->n] != NULL && c->values[c->n] != NULL);
    }
    c->n++;
}

static void configs_free(struct configs *c)
{
    for (int i = 0; i < c->n && i < CONFIGS_MAX; i++) {
        free(c->keys[i]);
        free(c->values[i]);
    }
}

/* A config znode read is written again and reads back the same entries. */
static void check_config(const char *json, size_t size)
{
    struct configs got = {0};
    int n = znode_config_parse(json, size, on_config, &got);
    GREGOR_ASSERT(n == -1 || n == got.n);
    if (n > 0 && n <= CONFIGS_MAX) {
        size_t cap = 8 * size + 64; /* an escape is at most 6 bytes per input byte */
        char *out = malloc(cap);
        GREGOR_ASSERT(out != NULL);
        int k = znode_config_json(out, cap, (const char *const *)got.keys,
                                  (const char *const *)got.values, n);
        GREGOR_ASSERT(k > 0);
        struct configs back = {0};
        GREGOR_ASSERT(znode_config_parse(out, (size_t)k, on_config, &back) == n);
        for (int i = 0; i < n; i++)
            GREGOR_ASSERT(strcmp(back.keys[i], got.keys[i]) == 0 &&
                          strcmp(back.values[i], got.values[i]) == 0);
        configs_free(&back);
        free(out);
    }
    configs_free(&got);
    char type[64], name[256];
    if (znode_config_change_parse(json, size, type, sizeof(type), name, sizeof(name)) == 0)
        GREGOR_ASSERT(type[0] != '\0' && name[0] != '\0' && strlen(type) < sizeof(type) &&
                      strlen(name) < sizeof(name));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *json = malloc(size ? size : 1); /* exact size: no NUL to lean on */
    GREGOR_ASSERT(json != NULL);
    memcpy(json, data, size);

    char host[256], id[64];
    int32_t port, b;
    if (znode_broker_parse(json, size, "PLAINTEXT", host, sizeof(host), &port) == 0)
        GREGOR_ASSERT(port > 0 && port <= 65535 && strlen(host) < sizeof(host));
    char rack[64];
    if (znode_broker_rack(json, size, rack, sizeof(rack)) == 1)
        GREGOR_ASSERT(strlen(rack) < sizeof(rack));
    (void)znode_controller_parse(json, size, &b);
    (void)znode_cluster_id_parse(json, size, id, sizeof(id));

    struct znode_state st;
    if (znode_state_parse(json, size, &st) == 0) {
        char out[1024];
        int n = znode_state_json(out, sizeof(out), &st);
        GREGOR_ASSERT(n > 0);
        struct znode_state back;
        GREGOR_ASSERT(znode_state_parse(out, (size_t)n, &back) == 0);
        GREGOR_ASSERT(back.leader == st.leader && back.leader_epoch == st.leader_epoch &&
                      back.controller_epoch == st.controller_epoch && back.nisr == st.nisr &&
                      memcmp(back.isr, st.isr, sizeof(st.isr[0]) * (size_t)st.nisr) == 0);
    }

    uint8_t tid[16];
    int32_t n = znode_topic_parse(json, size, 4096, tid, NULL, NULL);
    if (n >= 0) {
        GREGOR_ASSERT(n >= 1 && n <= 4096);
        struct parts ps = {.n = n, .seen = calloc((size_t)n, 1)};
        GREGOR_ASSERT(ps.seen != NULL);
        uint8_t tid2[16];
        GREGOR_ASSERT(znode_topic_parse(json, size, 4096, tid2, on_part, &ps) == n);
        GREGOR_ASSERT(ps.calls == n && memcmp(tid, tid2, 16) == 0);
        free(ps.seen);
    }

    if (n > 0) { /* a reassignment's lists, and /admin/reassign_partitions */
        (void)znode_topic_reassign_parse(json, size, "adding_replicas", n, NULL, NULL);
        (void)znode_topic_reassign_parse(json, size, "removing_replicas", n, NULL, NULL);
    }
    (void)znode_reassign_parse(json, size, NULL, NULL);

    const char *vs, *ve;
    if (znode_member(json, size, "partitions", &vs, &ve) == 0)
        GREGOR_ASSERT(vs >= json && ve > vs && ve <= json + size);
    int32_t arr[ZNODE_REPLICAS_MAX];
    int k = znode_int_array(json, json + size, arr, ZNODE_REPLICAS_MAX);
    GREGOR_ASSERT(k >= -1 && k <= ZNODE_REPLICAS_MAX);
    if (size == 22 && znode_uuid_parse(json, size, tid) == 0) {
        char s[23];
        znode_uuid_str(tid, s);
        uint8_t again[16];
        GREGOR_ASSERT(znode_uuid_parse(s, 22, again) == 0 && memcmp(again, tid, 16) == 0);
    }
    check_config(json, size);
    int64_t first, last;
    if (znode_producer_id_block_parse(json, size, &b, &first, &last) == 0) {
        GREGOR_ASSERT(b >= 0 && first >= 0 && first <= last);
        char out[128];
        int m = znode_producer_id_block_json(out, sizeof(out), b, first, last);
        GREGOR_ASSERT(m > 0);
        int32_t b2;
        int64_t first2, last2;
        GREGOR_ASSERT(znode_producer_id_block_parse(out, (size_t)m, &b2, &first2, &last2) == 0 &&
                      b2 == b && first2 == first && last2 == last);
    }
    free(json);
    return 0;
}
