/* fuzz_offset_checkpoint: the reader of a log dir's offset checkpoint files
 * (recovery-point-offset-checkpoint, replication-offset-checkpoint,
 * log-start-offset-checkpoint; log/logdir.c) on arbitrary bytes. Nothing may crash, hang or
 * read past the input (copied to an exact-size buffer, not NUL-terminated), and the entries
 * allocated stay within what the input can hold. Invariants: at most one entry per 6 bytes,
 * each with a topic and a partition >= 0; written out again as the broker writes the file it
 * reads back the same. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "log/logdir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    GREGOR_ASSERT(text != NULL);
    memcpy(text, data, size);
    struct logdir_offset *v = NULL;
    int n = -1;
    const char *why = NULL;
    int rc = logdir_offsets_parse(text, size, &v, &n, &why);
    free(text);
    if (rc < 0) {
        GREGOR_ASSERT(why != NULL && v == NULL && n == 0);
        return 0;
    }
    GREGOR_ASSERT(n >= 0 && (size_t)n <= (size + 1) / 6);
    size_t cap = 32;
    for (int i = 0; i < n; i++) {
        GREGOR_ASSERT(v[i].topic[0] != '\0' && v[i].partition >= 0);
        cap += strlen(v[i].topic) + 40;
    }
    char *again = malloc(cap);
    GREGOR_ASSERT(again != NULL);
    size_t len = (size_t)snprintf(again, cap, "0\n%d\n", n);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(again + len, cap - len, "%s %d %" PRId64 "\n", v[i].topic,
                                v[i].partition, v[i].offset);
    GREGOR_ASSERT(len < cap);
    struct logdir_offset *v2;
    int n2;
    GREGOR_ASSERT(logdir_offsets_parse(again, len, &v2, &n2, &why) == 0 && n2 == n);
    for (int i = 0; i < n; i++) {
        GREGOR_ASSERT(strcmp(v[i].topic, v2[i].topic) == 0);
        GREGOR_ASSERT(v[i].partition == v2[i].partition && v[i].offset == v2[i].offset);
    }
    free(again);
    logdir_offsets_free(v, n);
    logdir_offsets_free(v2, n2);
    return 0;
}
