/* header: the Kafka request header (v1/v2) and the frame length prefix rules. */
#ifndef GREGOR_PROTO_HEADER_H
#define GREGOR_PROTO_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/kbuf.h"

struct request_header {
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    struct kstr client_id;   /* null allowed (Kafka treats it as "") */
};

/* Reads api key, version and correlation id, then the client id. When flexible_fn says the
 * version is flexible, the header's tagged fields are skipped too (header v2). Returns 0 or
 * -1 (r->err set). */
int proto_request_header_decode(struct kreader *r, bool (*flexible_fn)(int16_t, int16_t),
                                 struct request_header *h, bool *flexible);

enum frame_check { FRAME_NEED_MORE, FRAME_OK, FRAME_BAD_SIZE };
/* Looks at the bytes of a connection's input: FRAME_OK with *size when a length prefix is
 * there and acceptable (8..max: a header needs 8 bytes), FRAME_BAD_SIZE otherwise. */
enum frame_check proto_frame_check(const uint8_t *p, size_t avail, size_t max, int32_t *size);

#endif
