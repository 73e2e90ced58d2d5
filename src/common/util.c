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
