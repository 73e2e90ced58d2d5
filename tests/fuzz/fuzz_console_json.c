/* fuzz_console_json: what the console API reads from a client — a JSON request body
 * (common/json.c), the record browser's cursor (console_cursor_parse) — and the JSON writer's
 * escaping (common/jsonw.c) on arbitrary bytes. Nothing may crash or read past the input
 * (copied to an exact-size buffer). Invariants: a string written by jsonw reads back with
 * json_parse as the same bytes when they were valid text; a cursor that parses names
 * non-negative partitions and offsets, at most the bound asked. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/console_api.h"
#include "common/arena.h"
#include "common/json.h"
#include "common/jsonw.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    GREGOR_ASSERT(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    struct arena arena;
    arena_init(&arena, 64u << 20);
    char err[256];
    const struct json *j = json_parse(text, size, &arena, err, sizeof(err));
    if (j != NULL && j->type == JSON_OBJECT)
        (void)json_get(j, "name");
    /* the writer: any bytes as a string, read back */
    struct jsonw w;
    jsonw_init(&w, 8 * size + 64);
    jsonw_obj(&w);
    jsonw_key(&w, "v");
    jsonw_strn(&w, text, size);
    jsonw_obj_end(&w);
    GREGOR_ASSERT(!w.overflow);
    const struct json *back = json_parse(w.buf, w.len, &arena, err, sizeof(err));
    GREGOR_ASSERT(back != NULL && back->type == JSON_OBJECT);
    const struct json *v = json_get(back, "v");
    GREGOR_ASSERT(v != NULL && v->type == JSON_STRING);
    if (jsonw_utf8_text(data, size) && memchr(data, 0, size) == NULL)
        GREGOR_ASSERT(v->len == size && memcmp(v->text, data, size) == 0);
    jsonw_free(&w);
    /* the cursor (a NUL-terminated query value) */
    int32_t parts[8];
    int64_t offs[8];
    int n = console_cursor_parse(text, parts, offs, 8);
    GREGOR_ASSERT(n <= 8);
    for (int i = 0; i < n; i++)
        GREGOR_ASSERT(parts[i] >= 0 && offs[i] >= 0);
    int f = console_value_format(data, size);
    GREGOR_ASSERT(f >= 0 && f <= 2);
    arena_reset(&arena);
    free(text);
    return 0;
}
