/* txn_verify: KIP-890 part 1 on the partition leader — before a produce's transactional batch
 * starts a transaction on a partition, the coordinator is asked whether the partition is in
 * the producer's ongoing transaction, and a verification guard checked at the append. */
#ifndef GREGOR_BROKER_TXN_VERIFY_H
#define GREGOR_BROKER_TXN_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/broker.h"
#include "proto/messages.h"

struct partition;
struct txn_verify;
struct txn_verify_req;   /* one produce's verification, in its arena */

/* The broker's guard table and the verifications waiting for a remote coordinator. NULL when
 * out of memory. */
struct txn_verify *txn_verify_create(struct broker *b);
void txn_verify_destroy(struct txn_verify *v);
/* Shutdown: produces still waiting for a coordinator's answer are resumed at once, their
 * asked partitions answering NOT_ENOUGH_REPLICAS (retriable); a late answer is dropped. */
void txn_verify_shutdown(struct broker *b);

/* Before a produce appends (transaction.partition.verification.enable): every partition this
 * broker leads whose transactional batch would start a transaction there (its producer has
 * none ongoing on it) gets a guard stored for the producer, and the coordinator of the
 * produce's transactional id is asked (AddPartitionsToTxn v4+ VerifyOnly; directly when it is
 * this broker). true: the answer comes later and resume(r) is called then (the request is
 * pending); false: go on now. *out is the request's verification, NULL when nothing was asked. */
bool txn_verify_produce(struct broker *b, struct request *r, struct txn_verify_req **out,
                        void (*resume)(struct request *r));

/* At a partition's append (ReplicaManager's pre-append errors, then UnifiedLog's guard check):
 * KERR_NONE to append, or the error the partition answers (with Kafka's message in
 * out->error_message): the coordinator's verdict mapped for the produce's version, or
 * INVALID_TXN_STATE when the batch would start a transaction without a guard that still holds
 * (a marker of the producer landed since the question). */
int txn_verify_check(struct broker *b, struct request *r, const struct txn_verify_req *v,
                     int32_t topic_index, int32_t partition_index, struct partition *p,
                     const struct krecords *rec,
                     struct produce_response_partition_produce_response *out);

/* A transactional batch was appended to p: its producer's guard there is done with (the
 * transaction has its first offset), as Kafka's updateProducers. */
void txn_verify_appended(struct broker *b, struct partition *p, const struct krecords *rec);

#endif
