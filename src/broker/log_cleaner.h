/* log_cleaner: the broker's log cleaner (Kafka's LogCleaner + LogCleanerManager) — the
 * log.cleaner.threads threads that compact partitions off the event loop, which partition each
 * cleans next, the cleaner-offset-checkpoint of every log dir, and the aborts that a
 * partition's close, deletion or truncation needs. */
#ifndef GREGOR_BROKER_LOG_CLEANER_H
#define GREGOR_BROKER_LOG_CLEANER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct broker;
struct partition;

/* Reads every log dir's cleaner-offset-checkpoint and starts the threads (none when
 * log.cleaner.enable=false). 0, or -1 when a thread cannot be started (logged). */
int log_cleaner_start(struct broker *b);
/* Stops the threads promptly (a clean in progress is aborted between batches; nothing of it is
 * swapped past that) and writes the checkpoints that changed. */
void log_cleaner_stop(struct broker *b);
/* The log.cleaner.* keys changed (dynamic_configs.c): the threads restart when their number or
 * their map changed, as Kafka's LogCleaner.reconfigure; the rate, the I/O buffer and the
 * back-off apply from the next clean. */
void log_cleaner_reconfigure(struct broker *b);
/* Kafka's validateReconfiguration of log.cleaner.threads against the running count: 0, or -1
 * with Kafka's message. */
int log_cleaner_validate_threads(const struct broker *b, int32_t threads, char *msg, size_t msglen);
/* Looks for a partition to clean now instead of at the next back-off (tests, a policy change). */
void log_cleaner_wake(struct broker *b);

/* Before p's log is closed or deleted: a clean of it in progress is aborted and waited for
 * (Kafka's abortCleaning; bounded by one batch of the clean), and with forget its
 * checkpoint entry goes (a deleted partition). */
void log_cleaner_abort(struct broker *b, struct partition *p, bool forget);
/* A follower truncates p to offset: a clean of it in progress is told to stop (its swap would
 * abort anyway: the truncation changes the layout) and the checkpoint is cut to offset (Kafka's
 * maybeTruncateCheckpoint). Does not wait. */
void log_cleaner_truncated(struct broker *b, struct partition *p, int64_t offset);

#endif
