/* fuzz_reassign_json: the JSON reader of kafka-reassign-partitions.sh's files (src/common/json.c)
 * on arbitrary bytes, as a user's file may hold them. Nothing may crash, hang or read past the
 * input (copied to an exact-size buffer, so ASan sees any overread); a refusal always says why.
 * Invariant: what is accepted, written compactly, reads back and writes the same bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/arena.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *written(const struct json *v, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    GREGOR_ASSERT(f != NULL);
    json_write(f, v);
    GREGOR_ASSERT(fclose(f) == 0);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size > 0 ? size : 1);
    GREGOR_ASSERT(text != NULL);
    memcpy(text, data, size);
    struct arena arena;
    arena_init(&arena, 64u << 20);
    char error[1024] = "";
    struct json *v = json_parse(text, size, &arena, error, sizeof error);
    if (v == NULL) {
        GREGOR_ASSERT(error[0] != '\0');
    } else {
        size_t n1, n2;
        char *once = written(v, &n1);
        struct json *again = json_parse(once, n1, &arena, error, sizeof error);
        GREGOR_ASSERT(again != NULL && again->type == v->type && again->n == v->n);
        char *twice = written(again, &n2);
        GREGOR_ASSERT(n1 == n2 && memcmp(once, twice, n1) == 0);
        free(once);
        free(twice);
    }
    arena_reset(&arena);
    free(text);
    return 0;
}
