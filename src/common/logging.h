/* logging: Kafka-style log lines on stderr:
 *   [2026-11-24 10:00:00,123] INFO [KafkaServer id=0] started (kafka.server.KafkaServer) */
#ifndef GREGOR_COMMON_LOGGING_H
#define GREGOR_COMMON_LOGGING_H

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/* Lines below this level are dropped (default INFO; GREGOR_LOG_LEVEL=DEBUG in the env). */
void logging_set_level(enum log_level level);
enum log_level logging_level(void);

/* who is the bracketed context, e.g. "KafkaServer id=0" or "Log partition=test-0". */
void log_line(enum log_level level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_DEBUG(who, ...) \
    do { if (logging_level() <= LOG_LEVEL_DEBUG) log_line(LOG_LEVEL_DEBUG, who, __VA_ARGS__); } while (0)
#define LOG_INFO(who, ...) log_line(LOG_LEVEL_INFO, who, __VA_ARGS__)
#define LOG_WARN(who, ...) log_line(LOG_LEVEL_WARN, who, __VA_ARGS__)
#define LOG_ERROR(who, ...) log_line(LOG_LEVEL_ERROR, who, __VA_ARGS__)

/* Rate limit for lines an outside party can repeat at will (a connection refused, a frame
 * rejected, accept failing): at most LOG_LIMIT_BURST lines per LOG_LIMIT_WINDOW_MS per call
 * site; the first line after a quiet spell says how many were suppressed. Each call site has
 * its own static state; for the event-loop thread. */
#define LOG_LIMIT_BURST 10
#define LOG_LIMIT_WINDOW_MS 10000
struct log_limit {
    long long window_start_ms;
    int lines;
    unsigned long long suppressed;
};
/* True when the line may be written; *suppressed is how many were dropped before it. */
_Bool log_limit_allow(struct log_limit *lim, long long now_mono_ms, unsigned long long *suppressed);
void log_limited(struct log_limit *lim, enum log_level level, const char *who, const char *fmt,
                 ...) __attribute__((format(printf, 4, 5)));
#define LOG_LIMITED(level, who, ...)                                                       \
    do {                                                                                    \
        static struct log_limit log_limit_site_;                                            \
        log_limited(&log_limit_site_, level, who, __VA_ARGS__);                              \
    } while (0)

#endif
