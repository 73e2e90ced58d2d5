/* fuzz_record_batch: the batch validator, the offset/LogAppendTime rewrite and the record
 * iterator (with every decompressor) on arbitrary bytes. Nothing may crash, hang or read
 * outside the input; an accepted batch must iterate to its declared record count or fail. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "log/batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so ASan sees any read past the batch. */
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    int rc = batch_validate_client(buf, size, 1 << 20);
    struct batch_record_iter it;
    if (batch_records_open(&it, buf, size, 4u << 20) == KERR_NONE) {
        struct batch_record r;
        int k, n = 0;
        while ((k = batch_records_next(&it, &r)) == 1) {
            const uint8_t *p = r.headers, *hk, *hv;
            int32_t hkl, hvl;
            while (batch_record_header_next(&p, r.headers + r.headers_len, &hk, &hkl, &hv, &hvl) == 1)
                ;
            n++;
        }
        if (k == 0 && n != it.h.records_count)
            abort(); /* a clean end must mean every declared record was read */
        batch_records_close(&it);
    }
    if (rc == KERR_NONE) {
        batch_assign(buf, size, 12345, 0, true, 999);
        if (batch_validate_client(buf, size, 1 << 20) != KERR_NONE)
            abort(); /* the rewrite must keep a valid batch valid (CRC recomputed) */
    }
    free(buf);
    return 0;
}
