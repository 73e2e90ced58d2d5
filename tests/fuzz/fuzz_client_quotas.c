/* fuzz_client_quotas: the client quota file's reader (src/broker/quota.c) on arbitrary bytes.
 * Nothing may crash or read past the input; what it accepts, written back and read again,
 * gives the same entities (the writer's %-encoding and the reader agree). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/quota.h"
#include "common/util.h"
#include "log/fileio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct quotas *q = quotas_create(11, 1);
    GREGOR_ASSERT(q != NULL);
    int bad_line;
    if (quotas_parse(q, (const char *)data, size, &bad_line) == 0) {
        char path[64];
        snprintf(path, sizeof(path), "/tmp/fuzz-client-quotas-%d", (int)getpid());
        GREGOR_ASSERT(quotas_save(q, path) == 0);
        char *text = NULL;
        size_t len = 0;
        GREGOR_ASSERT(fio_read_file(path, QUOTAS_FILE_MAX, &text, &len) == 0);
        struct quotas *again = quotas_create(11, 1);
        GREGOR_ASSERT(again != NULL);
        GREGOR_ASSERT(quotas_parse(again, text, len, &bad_line) == 0);
        GREGOR_ASSERT(quotas_count(again) == quotas_count(q));
        for (int i = 0; i < quotas_count(q); i++) {
            struct quota_entity_id a, b;
            const double *va, *vb;
            const bool *ha, *hb;
            quotas_entity_at(q, i, &a, &va, &ha);
            quotas_entity_at(again, i, &b, &vb, &hb);
            const char *na[3] = {a.user, a.client_id, a.ip}, *nb[3] = {b.user, b.client_id, b.ip};
            for (int t = 0; t < 3; t++)
                GREGOR_ASSERT(na[t] == nb[t] || (na[t] != NULL && nb[t] != NULL &&
                                                 na[t] != QUOTA_DEFAULT && nb[t] != QUOTA_DEFAULT &&
                                                 strcmp(na[t], nb[t]) == 0));
            for (int k = 0; k < QUOTA_NKEYS; k++)
                GREGOR_ASSERT(ha[k] == hb[k] && (!ha[k] || va[k] == vb[k]));
        }
        free(text);
        quotas_free(again);
        unlink(path);
    }
    /* The rates on whatever was read: bounded, never negative. */
    int64_t now = 1000;
    for (size_t i = 0; i < size && i < 64; i++) {
        now += data[i] * 37;
        int32_t t = quota_record(q, data[i] % QUOTA_NKEYS, (data[i] & 1) ? "u" : "ANONYMOUS",
                                 (data[i] & 2) ? "c" : "", (double)(data[i] * 1000), now);
        GREGOR_ASSERT(t >= 0 && t <= 11 * 1000);
    }
    quotas_free(q);
    return 0;
}
