/* logging: formats one line per call with a millisecond timestamp, written with one write(2)
 * so lines from different threads do not interleave. */
#include "common/logging.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum log_level current_level = LOG_LEVEL_INFO;
static int level_from_env_done;

void logging_set_level(enum log_level level)
{
    current_level = level;
    level_from_env_done = 1;
}

enum log_level logging_level(void)
{
    if (!level_from_env_done) {
        const char *e = getenv("GREGOR_LOG_LEVEL");
        if (e != NULL && strcmp(e, "DEBUG") == 0)
            current_level = LOG_LEVEL_DEBUG;
        level_from_env_done = 1;
    }
    return current_level;
}

static const char *level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

static void log_vline(enum log_level level, const char *who, const char *fmt, va_list ap)
{
    char line[2048];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "[%04d-%02d-%02d %02d:%02d:%02d,%03d] %s [%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(tv.tv_usec / 1000), level_names[level], who);
    if (n >= 0 && (size_t)n < sizeof(line))
        n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line) - 1)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void log_line(enum log_level level, const char *who, const char *fmt, ...)
{
    if (level < logging_level())
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vline(level, who, fmt, ap);
    va_end(ap);
}

_Bool log_limit_allow(struct log_limit *lim, long long now, unsigned long long *suppressed)
{
    *suppressed = 0;
    if (lim->window_start_ms == 0 || now - lim->window_start_ms >= LOG_LIMIT_WINDOW_MS) {
        *suppressed = lim->suppressed;
        lim->suppressed = 0;
        lim->window_start_ms = now;
        lim->lines = 0;
    }
    if (lim->lines >= LOG_LIMIT_BURST) {
        lim->suppressed++;
        return 0;
    }
    lim->lines++;
    return 1;
}

void log_limited(struct log_limit *lim, enum log_level level, const char *who, const char *fmt, ...)
{
    if (level < logging_level())
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1; /* never 0 */
    unsigned long long dropped;
    if (!log_limit_allow(lim, now, &dropped))
        return;
    if (dropped > 0)
        log_line(level, who, "%llu similar lines suppressed in the last %d s", dropped,
                 LOG_LIMIT_WINDOW_MS / 1000);
    va_list ap;
    va_start(ap, fmt);
    log_vline(level, who, fmt, ap);
    va_end(ap);
}
