/*
 * core/publish.c - SEND (see publish.h).
 *
 * Thread: the session's shard.
 */
#include "core/publish.h"

#include "core/base/hd_alloc.h"
#include "core/dest.h"
#include "core/destname.h"
#include "core/hmsg.h"
#include "core/message.h"
#include "core/receipt.h"
#include "core/session_state.h"
#include "core/shard.h"
#include "core/subscription.h"
#include "core/transaction.h"

#include <string.h>

/* A queue message goes to its owner shard. A topic message is routed right here: every
 * shard knows which shards have subscribers for every topic, so the fan-out costs one xmsg
 * per interested shard straight from the publisher's shard, and one publisher's messages
 * reach a subscriber in the order sent, across topics too (as with RabbitMQ's one queue
 * per subscription), because they all travel the same xring. */
void publish_route(struct shard *sh, struct session *s, struct hmsg *m, uint32_t seq)
{
	struct xmsg x = { .kind = XMSG_PUBLISH, .ptr = m, .a = session_conn_ref(s), .u32 = seq,
			  .from = (uint16_t)sh->id };

	if (seq)
		receipt_add_wait(s, seq);
	if (destname_key_is_queue(hmsg_dest(m), m->dest_len))
		shard_send(sh, dest_owner(sh, hmsg_dest(m), m->dest_len), &x);
	else
		dest_on_publish(sh, &x);
}

/* The message of SEND f, named "<node epoch>-<shard>-<seq>" (unique per node run). */
static struct hmsg *build(struct shard *sh, const struct stomp_frame *f, struct stomp_view dest,
			  struct stomp_view key, struct stomp_view reply_to)
{
	char id[40];
	struct message_parts p = {
		.home_shard = (uint16_t)sh->id,
		.dest = dest,
		.key = key,
		.headers = f->headers,
		.nheaders = f->nheaders,
		.body = f->body,
		.reply_to = reply_to,
	};

	p.msg_id = (struct stomp_view){ id, message_id_format(id, shard_node_epoch, sh->id,
							      ++sh->sessions.msg_seq) };
	return message_build(sh->sessions.header_set, &p);
}

static void mem_check(struct shard *sh)
{
	if (sh->now_ms - sh->sessions.mem_checked_ms < 100)
		return;
	sh->sessions.mem_checked_ms = sh->now_ms;
	sh->sessions.mem_over = hd_alloc_allocated_bytes() > sh->limits.memory_high_water;
}

/* A SEND's user-id header, if any, names the logged-in user (or the user may impersonate). */
static bool user_id_is_own(const struct session *s, const struct stomp_frame *f)
{
	const struct stomp_view *uid = stomp_frame_header(f, "user-id");

	return !uid || stomp_view_eq(*uid, s->user, strlen(s->user)) ||
	       users_list_has(s->id->tags, "impersonator", 12);
}

/* reply-to:/temp-queue/<name> (RabbitMQ's request/reply): the reply queue it stands for,
 * made on first use, and *reply_to set to the "/reply-queue/<queue>" a responder SENDs to.
 * False after refusing f. */
static bool reply_to_temp_queue(struct shard *sh, struct session *s, const struct stomp_frame *f,
				struct stomp_view *reply_to)
{
	const struct stomp_view *rt = stomp_frame_header(f, "reply-to");
	struct stomp_view name;
	struct sub *sub;

	*reply_to = (struct stomp_view){ 0 };
	if (!rt || !destname_temp_queue_name(*rt, &name))
		return true;	/* any other reply-to travels as it is */
	if (!destname_temp_queue_name_ok(name)) {
		session_fail_frame(sh, s, f, "Invalid reply-to",
				   "A /temp-queue/ name in reply-to must be one or more characters, "
				   "none of them '/'");
		return false;
	}
	sub = sub_reply_queue(sh, s, f, *rt);
	if (!sub)
		return false;
	*reply_to = (struct stomp_view){ sub->reply_to, sub->reply_to_len };
	return true;
}

void publish_on_send(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	const struct stomp_view *d = stomp_frame_header(f, "destination");
	struct destname dn;
	struct stomp_view reply_to;
	struct tx *tx;
	bool bad;
	struct hmsg *m;

	/* a reply queue's name is its own permission (an unguessable capability) */
	if (!destname_check(sh, s, f, d, &dn) ||
	    (!dn.existing_queue_only && !session_authorized(sh, s, f, ACL_SEND, &dn.name)))
		return;
	if (stomp_frame_header(f, "message-id")) {
		/* the server names messages (RabbitMQ refuses this header too) */
		session_fail_frame(sh, s, f, "'message-id' is not allowed on 'SEND'",
			   "The server assigns message-id; remove the header from SEND");
		return;
	}
	if (!user_id_is_own(s, f)) {
		/* receivers may trust user-id: RabbitMQ validates it the same way */
		session_fail_frame(sh, s, f, "user-id does not match the login",
			   "A SEND's 'user-id' header must name the user who logged in "
			   "(only the tag 'impersonator' may set another)");
		return;
	}
	tx = tx_of_frame(sh, s, f, &bad);
	if (bad)
		return;
	mem_check(sh);
	if (sh->sessions.mem_over) {
		sh->stats.refused_sends++;
		session_fail_frame(sh, s, f, "memory high-water mark reached",
			   "The server holds too much data (memory-high-water); the message was not accepted");
		return;
	}
	if (!reply_to_temp_queue(sh, s, f, &reply_to))
		return;
	m = build(sh, f, dn.name, destname_key(sh, s, dn.name), reply_to);
	if (tx) {
		struct tx_op *op = hd_calloc(1, sizeof(*op));

		op->kind = TXOP_SEND;
		op->m = m;
		tx_append(tx, op);
		if (receipt_begin(s, f, 0, false))
			receipt_flush(sh, s);
		return;
	}
	publish_route(sh, s, m, receipt_begin(s, f, 0, false));
	receipt_flush(sh, s);
}
