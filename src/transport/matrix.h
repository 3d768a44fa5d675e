/*
 * The Matrix transport: the client-server API over libcurl's multi
 * interface. Login (password or access token, device reused across
 * restarts), whoami, a server-side filter, the rooms the bot is in and
 * their state (the moderator room's before the first sync), the /sync
 * long-poll with the since token saved atomically only after the batch's
 * replies are journalled, idempotent sends (transaction ids derived from
 * the question's event id, kept with the pending reply across restarts)
 * with safety replies first and each room's replies in order, invites from
 * allowed users or servers only, retries that honour 429 (the whole queue
 * waits, then goes at the server's pace) and back off on errors, reply
 * fallbacks stripped, edits and redactions honoured.
 */
#ifndef FAQBOT_MATRIX_H
#define FAQBOT_MATRIX_H

#include "bot.h"
#include "config.h"
#include "loop.h"
#include "transport.h"

struct mx;

/*
 * A Matrix client for cfg, reporting messages to b, keeping its session and
 * pending replies in state_dir. Nothing happens until mx_start().
 */
struct mx *mx_new(struct loop *l, const struct config *cfg, struct bot *b, const char *state_dir);
void mx_free(struct mx *m);

/* The transport interface (owned by m). */
struct transport *mx_transport(struct mx *m);

/* Starts logging in and syncing. */
void mx_start(struct mx *m);

/* Cancels every request and saves the session and pending replies. */
void mx_stop(struct mx *m);

/*
 * 1 when it syncs: the last sync succeeded recently and no request is
 * failing now. Else 0, and why in words is appended to why (may be NULL).
 */
int mx_healthy(const struct mx *m, struct buf *why);

/* 1 when it stopped for good (a rejected access token and no password). */
int mx_failed(const struct mx *m);

/*
 * Handles body as the reply to a /sync, without any network: messages go
 * to the bot and replies are queued (and saved), not sent. For the fuzzer
 * and tests. Returns 0, or -1 when the body is not a valid sync reply or
 * is longer than matrix.max_body_bytes (the cap on a reply from the network).
 */
int mx_feed_sync(struct mx *m, const char *body, size_t len);

/* Counters for tests and benchmarks: events seen, replies sent, pending now. */
void mx_counts(const struct mx *m, unsigned long *events, unsigned long *sent, size_t *pending);

#endif
