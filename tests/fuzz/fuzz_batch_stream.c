/* fuzz_batch_stream: the streamed record reader of timestamp lookups (log/batch_stream.c) on
 * arbitrary bytes in a file, every codec. Nothing may crash, hang, leak or read outside the
 * batch; where both it and the in-memory iterator read every record, they agree. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/errors.h"
#include "log/batch.h"
#include "log/batch_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RECORDS 4096
#define BUDGET (4 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < BATCH_HEADER_SIZE)
        return 0;
    struct batch_header h;
    batch_header_decode(data, &h);
    if (h.length < BATCH_MIN_LENGTH || batch_total_size(&h) > (int64_t)size)
        return 0; /* the segment walk checks this before a batch is streamed */
    int fd = memfd_create("batch", 0);
    if (fd < 0)
        return 0;
    /* Bytes after the batch in the file: the stream must never read them. */
    if (write(fd, data, size) != (ssize_t)size || write(fd, "\xff\xff\xff\xff", 4) != 4) {
        close(fd);
        return 0;
    }
    static int64_t offs[MAX_RECORDS], stamps[MAX_RECORDS];
    int n = 0, k = -1;
    struct batch_stream *bs;
    if (batch_stream_open(&bs, fd, 0, &h, BUDGET) == 0) {
        int64_t o, t;
        while ((k = batch_stream_next(bs, &o, &t)) == 1 && n < MAX_RECORDS) {
            offs[n] = o;
            stamps[n] = t;
            n++;
        }
        batch_stream_close(bs);
    }
    close(fd);
    if (k != 0)
        return 0;
    struct batch_record_iter it;
    if (batch_records_open(&it, data, (size_t)batch_total_size(&h), BUDGET) != KERR_NONE)
        return 0;
    struct batch_record r;
    int i = 0, ik;
    while ((ik = batch_records_next(&it, &r)) == 1) {
        if (i >= n || r.offset != offs[i] || r.timestamp != stamps[i])
            abort(); /* the two readers disagree on a record both decoded */
        i++;
    }
    batch_records_close(&it);
    if (ik == 0 && i != n)
        abort();
    return 0;
}
