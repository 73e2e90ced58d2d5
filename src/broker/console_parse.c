/* console_parse: the console API's pure readers — the record browser's cursor and its value
 * classification (json, text, binary) — apart from the broker so that the fuzz target
 * (tests/fuzz/fuzz_console_json.c) links them alone. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "broker/console_api.h"
#include "common/arena.h"
#include "common/json.h"
#include "common/jsonw.h"

int console_value_format(const uint8_t *v, size_t n)
{
    size_t a = 0, z = n;
    while (a < z && (v[a] == ' ' || v[a] == '\n' || v[a] == '\r' || v[a] == '\t'))
        a++;
    while (z > a && (v[z - 1] == ' ' || v[z - 1] == '\n' || v[z - 1] == '\r' || v[z - 1] == '\t'))
        z--;
    bool text = jsonw_utf8_text(v, n);
    if (text && z - a >= 2 && ((v[a] == '{' && v[z - 1] == '}') || (v[a] == '[' && v[z - 1] == ']'))) {
        struct arena ar;
        arena_init(&ar, 4 * n + 4096);
        char err[64];
        struct json *j = json_parse((const char *)v + a, z - a, &ar, err, sizeof(err));
        arena_reset(&ar);
        if (j != NULL)
            return 2;
    }
    return text ? 1 : 0;
}

int console_cursor_parse(const char *s, int32_t *parts, int64_t *offsets, int max)
{
    int n = 0;
    if (*s == '\0')
        return -1;
    while (*s != '\0') {
        if (n == max)
            return -1;
        char *end;
        errno = 0;
        long long p = strtoll(s, &end, 10);
        if (end == s || *end != '_' || p < 0 || p > INT32_MAX || errno != 0 || *s == '-' || *s == '+')
            return -1;
        s = end + 1;
        if (*s == '-' || *s == '+' || *s == ' ')
            return -1;
        long long o = strtoll(s, &end, 10);
        if (end == s || o < 0 || errno != 0 || (*end != '.' && *end != '\0'))
            return -1;
        parts[n] = (int32_t)p;
        offsets[n] = o;
        n++;
        s = *end == '.' ? end + 1 : end;
        if (*end == '.' && *s == '\0')
            return -1;
    }
    return n;
}
