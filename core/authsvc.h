/*
 * core/authsvc.h - the auth thread: runs the slow half of logins (argon2id password
 * verification, tens of milliseconds each) so no shard ever stalls on it. Shards hand it
 * jobs through one xring each (shard -> auth) and get them back through another
 * (auth -> shard, waking the shard like any xring). The thread owns nothing but the jobs
 * in its hands.
 */
#ifndef CORE_AUTHSVC_H
#define CORE_AUTHSVC_H

#include <stdint.h>

struct shard;
struct authsvc;

/* Creates the rings between the auth thread and every shard (sets sh->auth_out and
 * sh->auth_in) and starts the thread. Main thread, before the shards start. */
int authsvc_start(struct authsvc **out, struct shard **shards, uint32_t nshards);

/* Stops the thread (after the shards stopped), drops jobs still queued, frees the rings. */
void authsvc_stop(struct authsvc *a);

#endif
