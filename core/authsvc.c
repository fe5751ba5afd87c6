/*
 * core/authsvc.c - auth thread loop: block on its eventfd until there is work (announced
 * through xwake, so shards write it only when it sleeps), run each job, send it back to
 * its shard. No timed wake-ups: a shard's xring_publish wakes it for new jobs, a shard's
 * pop wakes it when a full return ring gets space (rare: the ring is as deep as the
 * shard's outbound one), authsvc_stop wakes it to exit.
 */
#include "core/authsvc.h"

#include "auth/auth.h"
#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"
#include "core/shard.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define AUTH_RING_SLOTS 1024

struct authsvc {
	pthread_t thread;
	struct xwake wake;		/* shards' publishes: jobs arrived */
	struct xwake space;		/* shards' pops: a return ring has room; same eventfd */
	struct shard **shards;
	uint32_t nshards;
	_Atomic uint32_t stop;
};

/* Blocks until a shard or authsvc_stop writes the eventfd, then takes the wake-ups.
 * Call between xwake_sleep and xwake_awake, after re-checking what you wait for. */
static void wait_for_wake(struct authsvc *a)
{
	struct pollfd pfd = { .fd = a->wake.eventfd, .events = POLLIN };
	uint64_t v;

	if (poll(&pfd, 1, -1) > 0 && read(a->wake.eventfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		hd_log_warn("auth thread: eventfd read failed");
}

/* Hands a finished job back; waits for space if the shard's return ring is full. Once
 * stopping (the shards have stopped draining), the job is dropped instead. */
static void send_back(struct authsvc *a, struct shard *sh, const struct xmsg *m)
{
	while (xring_push(sh->auth_in, m) == -EAGAIN) {
		if (atomic_load(&a->stop)) {
			auth_job_destroy(m->ptr, NULL, 0);
			return;
		}
		xring_publish(sh->auth_in);
		xwake_sleep(&a->space);
		if (!xring_space(sh->auth_in) && !atomic_load(&a->stop))
			wait_for_wake(a);	/* the shard's xring_pop writes it */
		xwake_awake(&a->space);
	}
	xring_publish(sh->auth_in);
}

static uint32_t run_pending(struct authsvc *a)
{
	uint32_t done = 0;

	for (uint32_t i = 0; i < a->nshards; i++) {
		struct shard *sh = a->shards[i];
		struct xmsg m;

		while (xring_pop(sh->auth_out, &m, 1)) {
			auth_job_run(m.ptr);	/* argon2id: the reason this thread exists */
			send_back(a, sh, &m);
			done++;
		}
	}
	return done;
}

static bool any_pending(struct authsvc *a)
{
	for (uint32_t i = 0; i < a->nshards; i++)
		if (xring_has_items(a->shards[i]->auth_out))
			return true;
	return false;
}

static void *auth_main(void *arg)
{
	struct authsvc *a = arg;

	hd_log_set_thread_shard(-1);
	while (!atomic_load(&a->stop)) {
		if (run_pending(a))
			continue;
		/* announce, then re-check: a job published before a shard could see the
		 * announcement is found here (the fence pair in xring.c) */
		xwake_sleep(&a->wake);
		if (!any_pending(a) && !atomic_load(&a->stop))
			wait_for_wake(a);
		xwake_awake(&a->wake);
	}
	return NULL;
}

int authsvc_start(struct authsvc **out, struct shard **shards, uint32_t nshards)
{
	struct authsvc *a = hd_calloc(1, sizeof(*a));
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int err;

	if (efd < 0) {
		hd_free(a);
		return -errno;
	}
	xwake_init(&a->wake, efd);
	xwake_init(&a->space, efd);
	a->shards = shards;
	a->nshards = nshards;
	for (uint32_t i = 0; i < nshards; i++) {
		shards[i]->auth_out = hd_alloc(sizeof(struct xring));
		shards[i]->auth_in = hd_alloc(sizeof(struct xring));
		xring_init(shards[i]->auth_out, AUTH_RING_SLOTS, &a->wake);
		xring_init(shards[i]->auth_in, AUTH_RING_SLOTS, &shards[i]->wake);
		xring_set_producer(shards[i]->auth_in, &a->space);
	}
	err = pthread_create(&a->thread, NULL, auth_main, a);
	if (err) {
		close(efd);
		hd_free(a);
		return -err;
	}
	*out = a;
	return 0;
}

void authsvc_stop(struct authsvc *a)
{
	uint64_t one = 1;
	struct xmsg m;

	atomic_store(&a->stop, 1);
	if (write(a->wake.eventfd, &one, sizeof(one)) < 0)
		hd_log_warn("auth thread: cannot wake it");
	pthread_join(a->thread, NULL);
	for (uint32_t i = 0; i < a->nshards; i++) {
		struct shard *sh = a->shards[i];

		while (xring_pop(sh->auth_out, &m, 1))
			auth_job_destroy(m.ptr, NULL, 0);
		while (xring_pop(sh->auth_in, &m, 1))
			auth_job_destroy(m.ptr, NULL, 0);
		xring_fini(sh->auth_out);
		xring_fini(sh->auth_in);
		hd_free(sh->auth_out);
		hd_free(sh->auth_in);
		sh->auth_out = sh->auth_in = NULL;
	}
	close(a->wake.eventfd);
	hd_free(a);
}
