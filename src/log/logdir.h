/* logdir: one Kafka log directory as a whole — meta.properties, the .lock, the clean-shutdown
 * marker, the offset checkpoint files, per-partition metadata files and gregor's topic store. */
#ifndef GREGOR_LOG_LOGDIR_H
#define GREGOR_LOG_LOGDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct logdir;

/* Creates the directory if missing, takes the exclusive lock on <path>/.lock (fails if another
 * process holds it), reads or writes meta.properties (version=1, cluster.id, node.id,
 * directory.id; a Kafka-written one is accepted; a node.id mismatch is an error), reads the
 * checkpoint files, notes and removes .kafka_cleanshutdown. cluster_id may be NULL (generate).
 * Returns 0 or -1 with a log line saying why. */
int logdir_open(const char *path, int32_t node_id, const char *cluster_id, struct logdir **out);
const char *logdir_path(const struct logdir *d);
const char *logdir_cluster_id(const struct logdir *d);
/* True when the previous run ended with a clean shutdown (marker was present). */
bool logdir_was_clean(const struct logdir *d);

/* Calls cb for each partition directory "<topic>-<partition>" found (skipping -delete/-future
 * dirs and anything not shaped like a partition). */
typedef void (*logdir_partition_cb)(void *arg, const char *topic, int32_t partition,
                                    const char *dir_path);
int logdir_scan(struct logdir *d, logdir_partition_cb cb, void *arg);

/* DeleteTopics: a partition dir's new name under d, Kafka's "<topic>-<partition>.<uuid>-delete"
 * (logdir_scan skips such dirs); -1 if it does not fit outlen. */
int logdir_delete_dir_name(const struct logdir *d, const char *topic, int32_t partition,
                           char *out, size_t outlen);
/* Startup: removes the "-delete" dirs a previous run left (stopped or crashed mid-deletion);
 * returns how many, or -1 when d cannot be listed. */
int logdir_remove_deleted(struct logdir *d);

/* Values read from the checkpoint files at open; -1 when the partition is not listed. */
int64_t logdir_recovery_point(const struct logdir *d, const char *topic, int32_t partition);
int64_t logdir_log_start_offset(const struct logdir *d, const char *topic, int32_t partition);
/* High watermark from replication-offset-checkpoint; -1 when not listed. */
int64_t logdir_high_watermark(const struct logdir *d, const char *topic, int32_t partition);
/* directory.id from meta.properties (22-char base64url). */
const char *logdir_directory_id(const struct logdir *d);

struct logdir_checkpoint_entry {
    const char *topic;
    int32_t partition;
    int64_t recovery_point;   /* flushed offset */
    int64_t log_start_offset;
    int64_t high_watermark;
};
/* Writes recovery-point-offset-checkpoint, log-start-offset-checkpoint and
 * replication-offset-checkpoint atomically (tmp, fsync, rename). */
int logdir_write_checkpoints(struct logdir *d, const struct logdir_checkpoint_entry *e, int n);
/* replication-offset-checkpoint alone (its high_watermark values), written as above: a leader's
 * every replica.high.watermark.checkpoint.interval.ms. */
int logdir_write_hw_checkpoint(struct logdir *d, const struct logdir_checkpoint_entry *e, int n);

/* The files' readers as pure functions over a file's bytes (the file reads above are thin
 * wrappers), so the fuzz targets drive them without files. Each returns 0, or -1 with *why
 * saying what is wrong and nothing allocated; a NUL byte anywhere in a text file is an error. */

/* One line of an offset checkpoint file ("0\n<count>\n<topic> <partition> <offset>\n..."). */
struct logdir_offset {
    char *topic; /* owned */
    int32_t partition;
    int64_t offset;
};
int logdir_offsets_parse(const char *text, size_t len, struct logdir_offset **out, int *n,
                         const char **why);
void logdir_offsets_free(struct logdir_offset *v, int n);

/* meta.properties: what a reader keeps (Java properties "key=value" lines, '#'/'!' comments). */
struct logdir_meta {
    int64_t version;     /* -1 absent */
    int64_t node_id;     /* node.id (v1) or broker.id (v0); -1 absent */
    char cluster_id[64];
    char directory_id[64];
};
int logdir_meta_parse(const char *text, size_t len, struct logdir_meta *m, const char **why);

/* partition.metadata: "version: 0" then "topic_id: <base64url>", the id not the zero UUID. */
int partition_metadata_parse(const char *text, size_t len, uint8_t topic_id[16], const char **why);

/* Writes .kafka_cleanshutdown, releases the lock, frees d. */
void logdir_close(struct logdir *d, bool clean);

/* partition.metadata: "version: 0\ntopic_id: <base64url>\n". */
int partition_metadata_write(const char *dir_path, const uint8_t topic_id[16]);
int partition_metadata_read(const char *dir_path, uint8_t topic_id[16]);


/* Topic store: gregor's own file <logdir>/gregor-topics (documented in docs/STORAGE.md) with
 * one line per topic: "<name> <partitions> <topic-id-base64url> [deleting] [key=value ...]"
 * holding the topic-level config overrides. Written atomically. */
struct topic_record {
    char name[256];
    int32_t partitions;
    uint8_t topic_id[16];
    /* A deleted topic whose partition dirs may still hold their names (written as the word
     * "deleting" after the id): at startup its dirs go, and it is no topic. */
    bool deleting;
    int nconfigs;
    char (*config_keys)[128];   /* owned by the loader's allocation; see topic_store_free */
    char (*config_values)[256];
};
int topic_store_load(const struct logdir *d, struct topic_record **out, int *n);
/* The topic store's bytes: every line a legal topic name (Kafka's rules) with 1 to
 * TOPIC_STORE_MAX_PARTITIONS partitions and a non-zero id; *bad_line is the failing line's
 * number. */
#define TOPIC_STORE_MAX_PARTITIONS 1000000
int topic_store_parse(const char *text, size_t len, struct topic_record **out, int *n,
                      int *bad_line, const char **why);
void topic_store_free(struct topic_record *recs, int n);
int topic_store_save(const struct logdir *d, const struct topic_record *recs, int n);

/* Base64url without padding of a 16-byte UUID (22 chars + NUL) and back. */
void uuid_to_base64url(const uint8_t id[16], char out[23]);
int uuid_from_base64url(const char *s, uint8_t id[16]);

#endif
