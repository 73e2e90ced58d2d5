/* jsonw: see jsonw.h. */
#include "common/jsonw.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

void jsonw_init(struct jsonw *w, size_t max)
{
    memset(w, 0, sizeof(*w));
    w->max = max;
    w->first[0] = true;
}

void jsonw_free(struct jsonw *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

static void put(struct jsonw *w, const char *s, size_t n)
{
    if (w->overflow)
        return;
    if (w->len + n + 1 > w->max) {
        w->overflow = true;
        return;
    }
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 1024;
        while (cap < w->len + n + 1)
            cap *= 2;
        if (cap > w->max)
            cap = w->max;
        char *nb = realloc(w->buf, cap);
        if (nb == NULL) {
            w->overflow = true;
            return;
        }
        w->buf = nb;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

/* Before a value: the comma that separates it from the previous one. */
static void sep(struct jsonw *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (!w->first[w->depth])
        put(w, ",", 1);
    w->first[w->depth] = false;
}

static void open_(struct jsonw *w, char c)
{
    sep(w);
    put(w, &c, 1);
    if (w->depth + 1 >= JSONW_DEPTH_MAX) {
        w->overflow = true;
        return;
    }
    w->depth++;
    w->first[w->depth] = true;
}

static void close_(struct jsonw *w, char c)
{
    GREGOR_ASSERT(w->overflow || (w->depth > 0 && !w->after_key));
    if (w->depth > 0)
        w->depth--;
    put(w, &c, 1);
}

void jsonw_obj(struct jsonw *w) { open_(w, '{'); }
void jsonw_obj_end(struct jsonw *w) { close_(w, '}'); }
void jsonw_arr(struct jsonw *w) { open_(w, '['); }
void jsonw_arr_end(struct jsonw *w) { close_(w, ']'); }

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one. */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    size_t len;
    uint32_t min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    uint32_t cp = c & (0xff >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool jsonw_utf8_text(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return false;
        if (s[i] == 0x7f)
            return false;
        size_t l = utf8_seq(s + i, n - i);
        if (l == 0)
            return false;
        i += l;
    }
    return true;
}

void jsonw_strn(struct jsonw *w, const char *s, size_t n)
{
    sep(w);
    put(w, "\"", 1);
    const uint8_t *u = (const uint8_t *)s;
    size_t run = 0; /* bytes copied as they are, pending */
    for (size_t i = 0; i < n && !w->overflow;) {
        uint8_t c = u[i];
        const char *esc = NULL;
        char tmp[8];
        size_t l = 1;
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20 || c == 0x7f) {
            snprintf(tmp, sizeof(tmp), "\\u%04x", c);
            esc = tmp;
        } else if (c >= 0x80) {
            l = utf8_seq(u + i, n - i);
            if (l == 0) {
                esc = "\xef\xbf\xbd"; /* U+FFFD */
                l = 1;
            }
        }
        if (esc != NULL) {
            put(w, s + i - run, run);
            run = 0;
            put(w, esc, strlen(esc));
        } else {
            run += l;
        }
        i += l;
    }
    put(w, s + n - run, run);
    put(w, "\"", 1);
}

void jsonw_str(struct jsonw *w, const char *s)
{
    if (s == NULL)
        jsonw_null(w);
    else
        jsonw_strn(w, s, strlen(s));
}

void jsonw_key(struct jsonw *w, const char *k)
{
    jsonw_str(w, k);
    put(w, ":", 1);
    w->after_key = true;
}

void jsonw_i64(struct jsonw *w, int64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);
    sep(w);
    put(w, tmp, (size_t)n);
}

void jsonw_bool(struct jsonw *w, bool v)
{
    sep(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}

void jsonw_null(struct jsonw *w)
{
    sep(w);
    put(w, "null", 4);
}

void jsonw_kstr(struct jsonw *w, const char *k, const char *s) { jsonw_key(w, k); jsonw_str(w, s); }
void jsonw_ki64(struct jsonw *w, const char *k, int64_t v) { jsonw_key(w, k); jsonw_i64(w, v); }
void jsonw_kbool(struct jsonw *w, const char *k, bool v) { jsonw_key(w, k); jsonw_bool(w, v); }

void jsonw_ki64_known(struct jsonw *w, const char *k, int64_t v)
{
    jsonw_key(w, k);
    if (v >= 0)
        jsonw_i64(w, v);
    else
        jsonw_null(w);
}
