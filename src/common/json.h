/* json: a small JSON reader with Jackson's acceptance and messages (what Kafka's tools read
 * and say about a file), for the reassignment tool's files and the console API's request
 * bodies; and Jackson's compact writing. */
#ifndef GREGOR_COMMON_JSON_H
#define GREGOR_COMMON_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/arena.h"

/* Nesting deeper than this is refused (the files Kafka's tools read nest four levels). */
#define JSON_DEPTH_MAX 64

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
    enum json_type type;
    const char *text;     /* number: its literal; string: unescaped bytes (arena) */
    size_t len;
    bool is_int;          /* a number without fraction or exponent within int32 (Jackson's IntNode) */
    int32_t i;
    bool truth;
    struct json *first;   /* array elements / object members, in order */
    struct json *next;
    const char *key;      /* object member: its name (arena) */
    size_t keylen;
    int n;                /* elements / members */
};

/* The first value of text[0, len) (Jackson's readTree ignores what follows it), allocated in
 * arena; never reads past len. NULL when it is not JSON, with Jackson's message and location
 * ("Unrecognized token 'x': ...\n at [Source: ...; line: 1, column: 2]") in error. */
struct json *json_parse(const char *text, size_t len, struct arena *arena, char *error,
                        size_t errlen);
/* An object's member (the last of that name, as Jackson keeps it); NULL when absent. */
const struct json *json_get(const struct json *obj, const char *key);
/* Jackson's compact text of a value (numbers as written), and of a string. */
void json_write(FILE *f, const struct json *v);
void json_write_string(FILE *f, const char *s, size_t n);

#endif
