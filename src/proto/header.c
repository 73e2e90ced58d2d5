/* header: request header decoding and frame-size rules, shared by the server and fuzzers. */
#include "proto/header.h"

#include "common/util.h"

int proto_request_header_decode(struct kreader *r, bool (*flexible_fn)(int16_t, int16_t),
                                struct request_header *h, bool *flexible)
{
    h->api_key = kr_i16(r);
    h->api_version = kr_i16(r);
    h->correlation_id = kr_i32(r);
    h->client_id = kr_str(r, false, true); /* never compact, even in header v2 */
    *flexible = kr_ok(r) && flexible_fn != NULL && flexible_fn(h->api_key, h->api_version);
    if (*flexible)
        kr_skip_tags(r);
    return kr_ok(r) ? 0 : -1;
}

enum frame_check proto_frame_check(const uint8_t *p, size_t avail, size_t max, int32_t *size)
{
    if (avail < 4)
        return FRAME_NEED_MORE;
    int32_t n = (int32_t)be32_get(p);
    *size = n;
    if (n < 8 || (size_t)n > max)
        return FRAME_BAD_SIZE;
    return FRAME_OK;
}
