/* fuzz_proc_stat: metrics.c's reader of /proc/self/stat (the process metrics of /metrics) on
 * arbitrary bytes. Nothing may crash or read past the input (copied to an exact-size buffer,
 * so ASan sees any overread); what parses parses the same twice. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/metrics.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    struct proc_stat a, b;
    int rc = metrics_proc_stat_parse(text, size, &a);
    GREGOR_ASSERT(rc == 0 || rc == -1);
    if (rc == 0) {
        GREGOR_ASSERT(metrics_proc_stat_parse(text, size, &b) == 0);
        GREGOR_ASSERT(memcmp(&a, &b, sizeof(a)) == 0);
    }
    free(text);
    return 0;
}
