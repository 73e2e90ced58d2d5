/* txnindex: a segment's aborted-transaction index, the `<base>.txnindex` file in Kafka's format
 * (TransactionIndex: 34-byte entries, version 0, producerId, firstOffset, lastOffset,
 * lastStableOffset, big-endian, appended in the order the ABORT markers were written). */
#ifndef GREGOR_LOG_TXNINDEX_H
#define GREGOR_LOG_TXNINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TXNINDEX_ENTRY_SIZE 34
#define TXNINDEX_VERSION 0
/* The most entries one read of a file takes (a file of more is read up to it, logged). */
#define TXNINDEX_READ_MAX 65536

struct txnindex_entry {
    int64_t producer_id;
    int64_t first_offset;        /* the transaction's first offset */
    int64_t last_offset;         /* its ABORT marker's offset */
    int64_t last_stable_offset;  /* the partition's LSO once the marker was written */
};

void txnindex_encode(uint8_t out[TXNINDEX_ENTRY_SIZE], const struct txnindex_entry *e);
/* 0, or -1 for an unknown version. */
int txnindex_decode(const uint8_t in[TXNINDEX_ENTRY_SIZE], struct txnindex_entry *e);

/* Appends one entry to the file at path (created when missing); its last offset must be past
 * the file's last entry's (Kafka's TransactionIndex.append): -1 with errno EINVAL when not,
 * or on an I/O error. With sync the file is fdatasync'ed; without, it is left to
 * txnindex_sync_dir, which the producer snapshot's write runs first (an entry whose marker
 * is past the newest snapshot is rebuilt by the replay at open). */
int txnindex_append(const char *path, const struct txnindex_entry *e, bool sync);
/* fdatasync's every .txnindex file in dir (on the I/O worker, before a producer snapshot
 * names the offsets past their markers). 0, or -1 when one could not be synced. */
int txnindex_sync_dir(const char *dir);
/* Reads the file's entries (a missing file has none) into *out (malloc'ed, caller frees; NULL
 * when none). A torn last entry is ignored. 0 or -1. */
int txnindex_read(const char *path, struct txnindex_entry **out, int *n);
/* Keeps the entries whose last offset is below offset (Kafka's truncateTo). 0 or -1. */
int txnindex_truncate(const char *path, int64_t offset);
/* Kafka's collectAbortedTxns over one file: appends to out (up to max in all, *n counted) the
 * entries with last offset >= fetch_offset and first offset < upper; *complete when an entry's
 * last stable offset reaches upper (no later segment can hold one overlapping). 0 or -1. */
int txnindex_collect(const char *path, int64_t fetch_offset, int64_t upper,
                     struct txnindex_entry *out, int max, int *n, bool *complete);
/* The file holds an entry for the marker at last_offset. */
bool txnindex_has(const char *path, int64_t last_offset);

#endif
