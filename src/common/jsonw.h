/* jsonw: a bounded JSON writer into one growing buffer (the console API's answers). Commas
 * and nesting are tracked here; strings are escaped (control characters as \u00XX, invalid
 * UTF-8 bytes as U+FFFD). Past max bytes nothing more is written and `overflow` is set: the
 * caller answers an error instead of a cut document. Out of memory counts as overflow. */
#ifndef GREGOR_COMMON_JSONW_H
#define GREGOR_COMMON_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSONW_DEPTH_MAX 32

struct jsonw {
    char *buf;            /* owned (malloc), NUL-terminated while not overflowed */
    size_t len, cap, max;
    bool overflow;
    int depth;
    bool first[JSONW_DEPTH_MAX]; /* nothing written yet at this depth */
    bool after_key;
};

void jsonw_init(struct jsonw *w, size_t max);
void jsonw_free(struct jsonw *w);
void jsonw_obj(struct jsonw *w);        /* { */
void jsonw_obj_end(struct jsonw *w);    /* } */
void jsonw_arr(struct jsonw *w);        /* [ */
void jsonw_arr_end(struct jsonw *w);    /* ] */
void jsonw_key(struct jsonw *w, const char *k);
void jsonw_str(struct jsonw *w, const char *s);        /* NULL: null */
void jsonw_strn(struct jsonw *w, const char *s, size_t n);
void jsonw_i64(struct jsonw *w, int64_t v);
void jsonw_bool(struct jsonw *w, bool v);
void jsonw_null(struct jsonw *w);
/* key + value in one call */
void jsonw_kstr(struct jsonw *w, const char *k, const char *s);
void jsonw_ki64(struct jsonw *w, const char *k, int64_t v);
void jsonw_kbool(struct jsonw *w, const char *k, bool v);
/* k: v, or k: null when v < 0 (a count or offset not known) */
void jsonw_ki64_known(struct jsonw *w, const char *k, int64_t v);
/* Whether n bytes are valid UTF-8 without NUL or control characters other than \t\n\r. */
bool jsonw_utf8_text(const uint8_t *s, size_t n);

#endif
