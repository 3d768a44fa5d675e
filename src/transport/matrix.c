/*
 * The Matrix transport; see matrix.h.
 *
 * States: VERSIONS -> (LOGIN) -> WHOAMI -> FILTER -> ROOMS -> SYNC
 * (forever). ROOMS lists the rooms the bot is in and fetches the state of
 * the moderator room (its members and power levels), because a sync from
 * a saved position carries no state for a room where nothing changed: after
 * a restart the bot would otherwise know nothing of it. The other rooms'
 * state is fetched in the background (two at a time) once the sync runs,
 * and again whenever the bot joins a room. Each request that fails for a
 * reason that can pass (network, timeout, 5xx, 429, a malformed reply) is
 * retried after a backoff, capped at a few seconds while the server cannot
 * be reached at all; a rejected token logs in again when there is a
 * password, and stops otherwise.
 *
 * No message is lost or answered twice: replies are queued with a
 * transaction id derived from the question's event id; the queue's changes
 * are appended to a journal (pending.jsonl) before the since token moves
 * past the batch; after a restart the queue is sent again (the server
 * de-duplicates by transaction id) and the sync resumes from the saved
 * token.
 *
 * Sending: safety answers and alerts first, then the rest in the order
 * they were queued, one request at a time per room (so a room's replies
 * arrive in order) and up to MX_MAX_INFLIGHT rooms at once. A 429 pauses
 * the whole queue until the server's retry_after_ms; then one request at
 * a time, and once one goes through, a second at once to see whether the
 * limit lasts. If it does (Synapse's rc_message: a token every few
 * seconds), the wait it asks for is the interval between two sends, and
 * the bot keeps to that pace until a minute passes without a 429, so that
 * it does not hammer a server that limits it; if not (a passing refusal),
 * it sends at full speed again. One log line when it starts, one when it
 * ends.
 *
 * What people do to their messages is honoured: a reply's quoted fallback
 * is not read as the person's words, a question deleted before its answer
 * went out gets none (and an answer already sent is redacted, where the
 * bot may), and a message edited into a question soon after is answered
 * once.
 */
#include "matrix.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "http.h"
#include "journal.h"
#include "json.h"
#include "log.h"
#include "smap.h"
#include "stats.h"
#include "text.h"
#include "util.h"

#define MX_MAX_INFLIGHT 8	/* sends at once (one per room) */
#define MX_SENT_RING 1024	/* our recent replies: to see replies to us, and to redact */
#define MX_SEEN_RING 1024	/* recent messages: for edits and redactions */
#define MX_MAX_NAMES 20000	/* display names cached (per room and user) */
#define MX_NAME_MAX 255		/* bytes of a display name kept; a longer one is cut */
#define MX_MAX_PENDING 10000	/* queued replies; beyond this the oldest non-safety one goes */
#define MX_MAX_QUEUED 40000	/* a hard ceiling, safety replies included */
#define MX_JOURNAL_MAX (256u << 20) /* largest pending.jsonl read */
#define MX_BACKOFF_BASE_MS 500
#define MX_PROBE_MS 5000	/* retry delay cap while the server cannot be reached */
#define MX_PACE_MS 60000	/* paced this long after the last 429, then tried again */

/* How sends go after 429s (see the top of the file). */
enum mx_send_mode {
	MX_SEND_FREE,     /* up to MX_MAX_INFLIGHT at once */
	MX_SEND_RESUMING, /* after a 429's pause: one at a time until one goes through */
	MX_SEND_PROBING,  /* one went through: the next goes at once, to see */
	MX_SEND_PACED,    /* the limit lasts: one every pace_ms */
};
#define MX_EDIT_WINDOW_MS 300000 /* an edit this soon after its original may be answered */
#define MX_ROOM_MEMBERS 256	/* members tracked per room; beyond, only the count */
#define MX_MODROOM_MEMBERS 20000 /* members tracked in the moderator room */
#define MX_LOAD_INFLIGHT 2	/* room state fetches at once */
#define MX_LOAD_TRIES 5		/* failed fetches of one room's state before giving up */
#define MX_GAP_PAGE 100		/* messages per /messages page when filling a gap */
#define MX_GAP_PAGES 10		/* pages per room and gap; older ones are not answered */
#define MX_GAP_TRIES 5		/* failed attempts at one page before giving up the gap */

enum mx_state {
	MX_IDLE,
	MX_VERSIONS,
	MX_LOGIN,
	MX_WHOAMI,
	MX_FILTER,
	MX_ROOMS,
	MX_SYNC,
	MX_FAILED,
	MX_STOPPED,
};

/* What a queued request does. */
enum mx_kind {
	MX_KIND_MESSAGE,   /* PUT .../send/m.room.message/TXN */
	MX_KIND_REDACTION, /* PUT .../redact/EVENT/TXN (one of our answers) */
};

/* Where a room's state stands. */
enum mx_load {
	MX_LOAD_NONE,   /* not wanted (not joined) */
	MX_LOAD_WANTED, /* to fetch */
	MX_LOAD_BUSY,   /* being fetched */
	MX_LOAD_DONE,   /* fetched */
	MX_LOAD_FAILED, /* given up */
};

struct send_ctx;

struct mx_pending {
	char *txn;		/* transaction id */
	struct send_ctx *sc;	/* the callback's argument while in flight */
	char *room;		/* room id */
	char *content;		/* the event content, JSON */
	char *key;		/* the core's idempotency key, or NULL */
	char *reply_to;		/* MESSAGE: the event it answers, or NULL; REDACTION: the target */
	enum mx_kind kind;	/* what it does */
	int urgent;		/* a safety answer or alert: goes first, never dropped */
	int cancelled;		/* its question was deleted while it was in flight */
	struct http_req *req;	/* in flight, or NULL */
	int attempts;		/* failures so far */
	uint64_t not_before;	/* monotonic ms */
	uint64_t received_ns;	/* when the question arrived */
};

#define MX_MAX_SAFETY_DMS 100 /* direct chats joined for safety answers only */

/* A set of strings (room ids), small: searched linearly. */
struct mx_set {
	char **v;
	size_t n;
};

struct mx_room {
	char *id;		/* room id */
	cJSON *power;		/* its m.room.power_levels content, or NULL */
	int joined;		/* the bot is in it */
	int dm;			/* its invite said is_direct */
	int warned_e2e;		/* logged the encrypted-room line */
	int joining;		/* a join or leave is in flight */
	enum mx_load load;	/* its state */
	int load_tries;		/* failed fetches of it */
	uint64_t load_after;	/* not again before (monotonic ms) */
	char **mem;		/* joined members, while there are few */
	size_t nmem;
	int mem_complete;	/* mem is every member (the state was fetched) */
	int mem_many;		/* too many to track: mem is empty */
	long summary_joined;	/* m.joined_member_count of the last summary, or -1 */
	unsigned long state_gen; /* state events the sync brought (a fetch older is stale) */
};

/* One of our replies (or alerts) the server took. */
struct mx_sent {
	char *event_id;		/* ours */
	char *reply_to;		/* the question it answers, or NULL */
	char *room;		/* where */
};

/* A message the bot read, remembered a while for its edits and redactions. */
struct mx_seen {
	char *event_id;		/* the message */
	char *room;		/* where */
	char *sender;		/* who wrote it (an edit must come from them) */
	char *thread_root;	/* its thread, or NULL */
	uint64_t ts;		/* origin_server_ts (ms) */
	int replied;		/* the bot replied to it */
	int redacted;		/* it was deleted */
};

/*
 * A gap in a room's timeline: a sync that says "limited" left out messages
 * between our last position and the timeline it sent. They are fetched
 * with /messages (from the timeline's prev_batch back to our since token)
 * before the batch is handled, so a question asked while the bot was away
 * in a busy room is answered too.
 */
struct mx_gap {
	char *room;	/* room id */
	char *from;	/* where the next page starts (a pagination token) */
	cJSON *events;	/* the messages fetched, oldest first */
	int pages;	/* pages fetched */
	int tries;	/* failed attempts at the current page */
	int done;	/* complete, or given up */
};

struct mx {
	struct loop *loop;
	const struct config *cfg;
	struct bot *bot;
	struct transport tp;
	char *state_dir;
	enum mx_state state;

	char *base;		/* homeserver URL without a trailing slash */
	char *prefix;		/* "/_matrix/client/v3" or ".../r0" */
	char *token;		/* access token in use */
	int token_from_login;	/* it came from a password login (saved in state) */
	unsigned long token_gen; /* bumped whenever the token is dropped or replaced */
	char *user_id;		/* who we are */
	char *localpart;	/* "faqbot" of @faqbot:server */
	char *device_id;	/* our device */
	char *filter_id;	/* server-side filter */
	char *filter_hash;	/* hash of the filter it was made from */
	char *since;		/* sync token; NULL before the first sync */
	cJSON *held;		/* a sync reply waiting for its gaps to be filled */
	struct mx_gap *gaps;	/* the gaps of the held reply */
	size_t ngaps;

	struct http_req *req;	/* the state machine's request in flight */
	uint64_t retry_timer;	/* timer for the next attempt */
	int failures;		/* consecutive failures of the state machine */
	uint64_t last_ok_ms;	/* last successful sync */
	uint64_t up_since_ms;	/* first success after the last failure */
	uint64_t down_since_ms;	/* first failure of the current trouble, or 0 */
	int rooms_listed;	/* /joined_rooms answered (ROOMS) */
	int rooms_ready;	/* ROOMS is done for this process */

	struct mx_pending *pend; /* queued replies */
	size_t npend;
	size_t inflight;
	uint64_t pump_timer;	/* timer for the next send */
	uint64_t save_timer;	/* timer for a deferred flush of the journal */
	size_t pend_peak;	/* most replies queued since the queue was last empty */
	int in_batch;		/* handling a sync batch: it flushes the journal at its end */
	int overflowing;	/* the queue is full (logged once until it drains) */
	struct jrnl *journal;	/* pending.jsonl: the queue's changes */
	size_t journal_dead;	/* records in it that no longer matter */
	enum mx_send_mode send_mode; /* after 429s */
	uint64_t pause_until;	/* no send before (a 429, or pacing) */
	uint64_t paced_until;	/* PACED until then (a minute after the last 429) */
	uint64_t pace_ms;	/* PACED: the interval between two sends */
	int pace_sent;		/* PACED: a send went through since the last 429 */

	struct mx_room *rooms;	/* known rooms */
	size_t nrooms;
	struct mx_set dms;	/* rooms invited to as direct chats (saved) */
	struct mx_set safety;	/* direct chats from outside invite_allow: safety answers only (saved) */
	struct mx_set told;	/* encrypted rooms the bot has said it cannot read (saved) */
	struct load_op *loads;	/* room state fetches in flight */
	size_t nloads;
	struct mx_sent sent[MX_SENT_RING]; /* our recent replies */
	size_t sent_next;
	struct mx_seen seen[MX_SEEN_RING]; /* recent messages */
	size_t seen_next;
	struct smap name_idx;	/* "room\x1fuser" -> index in names */
	char **names;		/* display names, NULL when unset */
	size_t nnames;

	struct member_op *ops;	/* joins and leaves in flight */
	unsigned long nevents;	/* messages seen */
	unsigned long nsent;	/* replies sent */
	unsigned long seq;	/* for transaction ids without a key */
};

struct send_ctx {
	struct mx *m;		/* whose */
	char *txn;		/* which pending reply */
	unsigned long token_gen; /* m->token_gen when it was sent */
};

struct member_op {
	struct mx *m;			/* whose */
	char *room;			/* which room */
	int join;			/* join, or decline */
	struct http_req *req;		/* in flight */
	struct member_op *next;		/* list of those in flight */
};

/* A room state fetch in flight (the rooms array moves: the room goes by id). */
struct load_op {
	struct mx *m;			/* whose */
	char *room;			/* which room */
	unsigned long gen;		/* the room's state_gen when it started */
	struct http_req *req;		/* in flight */
	struct load_op *next;		/* list of those in flight */
};

static void mx_step(struct mx *m);
static void mx_pump(struct mx *m);
static int mx_send(void *impl, const struct tp_out *out);
static int mx_power_level(void *impl, const char *room, const char *user);
static int mx_link(void *impl, const char *room, const char *event_id, struct buf *out);
static int mx_has_room(void *impl, const char *room);
static int mx_member(void *impl, const char *room, const char *user);
static void loads_pump(struct mx *m);

/* --- helpers ------------------------------------------------------------ */

static uint64_t
jitter(uint64_t ms)
{
	/* 0.5x to 1.5x, so that many bots do not retry in step. */
	return ms / 2 + (uint64_t)((double)ms * ((double)rand() / RAND_MAX));
}

static uint64_t
backoff_ms(const struct mx *m, int failures)
{
	uint64_t ms = MX_BACKOFF_BASE_MS;
	int i;

	for (i = 1; i < failures && ms < (uint64_t)m->cfg->mx_backoff_max_ms; i++)
		ms *= 2;
	if (ms > (uint64_t)m->cfg->mx_backoff_max_ms)
		ms = (uint64_t)m->cfg->mx_backoff_max_ms;
	return jitter(ms);
}

static char *
url(const struct mx *m, const char *path_fmt, ...) __attribute__((format(printf, 2, 3)));

static char *
url(const struct mx *m, const char *path_fmt, ...)
{
	struct buf b;
	va_list ap;

	buf_init(&b);
	buf_puts(&b, m->base);
	buf_puts(&b, m->prefix);
	va_start(ap, path_fmt);
	buf_vprintf(&b, path_fmt, ap);
	va_end(ap);
	return buf_steal(&b);
}

static char *
esc(const char *s)
{
	struct buf b;

	buf_init(&b);
	http_escape(&b, s);
	return buf_steal(&b);
}

/* The Matrix error code of a reply body, or "". */
static const char *
errcode(const struct http_resp *r, char *buf, size_t len)
{
	cJSON *j = cJSON_ParseWithLength(r->body, r->len), *e;

	buf[0] = '\0';
	if (j && (e = cJSON_GetObjectItemCaseSensitive(j, "errcode")) && cJSON_IsString(e))
		snprintf(buf, len, "%s", e->valuestring);
	cJSON_Delete(j);
	return buf;
}

/* retry_after_ms from the body, else the Retry-After header, else -1. */
static long
retry_after(const struct http_resp *r)
{
	cJSON *j = cJSON_ParseWithLength(r->body, r->len), *e;
	long ms = -1;

	if (j && (e = cJSON_GetObjectItemCaseSensitive(j, "retry_after_ms")) && cJSON_IsNumber(e) &&
	    e->valuedouble >= 0 && e->valuedouble < 3600000)
		ms = (long)e->valuedouble;
	cJSON_Delete(j);
	if (ms < 0)
		ms = r->retry_after_ms;
	return ms;
}

/* --- small sets of room ids --------------------------------------------- */

static int
set_has(const struct mx_set *set, const char *s)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (strcmp(set->v[i], s) == 0)
			return 1;
	return 0;
}

/* Adds s; returns 1 when it was not there. */
static int
set_add(struct mx_set *set, const char *s)
{
	if (set_has(set, s))
		return 0;
	set->v = xreallocarray(set->v, set->n + 1, sizeof(*set->v));
	set->v[set->n++] = xstrdup(s);
	return 1;
}

/* Removes s; returns 1 when it was there. */
static int
set_del(struct mx_set *set, const char *s)
{
	size_t i;

	for (i = 0; i < set->n; i++) {
		if (strcmp(set->v[i], s) == 0) {
			free(set->v[i]);
			set->v[i] = set->v[--set->n];
			return 1;
		}
	}
	return 0;
}

static void
set_free(struct mx_set *set)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		free(set->v[i]);
	free(set->v);
	set->v = NULL;
	set->n = 0;
}

static void
set_to_json(cJSON *obj, const char *key, const struct mx_set *set)
{
	cJSON *a = cJSON_AddArrayToObject(obj, key);
	size_t i;

	for (i = 0; i < set->n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(set->v[i]));
}

/* At most 100,000 room ids, each one a room id: a damaged file cannot make it huge. */
static void
set_from_json(struct mx_set *set, cJSON *obj, const char *key)
{
	cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key), *e;

	cJSON_ArrayForEach(e, a)
	{
		if (set->n >= 100000)
			break;
		if (cJSON_IsString(e) && e->valuestring[0] == '!' && strlen(e->valuestring) < 256)
			set_add(set, e->valuestring);
	}
}

/* --- persistence ------------------------------------------------------- */

static char *
state_file(const struct mx *m, const char *name)
{
	return xasprintf("%s/%s", m->state_dir, name);
}

static void
save_session(struct mx *m)
{
	cJSON *j = cJSON_CreateObject();
	char *text, *path = state_file(m, "matrix.json");

	cJSON_AddStringToObject(j, "homeserver", m->base);
	if (m->user_id)
		cJSON_AddStringToObject(j, "user_id", m->user_id);
	if (m->device_id)
		cJSON_AddStringToObject(j, "device_id", m->device_id);
	if (m->token && m->token_from_login)
		cJSON_AddStringToObject(j, "access_token", m->token);
	if (m->filter_id)
		cJSON_AddStringToObject(j, "filter_id", m->filter_id);
	if (m->filter_hash)
		cJSON_AddStringToObject(j, "filter_hash", m->filter_hash);
	if (m->since)
		cJSON_AddStringToObject(j, "since", m->since);
	set_to_json(j, "direct_rooms", &m->dms);
	set_to_json(j, "told_encrypted", &m->told);
	set_to_json(j, "safety_only_rooms", &m->safety);
	text = cJSON_Print(j);
	cJSON_Delete(j);
	if (file_write_atomic(path, text, strlen(text), 0600) == -1)
		log_warn("matrix: cannot save %s", path);
	memset(text, 0, strlen(text));
	free(text);
	free(path);
}

static char *
jstr(cJSON *j, const char *key)
{
	cJSON *e = cJSON_GetObjectItemCaseSensitive(j, key);

	return cJSON_IsString(e) && e->valuestring[0] ? xstrdup(e->valuestring) : NULL;
}

static void
load_session(struct mx *m)
{
	char *path = state_file(m, "matrix.json"), *text, *hs;
	size_t len;
	cJSON *j;

	text = file_read(path, 1 << 20, &len);
	if (text == NULL) {
		if (errno != ENOENT)
			log_warn("matrix: cannot read %s", path);
		free(path);
		return;
	}
	j = cJSON_ParseWithLength(text, len);
	memset(text, 0, len);
	free(text);
	if (j == NULL) {
		log_warnx("matrix: %s is damaged; starting a new session", path);
		free(path);
		return;
	}
	hs = jstr(j, "homeserver");
	if (hs && strcmp(hs, m->base) == 0) {
		char *uid = jstr(j, "user_id");

		/* A session for another account is not ours to reuse. */
		if (uid && m->cfg->mx_user_id[0] && strcmp(uid, m->cfg->mx_user_id) != 0) {
			log_warnx("matrix: the saved session is for %s, not %s; starting anew", uid,
			    m->cfg->mx_user_id);
		} else {
			m->device_id = jstr(j, "device_id");
			m->filter_id = jstr(j, "filter_id");
			m->filter_hash = jstr(j, "filter_hash");
			m->since = jstr(j, "since");
			set_from_json(&m->dms, j, "direct_rooms");
			set_from_json(&m->told, j, "told_encrypted");
			set_from_json(&m->safety, j, "safety_only_rooms");
			if (m->cfg->mx_access_token[0] == '\0') {
				m->token = jstr(j, "access_token");
				m->token_from_login = m->token != NULL;
			}
		}
		free(uid);
	}
	free(hs);
	cJSON_Delete(j);
	free(path);
}

/*
 * The queue's journal, pending.jsonl: {"add": {...}} when a reply joins
 * the queue, {"del": TXN} when it leaves (sent, refused or withdrawn).
 * Replayed at start; rewritten whole only when the records of replies
 * gone outweigh the live ones. pending_record() is the line that queues p
 * (caller frees).
 */
static char *
pending_record(const struct mx_pending *p)
{
	cJSON *rec = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(rec, "add");
	char *text;

	cJSON_AddStringToObject(e, "txn", p->txn);
	cJSON_AddStringToObject(e, "room", p->room);
	cJSON_AddStringToObject(e, "content", p->content);
	if (p->key)
		cJSON_AddStringToObject(e, "key", p->key);
	if (p->reply_to)
		cJSON_AddStringToObject(e, "reply_to", p->reply_to);
	if (p->kind == MX_KIND_REDACTION)
		cJSON_AddStringToObject(e, "kind", "redaction");
	if (p->urgent)
		cJSON_AddTrueToObject(e, "urgent");
	text = cJSON_PrintUnformatted(rec);
	cJSON_Delete(rec);
	return text;
}

static void
journal_add(struct mx *m, const struct mx_pending *p)
{
	char *text;

	if (m->journal == NULL)
		return;
	text = pending_record(p);
	jrnl_add(m->journal, text);
	free(text);
}

static void
journal_del(struct mx *m, const char *txn)
{
	cJSON *rec = cJSON_CreateObject();
	char *text;

	if (m->journal == NULL) {
		cJSON_Delete(rec);
		return;
	}
	cJSON_AddStringToObject(rec, "del", txn);
	text = cJSON_PrintUnformatted(rec);
	cJSON_Delete(rec);
	jrnl_add(m->journal, text);
	free(text);
	m->journal_dead += 2; /* the del, and the add it cancels */
}

/* Rewrites the journal as the queue is now. */
static void
journal_compact(struct mx *m)
{
	struct buf all;
	size_t i;

	if (m->journal == NULL)
		return;
	buf_init(&all);
	for (i = 0; i < m->npend; i++) {
		char *text = pending_record(&m->pend[i]);

		buf_puts(&all, text);
		buf_putc(&all, '\n');
		free(text);
	}
	if (jrnl_replace(m->journal, all.data ? all.data : "", all.len) == -1)
		log_warn("matrix: cannot rewrite the reply queue's journal");
	else
		m->journal_dead = 0;
	buf_free(&all);
}

/*
 * Makes the queue's changes durable: appends them (a few hundred bytes a
 * reply), or rewrites the file when dead records outweigh the live ones.
 */
static void
pending_flush(struct mx *m)
{
	if (m->journal == NULL)
		return;
	if (m->journal_dead > 256 && m->journal_dead > 2 * m->npend) {
		journal_compact(m);
		return;
	}
	if (m->npend == 0 && m->journal_dead > 0) {
		journal_compact(m); /* an empty file */
		return;
	}
	if (jrnl_pending(m->journal) && jrnl_flush(m->journal) == -1)
		log_warn("matrix: cannot write the reply queue's journal");
}

static void
on_save(void *arg)
{
	struct mx *m = arg;

	m->save_timer = 0;
	pending_flush(m);
#ifdef __GLIBC__
	/* A burst of replies has drained: give its memory back. */
	if (m->npend == 0 && m->pend_peak > 256) {
		m->pend_peak = 0;
		malloc_trim(0);
	}
#endif
}

/*
 * A reply left the queue (sent, or refused for good). Writing that can wait
 * a moment and take several at once: should the bot die first, the reply
 * is sent again on restart with the same transaction id, which the server
 * recognises, so nothing is posted twice. (A reply joining the queue is
 * written before its question's batch is acknowledged.)
 */
static void
pending_changed(struct mx *m)
{
	if (m->save_timer == 0)
		m->save_timer = loop_timer(m->loop, 1000, on_save, m);
}

static void pending_add(struct mx *m, const char *txn, const char *room, const char *content,
    const char *key, const char *reply_to, enum mx_kind kind, int urgent, uint64_t received_ns,
    int journal);
static void pending_remove(struct mx *m, size_t i);

/* One record of the journal on replay. */
static void
replay_line(void *arg, char *line, size_t len)
{
	struct mx *m = arg;
	cJSON *rec = cJSON_ParseWithLength(line, len), *add, *del;
	size_t i;

	if (rec == NULL)
		return; /* a damaged record: the rest still counts */
	add = cJSON_GetObjectItemCaseSensitive(rec, "add");
	del = cJSON_GetObjectItemCaseSensitive(rec, "del");
	if (cJSON_IsObject(add)) {
		char *txn = jstr(add, "txn"), *room = jstr(add, "room"), *content = jstr(add, "content");
		char *key = jstr(add, "key"), *reply_to = jstr(add, "reply_to"), *kind = jstr(add, "kind");

		if (txn && room && content)
			pending_add(m, txn, room, content, key, reply_to,
			    kind && strcmp(kind, "redaction") == 0 ? MX_KIND_REDACTION
								     : MX_KIND_MESSAGE,
			    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(add, "urgent")), 0, 0);
		free(txn);
		free(room);
		free(content);
		free(key);
		free(reply_to);
		free(kind);
	} else if (cJSON_IsString(del)) {
		for (i = 0; i < m->npend; i++)
			if (strcmp(m->pend[i].txn, del->valuestring) == 0) {
				pending_remove(m, i);
				break;
			}
	}
	cJSON_Delete(rec);
}

/*
 * Loads the queue: the journal, and pending.json as earlier versions wrote
 * it (taken over into the journal, then removed). Opens the journal.
 */
static void
load_pending(struct mx *m)
{
	char *path = state_file(m, "pending.jsonl"), *old = state_file(m, "pending.json");
	char *text;
	size_t len;
	cJSON *arr, *e;
	int migrated = 0;

	if (jrnl_replay(path, MX_JOURNAL_MAX, replay_line, m) == -1)
		log_warn("matrix: cannot read %s; its replies cannot be resent", path);
	if ((text = file_read(old, 64 << 20, &len)) != NULL) {
		arr = cJSON_ParseWithLength(text, len);
		free(text);
		if (!cJSON_IsArray(arr))
			log_warnx("matrix: %s is damaged; its replies cannot be resent", old);
		cJSON_ArrayForEach(e, arr)
		{
			char *txn = jstr(e, "txn"), *room = jstr(e, "room"), *content = jstr(e, "content");
			char *key = jstr(e, "key");

			if (txn && room && content)
				pending_add(m, txn, room, content, key, NULL, MX_KIND_MESSAGE, 0, 0, 0);
			free(txn);
			free(room);
			free(content);
			free(key);
		}
		cJSON_Delete(arr);
		migrated = 1;
	}
	if ((m->journal = jrnl_open(path, 0600)) == NULL)
		log_warn("matrix: cannot open %s: the reply queue is not kept across restarts",
		    path);
	/* What the replay dropped, and the old file's replies, make a fresh start. */
	if (m->journal != NULL && (migrated || m->npend > 0 || jrnl_size(m->journal) > 0)) {
		journal_compact(m);
		if (migrated && unlink(old) == -1)
			log_warn("matrix: cannot remove %s", old);
	}
	if (m->npend)
		log_info("matrix: %zu reply(s) from before the restart will be sent", m->npend);
	free(path);
	free(old);
}

/* --- rooms, names, our events ------------------------------------------ */

static struct mx_room *
room_get(struct mx *m, const char *id, int create)
{
	struct mx_room *r;
	size_t i;

	for (i = 0; i < m->nrooms; i++)
		if (strcmp(m->rooms[i].id, id) == 0)
			return &m->rooms[i];
	if (!create)
		return NULL;
	m->rooms = xreallocarray(m->rooms, m->nrooms + 1, sizeof(*m->rooms));
	r = &m->rooms[m->nrooms++];
	memset(r, 0, sizeof(*r));
	r->id = xstrdup(id);
	r->dm = set_has(&m->dms, id);
	r->summary_joined = -1;
	return r;
}

static void
members_clear(struct mx_room *r)
{
	size_t i;

	for (i = 0; i < r->nmem; i++)
		free(r->mem[i]);
	free(r->mem);
	r->mem = NULL;
	r->nmem = 0;
}

static void
room_clear(struct mx_room *r)
{
	free(r->id);
	cJSON_Delete(r->power);
	members_clear(r);
}

static void
room_forget(struct mx *m, const char *id)
{
	size_t i;

	for (i = 0; i < m->nrooms; i++) {
		if (strcmp(m->rooms[i].id, id) == 0) {
			room_clear(&m->rooms[i]);
			m->rooms[i] = m->rooms[--m->nrooms];
			return;
		}
	}
}

static int
is_modroom(const struct mx *m, const char *room)
{
	return m->cfg->moderator_room[0] != '\0' && strcmp(m->cfg->moderator_room, room) == 0;
}

/*
 * user's membership of room is joined (or not) now. Members are tracked
 * one by one while there are few (and in the moderator room, where each
 * counts); a bigger room keeps only its count.
 */
static void
member_set(struct mx *m, struct mx_room *r, const char *user, int joined)
{
	size_t i, cap = is_modroom(m, r->id) ? MX_MODROOM_MEMBERS : MX_ROOM_MEMBERS;

	if (r->mem_many)
		return;
	for (i = 0; i < r->nmem; i++) {
		if (strcmp(r->mem[i], user) == 0) {
			if (!joined) {
				free(r->mem[i]);
				r->mem[i] = r->mem[--r->nmem];
			}
			return;
		}
	}
	if (!joined)
		return;
	if (r->nmem >= cap) {
		members_clear(r);
		r->mem_many = 1;
		return;
	}
	r->mem = xreallocarray(r->mem, r->nmem + 1, sizeof(*r->mem));
	r->mem[r->nmem++] = xstrdup(user);
}

/* Joined members of r, or -1 when not known. */
static long
members_count(const struct mx_room *r)
{
	if (r->mem_complete && !r->mem_many)
		return (long)r->nmem;
	if (r->summary_joined >= 0)
		return r->summary_joined;
	return r->mem_many ? LONG_MAX : -1;
}

/* A direct chat: invited as one, and just the bot and one person in it now. */
static int
room_direct(const struct mx_room *r)
{
	return r->dm && members_count(r) == 2;
}

/* The key of a display name: room and user, apart. */
static char *
name_key(const char *room, const char *user, size_t *len)
{
	char *k = xasprintf("%s\x1f%s", room, user);

	*len = strlen(k);
	return k;
}

static void
names_clear(struct mx *m)
{
	size_t i;

	for (i = 0; i < m->nnames; i++)
		free(m->names[i]);
	free(m->names);
	m->names = NULL;
	m->nnames = 0;
	smap_free(&m->name_idx);
	smap_init(&m->name_idx);
}

/*
 * user's display name in room (per room: a name set for one room is not
 * used in another). NULL or "" forgets it; a name longer than MX_NAME_MAX
 * bytes replaces the old one, cut (never inside a character).
 */
static void
name_set(struct mx *m, const char *room, const char *user, const char *name)
{
	size_t len;
	char *k = name_key(room, user, &len);
	uint32_t *v = smap_get(&m->name_idx, k, len);
	int added;

	if (v == NULL && (name == NULL || name[0] == '\0')) {
		free(k);
		return;
	}
	if (v == NULL) {
		if (m->nnames >= MX_MAX_NAMES)
			names_clear(m); /* names come back with the next member events */
		v = smap_put(&m->name_idx, k, len, (uint32_t)m->nnames, &added);
		m->names = xreallocarray(m->names, m->nnames + 1, sizeof(*m->names));
		m->names[m->nnames++] = NULL;
	}
	free(m->names[*v]);
	m->names[*v] = name && name[0] ? text_display_safe(name, MX_NAME_MAX) : NULL;
	free(k);
}

static const char *
name_get(const struct mx *m, const char *room, const char *user)
{
	size_t len;
	char *k = name_key(room, user, &len);
	uint32_t *v = smap_get(&m->name_idx, k, len);

	free(k);
	return v != NULL ? m->names[*v] : NULL;
}

static void
sent_remember(struct mx *m, const char *event_id, const char *reply_to, const char *room)
{
	struct mx_sent *s = &m->sent[m->sent_next];

	free(s->event_id);
	free(s->reply_to);
	free(s->room);
	s->event_id = xstrdup(event_id);
	s->reply_to = reply_to ? xstrdup(reply_to) : NULL;
	s->room = xstrdup(room);
	m->sent_next = (m->sent_next + 1) % MX_SENT_RING;
}

static int
sent_by_us(const struct mx *m, const char *event_id)
{
	size_t i;

	for (i = 0; i < MX_SENT_RING; i++)
		if (m->sent[i].event_id && strcmp(m->sent[i].event_id, event_id) == 0)
			return 1;
	return 0;
}

static struct mx_seen *
seen_find(struct mx *m, const char *event_id)
{
	size_t i;

	for (i = 0; i < MX_SEEN_RING; i++)
		if (m->seen[i].event_id && strcmp(m->seen[i].event_id, event_id) == 0)
			return &m->seen[i];
	return NULL;
}

static void
seen_clear(struct mx_seen *s)
{
	free(s->event_id);
	free(s->room);
	free(s->sender);
	free(s->thread_root);
	memset(s, 0, sizeof(*s));
}

static void
seen_remember(struct mx *m, const char *event_id, const char *room, const char *sender,
    const char *thread_root, uint64_t ts)
{
	struct mx_seen *s = &m->seen[m->seen_next];

	seen_clear(s);
	s->event_id = xstrdup(event_id);
	s->room = xstrdup(room);
	s->sender = xstrdup(sender);
	s->thread_root = thread_root ? xstrdup(thread_root) : NULL;
	s->ts = ts;
	m->seen_next = (m->seen_next + 1) % MX_SEEN_RING;
}

/* --- the state machine ------------------------------------------------- */

static void
on_retry(void *arg)
{
	struct mx *m = arg;

	m->retry_timer = 0;
	mx_step(m);
}

static void
retry_later(struct mx *m, uint64_t ms)
{
	loop_timer_cancel(m->loop, m->retry_timer);
	m->retry_timer = loop_timer(m->loop, ms, on_retry, m);
}

/*
 * A failure that can pass: count it and try again after the backoff. While
 * the server cannot be reached at all (no reply, or a proxy's 502, 503 or
 * 504), the delay stays under MX_PROBE_MS, so that the bot is back within
 * seconds of the server. The first failures of a stretch are warnings;
 * then one a minute or so, the rest at debug level.
 */
static void
transient(struct mx *m, const char *what, const struct http_resp *r)
{
	int unreachable = r->status == 0 || r->status == 502 || r->status == 503 ||
	    r->status == 504;
	uint64_t wait;
	long ra;
	char ec[64], line[512];

	m->failures++;
	m->up_since_ms = 0;
	if (m->down_since_ms == 0)
		m->down_since_ms = now_ms();
	if (r->status == 429 && (ra = retry_after(r)) >= 0) {
		wait = (uint64_t)ra;
		snprintf(line, sizeof(line), "matrix: %s: rate limited (%s); retrying in %llu ms",
		    what, errcode(r, ec, sizeof(ec)), (unsigned long long)wait);
	} else {
		wait = backoff_ms(m, m->failures);
		if (unreachable && wait > MX_PROBE_MS)
			wait = MX_PROBE_MS - (uint64_t)(rand() % 1000);
		if (r->status)
			snprintf(line, sizeof(line), "matrix: %s: HTTP %ld %s; retrying in %llu ms",
			    what, r->status, errcode(r, ec, sizeof(ec)), (unsigned long long)wait);
		else
			snprintf(line, sizeof(line), "matrix: %s: %s; retrying in %llu ms", what,
			    r->error, (unsigned long long)wait);
	}
	if (m->failures <= 3 || m->failures % 12 == 0)
		log_warnx("%s", line);
	else
		log_debug("%s", line);
	stats_sync_error(m->bot->stats, "matrix");
	m->bot->dirty = 1;
	retry_later(m, wait);
}

/* A request of the state machine succeeded: the end of any trouble. */
static void
link_ok(struct mx *m)
{
	uint64_t now = now_ms();

	if (m->down_since_ms == 0)
		return;
	log_info("matrix: connected again after %llu s (%d failed attempt%s)",
	    (unsigned long long)((now - m->down_since_ms + 500) / 1000), m->failures,
	    m->failures == 1 ? "" : "s");
	m->down_since_ms = 0;
}

static void
fail_for_good(struct mx *m, const char *msg)
{
	log_warnx("matrix: %s", msg);
	m->state = MX_FAILED;
	loop_stop(m->loop);
}

/* A rejected token: log in again with the password, or stop. */
static void
token_rejected(struct mx *m)
{
	if (m->cfg->mx_password[0]) {
		log_warnx("matrix: the access token was rejected (M_UNKNOWN_TOKEN); logging in again");
		free(m->token);
		m->token = NULL;
		m->token_gen++;
		/* A whoami or filter in flight would move on without a token. */
		if (m->req != NULL) {
			http_cancel(m->loop, m->req);
			m->req = NULL;
		}
		m->state = MX_LOGIN;
		mx_step(m);
		return;
	}
	fail_for_good(m, "the access token was rejected (M_UNKNOWN_TOKEN) and no password is "
			 "configured: give a new matrix.access_token, or a password, and restart");
}

static void
on_versions(void *arg, const struct http_resp *r)
{
	struct mx *m = arg;
	cJSON *j, *v, *e;
	int v3 = 0, r0 = 0;

	m->req = NULL;
	if (r->status != 200) {
		transient(m, "versions", r);
		return;
	}
	j = cJSON_ParseWithLength(r->body, r->len);
	v = cJSON_GetObjectItemCaseSensitive(j, "versions");
	if (!cJSON_IsArray(v)) {
		cJSON_Delete(j);
		transient(m, "versions (malformed reply)", r);
		return;
	}
	cJSON_ArrayForEach(e, v)
	{
		if (!cJSON_IsString(e))
			continue;
		if (strncmp(e->valuestring, "v1.", 3) == 0)
			v3 = 1;
		if (strncmp(e->valuestring, "r0.", 3) == 0)
			r0 = 1;
	}
	cJSON_Delete(j);
	free(m->prefix);
	m->prefix = xstrdup(!v3 && r0 ? "/_matrix/client/r0" : "/_matrix/client/v3");
	if (!v3 && r0)
		log_info("matrix: the server speaks only r0; using r0 paths");
	link_ok(m);
	m->failures = 0;
	m->state = m->token ? MX_WHOAMI : MX_LOGIN;
	mx_step(m);
}

static void
on_login(void *arg, const struct http_resp *r)
{
	struct mx *m = arg;
	cJSON *j;
	char ec[64], *dev;

	m->req = NULL;
	if (r->status == 403 || r->status == 400 || r->status == 401) {
		errcode(r, ec, sizeof(ec));
		fail_for_good(m, r->status == 403 ? "login refused (wrong user or password?)"
						  : "login refused by the server");
		log_warnx("matrix: the server said HTTP %ld %s", r->status, ec);
		return;
	}
	if (r->status != 200) {
		transient(m, "login", r);
		return;
	}
	j = cJSON_ParseWithLength(r->body, r->len);
	free(m->token);
	m->token = jstr(j, "access_token");
	dev = jstr(j, "device_id");
	cJSON_Delete(j);
	if (m->token == NULL || dev == NULL) {
		free(dev);
		transient(m, "login (malformed reply)", r);
		return;
	}
	free(m->device_id);
	m->device_id = dev;
	m->token_from_login = 1;
	m->token_gen++;
	save_session(m);
	log_info("matrix: logged in as %s, device %s", m->cfg->mx_user_id, m->device_id);
	link_ok(m);
	m->failures = 0;
	m->state = MX_WHOAMI;
	mx_step(m);
}

static void
on_whoami(void *arg, const struct http_resp *r)
{
	struct mx *m = arg;
	cJSON *j;
	char ec[64], *uid, *at;

	m->req = NULL;
	if (r->status == 401 && strcmp(errcode(r, ec, sizeof(ec)), "M_UNKNOWN_TOKEN") == 0) {
		token_rejected(m);
		return;
	}
	if (r->status != 200) {
		transient(m, "whoami", r);
		return;
	}
	j = cJSON_ParseWithLength(r->body, r->len);
	uid = jstr(j, "user_id");
	cJSON_Delete(j);
	if (uid == NULL || uid[0] != '@' || strchr(uid, ':') == NULL) {
		free(uid);
		transient(m, "whoami (malformed reply)", r);
		return;
	}
	if (m->cfg->mx_user_id[0] && strcmp(uid, m->cfg->mx_user_id) != 0)
		log_warnx("matrix: the token belongs to %s, not the configured %s", uid,
		    m->cfg->mx_user_id);
	free(m->user_id);
	m->user_id = uid;
	free(m->localpart);
	at = strchr(uid, ':');
	m->localpart = xstrndup(uid + 1, (size_t)(at - uid - 1));
	log_info("matrix: connected to %s as %s", m->base, m->user_id);
	link_ok(m);
	m->failures = 0;
	m->state = MX_FILTER;
	mx_step(m);
}

/* The filter: only what the bot needs. */
static char *
filter_json(void)
{
	return xstrdup(
	    "{\"presence\":{\"types\":[]},\"account_data\":{\"types\":[]},"
	    "\"room\":{\"account_data\":{\"types\":[]},\"ephemeral\":{\"types\":[]},"
	    "\"state\":{\"types\":[\"m.room.member\",\"m.room.power_levels\"],"
	    "\"lazy_load_members\":true},"
	    "\"timeline\":{\"types\":[\"m.room.message\",\"m.room.encrypted\",\"m.room.member\","
	    "\"m.room.power_levels\",\"m.room.redaction\",\"m.reaction\"],\"limit\":50}}}");
}

static void
on_filter(void *arg, const struct http_resp *r)
{
	struct mx *m = arg;
	cJSON *j;
	char *f, ec[64];

	m->req = NULL;
	if (r->status == 401 && strcmp(errcode(r, ec, sizeof(ec)), "M_UNKNOWN_TOKEN") == 0) {
		token_rejected(m);
		return;
	}
	if (r->status != 200) {
		transient(m, "filter", r);
		return;
	}
	j = cJSON_ParseWithLength(r->body, r->len);
	free(m->filter_id);
	m->filter_id = jstr(j, "filter_id");
	cJSON_Delete(j);
	if (m->filter_id == NULL) {
		transient(m, "filter (malformed reply)", r);
		return;
	}
	f = filter_json();
	free(m->filter_hash);
	m->filter_hash = xasprintf("%016llx", (unsigned long long)hash_bytes(f, strlen(f)));
	free(f);
	save_session(m);
	link_ok(m);
	m->failures = 0;
	m->state = m->rooms_ready ? MX_SYNC : MX_ROOMS;
	mx_step(m);
}

static int
invite_allowed(const struct mx *m, const char *inviter)
{
	const struct strlist *l = &m->cfg->mx_invite_allow;
	size_t i, n, il = strlen(inviter);

	for (i = 0; i < l->n; i++) {
		const char *a = l->v[i];

		if (strcmp(a, inviter) == 0)
			return 1;
		n = strlen(a);
		/* ":example.org" allows everyone on that server. */
		if (a[0] == ':' && il > n && strcmp(inviter + il - n, a) == 0)
			return 1;
	}
	return 0;
}

static void
on_member_op(void *arg, const struct http_resp *r)
{
	struct member_op *op = arg, **pp;
	struct mx_room *room = room_get(op->m, op->room, 0);

	for (pp = &op->m->ops; *pp; pp = &(*pp)->next)
		if (*pp == op) {
			*pp = op->next;
			break;
		}
	if (room)
		room->joining = 0;
	if (r->status == 200 && op->join && room != NULL && !room->joined) {
		/* In it now (its sync entry may come a batch later): its state is fetched. */
		room->joined = 1;
		room->load = MX_LOAD_WANTED;
		room->load_tries = 0;
		bot_on_membership(op->m->bot, &op->m->tp, op->room, 1, NULL);
		loads_pump(op->m);
	}
	if (r->status == 200)
		log_info("matrix: %s %s", op->join ? "joined" : "declined the invite to", op->room);
	else
		log_warnx("matrix: could not %s %s: %s%s (HTTP %ld); it will be retried with the "
			  "next invite",
		    op->join ? "join" : "decline", op->room, r->error, r->status ? "" : "",
		    r->status);
	if (!op->join && room)
		room_forget(op->m, op->room);
	free(op->room);
	free(op);
}

static void
handle_invite(struct mx *m, const char *room_id, cJSON *invite)
{
	cJSON *evs = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(invite, "invite_state"), "events"),
	      *e;
	const char *inviter = NULL;
	int direct = 0, safety;
	struct mx_room *room;
	struct member_op *op;
	char *rid, *u;

	cJSON_ArrayForEach(e, evs)
	{
		cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
		cJSON *sk = cJSON_GetObjectItemCaseSensitive(e, "state_key");
		cJSON *sender = cJSON_GetObjectItemCaseSensitive(e, "sender");
		cJSON *mem = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(e, "content"), "membership");

		if (cJSON_IsString(type) && strcmp(type->valuestring, "m.room.member") == 0 &&
		    cJSON_IsString(sk) && strcmp(sk->valuestring, m->user_id) == 0 &&
		    cJSON_IsString(mem) && strcmp(mem->valuestring, "invite") == 0 &&
		    cJSON_IsString(sender)) {
			inviter = sender->valuestring;
			direct = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
			    cJSON_GetObjectItemCaseSensitive(e, "content"), "is_direct"));
		}
	}
	room = room_get(m, room_id, 1);
	room->dm = direct;
	/* Remembered: after a restart the invite is long gone. */
	if (direct ? set_add(&m->dms, room_id) : set_del(&m->dms, room_id))
		save_session(m);
	if (room->joining)
		return;
	room->joining = 1;
	op = xcalloc(1, sizeof(*op));
	op->m = m;
	op->room = xstrdup(room_id);
	op->join = inviter != NULL && invite_allowed(m, inviter);
	/*
	 * A direct chat from anyone else: someone in danger may write to the bot
	 * alone. It is joined for the safety answers only (matrix.safety_dms),
	 * up to MX_MAX_SAFETY_DMS such chats.
	 */
	safety = !op->join && inviter != NULL && direct && m->cfg->mx_safety_dms &&
	    (set_has(&m->safety, room_id) || m->safety.n < MX_MAX_SAFETY_DMS);
	if (safety ? set_add(&m->safety, room_id) : set_del(&m->safety, room_id))
		save_session(m);
	op->join |= safety;
	rid = esc(room_id);
	log_info("matrix: invite to %s from %s: %s", room_id, inviter ? inviter : "(unknown)",
	    safety	 ? "accepting a direct chat for safety answers only (not in "
			   "matrix.invite_allow)"
	    : op->join ? "accepting"
		       : "declining (not in matrix.invite_allow)");
	u = op->join ? url(m, "/join/%s", rid) : url(m, "/rooms/%s/leave", rid);
	op->req = http_start(m->loop, "POST", u, m->token, "{}", m->cfg->mx_request_timeout_ms,
	    (size_t)m->cfg->mx_max_body_bytes, on_member_op, op);
	if (op->req == NULL) {
		room->joining = 0;
		free(op->room);
		free(op);
	} else {
		op->next = m->ops;
		m->ops = op;
	}
	free(u);
	free(rid);
}

static void
handle_state_event(struct mx *m, struct mx_room *room, cJSON *e)
{
	cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
	cJSON *sk = cJSON_GetObjectItemCaseSensitive(e, "state_key");
	cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
	cJSON *dn, *mem;

	if (!cJSON_IsString(type) || !cJSON_IsString(sk) || !cJSON_IsObject(content))
		return;
	if (strcmp(type->valuestring, "m.room.member") == 0) {
		mem = cJSON_GetObjectItemCaseSensitive(content, "membership");
		dn = cJSON_GetObjectItemCaseSensitive(content, "displayname");
		name_set(m, room->id, sk->valuestring, cJSON_IsString(dn) ? dn->valuestring : NULL);
		if (cJSON_IsString(mem))
			member_set(m, room, sk->valuestring, strcmp(mem->valuestring, "join") == 0);
	} else if (strcmp(type->valuestring, "m.room.power_levels") == 0 && sk->valuestring[0] == '\0') {
		cJSON_Delete(room->power);
		room->power = cJSON_Duplicate(content, 1);
	}
}

/*
 * The whole state of room (GET /rooms/{id}/state, an array of events):
 * power levels, and every member with their name; a room with more members
 * than are tracked keeps only its count, and their names come with their
 * messages.
 */
static void
room_apply_state(struct mx *m, struct mx_room *room, cJSON *arr)
{
	cJSON *e, *type, *mem;
	long joined = 0;
	size_t cap = is_modroom(m, room->id) ? MX_MODROOM_MEMBERS : MX_ROOM_MEMBERS;

	cJSON_ArrayForEach(e, arr)
	{
		type = cJSON_GetObjectItemCaseSensitive(e, "type");
		mem = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(e, "content"), "membership");
		if (cJSON_IsString(type) && strcmp(type->valuestring, "m.room.member") == 0 &&
		    cJSON_IsString(mem) && strcmp(mem->valuestring, "join") == 0)
			joined++;
	}
	members_clear(room);
	room->mem_many = (size_t)joined > cap;
	room->summary_joined = joined;
	cJSON_ArrayForEach(e, arr)
	{
		if (!cJSON_IsObject(e))
			continue;
		type = cJSON_GetObjectItemCaseSensitive(e, "type");
		if (room->mem_many && cJSON_IsString(type) &&
		    strcmp(type->valuestring, "m.room.member") == 0)
			continue;
		handle_state_event(m, room, e);
	}
	room->mem_complete = !room->mem_many;
	room->load = MX_LOAD_DONE;
	room->load_tries = 0;
}

/* May the bot redact its own messages in room (send m.room.redaction)? */
static int
can_redact(const struct mx *m, const struct mx_room *room)
{
	cJSON *users, *me, *def, *events, *need;
	double mine, want;

	if (room == NULL || room->power == NULL)
		return 1; /* not known: try, and the server says */
	users = cJSON_GetObjectItemCaseSensitive(room->power, "users");
	me = cJSON_GetObjectItemCaseSensitive(users, m->user_id);
	def = cJSON_GetObjectItemCaseSensitive(room->power, "users_default");
	mine = cJSON_IsNumber(me) ? me->valuedouble : cJSON_IsNumber(def) ? def->valuedouble : 0;
	events = cJSON_GetObjectItemCaseSensitive(room->power, "events");
	need = cJSON_GetObjectItemCaseSensitive(events, "m.room.redaction");
	if (!cJSON_IsNumber(need))
		need = cJSON_GetObjectItemCaseSensitive(room->power, "events_default");
	want = cJSON_IsNumber(need) ? need->valuedouble : 0;
	return mine >= want;
}

/*
 * The reply fallback at the start of body (a reply made by a client that
 * quotes what it replies to: "> <@sender:server> first line", more "> "
 * lines, a blank line, then the reply): returns where the person's own
 * words start, and the quoted sender in *who (wlen bytes), or body itself
 * when there is no fallback.
 */
static const char *
strip_fallback(const char *body, const char **who, size_t *wlen)
{
	const char *p = body, *nl, *gt, *s;

	*who = NULL;
	*wlen = 0;
	if (strncmp(p, "> <", 3) == 0)
		s = p + 3;
	else if (strncmp(p, "> * <", 5) == 0)
		s = p + 5;
	else
		return body;
	if (strchr(p, '\n') == NULL)
		return body;
	nl = strchr(s, '\n');
	if ((gt = strchr(s, '>')) != NULL && gt < nl) {
		*who = s;
		*wlen = (size_t)(gt - s);
	}
	while (strncmp(p, "> ", 2) == 0 || strncmp(p, ">\n", 2) == 0) {
		if ((nl = strchr(p, '\n')) == NULL)
			return p + strlen(p); /* all quote, no reply */
		p = nl + 1;
	}
	if (*p == '\n')
		p++;
	return p;
}

/*
 * Does the message address us: a mention, a reply to us (one we know we
 * sent, or whose fallback quotes us), our id in what they wrote themselves?
 * text is the body without its fallback; quoted the fallback's sender.
 */
static int
addressed_to_us(const struct mx *m, cJSON *content, const char *text, const char *quoted,
    size_t qlen)
{
	cJSON *ment = cJSON_GetObjectItemCaseSensitive(content, "m.mentions");
	cJSON *ids = cJSON_GetObjectItemCaseSensitive(ment, "user_ids"), *e;
	cJSON *rel = cJSON_GetObjectItemCaseSensitive(content, "m.relates_to");
	cJSON *irt = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(rel, "m.in_reply_to"), "event_id");
	cJSON *fb = cJSON_GetObjectItemCaseSensitive(content, "formatted_body");
	cJSON *falling = cJSON_GetObjectItemCaseSensitive(rel, "is_falling_back");
	const char *own;

	cJSON_ArrayForEach(e, ids)
	{
		if (cJSON_IsString(e) && strcmp(e->valuestring, m->user_id) == 0)
			return 1;
	}
	/* A reply to one of our messages (not the automatic one of a thread). */
	if (cJSON_IsString(irt) && !cJSON_IsTrue(falling)) {
		if (sent_by_us(m, irt->valuestring))
			return 1;
		if (quoted != NULL && qlen == strlen(m->user_id) &&
		    memcmp(quoted, m->user_id, qlen) == 0)
			return 1;
	}
	if (cJSON_IsString(fb)) {
		/* The quoted message in <mx-reply> is not theirs. */
		own = strstr(fb->valuestring, "</mx-reply>");
		own = own ? own + 11 : fb->valuestring;
		if (strstr(own, m->user_id) != NULL)
			return 1;
	}
	return strstr(text, m->user_id) != NULL;
}

/*
 * A message the bot cannot read (end-to-end encrypted): logged once per
 * process, and said in the room once for good.
 */
static void
encrypted_seen(struct mx *m, struct mx_room *room)
{
	char *id;

	if (!room->warned_e2e) {
		room->warned_e2e = 1;
		log_warnx("matrix: %s is encrypted; faqbot cannot read it. Put the bot behind "
			  "pantalaimon (docs/deploy.md, \"Encrypted rooms: pantalaimon\") or use an "
			  "unencrypted room",
		    room->id);
	}
	if (!room->joined || set_has(&m->told, room->id))
		return;
	set_add(&m->told, room->id);
	save_session(m);
	id = xstrdup(room->id); /* the rooms array may move under the call */
	bot_on_unreadable(m->bot, &m->tp, id);
	free(id);
}

static void queue_redaction(struct mx *m, const char *room, const char *event_id);

/*
 * A redaction in room: a question deleted before its answer went out gets
 * none; an answer already sent is redacted too (where the bot may).
 */
static void
handle_redaction(struct mx *m, struct mx_room *room, cJSON *e)
{
	cJSON *target = cJSON_GetObjectItemCaseSensitive(e, "redacts");
	struct mx_seen *seen;
	const char *id;
	size_t i;

	if (!cJSON_IsString(target))
		target = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(e, "content"), "redacts");
	if (!cJSON_IsString(target))
		return;
	id = target->valuestring;
	if ((seen = seen_find(m, id)) != NULL)
		seen->redacted = 1;
	for (i = 0; i < m->npend;) {
		struct mx_pending *p = &m->pend[i];

		if (p->kind != MX_KIND_MESSAGE || p->reply_to == NULL ||
		    strcmp(p->reply_to, id) != 0 || strcmp(p->room, room->id) != 0) {
			i++;
			continue;
		}
		if (p->req != NULL) {
			p->cancelled = 1; /* redacted once the server has it */
			i++;
			continue;
		}
		log_info("matrix: a message in %s was deleted before its answer went out; the "
			 "answer is withdrawn",
		    room->id);
		pending_remove(m, i);
		pending_changed(m);
	}
	for (i = 0; i < MX_SENT_RING; i++) {
		struct mx_sent *s = &m->sent[i];

		if (s->event_id && s->reply_to && strcmp(s->reply_to, id) == 0 &&
		    strcmp(s->room, room->id) == 0) {
			char *ours = xstrdup(s->event_id);

			free(s->reply_to);
			s->reply_to = NULL;
			queue_redaction(m, room->id, ours);
			free(ours);
		}
	}
}

/* The text of a message: its body, or an edit's new body; NULL when not m.text. */
static const char *
text_of(cJSON *content)
{
	cJSON *msgtype = cJSON_GetObjectItemCaseSensitive(content, "msgtype");
	cJSON *body = cJSON_GetObjectItemCaseSensitive(content, "body");

	if (!cJSON_IsString(msgtype) || !cJSON_IsString(body))
		return NULL;
	if (strcmp(msgtype->valuestring, "m.text") != 0)
		return NULL; /* notices (other bots), emotes, files */
	return body->valuestring;
}

/* A reaction (m.annotation): a 👍 or 👎 to one of the bot's answers is feedback. */
static void
handle_reaction(struct mx *m, struct mx_room *room, const char *sender, const cJSON *content)
{
	const cJSON *rel = cJSON_GetObjectItemCaseSensitive(content, "m.relates_to");
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(rel, "rel_type");
	const cJSON *target = cJSON_GetObjectItemCaseSensitive(rel, "event_id");
	const cJSON *key = cJSON_GetObjectItemCaseSensitive(rel, "key");

	if (!cJSON_IsString(type) || strcmp(type->valuestring, "m.annotation") != 0 ||
	    !cJSON_IsString(target) || !cJSON_IsString(key) || strlen(key->valuestring) > 64 ||
	    strlist_has(&m->cfg->mx_ignored_users, sender))
		return;
	bot_on_reaction(m->bot, &m->tp, room->id, sender, target->valuestring, key->valuestring);
}

static void
handle_message(struct mx *m, struct mx_room *room, cJSON *e, uint64_t received)
{
	cJSON *sender = cJSON_GetObjectItemCaseSensitive(e, "sender");
	cJSON *eid = cJSON_GetObjectItemCaseSensitive(e, "event_id");
	cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
	cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
	cJSON *unsig = cJSON_GetObjectItemCaseSensitive(e, "unsigned");
	cJSON *ts = cJSON_GetObjectItemCaseSensitive(e, "origin_server_ts");
	cJSON *rel, *reltype, *relid, *irt, *shown_in = content, *fmt, *fb;
	struct tp_msg msg = {0};
	struct mx_seen *orig = NULL;
	const char *name, *body, *text, *quoted;
	char *shown = NULL, *both = NULL;
	uint64_t when;
	size_t qlen;
	int edit = 0;

	if (!cJSON_IsString(sender) || !cJSON_IsString(eid) || !cJSON_IsString(type))
		return;
	if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "state_key"))) {
		room->state_gen++;
		handle_state_event(m, room, e);
		return;
	}
	if (strcmp(sender->valuestring, m->user_id) == 0)
		return;	/* our own */
	if (strcmp(type->valuestring, "m.room.redaction") == 0) {
		handle_redaction(m, room, e);
		return;
	}
	if (strcmp(type->valuestring, "m.room.encrypted") == 0) {
		encrypted_seen(m, room);
		return;
	}
	if (strcmp(type->valuestring, "m.reaction") == 0) {
		handle_reaction(m, room, sender->valuestring, content);
		return;
	}
	if (strcmp(type->valuestring, "m.room.message") != 0 || !cJSON_IsObject(content))
		return;
	if (cJSON_GetObjectItemCaseSensitive(unsig, "redacted_because") != NULL)
		return;
	if (strlist_has(&m->cfg->mx_ignored_users, sender->valuestring))
		return;
	rel = cJSON_GetObjectItemCaseSensitive(content, "m.relates_to");
	reltype = cJSON_GetObjectItemCaseSensitive(rel, "rel_type");
	relid = cJSON_GetObjectItemCaseSensitive(rel, "event_id");
	irt = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(rel, "m.in_reply_to"), "event_id");
	when = cJSON_IsNumber(ts) && ts->valuedouble > 0 ? (uint64_t)ts->valuedouble : 0;
	if (cJSON_IsString(reltype) && strcmp(reltype->valuestring, "m.replace") == 0) {
		/* An edit: read its new text, if its original is one we read and kept. */
		if (!cJSON_IsString(relid))
			return;
		orig = seen_find(m, relid->valuestring);
		if (orig == NULL || orig->redacted || strcmp(orig->room, room->id) != 0 ||
		    strcmp(orig->sender, sender->valuestring) != 0) {
			log_debug("matrix: an edit in %s of a message not read lately: ignored",
			    room->id);
			return;
		}
		shown_in = cJSON_GetObjectItemCaseSensitive(content, "m.new_content");
		body = text_of(shown_in);
		edit = 1;
	} else {
		body = text_of(content);
	}
	if (body == NULL)
		return;
	/* A reply's quote of what it answers is not the person's own words. */
	text = strip_fallback(body, &quoted, &qlen);
	if (!edit && !cJSON_IsString(irt)) {
		text = body;
		quoted = NULL;
	}
	m->nevents++;
	msg.room = room->id;
	msg.sender = sender->valuestring;
	name = name_get(m, room->id, sender->valuestring);
	if (name == NULL) {
		/* The localpart, without the @ and the server (a ':' may come first). */
		static char local[256];
		const char *lp = sender->valuestring + (sender->valuestring[0] == '@');
		const char *c = strchr(lp, ':');
		size_t n = c ? (size_t)(c - lp) : strlen(lp);

		if (n >= sizeof(local))
			n = sizeof(local) - 1;
		memcpy(local, lp, n);
		local[n] = '\0';
		name = local;
	}
	msg.sender_name = name;
	msg.text = text;
	msg.len = strlen(text);
	/*
	 * People see the formatted_body, when there is one: if it says more than
	 * the body (text the body leaves out), the bot reads both.
	 */
	fmt = cJSON_GetObjectItemCaseSensitive(shown_in, "format");
	fb = cJSON_GetObjectItemCaseSensitive(shown_in, "formatted_body");
	if (cJSON_IsString(fmt) && strcmp(fmt->valuestring, "org.matrix.custom.html") == 0 &&
	    cJSON_IsString(fb)) {
		shown = text_html_plain(fb->valuestring, strlen(fb->valuestring));
		if (text_says_more(msg.text, msg.len, shown, strlen(shown))) {
			both = xasprintf("%s\n%s", msg.text, shown);
			msg.text = both;
			msg.len = strlen(both);
		}
	}
	msg.event_id = eid->valuestring;
	msg.addressed = addressed_to_us(m, content, text, quoted, qlen);
	msg.direct = room_direct(room);
	msg.safety_only = set_has(&m->safety, room->id);
	msg.received_ns = received;
	if (edit) {
		/* Answered afresh only soon after, and only if nothing was said to it. */
		msg.reply_to = orig->event_id;
		msg.thread_root = orig->thread_root;
		msg.edit = orig->replied || when == 0 || orig->ts == 0 ||
			when > orig->ts + MX_EDIT_WINDOW_MS
		    ? TP_EDIT_ANSWERED
		    : TP_EDIT_UNANSWERED;
	} else {
		if (cJSON_IsString(reltype) && strcmp(reltype->valuestring, "m.thread") == 0 &&
		    cJSON_IsString(relid))
			msg.thread_root = relid->valuestring;
		seen_remember(m, eid->valuestring, room->id, sender->valuestring, msg.thread_root,
		    when);
	}
	bot_on_message(m->bot, &m->tp, &msg);
	free(both);
	free(shown);
}

/* Is e our own m.room.member join? */
static int
is_own_join(const struct mx *m, cJSON *e)
{
	cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
	cJSON *sk = cJSON_GetObjectItemCaseSensitive(e, "state_key");
	cJSON *mem = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(e, "content"), "membership");

	cJSON *prev = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "unsigned"),
		"prev_content"),
	    "membership");

	/* A join after a join is a profile change, not a new arrival. */
	return cJSON_IsString(type) && strcmp(type->valuestring, "m.room.member") == 0 &&
	    cJSON_IsString(sk) && strcmp(sk->valuestring, m->user_id) == 0 && cJSON_IsString(mem) &&
	    strcmp(mem->valuestring, "join") == 0 &&
	    !(cJSON_IsString(prev) && strcmp(prev->valuestring, "join") == 0);
}

/* Why we are out of a room (its leave entry r): "kicked by @x:y", "banned by ...". */
static void
leave_reason(const struct mx *m, cJSON *r, char *why, size_t len)
{
	cJSON *e, *last = NULL, *sk, *sender, *mem;

	snprintf(why, len, "left");
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(r, "timeline"), "events"))
	{
		sk = cJSON_GetObjectItemCaseSensitive(e, "state_key");
		if (cJSON_IsString(sk) && strcmp(sk->valuestring, m->user_id) == 0)
			last = e;
	}
	if (last == NULL)
		return;
	sender = cJSON_GetObjectItemCaseSensitive(last, "sender");
	mem = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(last, "content"), "membership");
	if (!cJSON_IsString(sender) || !cJSON_IsString(mem))
		return;
	if (strcmp(mem->valuestring, "ban") == 0)
		snprintf(why, len, "banned by %.200s", sender->valuestring);
	else if (strcmp(sender->valuestring, m->user_id) != 0)
		snprintf(why, len, "kicked by %.200s", sender->valuestring);
}

/*
 * After a sync batch: not in the moderator room, nor joining it (an invite
 * being accepted), is an error the core reports (once).
 */
static void
modroom_check(struct mx *m)
{
	struct mx_room *r;

	if (m->cfg->moderator_room[0] != '!')
		return;
	r = room_get(m, m->cfg->moderator_room, 0);
	if (r == NULL || (!r->joined && !r->joining))
		bot_on_membership(m->bot, &m->tp, m->cfg->moderator_room, 0,
		    "the bot's account is not a member: invite it");
}

/* Forgets the held sync reply and its gaps. */
static void
gaps_clear(struct mx *m)
{
	size_t i;

	for (i = 0; i < m->ngaps; i++) {
		free(m->gaps[i].room);
		free(m->gaps[i].from);
		cJSON_Delete(m->gaps[i].events);
	}
	free(m->gaps);
	m->gaps = NULL;
	m->ngaps = 0;
	cJSON_Delete(m->held);
	m->held = NULL;
}

static struct mx_gap *
gap_find(struct mx *m, const char *room)
{
	size_t i;

	for (i = 0; i < m->ngaps; i++)
		if (strcmp(m->gaps[i].room, room) == 0)
			return &m->gaps[i];
	return NULL;
}

/*
 * Notes the gaps of sync reply j: rooms whose timeline is limited. A room
 * we joined in this batch has no gap worth fetching (what came before our
 * join is backlog, which handle_sync skips); if we joined inside a gap,
 * handle_sync skips what came before the join. Returns how many.
 */
static size_t
gaps_find(struct mx *m, cJSON *j)
{
	cJSON *join = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(j, "rooms"), "join");
	cJSON *r, *tl, *lim, *prev;

	if (!cJSON_IsObject(join) || m->since == NULL)
		return 0;
	for (r = join->child; r; r = r->next) {
		cJSON *e;
		int joined_now = 0;

		tl = cJSON_GetObjectItemCaseSensitive(r, "timeline");
		lim = cJSON_GetObjectItemCaseSensitive(tl, "limited");
		prev = cJSON_GetObjectItemCaseSensitive(tl, "prev_batch");
		if (r->string == NULL || !cJSON_IsTrue(lim) || !cJSON_IsString(prev) ||
		    prev->valuestring[0] == '\0' || gap_find(m, r->string) != NULL)
			continue;
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(tl, "events"))
		{
			if (is_own_join(m, e))
				joined_now = 1;
		}
		if (joined_now)
			continue;
		m->gaps = xreallocarray(m->gaps, m->ngaps + 1, sizeof(*m->gaps));
		memset(&m->gaps[m->ngaps], 0, sizeof(*m->gaps));
		m->gaps[m->ngaps].room = xstrdup(r->string);
		m->gaps[m->ngaps].from = xstrdup(prev->valuestring);
		m->gaps[m->ngaps].events = cJSON_CreateArray();
		m->ngaps++;
	}
	return m->ngaps;
}

static int
handle_sync(struct mx *m, cJSON *j, int first)
{
	cJSON *rooms = cJSON_GetObjectItemCaseSensitive(j, "rooms");
	cJSON *join = cJSON_GetObjectItemCaseSensitive(rooms, "join");
	cJSON *invite = cJSON_GetObjectItemCaseSensitive(rooms, "invite");
	cJSON *leave = cJSON_GetObjectItemCaseSensitive(rooms, "leave");
	cJSON *r, *e, *skip_until;
	uint64_t received = now_ns();
	int skipping;

	if (rooms != NULL && !cJSON_IsObject(rooms))
		return -1;
	if ((join && !cJSON_IsObject(join)) || (invite && !cJSON_IsObject(invite)) ||
	    (leave && !cJSON_IsObject(leave)))
		return -1;
	for (r = join ? join->child : NULL; r; r = r->next) {
		struct mx_room *room = room_get(m, r->string, 1);
		cJSON *state = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(r, "state"), "events");
		cJSON *tl = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(r, "timeline"), "events");
		cJSON *jm = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(r, "summary"), "m.joined_member_count");

		room->joining = 0;
		if (!room->joined) {
			/* Joined (or first heard of): its whole state is fetched in the background. */
			room->joined = 1;
			if (room->load != MX_LOAD_BUSY) {
				room->load = MX_LOAD_WANTED;
				room->load_tries = 0;
			}
			bot_on_membership(m->bot, &m->tp, room->id, 1, NULL);
		}
		if (cJSON_IsNumber(jm) && jm->valuedouble >= 0)
			room->summary_joined = (long)jm->valuedouble;
		cJSON_ArrayForEach(e, state)
		{
			if (cJSON_IsObject(e)) {
				room->state_gen++;
				handle_state_event(m, room, e);
			}
		}
		/*
		 * A room we have just joined comes with its history: what was said
		 * before our own join event is backlog, and gets no answer.
		 */
		skip_until = NULL;
		cJSON_ArrayForEach(e, tl)
		{
			if (is_own_join(m, e))
				skip_until = e;
		}
		skipping = skip_until != NULL;
		/* What a limited timeline left out, fetched before (see mx_gap). */
		{
			struct mx_gap *g = first || skip_until ? NULL : gap_find(m, r->string);
			cJSON *missed = g != NULL ? g->events : NULL, *after = NULL;

			/* Joined inside the gap: only what came after our join. */
			cJSON_ArrayForEach(e, missed)
			{
				if (is_own_join(m, e))
					after = e;
			}
			cJSON_ArrayForEach(e, missed)
			{
				if (after != NULL) {
					if (e == after)
						after = NULL;
					continue;
				}
				if (!cJSON_IsObject(e) ||
				    cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "state_key")))
					continue;
				handle_message(m, room, e, received);
				if (m->state != MX_SYNC)
					return 0;	/* stopping */
			}
		}
		cJSON_ArrayForEach(e, tl)
		{
			int is_state;

			if (!cJSON_IsObject(e))
				continue;
			is_state = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "state_key"));
			if (e == skip_until)
				skipping = 0;
			/* The first sync sets the starting point: old messages get no answer. */
			if ((first || skipping) && !is_state)
				continue;
			handle_message(m, room, e, received);
			if (m->state != MX_SYNC)
				return 0;	/* stopping */
		}
	}
	for (r = invite ? invite->child : NULL; r; r = r->next)
		if (cJSON_IsObject(r))
			handle_invite(m, r->string, r);
	for (r = leave ? leave->child : NULL; r; r = r->next) {
		char why[512];

		if (r->string == NULL)
			continue;
		leave_reason(m, r, why, sizeof(why));
		log_info("matrix: no longer in %s (%s)", r->string, why);
		if (set_del(&m->dms, r->string) | set_del(&m->safety, r->string))
			save_session(m);
		bot_on_membership(m->bot, &m->tp, r->string, 0, why);
		room_forget(m, r->string);
	}
	return 0;
}

/*
 * Handles sync reply j (consumed), whose gaps, if any, have been filled;
 * r is the last reply, for the log line of a malformed one.
 */
static void
sync_apply(struct mx *m, cJSON *j, int first, const struct http_resp *r)
{
	cJSON *nb = cJSON_GetObjectItemCaseSensitive(j, "next_batch");
	int rc;

	m->in_batch = 1;
	rc = cJSON_IsString(nb) && nb->valuestring[0] != '\0' ? handle_sync(m, j, first) : -1;
	m->in_batch = 0;
	if (rc == -1) {
		pending_flush(m);	/* replies queued before the bad part */
		cJSON_Delete(j);
		gaps_clear(m);
		transient(m, "sync (malformed reply: not the JSON the spec describes)", r);
		return;
	}
	gaps_clear(m);
	if (m->state != MX_SYNC) {
		cJSON_Delete(j);
		return;
	}
	/* The replies of this batch are queued and saved; only now move on. */
	pending_flush(m);
	free(m->since);
	m->since = xstrdup(nb->valuestring);
	cJSON_Delete(j);
	save_session(m);
	if (first)
		log_info("matrix: first sync done; earlier messages are not answered");
	link_ok(m);
	m->last_ok_ms = now_ms();
	if (m->up_since_ms == 0)
		m->up_since_ms = m->last_ok_ms;
	/* Forget past failures only once the link has stayed up a while. */
	if (m->last_ok_ms - m->up_since_ms > 30000 || m->failures <= 1)
		m->failures = 0;
	modroom_check(m);
	mx_pump(m);
	loads_pump(m);
	mx_step(m);
}

static void
on_sync(void *arg, const struct http_resp *r)
{
	struct mx *m = arg;
	cJSON *j, *nb;
	char ec[64];
	int first = m->since == NULL;

	m->req = NULL;
	if (r->status == 401 && strcmp(errcode(r, ec, sizeof(ec)), "M_UNKNOWN_TOKEN") == 0) {
		token_rejected(m);
		return;
	}
	if (r->status == 400 && strcmp(errcode(r, ec, sizeof(ec)), "M_INVALID_PARAM") == 0 &&
	    m->since != NULL) {
		log_warnx("matrix: the server no longer knows our sync position; starting again "
			  "from now");
		free(m->since);
		m->since = NULL;
		m->failures++;
		retry_later(m, backoff_ms(m, m->failures));
		return;
	}
	if (r->status != 200) {
		transient(m, "sync", r);
		return;
	}
	json_defuse_nul(r->body, r->len);
	j = cJSON_ParseWithLength(r->body, r->len);
	nb = cJSON_GetObjectItemCaseSensitive(j, "next_batch");
	if (!cJSON_IsObject(j) || !cJSON_IsString(nb) || nb->valuestring[0] == '\0') {
		cJSON_Delete(j);
		transient(m, "sync (malformed reply: not the JSON the spec describes)", r);
		return;
	}
	gaps_clear(m);
	if (!first && gaps_find(m, j) > 0) {
		log_info("matrix: the sync left out messages in %zu room(s) (more than 50 since "
			 "the last sync); fetching them so that none goes unanswered",
		    m->ngaps);
		m->held = j;
		mx_step(m);
		return;
	}
	sync_apply(m, j, first, r);
}

/* The next gap to fill, or NULL when all are. */
static struct mx_gap *
gap_next(struct mx *m)
{
	size_t i;

	for (i = 0; i < m->ngaps; i++)
		if (!m->gaps[i].done)
			return &m->gaps[i];
	return NULL;
}

/* One page of a gap's messages, newest first. */
static void
on_messages(void *arg, const struct http_resp *r)
{
	struct mx *m = arg;
	struct mx_gap *g = gap_next(m);
	cJSON *j, *chunk, *end, *e;
	char ec[64];
	int n = 0;

	m->req = NULL;
	if (g == NULL || m->held == NULL)
		return;	/* cannot happen: the request belongs to a held reply */
	if (r->status == 401 && strcmp(errcode(r, ec, sizeof(ec)), "M_UNKNOWN_TOKEN") == 0) {
		gaps_clear(m);	/* the sync is asked again after the login */
		token_rejected(m);
		return;
	}
	if (r->status == 200)
		json_defuse_nul(r->body, r->len);
	j = r->status == 200 ? cJSON_ParseWithLength(r->body, r->len) : NULL;
	chunk = cJSON_GetObjectItemCaseSensitive(j, "chunk");
	end = cJSON_GetObjectItemCaseSensitive(j, "end");
	if (r->status == 200 && cJSON_IsObject(j) && cJSON_IsArray(chunk)) {
		/* Oldest first: each event of this page goes before the later ones. */
		cJSON_ArrayForEach(e, chunk)
		{
			if (cJSON_IsObject(e)) {
				cJSON_InsertItemInArray(g->events, 0, cJSON_Duplicate(e, 1));
				n++;
			}
		}
		g->pages++;
		g->tries = 0;
		if (n > 0 && cJSON_IsString(end) && end->valuestring[0] != '\0' &&
		    g->pages < MX_GAP_PAGES) {
			free(g->from);
			g->from = xstrdup(end->valuestring);
		} else {
			if (n > 0 && cJSON_IsString(end) && end->valuestring[0] != '\0')
				log_warnx("matrix: %s: more than %d messages were missed; the older "
					  "ones get no answer", g->room, MX_GAP_PAGE * MX_GAP_PAGES);
			g->done = 1;
		}
	} else if ((r->status == 429 || r->status == 0 || r->status >= 500 || r->status == 200) &&
	    ++g->tries < MX_GAP_TRIES) {
		cJSON_Delete(j);
		transient(m, r->status == 200 ? "messages (malformed reply)" : "messages", r);
		return;
	} else {
		log_warnx("matrix: %s: cannot fetch the messages missed (HTTP %ld %s); they get no "
			  "answer", g->room, r->status, errcode(r, ec, sizeof(ec)));
		g->done = 1;
	}
	cJSON_Delete(j);
	if (gap_next(m) == NULL) {
		cJSON *held = m->held;

		m->held = NULL;
		sync_apply(m, held, 0, r);
		return;
	}
	mx_step(m);
}

/* --- the rooms the bot is in, and their state ---------------------------- */

/* The moderator room, when it is a Matrix room the bot is in whose state is to fetch. */
static struct mx_room *
modroom_to_load(struct mx *m)
{
	struct mx_room *r;

	if (m->cfg->moderator_room[0] != '!')
		return NULL;
	r = room_get(m, m->cfg->moderator_room, 0);
	return r != NULL && r->joined && r->load == MX_LOAD_WANTED ? r : NULL;
}

/* ROOMS: which rooms is the bot in? */
static void
on_joined_rooms(void *arg, const struct http_resp *r)
{
	struct mx *m = arg;
	struct mx_room *room;
	cJSON *j, *list, *e;
	size_t i, n = 0;
	char ec[64];

	m->req = NULL;
	if (r->status == 401 && strcmp(errcode(r, ec, sizeof(ec)), "M_UNKNOWN_TOKEN") == 0) {
		token_rejected(m);
		return;
	}
	if (r->status != 200) {
		transient(m, "joined_rooms", r);
		return;
	}
	j = cJSON_ParseWithLength(r->body, r->len);
	list = cJSON_GetObjectItemCaseSensitive(j, "joined_rooms");
	if (!cJSON_IsArray(list)) {
		cJSON_Delete(j);
		transient(m, "joined_rooms (malformed reply)", r);
		return;
	}
	for (i = 0; i < m->nrooms; i++)
		m->rooms[i].joined = 0;
	cJSON_ArrayForEach(e, list)
	{
		if (!cJSON_IsString(e) || e->valuestring[0] != '!' || strlen(e->valuestring) > 255)
			continue;
		room = room_get(m, e->valuestring, 1);
		room->joined = 1;
		if (room->load != MX_LOAD_BUSY && room->load != MX_LOAD_DONE) {
			room->load = MX_LOAD_WANTED;
			room->load_tries = 0;
		}
		n++;
	}
	cJSON_Delete(j);
	log_info("matrix: in %zu room(s)", n);
	/* Not in it yet: the first sync may bring an invite (modroom_check). */
	room = m->cfg->moderator_room[0] == '!' ? room_get(m, m->cfg->moderator_room, 0) : NULL;
	if (room != NULL && room->joined)
		bot_on_membership(m->bot, &m->tp, m->cfg->moderator_room, 1, NULL);
	link_ok(m);
	m->failures = 0;
	m->rooms_listed = 1;
	mx_step(m);
}

/* ROOMS: the moderator room's state (its members and their power levels). */
static void
on_modroom_state(void *arg, const struct http_resp *r)
{
	struct mx *m = arg;
	struct mx_room *room = room_get(m, m->cfg->moderator_room, 0);
	cJSON *j;
	char ec[64];

	m->req = NULL;
	if (room == NULL) {
		mx_step(m);
		return;
	}
	room->load = MX_LOAD_WANTED;
	if (r->status == 401 && strcmp(errcode(r, ec, sizeof(ec)), "M_UNKNOWN_TOKEN") == 0) {
		token_rejected(m);
		return;
	}
	j = r->status == 200 ? cJSON_ParseWithLength(r->body, r->len) : NULL;
	if (cJSON_IsArray(j)) {
		room_apply_state(m, room, j);
		log_info("matrix: the moderator room has %zu member(s)", room->nmem);
		link_ok(m);
		m->failures = 0;
	} else if (r->status == 403 || r->status == 404) {
		room->joined = 0;
		room->load = MX_LOAD_FAILED;
		bot_on_membership(m->bot, &m->tp, m->cfg->moderator_room, 0,
		    "the server refuses the bot its state");
	} else if (++room->load_tries < MX_LOAD_TRIES) {
		cJSON_Delete(j);
		transient(m, "moderator room state", r);
		return;
	} else {
		/* Not to hold up the sync: fetched again in the background. */
		log_warnx("matrix: cannot fetch the moderator room's state (HTTP %ld %s); "
			  "moderators are known as they speak until it comes",
		    r->status, errcode(r, ec, sizeof(ec)));
		room->load_tries = 0;
		room->load_after = now_ms() + 60000;
	}
	cJSON_Delete(j);
	mx_step(m);
}

static void
on_load(void *arg, const struct http_resp *r)
{
	struct load_op *op = arg, **pp;
	struct mx *m = op->m;
	struct mx_room *room;
	cJSON *j;

	for (pp = &m->loads; *pp; pp = &(*pp)->next)
		if (*pp == op) {
			*pp = op->next;
			break;
		}
	m->nloads--;
	room = room_get(m, op->room, 0);
	if (room == NULL || !room->joined || room->load != MX_LOAD_BUSY)
		goto done;
	j = r->status == 200 ? cJSON_ParseWithLength(r->body, r->len) : NULL;
	if (cJSON_IsArray(j) && room->state_gen != op->gen && ++room->load_tries < MX_LOAD_TRIES) {
		/* The sync brought newer state meanwhile: this may be older. Again. */
		room->load = MX_LOAD_WANTED;
	} else if (cJSON_IsArray(j)) {
		room_apply_state(m, room, j);
	} else if (r->status == 403 || r->status == 404) {
		room->load = MX_LOAD_FAILED; /* not in it after all: a leave is on its way */
	} else {
		room->load = MX_LOAD_WANTED;
		if (++room->load_tries < MX_LOAD_TRIES) {
			room->load_after = now_ms() + backoff_ms(m, room->load_tries);
		} else {
			log_warnx("matrix: cannot fetch the state of %s (HTTP %ld%s%s); its members "
				  "are known as they speak; trying again in 5 minutes",
			    room->id, r->status, r->status ? "" : ": ", r->status ? "" : r->error);
			room->load_tries = 0;
			room->load_after = now_ms() + 300000;
		}
	}
	cJSON_Delete(j);
done:
	free(op->room);
	free(op);
	loads_pump(m);
}

/* Fetches the state of rooms that want it, MX_LOAD_INFLIGHT at a time. */
static void
loads_pump(struct mx *m)
{
	uint64_t now = now_ms();
	size_t i;

	if (m->state != MX_SYNC || m->token == NULL)
		return;
	for (i = 0; i < m->nrooms && m->nloads < MX_LOAD_INFLIGHT; i++) {
		struct mx_room *room = &m->rooms[i];
		struct load_op *op;
		char *rid, *u;

		if (!room->joined || room->load != MX_LOAD_WANTED || room->load_after > now)
			continue;
		op = xcalloc(1, sizeof(*op));
		op->m = m;
		op->room = xstrdup(room->id);
		op->gen = room->state_gen;
		rid = esc(room->id);
		u = url(m, "/rooms/%s/state", rid);
		op->req = http_start(m->loop, "GET", u, m->token, NULL, m->cfg->mx_request_timeout_ms,
		    (size_t)m->cfg->mx_max_body_bytes, on_load, op);
		free(u);
		free(rid);
		if (op->req == NULL) {
			free(op->room);
			free(op);
			continue;
		}
		room->load = MX_LOAD_BUSY;
		op->next = m->loads;
		m->loads = op;
		m->nloads++;
	}
}

static void
loads_cancel(struct mx *m)
{
	while (m->loads) {
		struct load_op *op = m->loads;
		struct mx_room *room = room_get(m, op->room, 0);

		m->loads = op->next;
		if (room != NULL && room->load == MX_LOAD_BUSY)
			room->load = MX_LOAD_WANTED;
		http_cancel(m->loop, op->req);
		free(op->room);
		free(op);
	}
	m->nloads = 0;
}

static void
mx_step(struct mx *m)
{
	char *u = NULL, *body = NULL, *f;
	const char *method = "GET";
	long timeout = m->cfg->mx_request_timeout_ms;
	http_fn fn = NULL;
	cJSON *j;

	if (m->req != NULL || m->retry_timer != 0)
		return;
	switch (m->state) {
	case MX_VERSIONS:
		u = xasprintf("%s/_matrix/client/versions", m->base);
		fn = on_versions;
		break;
	case MX_LOGIN:
		if (m->cfg->mx_password[0] == '\0') {
			fail_for_good(m, "no access token and no password: set matrix.access_token "
					 "or matrix.password");
			return;
		}
		j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "type", "m.login.password");
		{
			cJSON *id = cJSON_AddObjectToObject(j, "identifier");

			cJSON_AddStringToObject(id, "type", "m.id.user");
			cJSON_AddStringToObject(id, "user", m->cfg->mx_user_id);
		}
		cJSON_AddStringToObject(j, "password", m->cfg->mx_password);
		if (m->device_id)
			cJSON_AddStringToObject(j, "device_id", m->device_id);
		cJSON_AddStringToObject(j, "initial_device_display_name", m->cfg->mx_device_name);
		body = cJSON_PrintUnformatted(j);
		cJSON_Delete(j);
		u = url(m, "/login");
		method = "POST";
		fn = on_login;
		break;
	case MX_WHOAMI:
		u = url(m, "/account/whoami");
		fn = on_whoami;
		break;
	case MX_FILTER:
		f = filter_json();
		if (m->filter_id && m->filter_hash &&
		    strtoull(m->filter_hash, NULL, 16) == hash_bytes(f, strlen(f))) {
			free(f);
			m->state = m->rooms_ready ? MX_SYNC : MX_ROOMS;
			mx_step(m);
			return;
		}
		{
			char *uid = esc(m->user_id);

			u = url(m, "/user/%s/filter", uid);
			free(uid);
		}
		body = f;
		method = "POST";
		fn = on_filter;
		break;
	case MX_ROOMS: {
		struct mx_room *mr;

		if (!m->rooms_listed) {
			u = url(m, "/joined_rooms");
			fn = on_joined_rooms;
			break;
		}
		if ((mr = modroom_to_load(m)) != NULL && mr->load_after <= now_ms()) {
			char *rid = esc(mr->id);

			u = url(m, "/rooms/%s/state", rid);
			free(rid);
			mr->load = MX_LOAD_BUSY;
			fn = on_modroom_state;
			break;
		}
		m->rooms_ready = 1;
		m->state = MX_SYNC;
		mx_step(m);
		return;
	}
	case MX_SYNC: {
		struct buf b;
		struct mx_gap *g = m->held ? gap_next(m) : NULL;

		/* Replies held back by a login go out now, not after the long-poll. */
		mx_pump(m);
		buf_init(&b);
		if (g != NULL) {
			char *room = esc(g->room);

			buf_printf(&b, "%s%s/rooms/%s/messages?dir=b&limit=%d&from=", m->base,
			    m->prefix, room, MX_GAP_PAGE);
			free(room);
			http_escape(&b, g->from);
			buf_puts(&b, "&to=");
			http_escape(&b, m->since);
			buf_puts(&b, "&filter=");
			/* Members too, to see whether we joined inside the gap. */
			http_escape(&b, "{\"types\":[\"m.room.message\",\"m.room.encrypted\","
			    "\"m.room.member\"]}");
			u = buf_steal(&b);
			fn = on_messages;
			break;
		}
		buf_printf(&b, "%s%s/sync?set_presence=offline&filter=", m->base, m->prefix);
		http_escape(&b, m->filter_id);
		if (m->since) {
			buf_puts(&b, "&timeout=");
			buf_printf(&b, "%ld", m->cfg->mx_sync_timeout_ms);
			buf_puts(&b, "&since=");
			http_escape(&b, m->since);
			timeout = m->cfg->mx_sync_timeout_ms + m->cfg->mx_request_timeout_ms;
		} else {
			buf_puts(&b, "&timeout=0");
		}
		u = buf_steal(&b);
		fn = on_sync;
		break;
	}
	default:
		return;
	}
	m->req = http_start(m->loop, method, u, m->state == MX_VERSIONS ? NULL : m->token, body,
	    timeout, (size_t)m->cfg->mx_max_body_bytes, fn, m);
	if (body) {
		memset(body, 0, strlen(body));	/* it may hold the password */
		free(body);
	}
	free(u);
	if (m->req == NULL) {
		log_warnx("matrix: cannot start a request; retrying");
		retry_later(m, backoff_ms(m, ++m->failures));
	}
}

/* --- sending ------------------------------------------------------------- */

static void
pending_free(struct mx_pending *p)
{
	free(p->txn);
	free(p->room);
	free(p->content);
	free(p->key);
	free(p->reply_to);
}

/* Takes entry i out of the queue (and writes so in the journal). */
static void
pending_remove(struct mx *m, size_t i)
{
	journal_del(m, m->pend[i].txn);
	pending_free(&m->pend[i]);
	memmove(&m->pend[i], &m->pend[i + 1], (m->npend - i - 1) * sizeof(m->pend[0]));
	m->npend--;
}

/*
 * Queues a request (journal: and writes so in the journal). Past
 * MX_MAX_PENDING the oldest reply that is not a safety one (and not in
 * flight) makes room; a safety reply is never dropped for room, up to a
 * hard ceiling far above what the safety memory lets through.
 */
static void
pending_add(struct mx *m, const char *txn, const char *room, const char *content, const char *key,
    const char *reply_to, enum mx_kind kind, int urgent, uint64_t received_ns, int journal)
{
	struct mx_pending *p;
	size_t i;

	for (i = 0; i < m->npend; i++)
		if (strcmp(m->pend[i].txn, txn) == 0)
			return;	/* the same reply, queued already */
	if (m->npend < MX_MAX_PENDING * 9 / 10)
		m->overflowing = 0;
	if (m->npend >= MX_MAX_PENDING) {
		for (i = 0; i < m->npend; i++)
			if (!m->pend[i].urgent && m->pend[i].req == NULL)
				break;
		if (!m->overflowing)
			log_warnx("matrix: more than %d replies waiting; the oldest ones that are not "
				  "safety answers are dropped to make room",
			    MX_MAX_PENDING);
		m->overflowing = 1;
		if (i < m->npend) {
			pending_remove(m, i);
		} else if (!urgent) {
			return;
		} else if (m->npend >= MX_MAX_QUEUED) {
			log_errorx("matrix: %zu replies waiting; a safety answer to %s cannot be "
				   "queued",
			    m->npend, room);
			return;
		}
	}
	m->pend = xreallocarray(m->pend, m->npend + 1, sizeof(*m->pend));
	p = &m->pend[m->npend];
	memset(p, 0, sizeof(*p));
	p->txn = xstrdup(txn);
	p->room = xstrdup(room);
	p->content = xstrdup(content);
	p->key = key ? xstrdup(key) : NULL;
	p->reply_to = reply_to ? xstrdup(reply_to) : NULL;
	p->kind = kind;
	p->urgent = urgent;
	p->received_ns = received_ns;
	m->npend++;
	if (m->npend > m->pend_peak)
		m->pend_peak = m->npend;
	if (journal)
		journal_add(m, p);
}

/* A transaction id from the idempotency key: the same key, the same id. */
static char *
txn_for(struct mx *m, const char *key)
{
	uint64_t a, b;
	char *salted;

	if (key == NULL)
		return xasprintf("faqbot.%llx.%lu", (unsigned long long)now_ns(), m->seq++);
	a = hash_bytes(key, strlen(key));
	salted = xasprintf("faqbot:%s", key);
	b = hash_bytes(salted, strlen(salted));
	free(salted);
	return xasprintf("faqbot.%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}

/* Queues the redaction of one of our messages in room (an answer to a deleted question). */
static void
queue_redaction(struct mx *m, const char *room, const char *event_id)
{
	char *key, *txn;

	if (!can_redact(m, room_get(m, room, 0))) {
		log_info("matrix: an answer in %s replies to a deleted message; the bot may not "
			 "redact there (power level), so it stays",
		    room);
		return;
	}
	key = xasprintf("%s|redact", event_id);
	txn = txn_for(m, key);
	pending_add(m, txn, room, "{\"reason\":\"the message it answered was deleted\"}", NULL,
	    event_id, MX_KIND_REDACTION, 0, 0, 1);
	if (!m->in_batch)
		pending_flush(m);
	free(txn);
	free(key);
	mx_pump(m);
}

static void
on_pump(void *arg)
{
	struct mx *m = arg;

	m->pump_timer = 0;
	mx_pump(m);
}

static uint64_t
clamp_pace(uint64_t ms)
{
	return ms < 200 ? 200 : ms > 60000 ? 60000 : ms;
}

/* The server said 429: the whole queue waits; see the top of the file. */
static void
rate_limited(struct mx *m, const struct http_resp *r)
{
	uint64_t now = now_ms();
	long ra = retry_after(r);
	char ec[64];

	if (ra < 0)
		ra = (long)backoff_ms(m, 1);
	/* A little over what it asks: its milliseconds are rounded down. */
	if (now + (uint64_t)ra + 25 > m->pause_until)
		m->pause_until = now + (uint64_t)ra + 25;
	switch (m->send_mode) {
	case MX_SEND_FREE:
		log_warnx("matrix: the homeserver limits how fast the bot may send (HTTP 429 %s): "
			  "sending paused for %ld ms, then one message at a time, safety answers "
			  "first; %zu waiting. Exempt the bot's account from the limit "
			  "(docs/deploy.md, \"Rate limits\")",
		    errcode(r, ec, sizeof(ec)), ra, m->npend);
		m->send_mode = MX_SEND_RESUMING;
		break;
	case MX_SEND_RESUMING:
		log_debug("matrix: rate limited again; paused for %ld ms", ra);
		break;
	case MX_SEND_PROBING:
		/* Refused right after a send went through: the wait is the interval. */
		m->pace_ms = clamp_pace((uint64_t)ra);
		m->pace_sent = 0;
		m->send_mode = MX_SEND_PACED;
		log_info("matrix: the limit lasts: one message every %llu ms, safety answers first",
		    (unsigned long long)m->pace_ms);
		break;
	case MX_SEND_PACED:
		/* After a paced send the pace was short by that much. */
		if (m->pace_sent)
			m->pace_ms = clamp_pace(m->pace_ms + (uint64_t)ra + 50);
		m->pace_sent = 0;
		log_debug("matrix: rate limited again; paused for %ld ms, pace %llu ms", ra,
		    (unsigned long long)m->pace_ms);
		break;
	}
	m->paced_until = now + MX_PACE_MS;
}

/* A send went through: how the next ones go (see the top of the file). */
static void
send_went_through(struct mx *m)
{
	uint64_t now = now_ms();

	switch (m->send_mode) {
	case MX_SEND_FREE:
		break;
	case MX_SEND_RESUMING:
		m->send_mode = MX_SEND_PROBING;
		break;
	case MX_SEND_PROBING:
		m->send_mode = MX_SEND_FREE;
		log_info("matrix: the rate limit has passed; sending at full speed again");
		break;
	case MX_SEND_PACED:
		m->pause_until = now + m->pace_ms;
		m->pace_sent = 1;
		break;
	}
}

static void
on_sent(void *arg, const struct http_resp *r)
{
	struct send_ctx *sc = arg;
	struct mx *m = sc->m;
	struct mx_pending *p = NULL;
	size_t i;
	cJSON *j;
	char ec[64], *eid;
	unsigned long gen = sc->token_gen;

	for (i = 0; i < m->npend; i++)
		if (strcmp(m->pend[i].txn, sc->txn) == 0)
			p = &m->pend[i];
	free(sc->txn);
	free(sc);
	if (p == NULL)
		return;
	p->req = NULL;
	p->sc = NULL;
	m->inflight--;
	if (r->status == 200) {
		j = cJSON_ParseWithLength(r->body, r->len);
		eid = jstr(j, "event_id");
		cJSON_Delete(j);
		if (eid != NULL && eid[0] == '$') {
			char *room = xstrdup(p->room), *reply_to = p->reply_to ? xstrdup(p->reply_to) : NULL;
			int cancelled = p->cancelled, redaction = p->kind == MX_KIND_REDACTION;

			if (redaction) {
				log_info("matrix: redacted an answer in %s: the message it answered was "
					 "deleted",
				    room);
			} else {
				sent_remember(m, eid, reply_to, room);
				if (p->key)
					bot_on_sent(m->bot, p->key, eid);
				m->nsent++;
			}
			pending_remove(m, (size_t)(p - m->pend));
			pending_changed(m);
			send_went_through(m);
			/* Its question was deleted while it was on its way: take it back. */
			if (cancelled && !redaction)
				queue_redaction(m, room, eid);
			free(room);
			free(reply_to);
			free(eid);
			mx_pump(m);
			return;
		}
		free(eid);
		/* Sent or not? The same transaction id makes a retry safe. */
		log_warnx("matrix: send: malformed reply; retrying with the same transaction id");
	} else if (r->status == 401 && strcmp(errcode(r, ec, sizeof(ec)), "M_UNKNOWN_TOKEN") == 0) {
		p->not_before = now_ms() + 1000;
		if (gen != m->token_gen) {
			/* It went with a token dropped since: the one we have now may be good. */
			mx_pump(m);
			return;
		}
		if (m->state == MX_SYNC && m->req != NULL) {
			http_cancel(m->loop, m->req);
			m->req = NULL;
		}
		if (m->state != MX_LOGIN && m->state != MX_FAILED)
			token_rejected(m);
		return;
	} else if (r->status == 429) {
		rate_limited(m, r);
		mx_pump(m);
		return;
	} else if (r->status >= 400 && r->status < 500 && r->status != 408) {
		if (p->kind == MX_KIND_REDACTION)
			log_info("matrix: cannot redact an answer in %s (HTTP %ld %s); it stays",
			    p->room, r->status, errcode(r, ec, sizeof(ec)));
		else
			log_warnx("matrix: send to %s refused: HTTP %ld %s; dropping this reply",
			    p->room, r->status, errcode(r, ec, sizeof(ec)));
		pending_remove(m, (size_t)(p - m->pend));
		pending_changed(m);
		mx_pump(m);
		return;
	} else if (r->status) {
		log_warnx("matrix: send to %s: HTTP %ld; will retry", p->room, r->status);
	} else {
		log_warnx("matrix: send to %s: %s; will retry", p->room, r->error);
	}
	stats_sync_error(m->bot->stats, "matrix");
	p->attempts++;
	p->not_before = now_ms() + backoff_ms(m, p->attempts);
	mx_pump(m);
}

/* Starts p; 0, or -1 when curl would not. */
static int
send_start(struct mx *m, struct mx_pending *p)
{
	struct send_ctx *sc;
	char *rid, *txn, *u, *target;

	rid = esc(p->room);
	txn = esc(p->txn);
	if (p->kind == MX_KIND_REDACTION) {
		target = esc(p->reply_to ? p->reply_to : "");
		u = url(m, "/rooms/%s/redact/%s/%s", rid, target, txn);
		free(target);
	} else {
		u = url(m, "/rooms/%s/send/m.room.message/%s", rid, txn);
	}
	sc = xcalloc(1, sizeof(*sc));
	sc->m = m;
	sc->txn = xstrdup(p->txn);
	sc->token_gen = m->token_gen;
	p->req = http_start(m->loop, "PUT", u, m->token, p->content, m->cfg->mx_request_timeout_ms,
	    (size_t)m->cfg->mx_max_body_bytes, on_sent, sc);
	free(u);
	free(txn);
	free(rid);
	if (p->req == NULL) {
		free(sc->txn);
		free(sc);
		return -1;
	}
	p->sc = sc;
	m->inflight++;
	return 0;
}

/* Rooms that may not send now (one in flight, or an earlier reply waits). */
struct busy {
	const char **v;
	size_t n, cap;
};

static int
busy_has(const struct busy *b, const char *room)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (strcmp(b->v[i], room) == 0)
			return 1;
	return 0;
}

static void
busy_add(struct busy *b, const char *room)
{
	if (busy_has(b, room))
		return;
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 16;
		b->v = xreallocarray(b->v, b->cap, sizeof(*b->v));
	}
	b->v[b->n++] = room;
}

/*
 * Sends what may go now: safety replies first, then the rest in queue
 * order; per room one at a time and in order; nothing while the server's
 * 429 pause lasts, and one at a time while it paces us.
 */
static void
mx_pump(struct mx *m)
{
	uint64_t now = now_ms(), next = 0;
	struct busy busy = {0};
	size_t i, limit;
	int pass;

	if (m->state != MX_SYNC || m->token == NULL || m->npend == 0)
		return;
	/* A minute at the pace without a 429: see whether the limit still holds. */
	if (m->send_mode == MX_SEND_PACED && now >= m->paced_until)
		m->send_mode = MX_SEND_PROBING;
	if (now < m->pause_until) {
		next = m->pause_until;
		goto timer;
	}
	limit = m->send_mode == MX_SEND_FREE ? MX_MAX_INFLIGHT : 1;
	for (i = 0; i < m->npend; i++)
		if (m->pend[i].req != NULL)
			busy_add(&busy, m->pend[i].room);
	for (pass = 0; pass < 2 && m->inflight < limit; pass++) {
		for (i = 0; i < m->npend && m->inflight < limit; i++) {
			struct mx_pending *p = &m->pend[i];

			if (p->urgent != (pass == 0) || p->req != NULL || busy_has(&busy, p->room))
				continue;
			if (p->not_before > now) {
				if (next == 0 || p->not_before < next)
					next = p->not_before;
			} else if (send_start(m, p) == -1) {
				p->not_before = now + 1000;
				if (next == 0 || p->not_before < next)
					next = p->not_before;
			}
			busy_add(&busy, p->room);
		}
	}
	free(busy.v);
timer:
	if (next && m->pump_timer == 0)
		m->pump_timer = loop_timer(m->loop, next > now ? next - now : 0, on_pump, m);
}

static void
html_escape(struct buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			buf_puts(b, "&lt;");
			break;
		case '>':
			buf_puts(b, "&gt;");
			break;
		case '&':
			buf_puts(b, "&amp;");
			break;
		case '"':
			buf_puts(b, "&quot;");
			break;
		default:
			buf_putc(b, *s);
		}
	}
}

static int
mx_send(void *impl, const struct tp_out *out)
{
	struct mx *m = impl;
	cJSON *c = cJSON_CreateObject(), *rel, *ment;
	struct buf plain, html;
	struct mx_seen *seen;
	char *content, *txn;

	buf_init(&plain);
	buf_init(&html);
	/* One address per reply: none before a text that names the person already. */
	if (out->mention && out->mention_name && !out->named) {
		/* A display name is anyone's to choose: no bidi override from it
		 * may turn the answer after it around. */
		char *name = text_display_safe(out->mention_name, 256);

		buf_printf(&plain, "%s: ", name);
		buf_puts(&html, "<a href=\"https://matrix.to/#/");
		html_escape(&html, out->mention);
		buf_puts(&html, "\">");
		html_escape(&html, name);
		buf_puts(&html, "</a>: ");
		free(name);
	}
	buf_puts(&plain, out->plain);
	if (out->html) {
		/* cmark wraps the first paragraph in <p>: keep the mention inside it. */
		if (html.len && strncmp(out->html, "<p>", 3) == 0) {
			struct buf h2;

			buf_init(&h2);
			buf_puts(&h2, "<p>");
			buf_append(&h2, html.data, html.len);
			buf_puts(&h2, out->html + 3);
			buf_free(&html);
			html = h2;
		} else {
			buf_puts(&html, out->html);
		}
	}
	cJSON_AddStringToObject(c, "msgtype", out->notice ? "m.notice" : "m.text");
	cJSON_AddStringToObject(c, "body", plain.data);
	if (out->html) {
		cJSON_AddStringToObject(c, "format", "org.matrix.custom.html");
		cJSON_AddStringToObject(c, "formatted_body", html.data);
	}
	if (out->reply_to) {
		rel = cJSON_AddObjectToObject(c, "m.relates_to");
		if (out->thread_root) {
			cJSON_AddStringToObject(rel, "rel_type", "m.thread");
			cJSON_AddStringToObject(rel, "event_id", out->thread_root);
			cJSON_AddBoolToObject(rel, "is_falling_back", 0);
		}
		cJSON_AddStringToObject(cJSON_AddObjectToObject(rel, "m.in_reply_to"), "event_id",
		    out->reply_to);
		/* Said: an edit of it is not answered as if nothing had been. */
		if ((seen = seen_find(m, out->reply_to)) != NULL)
			seen->replied = 1;
	}
	ment = cJSON_AddObjectToObject(c, "m.mentions");
	if (out->mention)
		cJSON_AddItemToArray(cJSON_AddArrayToObject(ment, "user_ids"),
		    cJSON_CreateString(out->mention));
	content = cJSON_PrintUnformatted(c);
	cJSON_Delete(c);
	txn = txn_for(m, out->key);
	pending_add(m, txn, out->room, content, out->key, out->reply_to, MX_KIND_MESSAGE,
	    out->urgent, out->received_ns, 1);
	/* Outside a sync batch (alerts, commands), write at once; a batch writes at its end. */
	if (!m->in_batch)
		pending_flush(m);
	free(txn);
	free(content);
	buf_free(&plain);
	buf_free(&html);
	mx_pump(m);
	return 0;
}

static int
mx_power_level(void *impl, const char *room_id, const char *user)
{
	struct mx *m = impl;
	struct mx_room *room = room_get(m, room_id, 0);
	cJSON *users, *u, *def;

	if (room == NULL || room->power == NULL)
		return -1;
	users = cJSON_GetObjectItemCaseSensitive(room->power, "users");
	u = cJSON_GetObjectItemCaseSensitive(users, user);
	if (cJSON_IsNumber(u))
		return (int)u->valuedouble;
	def = cJSON_GetObjectItemCaseSensitive(room->power, "users_default");
	return cJSON_IsNumber(def) ? (int)def->valuedouble : 0;
}

static int
mx_link(void *impl, const char *room, const char *event_id, struct buf *out)
{
	(void)impl;
	buf_puts(out, "https://matrix.to/#/");
	http_escape(out, room);
	buf_putc(out, '/');
	http_escape(out, event_id);
	return 0;
}

static int
mx_has_room(void *impl, const char *room)
{
	struct mx *m = impl;
	struct mx_room *r;

	return room[0] == '!' && (r = room_get(m, room, 0)) != NULL && r->joined;
}

static int
mx_member(void *impl, const char *room, const char *user)
{
	struct mx *m = impl;
	struct mx_room *r = room_get(m, room, 0);
	size_t i;

	if (r == NULL || !r->joined || r->mem_many)
		return -1;
	for (i = 0; i < r->nmem; i++)
		if (strcmp(r->mem[i], user) == 0)
			return 1;
	return r->mem_complete ? 0 : -1;
}

/* --- lifecycle ----------------------------------------------------------- */

struct mx *
mx_new(struct loop *l, const struct config *cfg, struct bot *b, const char *state_dir)
{
	struct mx *m = xcalloc(1, sizeof(*m));
	size_t n;

	m->loop = l;
	m->cfg = cfg;
	m->bot = b;
	m->state_dir = xstrdup(state_dir);
	m->base = xstrdup(cfg->mx_homeserver);
	n = strlen(m->base);
	while (n > 0 && m->base[n - 1] == '/')
		m->base[--n] = '\0';
	m->prefix = xstrdup("/_matrix/client/v3");
	m->tp.name = "matrix";
	m->tp.impl = m;
	m->tp.send = mx_send;
	m->tp.power_level = mx_power_level;
	m->tp.link = mx_link;
	m->tp.has_room = mx_has_room;
	m->tp.member = mx_member;
	smap_init(&m->name_idx);
	if (cfg->mx_access_token[0]) {
		m->token = xstrdup(cfg->mx_access_token);
		m->token_from_login = 0;
	}
	load_session(m);
	load_pending(m);
	return m;
}

struct transport *
mx_transport(struct mx *m)
{
	return &m->tp;
}

void
mx_start(struct mx *m)
{
	m->state = MX_VERSIONS;
	mx_step(m);
}

void
mx_stop(struct mx *m)
{
	size_t i;

	if (m->state == MX_STOPPED)
		return;
	if (m->req) {
		http_cancel(m->loop, m->req);
		m->req = NULL;
	}
	for (i = 0; i < m->npend; i++) {
		if (m->pend[i].req) {
			/* A cancelled send may have arrived: its txn id keeps a resend safe. */
			http_cancel(m->loop, m->pend[i].req);
			m->pend[i].req = NULL;
			free(m->pend[i].sc->txn);
			free(m->pend[i].sc);
			m->pend[i].sc = NULL;
		}
	}
	while (m->ops) {
		struct member_op *op = m->ops;

		m->ops = op->next;
		http_cancel(m->loop, op->req);
		free(op->room);
		free(op);
	}
	loads_cancel(m);
	m->inflight = 0;
	loop_timer_cancel(m->loop, m->retry_timer);
	loop_timer_cancel(m->loop, m->pump_timer);
	loop_timer_cancel(m->loop, m->save_timer);
	m->retry_timer = m->pump_timer = m->save_timer = 0;
	pending_flush(m);
	if (m->user_id)
		save_session(m);
	gaps_clear(m);
	m->state = m->state == MX_FAILED ? MX_FAILED : MX_STOPPED;
}

void
mx_free(struct mx *m)
{
	size_t i;

	if (m == NULL)
		return;
	mx_stop(m);
	for (i = 0; i < m->npend; i++)
		pending_free(&m->pend[i]);
	free(m->pend);
	jrnl_close(m->journal);
	for (i = 0; i < m->nrooms; i++)
		room_clear(&m->rooms[i]);
	free(m->rooms);
	set_free(&m->dms);
	set_free(&m->safety);
	set_free(&m->told);
	for (i = 0; i < MX_SENT_RING; i++) {
		free(m->sent[i].event_id);
		free(m->sent[i].reply_to);
		free(m->sent[i].room);
	}
	for (i = 0; i < MX_SEEN_RING; i++)
		seen_clear(&m->seen[i]);
	names_clear(m);
	smap_free(&m->name_idx);
	if (m->token) {
		memset(m->token, 0, strlen(m->token));
		free(m->token);
	}
	free(m->state_dir);
	free(m->base);
	free(m->prefix);
	free(m->user_id);
	free(m->localpart);
	free(m->device_id);
	free(m->filter_id);
	free(m->filter_hash);
	free(m->since);
	free(m);
}

int
mx_feed_sync(struct mx *m, const char *body, size_t len)
{
	enum mx_state saved = m->state;
	char *token = m->token, *copy;
	cJSON *j, *nb;
	int rc = -1;

	/* The cap the HTTP layer puts on a real reply (http.h), before any parsing. */
	if (len > (size_t)m->cfg->mx_max_body_bytes)
		return -1;
	if (m->user_id == NULL) {
		m->user_id = xstrdup(m->cfg->mx_user_id[0] ? m->cfg->mx_user_id : "@faqbot:localhost");
		m->localpart = xstrdup("faqbot");
	}
	/* As a reply from the network is: its NULs made visible first. */
	copy = xstrndup(body, len);
	json_defuse_nul(copy, len);
	j = cJSON_ParseWithLength(copy, len);
	free(copy);
	nb = cJSON_GetObjectItemCaseSensitive(j, "next_batch");
	if (cJSON_IsObject(j) && cJSON_IsString(nb)) {
		/* As in a sync, but with no token nothing is sent. */
		m->state = MX_SYNC;
		m->token = NULL;
		m->in_batch = 1;
		rc = handle_sync(m, j, 0);
		m->in_batch = 0;
		pending_flush(m);
		m->token = token;
		m->state = saved;
	}
	cJSON_Delete(j);
	return rc;
}

int
mx_healthy(const struct mx *m, struct buf *why)
{
	uint64_t now = now_ms();

	if (m->down_since_ms != 0) {
		if (why)
			buf_printf(why, "matrix: cannot reach the homeserver for %llu s",
			    (unsigned long long)((now - m->down_since_ms) / 1000));
		return 0;
	}
	if (m->state != MX_SYNC || m->last_ok_ms == 0 ||
	    now - m->last_ok_ms >= (uint64_t)m->cfg->mx_sync_timeout_ms * 2 + 60000) {
		if (why)
			buf_puts(why, m->state == MX_SYNC ? "matrix: no sync for a while"
							   : "matrix: not syncing yet");
		return 0;
	}
	return 1;
}

int
mx_failed(const struct mx *m)
{
	return m->state == MX_FAILED;
}

void
mx_counts(const struct mx *m, unsigned long *events, unsigned long *sent, size_t *pending)
{
	*events = m->nevents;
	*sent = m->nsent;
	*pending = m->npend;
}
