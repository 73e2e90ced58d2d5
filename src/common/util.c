/* util: clocks, a name's case. */
#include "common/util.h"

#include <ctype.h>
#include <stdbool.h>
#include <time.h>

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void pascal_case(const char *upper_snake, char *out, size_t outlen)
{
    GREGOR_ASSERT(outlen > 0);
    size_t n = 0;
    bool cap = true;
    for (const char *p = upper_snake; *p && n + 1 < outlen; p++) {
        if (*p == '_') {
            cap = true;
            continue;
        }
        out[n++] = cap ? (char)toupper((unsigned char)*p) : (char)tolower((unsigned char)*p);
        cap = false;
    }
    out[n] = '\0';
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

long pct_decode_inplace(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] != '%') {
            *w++ = *r;
            continue;
        }
        int hi = hex_digit(r[1]), lo = hi >= 0 ? hex_digit(r[2]) : -1; /* stops at the NUL */
        if (lo < 0 || (hi == 0 && lo == 0))
            return -1;
        *w++ = (char)(hi * 16 + lo);
        r += 2;
    }
    *w = '\0';
    return (long)(w - s);
}
