/* fuzz_console_browse: the console's record browser on arbitrary record-batch bytes, as a
 * Fetch response from another broker hands them to console_browse_batches (or a read of
 * this broker's log does). The first bytes pick the start offset, the page's limit and a
 * filter; the rest are the batches. Nothing may crash or read past the input (copied to an
 * exact-size buffer); the page's bounds hold and the position never goes back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/console_api.h"
#include "common/errors.h"
#include "common/jsonw.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    int64_t pos = data[0] < 128 ? data[0] : -1 - (int64_t)(data[0] - 128);
    int limit = 1 + data[1] % CONSOLE_LIMIT_MAX;
    size_t flen = data[2] % 4;
    if (flen > size - 3)
        flen = size - 3;
    char filter[4] = "";
    memcpy(filter, data + 3, flen);
    filter[flen] = '\0';
    flen = strlen(filter);
    size_t len = size - 3 - flen;
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data + 3 + flen, len);
    struct jsonw w;
    jsonw_init(&w, CONSOLE_RESPONSE_MAX);
    jsonw_arr(&w);
    struct console_browse br = {.w = &w, .filter = filter, .flen = flen, .limit = limit};
    int64_t start = pos;
    int e = console_browse_batches(&br, 0, buf, len, &pos);
    GREGOR_ASSERT(e == KERR_NONE || e == KERR_CORRUPT_MESSAGE);
    GREGOR_ASSERT(pos >= start);
    GREGOR_ASSERT(br.shown <= br.limit && br.shown <= br.scanned && br.scanned <= CONSOLE_SCAN_MAX);
    jsonw_arr_end(&w);
    jsonw_free(&w);
    free(buf);
    return 0;
}
