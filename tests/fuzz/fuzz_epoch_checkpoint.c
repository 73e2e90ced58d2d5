/* fuzz_epoch_checkpoint: the leader-epoch-checkpoint reader (partition/partition.c) on
 * arbitrary bytes. Nothing may crash or read past the input (copied to an exact-size buffer,
 * not NUL-terminated). Invariants: an accepted file gives at most PARTITION_EPOCHS_MAX entries,
 * epochs and start offsets not negative and increasing; written out again as the broker
 * writes the file it reads back the same. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "partition/partition.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    GREGOR_ASSERT(text != NULL);
    memcpy(text, data, size);
    struct epoch_entry e[PARTITION_EPOCHS_MAX];
    int n = -1;
    const char *why = NULL;
    int rc = partition_epochs_parse(text, size, e, &n, &why);
    free(text);
    if (rc < 0) {
        GREGOR_ASSERT(why != NULL && n == 0);
        return 0;
    }
    GREGOR_ASSERT(n >= 0 && n <= PARTITION_EPOCHS_MAX);
    for (int i = 0; i < n; i++) {
        GREGOR_ASSERT(e[i].epoch >= 0 && e[i].start_offset >= 0);
        GREGOR_ASSERT(i == 0 || (e[i].epoch > e[i - 1].epoch && e[i].start_offset >= e[i - 1].start_offset));
    }
    char buf[4096];
    int len = snprintf(buf, sizeof(buf), "0\n%d\n", n);
    for (int i = 0; i < n; i++)
        len += snprintf(buf + len, sizeof(buf) - (size_t)len, "%d %" PRId64 "\n", e[i].epoch,
                        e[i].start_offset);
    GREGOR_ASSERT(len < (int)sizeof(buf));
    struct epoch_entry e2[PARTITION_EPOCHS_MAX];
    int n2;
    GREGOR_ASSERT(partition_epochs_parse(buf, (size_t)len, e2, &n2, &why) == 0 && n2 == n);
    for (int i = 0; i < n; i++)
        GREGOR_ASSERT(e[i].epoch == e2[i].epoch && e[i].start_offset == e2[i].start_offset);
    return 0;
}
