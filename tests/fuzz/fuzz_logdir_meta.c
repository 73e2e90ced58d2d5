/* fuzz_logdir_meta: the two small property files a log dir holds — meta.properties (first
 * input byte even) and a partition's partition.metadata (odd) — through their readers
 * (log/logdir.c) on arbitrary bytes. Nothing may crash or read past the input (copied to an
 * exact-size buffer, not NUL-terminated). Invariants: meta.properties' numbers are
 * in range and its ids NUL-terminated, an accepted directory.id is a base64url UUID;
 * partition.metadata's topic id is not the zero UUID and reads back from the broker's own
 * rendering of the file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "log/logdir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void meta_properties(const char *text, size_t size)
{
    struct logdir_meta m;
    const char *why = NULL;
    if (logdir_meta_parse(text, size, &m, &why) < 0) {
        GREGOR_ASSERT(why != NULL);
        return;
    }
    GREGOR_ASSERT(m.version >= -1 && m.version <= INT32_MAX);
    GREGOR_ASSERT(m.node_id >= -1 && m.node_id <= INT32_MAX);
    GREGOR_ASSERT(memchr(m.cluster_id, '\0', sizeof(m.cluster_id)) != NULL);
    GREGOR_ASSERT(memchr(m.directory_id, '\0', sizeof(m.directory_id)) != NULL);
    uint8_t id[16];
    GREGOR_ASSERT(m.directory_id[0] == '\0' || uuid_from_base64url(m.directory_id, id) == 0);
}

static void partition_metadata(const char *text, size_t size)
{
    static const uint8_t zero[16];
    uint8_t id[16];
    const char *why = NULL;
    if (partition_metadata_parse(text, size, id, &why) < 0) {
        GREGOR_ASSERT(why != NULL);
        return;
    }
    GREGOR_ASSERT(memcmp(id, zero, 16) != 0);
    char b64[23], again[64];
    uuid_to_base64url(id, b64);
    int len = snprintf(again, sizeof(again), "version: 0\ntopic_id: %s\n", b64);
    uint8_t id2[16];
    GREGOR_ASSERT(partition_metadata_parse(again, (size_t)len, id2, &why) == 0);
    GREGOR_ASSERT(memcmp(id, id2, 16) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool meta = (data[0] & 1) == 0;
    data++;
    size--;
    char *text = malloc(size ? size : 1);
    GREGOR_ASSERT(text != NULL);
    memcpy(text, data, size);
    if (meta)
        meta_properties(text, size);
    else
        partition_metadata(text, size);
    free(text);
    return 0;
}
