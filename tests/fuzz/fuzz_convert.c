/* fuzz_convert: the magic 0/1 message-set decoder (Produce v0-2) on arbitrary bytes, and the
 * down-converter (Fetch v0-3) on what it accepts. Nothing may crash, hang or read outside the
 * input. Invariants: an accepted set converts to a batch the v3+ validator accepts with the
 * same record count; converting that batch back to magic 0 and 1 yields exactly that many
 * messages (within a large limit), in offset order, and within a small limit never more bytes
 * than the limit unless min_one asked for the first message whole. Each input also runs with
 * its first entry's size and CRC fixed up, so the fuzzer gets past the CRC check. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/errors.h"
#include "common/util.h"
#include "log/batch.h"
#include "log/convert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Counts the entries of a legacy set (offsets must rise); -1 when it does not parse. */
static int64_t count_entries(const uint8_t *p, size_t n)
{
    int64_t k = 0, last = -1;
    size_t pos = 0;
    while (pos < n) {
        if (n - pos < 12)
            return -1;
        int64_t off = (int64_t)be64_get(p + pos);
        uint32_t sz = be32_get(p + pos + 8);
        if (sz > n - pos - 12 || off <= last)
            return -1;
        last = off;
        pos += 12 + sz;
        k++;
    }
    return k;
}

static void check_down(const uint8_t *batch, size_t len, int32_t records)
{
    for (int8_t magic = 0; magic <= 1; magic++) {
        struct convert_buf out = {0};
        int64_t next;
        int e = convert_batches_to_legacy(batch, len, magic, 0, 1 << 26, false, &out, &next);
        if (e != KERR_NONE)
            abort(); /* what the validator accepted must down-convert */
        int compressed = (be16_get(batch + 21) & BATCH_ATTR_COMPRESSION_MASK) != 0;
        int64_t n = count_entries(out.data, out.len);
        if (n != (compressed ? 1 : records) || next != records)
            abort();
        convert_buf_free(&out);
        e = convert_batches_to_legacy(batch, len, magic, 1, 40, false, &out, &next);
        if (e != KERR_NONE || out.len > 40)
            abort();
        convert_buf_free(&out);
        e = convert_batches_to_legacy(batch, len, magic, 0, 1, true, &out, &next);
        if (e != KERR_NONE || out.len == 0 || count_entries(out.data, out.len) != 1)
            abort();
        convert_buf_free(&out);
    }
}

static void run(const uint8_t *buf, size_t size)
{
    uint8_t *batch = NULL;
    size_t len = 0;
    int32_t n = 0;
    int e = convert_legacy_to_batch(buf, size, 1 << 20, &batch, &len, &n);
    if (e != KERR_NONE) {
        if (batch != NULL || len != 0)
            abort();
        return;
    }
    if (n <= 0 || batch_validate_client(batch, len, 1 << 24) != KERR_NONE)
        abort();
    struct batch_header h;
    batch_header_decode(batch, &h);
    if (h.records_count != n)
        abort();
    check_down(batch, len, n);
    free(batch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1 << 16))
        return 0;
    run(data, size);
    /* The first entry with its size and CRC made right: reaches the fields and the wrappers. */
    if (size >= 12 + 14) {
        uint8_t *copy = malloc(size);
        memcpy(copy, data, size);
        uint32_t sz = be32_get(copy + 8);
        if (sz < 14 || sz > size - 12) {
            sz = (uint32_t)(size - 12);
            be32_put(copy + 8, sz);
        }
        be32_put(copy + 12, (uint32_t)crc32(0L, copy + 16, (uInt)(sz - 4)));
        run(copy, size);
        free(copy);
    }
    return 0;
}
