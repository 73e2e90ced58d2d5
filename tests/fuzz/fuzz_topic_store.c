/* fuzz_topic_store: gregor's own topic store file (<logdir>/gregor-topics, log/logdir.c) on
 * arbitrary bytes. Nothing may crash or read past the input (copied to an exact-size buffer,
 * not NUL-terminated). Invariants: every accepted topic has a legal Kafka topic name (it names
 * directories), 1 to TOPIC_STORE_MAX_PARTITIONS partitions and a non-zero id; saved with
 * topic_store_save (through a log dir in /dev/shm, or /tmp without it) it loads back the same. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/logging.h"
#include "common/util.h"
#include "log/logdir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct logdir *dir;
static char root[64];

/* The log dir goes when the run ends: its files, then itself. */
static void remove_dir(void)
{
    const char *names[] = {"gregor-topics", "meta.properties", ".lock", ".kafka_cleanshutdown"};
    logdir_close(dir, false);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char p[128];
        snprintf(p, sizeof(p), "%s/%s", root, names[i]);
        unlink(p);
    }
    rmdir(root);
}

static void open_dir(void)
{
    snprintf(root, sizeof(root), "%s/gregor-fuzz-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    GREGOR_ASSERT(mkdtemp(root) != NULL);
    logging_set_level(LOG_LEVEL_ERROR + 1);
    GREGOR_ASSERT(logdir_open(root, 1, NULL, &dir) == 0);
    atexit(remove_dir);
}

static void check_record(const struct topic_record *r)
{
    size_t n = strlen(r->name);
    GREGOR_ASSERT(n > 0 && n <= 249 && strcmp(r->name, ".") != 0 && strcmp(r->name, "..") != 0);
    GREGOR_ASSERT(strspn(r->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n);
    GREGOR_ASSERT(r->partitions >= 1 && r->partitions <= TOPIC_STORE_MAX_PARTITIONS);
    static const uint8_t zero[16];
    GREGOR_ASSERT(memcmp(r->topic_id, zero, 16) != 0);
    GREGOR_ASSERT(r->nconfigs >= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dir == NULL)
        open_dir();
    char *text = malloc(size ? size : 1);
    GREGOR_ASSERT(text != NULL);
    memcpy(text, data, size);
    struct topic_record *recs = NULL;
    int n = -1, bad_line = -1;
    const char *why = NULL;
    int rc = topic_store_parse(text, size, &recs, &n, &bad_line, &why);
    free(text);
    if (rc < 0) {
        GREGOR_ASSERT(why != NULL && recs == NULL && n == 0 && bad_line >= 0);
        return 0;
    }
    for (int i = 0; i < n; i++)
        check_record(&recs[i]);
    GREGOR_ASSERT(topic_store_save(dir, recs, n) == 0);
    struct topic_record *again;
    int n2;
    GREGOR_ASSERT(topic_store_load(dir, &again, &n2) == 0 && n2 == n);
    for (int i = 0; i < n; i++) {
        GREGOR_ASSERT(strcmp(recs[i].name, again[i].name) == 0);
        GREGOR_ASSERT(recs[i].partitions == again[i].partitions);
        GREGOR_ASSERT(memcmp(recs[i].topic_id, again[i].topic_id, 16) == 0);
        GREGOR_ASSERT(recs[i].deleting == again[i].deleting && recs[i].nconfigs == again[i].nconfigs);
        for (int k = 0; k < recs[i].nconfigs; k++) {
            GREGOR_ASSERT(strcmp(recs[i].config_keys[k], again[i].config_keys[k]) == 0);
            GREGOR_ASSERT(strcmp(recs[i].config_values[k], again[i].config_values[k]) == 0);
        }
    }
    topic_store_free(recs, n);
    topic_store_free(again, n2);
    return 0;
}
