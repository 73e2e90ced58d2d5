/* fuzz_request: libFuzzer target for every generated decoder. Input = [int16 key][int16 version]
 * [body]. A key gregor describes runs that API's request and response decoders; any other key
 * picks a standalone message. Whatever decodes is re-encoded, decoded again and re-encoded:
 * the two encodings must match (encode∘decode is a fixpoint after one pass). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/util.h"
#include "proto/kbuf.h"
#include "proto/messages.h"

#define FUZZ_ARENA_LIMIT (64u << 20)
#define FUZZ_OUT_LIMIT (64u << 20)

static void check_codec(const struct proto_codec *c, int16_t version, const uint8_t *body,
                        size_t n)
{
    struct arena arena;
    arena_init(&arena, FUZZ_ARENA_LIMIT);
    /* The decoder may borrow from its frame, so it gets a private, exactly sized copy. */
    uint8_t *frame = malloc(n ? n : 1);
    GREGOR_ASSERT(frame != NULL);
    memcpy(frame, body, n);
    struct kreader r;
    kr_init(&r, frame, n, &arena);
    void *msg = kr_alloc(&r, 1, c->size);
    GREGOR_ASSERT(msg != NULL);
    int rc = c->decode(&r, version, msg);
    GREGOR_ASSERT(rc == 0 ? r.err == 0 : r.err != 0 && r.what != NULL);
    GREGOR_ASSERT(r.off <= r.len);
    if (rc == 0) {
        struct kwriter first, second;
        kw_init(&first, FUZZ_OUT_LIMIT);
        c->encode(&first, version, msg);
        GREGOR_ASSERT(first.err == 0 && first.nfiles == 0);
        struct kreader again;
        kr_init(&again, first.buf, first.len, &arena);
        void *msg2 = kr_alloc(&again, 1, c->size);
        GREGOR_ASSERT(msg2 != NULL);
        if (c->decode(&again, version, msg2) != 0) {
            fprintf(stderr, "%s v%d: re-encoded bytes do not decode (%s in %s at %zu)\n",
                    c->name, version, again.what, again.where ? again.where : "?", again.off);
            abort();
        }
        GREGOR_ASSERT(kr_remaining(&again) == 0);
        kw_init(&second, FUZZ_OUT_LIMIT);
        c->encode(&second, version, msg2);
        GREGOR_ASSERT(second.err == 0);
        if (second.len != first.len ||
            (first.len > 0 && memcmp(second.buf, first.buf, first.len) != 0)) {
            fprintf(stderr, "%s v%d: encoding is not stable\n", c->name, version);
            abort();
        }
        kw_free(&first);
        kw_free(&second);
    }
    free(frame);
    arena_reset(&arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    int16_t key = (int16_t)be16_get(data);
    int16_t version = (int16_t)be16_get(data + 2);
    const uint8_t *body = data + 4;
    size_t n = size - 4;
    const struct proto_codec *req = proto_request_codec(key);
    if (req != NULL) {
        check_codec(req, version, body, n);
        check_codec(proto_response_codec(key), version, body, n);
    } else if (proto_messages_count > 0) {
        const struct proto_codec *m = &proto_messages[(uint16_t)key % proto_messages_count];
        check_codec(m, version, body, n);
    }
    return 0;
}
