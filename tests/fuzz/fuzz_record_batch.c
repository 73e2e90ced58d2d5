/* fuzz_record_batch: the batch validator, the offset/LogAppendTime rewrite and the record
 * iterator (with every decompressor) on arbitrary bytes. Nothing may crash, hang or read
 * outside the input; an accepted batch must iterate to its declared record count or fail.
 * Each input also runs with its header fixed up (length, baseOffset 0, magic 2, CRC), so the
 * fuzzer reaches the record validator, which must agree with the iterator both ways. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/util.h"
#include "log/batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads every record: 1 when all recordsCount came out cleanly with offsets base..base+n-1. */
static int iterate(const uint8_t *buf, size_t size, size_t bound, int *opened)
{
    struct batch_record_iter it;
    *opened = batch_records_open(&it, buf, size, bound) == KERR_NONE;
    if (!*opened)
        return 0;
    struct batch_record r;
    int k, n = 0, in_order = 1;
    while ((k = batch_records_next(&it, &r)) == 1) {
        const uint8_t *p = r.headers, *hk, *hv;
        int32_t hkl, hvl;
        while (batch_record_header_next(&p, r.headers + r.headers_len, &hk, &hkl, &hv, &hvl) == 1)
            ;
        if (r.offset != it.h.base_offset + n)
            in_order = 0;
        n++;
    }
    if (k == 0 && n != it.h.records_count)
        abort(); /* a clean end must mean every declared record was read */
    batch_records_close(&it);
    return k == 0 && in_order;
}

static void check_validated(uint8_t *buf, size_t size)
{
    int rc = batch_validate_client(buf, size, 1 << 20);
    int opened;
    if (rc == KERR_NONE) {
        /* Accepted: every record must come out of the reader, in order. */
        if (!iterate(buf, size, BATCH_INFLATE_MAX, &opened))
            abort();
        batch_assign(buf, size, 12345, 0, true, 999);
        be64_put(buf, 0); /* a client's baseOffset is 0; the rewrite must keep the rest valid */
        if (batch_validate_client(buf, size, 1 << 20) != KERR_NONE)
            abort(); /* the rewrite must keep a valid batch valid (CRC recomputed) */
        return;
    }
    /* UNKNOWN_SERVER_ERROR is for running out of memory only: a payload that does not
     * decompress is INVALID_RECORD, one over a bound MESSAGE_TOO_LARGE. */
    if (rc == KERR_UNKNOWN_SERVER_ERROR)
        abort();
    /* Refused: if the header was otherwise acceptable and the reader got every record in
     * order within 4 MiB, the validator had no reason to refuse. */
    struct batch_header h;
    if (size < BATCH_HEADER_SIZE)
        return;
    batch_header_decode(buf, &h);
    if (h.magic != BATCH_MAGIC_V2 || h.base_offset != 0 || (uint64_t)batch_total_size(&h) != size ||
        batch_compute_crc(buf, size) != h.crc || h.records_count <= 0 ||
        (int64_t)h.last_offset_delta + 1 != h.records_count || (h.attributes & BATCH_ATTR_CONTROL) ||
        (h.attributes & BATCH_ATTR_COMPRESSION_MASK) > BATCH_COMPRESSION_ZSTD ||
        (h.producer_id >= 0 && h.base_sequence < 0))
        return;
    if (iterate(buf, size, 4u << 20, &opened))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so ASan sees any read past the batch. */
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    int opened;
    iterate(buf, size, 4u << 20, &opened);
    check_validated(buf, size);
    if (size >= BATCH_HEADER_SIZE) {
        memcpy(buf, data, size);
        be64_put(buf, 0);
        be32_put(buf + 8, (uint32_t)(size - BATCH_LOG_OVERHEAD));
        buf[16] = BATCH_MAGIC_V2;
        be32_put(buf + 17, batch_compute_crc(buf, size));
        check_validated(buf, size);
    }
    free(buf);
    return 0;
}
