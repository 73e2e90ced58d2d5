/* libFuzzer target: the frame length prefix and request header decoders, over arbitrary
 * bytes, as the server meets them on a connection. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "proto/header.h"
#include "proto/messages.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int32_t n = 0;
    enum frame_check fc = proto_frame_check(data, size, 104857600, &n);
    if (fc == FRAME_OK && (n < 8 || n > 104857600))
        abort();
    if (size < 4)
        return 0;
    uint8_t *copy = malloc(size - 4 + 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data + 4, size - 4);
    struct arena a;
    arena_init(&a, 1u << 24);
    struct kreader r;
    kr_init(&r, copy, size - 4, &a);
    struct request_header h;
    bool flexible;
    if (proto_request_header_decode(&r, proto_is_flexible, &h, &flexible) == 0) {
        if (r.off > r.len)
            abort();
        if (h.client_id.ptr != NULL && h.client_id.ptr[h.client_id.len] != '\0')
            abort();
    }
    arena_reset(&a);
    free(copy);
    return 0;
}
