/* fuzz_cleaner_checkpoint: the cleaner-offset-checkpoint reader (log/cleaner.c) on arbitrary
 * bytes, as a disk or another program could leave the file. Nothing may crash, hang or read past
 * the input (copied to an exact-size buffer, so ASan sees any overread). Invariants: an accepted
 * file gives at most as many entries as it has lines, each with a topic shorter than 256 bytes
 * and a partition >= 0; written back with cleaner_checkpoint_format it reads back the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "log/cleaner.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    GREGOR_ASSERT(text != NULL);
    memcpy(text, data, size);
    struct cleaner_checkpoint_entry *e;
    int n;
    const char *why;
    int rc = cleaner_checkpoint_parse(text, size, &e, &n, &why);
    free(text);
    if (rc < 0) {
        GREGOR_ASSERT(why != NULL && e == NULL && n == 0);
        return 0;
    }
    GREGOR_ASSERT(n >= 0 && (size_t)n <= size / 6);
    for (int i = 0; i < n; i++) {
        GREGOR_ASSERT(strlen(e[i].topic) > 0 && strlen(e[i].topic) < sizeof(e[i].topic));
        GREGOR_ASSERT(e[i].partition >= 0);
    }
    char *again;
    size_t len;
    GREGOR_ASSERT(cleaner_checkpoint_format(e, n, &again, &len) == 0);
    struct cleaner_checkpoint_entry *e2;
    int n2;
    GREGOR_ASSERT(cleaner_checkpoint_parse(again, len, &e2, &n2, &why) == 0);
    GREGOR_ASSERT(n2 == n);
    for (int i = 0; i < n; i++) {
        GREGOR_ASSERT(strcmp(e[i].topic, e2[i].topic) == 0);
        GREGOR_ASSERT(e[i].partition == e2[i].partition && e[i].offset == e2[i].offset);
    }
    free(again);
    free(e);
    free(e2);
    return 0;
}
