/*
 * core/replica.h - queue replication, the shards' half (docs/replication.md).
 *
 * Owner side: every message a queue takes gets a replication sequence number (rseq, rising
 * per queue) and is streamed to each of the queue's backups (the next nodes in its
 * rendezvous order, placement_queue_replicas) as XMSG_REPL_SEND through the route; what
 * happens to it after is streamed as XMSG_REPL_OP: DELIVERED (to a consumer that has not
 * acked it), REMOVE (acked, auto-acked, dropped). A backup acknowledges each SEND; a SEND's
 * RECEIPT waits until every backup acknowledged it. A backup that joins the set later gets
 * a snapshot: RESET, every held message in rseq order, MARK.
 *
 * Backup side: a replica per queue and streaming node (the messages in rseq order, each
 * with its delivered mark), in the shard that would own the queue here. When placement
 * makes this node the owner and the streaming owner is gone, the replica becomes the queue
 * (promotion): a delivered-unacked message stays unacked for its consumer when that
 * consumer's node is still a member (its ACK, naming the old owner's delivery, is applied
 * here: dest_queue_adopt), else it goes first, marked redelivered; then the rest. A
 * replica of a queue whose owner changed while the old one is still there, or whose
 * holders no longer include this node, is dropped (the new owner streams anew).
 *
 * Thread: the shard's.
 */
#ifndef CORE_REPLICA_H
#define CORE_REPLICA_H

#include "core/xmsg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct shard;
struct dest_queue;
struct dest_table;
struct mentry;

#define REPL_MAX_BACKUPS 4

/* Owner side, called by dest.c. */

/* A message entered q (e is in q): numbers it and streams it to the backups. */
void repl_enqueued(struct shard *sh, struct dest_queue *q, struct mentry *e);
/* The SEND xm that put the newest message in q asked for a RECEIPT (of_held: a resent SEND
 * whose message q holds already, nothing added): true when it now waits for the backups
 * (answered later), false when there are none to wait for. */
bool repl_hold_receipt(struct shard *sh, struct dest_queue *q, const struct xmsg *xm, bool of_held);
/* e went to consumer `consumer` under its registration reg_epoch: kept until acked
 * (DELIVERED, naming the consumer) or gone at once (auto ack: REMOVE). */
void repl_delivered(struct shard *sh, struct dest_queue *q, const struct mentry *e,
		    uint64_t consumer, uint16_t reg_epoch, bool gone);
/* The message numbered rseq left q for good (acked, or dropped by a NACK). */
void repl_removed(struct shard *sh, struct dest_queue *q, uint64_t rseq);
/* q's holders may have changed (a new placement): backups that are new get a snapshot. */
void repl_queue_placed(struct shard *sh, struct dest_queue *q);
/* q moves away while this node stays (a planned move): when its new owner is one of its
 * backups, tells it to take its copy over (XREPL_PROMOTE). Before the hand-over, which
 * still sends everything: the new owner drops what its copy held. */
#define REPL_PROMOTE_WAIT_MS 3000
void repl_hand_over(struct shard *sh, struct dest_queue *q);
/* Whether the node that owns q now (this one leaving) is one of its backups: it takes its
 * copy over, so the messages must not be handed over too. */
bool repl_new_owner_has_copy(const struct shard *sh, const struct dest_queue *q);
/* q's backups (placement hashes, at most 4) and whether every one acknowledged all that
 * was sent to it; returns how many. */
uint32_t repl_describe(const struct dest_queue *q, uint64_t out[4], bool *in_sync);
/* Refuses receipts its backups left waiting REPL_RECEIPT_WAIT_MS ("queue cannot be
 * replicated"); called every shard tick, costs nothing while none waits. */
#define REPL_RECEIPT_WAIT_MS 3000
void repl_tick(struct shard *sh);
/* Whether q must stay although idle: receipts wait for backups, or it was taken over from
 * a copy recently (its lineage filters hand-backs of the same stream). */
bool repl_waiting(const struct shard *sh, const struct dest_queue *q);
/* Whether q was taken over from a copy of `node`'s stream that held its message numbered
 * rseq (a hand-over of it from that node is a duplicate: repl-sim, finding 1). */
bool repl_had_it(const struct dest_queue *q, uint64_t node, uint64_t rseq);
/* q moves away: drops its ready messages whose RECEIPT still waits for its backups (their
 * senders are answered with an error by repl_queue_gone, and the backups told REMOVE): a
 * node deposed while it hung must not hand them over - a SEND's node resends what was on
 * a link that broke, so the new owner may hold them already (delivered, perhaps acked). */
void repl_drop_unreceipted(struct shard *sh, struct dest_queue *q);
/* q leaves this shard (moved away or dropped): receipts still waiting are answered with
 * err, the state freed. */
void repl_queue_gone(struct shard *sh, struct dest_queue *q, int err);

/* Backup side and acknowledgements: the shard's handlers for XMSG_REPL_SEND/_OP. */
void replica_on_send(struct shard *sh, const struct xmsg *m);
void replica_on_op(struct shard *sh, const struct xmsg *m);
/* An ACK/NACK (XACK_* mode) from consumer `consumer` for queue `name` that no queue here
 * took: when this node holds a copy whose owner delivered that message to it, the copy
 * remembers it, so a take-over does not deliver it again (the consumer's node saw the new
 * view before this one). False when there is no copy here. */
bool replica_early_ack(struct shard *sh, const char *name, size_t len, uint64_t consumer,
		       uint32_t mode, uint64_t tag, uint32_t reg_epoch);
/* A hand-over (XMSG_QUEUE_HANDOVER) from a node whose PROMOTE came before our placement
 * made us the queue's owner: it joins the copy (or is dropped when the copy has it) and
 * true is returned; false when it is not one (dest.c takes it). */
bool replica_take_handover(struct shard *sh, const struct xmsg *m);
/* A new placement: replicas this node now owns are promoted, those it no longer holds
 * dropped. Before dest.c moves queues away. */
void replica_on_placement(struct shard *sh);
/* Frees q's replication state without a word to anyone (shard exit). */
void repl_queue_free(struct dest_queue *q);
/* Frees every replica (shard exit). */
void replica_table_fini(struct dest_table *t);

#endif
