/* json: a recursive-descent JSON reader into an arena, bounded in depth, with the messages
 * Jackson gives for what it refuses; and the compact writer Kafka's tools print with. */
#include "common/json.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct json_parser {
    const char *text;     /* the whole input, for Jackson's line and column */
    const char *p, *end;
    struct arena *arena;
    int depth;
    const char *error_at; /* where Jackson's location would point */
    char error[512];
};

static void jp_skip_ws(struct json_parser *jp)
{
    while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'))
        jp->p++;
}

static int jp_fail(struct json_parser *jp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int jp_fail(struct json_parser *jp, const char *fmt, ...)
{
    if (jp->error[0] == '\0') {
        jp->error_at = jp->p;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(jp->error, sizeof jp->error, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Jackson's message for a character it did not expect: the character and its code. */
static int jp_unexpected(struct json_parser *jp, const char *expecting)
{
    if (jp->p >= jp->end)
        return jp_fail(jp, "Unexpected end-of-input: %s", expecting);
    unsigned char c = (unsigned char)*jp->p++; /* Jackson has read it: its column is after */
    if (c < 0x20 || c >= 0x7f)
        return jp_fail(jp, "Unexpected character (CTRL-CHAR, code %u): %s", c, expecting);
    return jp_fail(jp, "Unexpected character ('%c' (code %u)): %s", c, c, expecting);
}

static void jp_put_utf8(char *out, size_t *n, uint32_t cp)
{
    if (cp < 0x80) {
        out[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*n)++] = (char)(0xc0 | cp >> 6);
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out[(*n)++] = (char)(0xe0 | cp >> 12);
        out[(*n)++] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        out[(*n)++] = (char)(0xf0 | cp >> 18);
        out[(*n)++] = (char)(0x80 | (cp >> 12 & 0x3f));
        out[(*n)++] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    }
}

static int jp_hex4(struct json_parser *jp, uint32_t *out)
{
    if (jp->end - jp->p < 4)
        return jp_fail(jp, "Unexpected end-of-input in character escape sequence");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *jp->p++;
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
                c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return jp_fail(jp, "Unexpected character ('%c' (code %d)): expected a hex-digit "
                           "for character escape sequence", c, (unsigned char)c);
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* At the opening quote; the unescaped bytes into the arena. */
static int jp_string(struct json_parser *jp, const char **out, size_t *outlen)
{
    jp->p++;
    const char *s = jp->p;
    size_t cap = 0;
    while (jp->p < jp->end && *jp->p != '"') {
        if (*jp->p == '\\' && jp->p + 1 < jp->end)
            jp->p++;
        jp->p++;
        cap++;
    }
    if (jp->p >= jp->end)
        return jp_fail(jp, "Unexpected end-of-input: was expecting closing quote for a string "
                       "value");
    jp->p = s;
    char *buf = arena_alloc(jp->arena, cap * 4 + 1); /* an escape is at most 4 UTF-8 bytes */
    if (buf == NULL)
        return jp_fail(jp, "The JSON is too large");
    size_t n = 0;
    while (*jp->p != '"') {
        unsigned char c = (unsigned char)*jp->p++;
        if (c < 0x20)
            return jp_fail(jp, "Illegal unquoted character ((CTRL-CHAR, code %u)): has to be "
                           "escaped using backslash to be included in string value", c);
        if (c != '\\') {
            buf[n++] = (char)c;
            continue;
        }
        char e = *jp->p++;
        uint32_t cp;
        switch (e) {
        case '"': case '\\': case '/': buf[n++] = e; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u':
            if (jp_hex4(jp, &cp) != 0)
                return -1;
            if (cp >= 0xd800 && cp < 0xdc00 && jp->end - jp->p >= 6 && jp->p[0] == '\\' &&
                jp->p[1] == 'u') {
                const char *save = jp->p;
                uint32_t lo;
                jp->p += 2;
                if (jp_hex4(jp, &lo) != 0)
                    return -1;
                if (lo >= 0xdc00 && lo < 0xe000)
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                else
                    jp->p = save;
            }
            jp_put_utf8(buf, &n, cp);
            break;
        default:
            return jp_fail(jp, "Unrecognized character escape '%c' (code %d)", e,
                           (unsigned char)e);
        }
    }
    jp->p++;
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return 0;
}

static int jp_number(struct json_parser *jp, struct json *v)
{
    const char *s = jp->p;
    if (*jp->p == '-')
        jp->p++;
    const char *digits = jp->p;
    while (jp->p < jp->end && *jp->p >= '0' && *jp->p <= '9')
        jp->p++;
    if (jp->p == digits)
        return jp_fail(jp, "Unexpected character ('%c' (code %d)) in numeric value: expected "
                       "digit (0-9) to follow minus sign, for valid numeric value",
                       jp->p < jp->end ? *jp->p : ' ', jp->p < jp->end ? *jp->p : 0);
    if (*digits == '0' && jp->p - digits > 1)
        return jp_fail(jp, "Invalid numeric value: Leading zeroes not allowed");
    bool integral = true;
    if (jp->p < jp->end && *jp->p == '.') {
        integral = false;
        jp->p++;
        const char *f = jp->p;
        while (jp->p < jp->end && *jp->p >= '0' && *jp->p <= '9')
            jp->p++;
        if (jp->p == f)
            return jp_fail(jp, "Unexpected character: Decimal point not followed by a digit");
    }
    if (jp->p < jp->end && (*jp->p == 'e' || *jp->p == 'E')) {
        integral = false;
        jp->p++;
        if (jp->p < jp->end && (*jp->p == '+' || *jp->p == '-'))
            jp->p++;
        const char *x = jp->p;
        while (jp->p < jp->end && *jp->p >= '0' && *jp->p <= '9')
            jp->p++;
        if (jp->p == x)
            return jp_fail(jp, "Unexpected character: Exponent indicator not followed by a "
                           "digit");
    }
    v->type = JSON_NUMBER;
    v->text = s;
    v->len = (size_t)(jp->p - s);
    if (integral && jp->p - digits <= 10) { /* by hand: strtoll would read past len */
        int64_t x = 0;
        for (const char *d = digits; d < jp->p; d++)
            x = x * 10 + (*d - '0');
        x = *s == '-' ? -x : x;
        if (x >= INT32_MIN && x <= INT32_MAX) {
            v->is_int = true;
            v->i = (int32_t)x;
        }
    }
    return 0;
}

static int jp_value(struct json_parser *jp, struct json *v);

/* Jackson's 1-based line and column of a position. */
static void jp_location(const struct json_parser *jp, const char *at, int *line, int *column)
{
    const char *line_start = jp->text;
    *line = 1;
    for (const char *q = jp->text; q < at; q++)
        if (*q == '\n') {
            (*line)++;
            line_start = q + 1;
        }
    *column = (int)(at - line_start) + 1;
}

#define JACKSON_SOURCE "[Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled)"

/* The input ended inside the container opened at start. */
static int jp_eof_in(struct json_parser *jp, const char *start, bool object)
{
    int line, column;
    jp_location(jp, start, &line, &column);
    return jp_fail(jp, "Unexpected end-of-input: expected close marker for %s (start marker at "
                   JACKSON_SOURCE "; line: %d, column: %d])", object ? "Object" : "Array", line,
                   column);
}

/* Arrays and objects: members separated by commas, up to the closing bracket. */
static int jp_container(struct json_parser *jp, struct json *v, bool object)
{
    if (++jp->depth > JSON_DEPTH_MAX)
        return jp_fail(jp, "The JSON nests deeper than %d levels", JSON_DEPTH_MAX);
    v->type = object ? JSON_OBJECT : JSON_ARRAY;
    char close = object ? '}' : ']';
    const char *start = jp->p++;
    jp_skip_ws(jp);
    if (jp->p >= jp->end)
        return jp_eof_in(jp, start, object);
    struct json **tail = &v->first;
    if (jp->p < jp->end && *jp->p == close) {
        jp->p++;
        jp->depth--;
        return 0;
    }
    for (;;) {
        struct json *m = arena_alloc(jp->arena, sizeof *m);
        if (m == NULL)
            return jp_fail(jp, "The JSON is too large");
        if (object) {
            if (jp->p >= jp->end)
                return jp_eof_in(jp, start, object);
            if (*jp->p != '"')
                return jp_unexpected(jp, "was expecting double-quote to start field name");
            if (jp_string(jp, &m->key, &m->keylen) != 0)
                return -1;
            jp_skip_ws(jp);
            if (jp->p >= jp->end)
                return jp_eof_in(jp, start, object);
            if (*jp->p != ':')
                return jp_unexpected(jp, "was expecting a colon to separate field name and "
                                     "value");
            jp->p++;
            jp_skip_ws(jp);
        }
        if (jp->p >= jp->end)
            return jp_eof_in(jp, start, object);
        if (jp_value(jp, m) != 0)
            return -1;
        *tail = m;
        tail = &m->next;
        v->n++;
        jp_skip_ws(jp);
        if (jp->p < jp->end && *jp->p == ',') {
            jp->p++;
            jp_skip_ws(jp);
            continue;
        }
        if (jp->p < jp->end && *jp->p == close) {
            jp->p++;
            jp->depth--;
            return 0;
        }
        if (jp->p >= jp->end)
            return jp_eof_in(jp, start, object);
        return jp_unexpected(jp, object ? "was expecting comma to separate Object entries"
                                        : "was expecting comma to separate Array entries");
    }
}

static int jp_value(struct json_parser *jp, struct json *v)
{
    if (jp->p >= jp->end)
        return jp_fail(jp, "Unexpected end-of-input: expected a value");
    char c = *jp->p;
    if (c == '{' || c == '[')
        return jp_container(jp, v, c == '{');
    if (c == '"') {
        v->type = JSON_STRING;
        return jp_string(jp, &v->text, &v->len);
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return jp_number(jp, v);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        const char *s = jp->p;
        while (jp->p < jp->end && ((*jp->p >= 'a' && *jp->p <= 'z') ||
                                   (*jp->p >= 'A' && *jp->p <= 'Z') ||
                                   (*jp->p >= '0' && *jp->p <= '9') || *jp->p == '_'))
            jp->p++;
        size_t n = (size_t)(jp->p - s);
        if (n == 4 && memcmp(s, "true", 4) == 0) {
            v->type = JSON_BOOL;
            v->truth = true;
        } else if (n == 5 && memcmp(s, "false", 5) == 0) {
            v->type = JSON_BOOL;
        } else if (n == 4 && memcmp(s, "null", 4) == 0) {
            v->type = JSON_NULL;
        } else {
            return jp_fail(jp, "Unrecognized token '%.*s': was expecting (JSON String, Number, "
                           "Array, Object or token 'null', 'true' or 'false')",
                           (int)(n > 100 ? 100 : n), s);
        }
        return 0;
    }
    return jp_unexpected(jp, "expected a valid value (JSON String, Number, Array, Object or "
                         "token 'null', 'true' or 'false')");
}

struct json *json_parse(const char *text, size_t len, struct arena *arena,
                               char *error, size_t errlen)
{
    struct json_parser jp = {.text = text, .p = text, .end = text + len, .arena = arena};
    struct json *v = arena_alloc(arena, sizeof *v);
    jp_skip_ws(&jp);
    if (v == NULL) {
        snprintf(error, errlen, "The JSON is too large");
        return NULL;
    }
    if (jp_value(&jp, v) != 0) {
        int line, column;
        jp_location(&jp, jp.error_at, &line, &column);
        snprintf(error, errlen, "%s\n at " JACKSON_SOURCE "; line: %d, column: %d]", jp.error,
                 line, column);
        return NULL;
    }
    return v;
}

void json_write_string(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (c == '\b')
            fputs("\\b", f);
        else if (c == '\f')
            fputs("\\f", f);
        else if (c < 0x20)
            fprintf(f, "\\u%04X", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void json_write(FILE *f, const struct json *v)
{
    switch (v->type) {
    case JSON_NULL: fputs("null", f); break;
    case JSON_BOOL: fputs(v->truth ? "true" : "false", f); break;
    case JSON_NUMBER: fwrite(v->text, 1, v->len, f); break;
    case JSON_STRING: json_write_string(f, v->text, v->len); break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        fputc(v->type == JSON_ARRAY ? '[' : '{', f);
        for (const struct json *m = v->first; m; m = m->next) {
            if (m != v->first)
                fputc(',', f);
            if (v->type == JSON_OBJECT) {
                json_write_string(f, m->key, m->keylen);
                fputc(':', f);
            }
            json_write(f, m);
        }
        fputc(v->type == JSON_ARRAY ? ']' : '}', f);
        break;
    }
}

const struct json *json_get(const struct json *obj, const char *key)
{
    const struct json *found = NULL;
    size_t n = strlen(key);
    for (const struct json *m = obj->first; m; m = m->next)
        if (m->keylen == n && memcmp(m->key, key, n) == 0)
            found = m;
    return found;
}
