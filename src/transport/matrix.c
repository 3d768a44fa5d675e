/*
 * The Matrix transport; see matrix.h.
 *
 * States: VERSIONS -> (LOGIN) -> WHOAMI -> FILTER -> SYNC (forever). Each
 * request that fails for a reason that can pass (network, timeout, 5xx,
 * 429, a malformed reply) is retried after a backoff; a rejected token
 * logs in again when there is a password, and stops otherwise.
 *
 * No message is lost or answered twice: replies are queued with a
 * transaction id derived from the question's event id; the queue is saved
 * before the since token moves past the batch; after a restart the queue is
 * sent again (the server de-duplicates by transaction id) and the sync
 * resumes from the saved token.
 */
#include "matrix.h"

#include <errno.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>

#include <cjson/cJSON.h>

#include "http.h"
#include "log.h"
#include "stats.h"
#include "text.h"
#include "util.h"

#define MX_MAX_INFLIGHT 8	/* sends at once */
#define MX_SENT_RING 256	/* our recent event ids, to see replies to us */
#define MX_MAX_NAMES 20000	/* display names cached */
#define MX_MAX_PENDING 10000	/* queued replies; beyond this the oldest go */
#define MX_BACKOFF_BASE_MS 500
#define MX_GAP_PAGE 100		/* messages per /messages page when filling a gap */
#define MX_GAP_PAGES 10		/* pages per room and gap; older ones are not answered */
#define MX_GAP_TRIES 5		/* failed attempts at one page before giving up the gap */

enum mx_state {
	MX_IDLE,
	MX_VERSIONS,
	MX_LOGIN,
	MX_WHOAMI,
	MX_FILTER,
	MX_SYNC,
	MX_FAILED,
	MX_STOPPED,
};

struct send_ctx;

struct mx_pending {
	char *txn;		/* transaction id */
	struct send_ctx *sc;	/* the callback's argument while in flight */
	char *room;		/* room id */
	char *content;		/* the event content, JSON */
	char *key;		/* the core's idempotency key, or NULL */
	struct http_req *req;	/* in flight, or NULL */
	int attempts;		/* failures so far */
	uint64_t not_before;	/* monotonic ms */
	uint64_t received_ns;	/* when the question arrived */
};

struct mx_room {
	char *id;		/* room id */
	cJSON *power;		/* its m.room.power_levels content, or NULL */
	int direct;		/* a direct chat: the invite said is_direct */
	int warned_e2e;		/* logged the encrypted-room line */
	int joining;		/* a join or leave is in flight */
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

	struct mx_pending *pend; /* queued replies */
	size_t npend;
	size_t inflight;
	uint64_t pump_timer;	/* timer for the next send */
	uint64_t save_timer;	/* timer for a deferred save of the queue */
	size_t pend_peak;	/* most replies queued since the queue was last empty */
	int in_batch;		/* handling a sync batch: it saves the queue at its end */

	struct mx_room *rooms;	/* joined rooms */
	size_t nrooms;
	char *sent[MX_SENT_RING]; /* our recent event ids */
	size_t sent_next;
	struct {
		char *user;
		char *name;
	} *names;		/* display names */
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

static void mx_step(struct mx *m);
static void mx_pump(struct mx *m);
static int mx_send(void *impl, const struct tp_out *out);
static int mx_power_level(void *impl, const char *room, const char *user);
static int mx_link(void *impl, const char *room, const char *event_id, struct buf *out);
static int mx_has_room(void *impl, const char *room);

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

static void
save_pending(struct mx *m)
{
	cJSON *arr = cJSON_CreateArray(), *e;
	char *text, *path = state_file(m, "pending.json");
	size_t i;

	for (i = 0; i < m->npend; i++) {
		e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "txn", m->pend[i].txn);
		cJSON_AddStringToObject(e, "room", m->pend[i].room);
		cJSON_AddStringToObject(e, "content", m->pend[i].content);
		if (m->pend[i].key)
			cJSON_AddStringToObject(e, "key", m->pend[i].key);
		cJSON_AddItemToArray(arr, e);
	}
	text = cJSON_PrintUnformatted(arr);
	cJSON_Delete(arr);
	if (file_write_atomic(path, text, strlen(text), 0600) == -1)
		log_warn("matrix: cannot save %s", path);
	free(text);
	free(path);
}

static void
on_save(void *arg)
{
	struct mx *m = arg;

	m->save_timer = 0;
	save_pending(m);
#ifdef __GLIBC__
	/* A burst of replies has drained: give its memory back. */
	if (m->npend == 0 && m->pend_peak > 256) {
		m->pend_peak = 0;
		malloc_trim(0);
	}
#endif
}

/*
 * A reply left the queue (sent, or refused for good). Saving that can wait
 * a moment and take several at once: should the bot die first, the reply
 * is sent again on restart with the same transaction id, which the server
 * recognises, so nothing is posted twice. (A reply joining the queue is
 * saved before its question's batch is acknowledged.)
 */
static void
pending_changed(struct mx *m)
{
	if (m->save_timer == 0)
		m->save_timer = loop_timer(m->loop, 1000, on_save, m);
}

static void pending_add(struct mx *m, const char *txn, const char *room, const char *content,
    const char *key, uint64_t received_ns);

static void
load_pending(struct mx *m)
{
	char *path = state_file(m, "pending.json"), *text;
	size_t len;
	cJSON *arr, *e;

	text = file_read(path, 64 << 20, &len);
	if (text == NULL) {
		free(path);
		return;
	}
	arr = cJSON_ParseWithLength(text, len);
	free(text);
	if (!cJSON_IsArray(arr)) {
		log_warnx("matrix: %s is damaged; its replies cannot be resent", path);
	} else {
		cJSON_ArrayForEach(e, arr)
		{
			char *txn = jstr(e, "txn"), *room = jstr(e, "room"), *content = jstr(e, "content");
			char *key = jstr(e, "key");

			if (txn && room && content)
				pending_add(m, txn, room, content, key, 0);
			free(txn);
			free(room);
			free(content);
			free(key);
		}
		if (m->npend)
			log_info("matrix: %zu reply(s) from before the restart will be sent", m->npend);
	}
	cJSON_Delete(arr);
	free(path);
}

/* --- rooms, names, our events ------------------------------------------ */

static struct mx_room *
room_get(struct mx *m, const char *id, int create)
{
	size_t i;

	for (i = 0; i < m->nrooms; i++)
		if (strcmp(m->rooms[i].id, id) == 0)
			return &m->rooms[i];
	if (!create)
		return NULL;
	m->rooms = xreallocarray(m->rooms, m->nrooms + 1, sizeof(*m->rooms));
	memset(&m->rooms[m->nrooms], 0, sizeof(m->rooms[0]));
	m->rooms[m->nrooms].id = xstrdup(id);
	return &m->rooms[m->nrooms++];
}

static void
room_forget(struct mx *m, const char *id)
{
	size_t i;

	for (i = 0; i < m->nrooms; i++) {
		if (strcmp(m->rooms[i].id, id) == 0) {
			free(m->rooms[i].id);
			cJSON_Delete(m->rooms[i].power);
			m->rooms[i] = m->rooms[--m->nrooms];
			return;
		}
	}
}

static void
name_set(struct mx *m, const char *user, const char *name)
{
	size_t i;

	for (i = 0; i < m->nnames; i++) {
		if (strcmp(m->names[i].user, user) == 0) {
			free(m->names[i].name);
			m->names[i].name = xstrdup(name);
			return;
		}
	}
	if (m->nnames >= MX_MAX_NAMES) {
		/* Forget them all: names come back with the next member events. */
		for (i = 0; i < m->nnames; i++) {
			free(m->names[i].user);
			free(m->names[i].name);
		}
		m->nnames = 0;
	}
	m->names = xreallocarray(m->names, m->nnames + 1, sizeof(*m->names));
	m->names[m->nnames].user = xstrdup(user);
	m->names[m->nnames].name = xstrdup(name);
	m->nnames++;
}

static const char *
name_get(const struct mx *m, const char *user)
{
	size_t i;

	for (i = 0; i < m->nnames; i++)
		if (strcmp(m->names[i].user, user) == 0)
			return m->names[i].name;
	return NULL;
}

static void
sent_remember(struct mx *m, const char *event_id)
{
	free(m->sent[m->sent_next]);
	m->sent[m->sent_next] = xstrdup(event_id);
	m->sent_next = (m->sent_next + 1) % MX_SENT_RING;
}

static int
sent_by_us(const struct mx *m, const char *event_id)
{
	size_t i;

	for (i = 0; i < MX_SENT_RING; i++)
		if (m->sent[i] && strcmp(m->sent[i], event_id) == 0)
			return 1;
	return 0;
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

/* A failure that can pass: count it and try again after the backoff. */
static void
transient(struct mx *m, const char *what, const struct http_resp *r)
{
	uint64_t wait;
	long ra;
	char ec[64];

	m->failures++;
	m->up_since_ms = 0;
	if (r->status == 429 && (ra = retry_after(r)) >= 0) {
		wait = (uint64_t)ra;
		log_warnx("matrix: %s: rate limited (%s); retrying in %llu ms", what,
		    errcode(r, ec, sizeof(ec)), (unsigned long long)wait);
	} else {
		wait = backoff_ms(m, m->failures);
		if (r->status)
			log_warnx("matrix: %s: HTTP %ld %s; retrying in %llu ms", what, r->status,
			    errcode(r, ec, sizeof(ec)), (unsigned long long)wait);
		else
			log_warnx("matrix: %s: %s; retrying in %llu ms", what, r->error,
			    (unsigned long long)wait);
	}
	stats_sync_error(m->bot->stats, "matrix");
	m->bot->dirty = 1;
	retry_later(m, wait);
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
	    "\"m.room.power_levels\"],\"limit\":50}}}");
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
	m->failures = 0;
	m->state = MX_SYNC;
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
	int direct = 0;
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
	room->direct = direct;
	if (room->joining)
		return;
	room->joining = 1;
	op = xcalloc(1, sizeof(*op));
	op->m = m;
	op->room = xstrdup(room_id);
	op->join = inviter != NULL && invite_allowed(m, inviter);
	rid = esc(room_id);
	log_info("matrix: invite to %s from %s: %s", room_id, inviter ? inviter : "(unknown)",
	    op->join ? "accepting" : "declining (not in matrix.invite_allow)");
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
	cJSON *dn;

	if (!cJSON_IsString(type) || !cJSON_IsString(sk) || !cJSON_IsObject(content))
		return;
	if (strcmp(type->valuestring, "m.room.member") == 0) {
		dn = cJSON_GetObjectItemCaseSensitive(content, "displayname");
		if (cJSON_IsString(dn) && dn->valuestring[0] && strlen(dn->valuestring) < 256)
			name_set(m, sk->valuestring, dn->valuestring);
	} else if (strcmp(type->valuestring, "m.room.power_levels") == 0 && sk->valuestring[0] == '\0') {
		cJSON_Delete(room->power);
		room->power = cJSON_Duplicate(content, 1);
	}
}

/* Does the message address us: a mention, a reply to us, our name? */
static int
addressed_to_us(const struct mx *m, cJSON *content, const char *body)
{
	cJSON *ment = cJSON_GetObjectItemCaseSensitive(content, "m.mentions");
	cJSON *ids = cJSON_GetObjectItemCaseSensitive(ment, "user_ids"), *e;
	cJSON *rel = cJSON_GetObjectItemCaseSensitive(content, "m.relates_to");
	cJSON *irt = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(rel, "m.in_reply_to"), "event_id");
	cJSON *fb = cJSON_GetObjectItemCaseSensitive(content, "formatted_body");
	cJSON *falling = cJSON_GetObjectItemCaseSensitive(rel, "is_falling_back");

	cJSON_ArrayForEach(e, ids)
	{
		if (cJSON_IsString(e) && strcmp(e->valuestring, m->user_id) == 0)
			return 1;
	}
	/* A reply to one of our messages (not the automatic one of a thread). */
	if (cJSON_IsString(irt) && !cJSON_IsTrue(falling) && sent_by_us(m, irt->valuestring))
		return 1;
	if (cJSON_IsString(fb) && strstr(fb->valuestring, m->user_id) != NULL)
		return 1;
	return strstr(body, m->user_id) != NULL;
}

static void
handle_message(struct mx *m, struct mx_room *room, cJSON *e, uint64_t received)
{
	cJSON *sender = cJSON_GetObjectItemCaseSensitive(e, "sender");
	cJSON *eid = cJSON_GetObjectItemCaseSensitive(e, "event_id");
	cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
	cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
	cJSON *unsig = cJSON_GetObjectItemCaseSensitive(e, "unsigned");
	cJSON *msgtype, *body, *rel, *reltype, *relid;
	struct tp_msg msg = {0};
	const char *name;

	if (!cJSON_IsString(sender) || !cJSON_IsString(eid) || !cJSON_IsString(type))
		return;
	if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "state_key"))) {
		handle_state_event(m, room, e);
		return;
	}
	if (strcmp(sender->valuestring, m->user_id) == 0)
		return;	/* our own */
	if (strcmp(type->valuestring, "m.room.encrypted") == 0) {
		if (!room->warned_e2e) {
			room->warned_e2e = 1;
			log_warnx("matrix: %s is encrypted; faqbot cannot read it. Run it behind "
				  "pantalaimon (see README) or use an unencrypted room",
			    room->id);
		}
		return;
	}
	if (strcmp(type->valuestring, "m.room.message") != 0 || !cJSON_IsObject(content))
		return;
	if (cJSON_GetObjectItemCaseSensitive(unsig, "redacted_because") != NULL)
		return;
	msgtype = cJSON_GetObjectItemCaseSensitive(content, "msgtype");
	body = cJSON_GetObjectItemCaseSensitive(content, "body");
	if (!cJSON_IsString(msgtype) || !cJSON_IsString(body))
		return;
	if (strcmp(msgtype->valuestring, "m.text") != 0)
		return;	/* notices (other bots), emotes, files */
	rel = cJSON_GetObjectItemCaseSensitive(content, "m.relates_to");
	reltype = cJSON_GetObjectItemCaseSensitive(rel, "rel_type");
	relid = cJSON_GetObjectItemCaseSensitive(rel, "event_id");
	if (cJSON_IsString(reltype) && strcmp(reltype->valuestring, "m.replace") == 0)
		return;	/* an edit */
	if (strlist_has(&m->cfg->mx_ignored_users, sender->valuestring))
		return;
	if (strlen(body->valuestring) > (size_t)m->cfg->mx_max_message_bytes) {
		log_info("matrix: ignored a %zu-byte message in %s (over matrix.max_message_bytes)",
		    strlen(body->valuestring), room->id);
		return;
	}
	m->nevents++;
	msg.room = room->id;
	msg.sender = sender->valuestring;
	name = name_get(m, sender->valuestring);
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
	msg.text = body->valuestring;
	msg.len = strlen(body->valuestring);
	msg.event_id = eid->valuestring;
	if (cJSON_IsString(reltype) && strcmp(reltype->valuestring, "m.thread") == 0 &&
	    cJSON_IsString(relid))
		msg.thread_root = relid->valuestring;
	msg.addressed = addressed_to_us(m, content, body->valuestring);
	msg.direct = room->direct;
	msg.received_ns = received;
	bot_on_message(m->bot, &m->tp, &msg);
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
 * Notes the gaps of sync reply j: rooms whose timeline is limited. (If we
 * joined a room inside the gap or in this batch, what came before our
 * join is backlog: handle_sync skips it.) Returns how many.
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
		tl = cJSON_GetObjectItemCaseSensitive(r, "timeline");
		lim = cJSON_GetObjectItemCaseSensitive(tl, "limited");
		prev = cJSON_GetObjectItemCaseSensitive(tl, "prev_batch");
		if (r->string == NULL || !cJSON_IsTrue(lim) || !cJSON_IsString(prev) ||
		    prev->valuestring[0] == '\0' || gap_find(m, r->string) != NULL)
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

		room->joining = 0;
		cJSON_ArrayForEach(e, state)
		{
			if (cJSON_IsObject(e))
				handle_state_event(m, room, e);
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
	for (r = leave ? leave->child : NULL; r; r = r->next)
		room_forget(m, r->string);
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
		save_pending(m);	/* replies queued before the bad part */
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
	save_pending(m);
	free(m->since);
	m->since = xstrdup(nb->valuestring);
	cJSON_Delete(j);
	save_session(m);
	if (first)
		log_info("matrix: first sync done; earlier messages are not answered");
	m->last_ok_ms = now_ms();
	if (m->up_since_ms == 0)
		m->up_since_ms = m->last_ok_ms;
	/* Forget past failures only once the link has stayed up a while. */
	if (m->last_ok_ms - m->up_since_ms > 30000 || m->failures <= 1)
		m->failures = 0;
	mx_pump(m);
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
	j = cJSON_ParseWithLength(r->body, r->len);
	nb = cJSON_GetObjectItemCaseSensitive(j, "next_batch");
	if (!cJSON_IsObject(j) || !cJSON_IsString(nb) || nb->valuestring[0] == '\0') {
		cJSON_Delete(j);
		transient(m, "sync (malformed reply: not the JSON the spec describes)", r);
		return;
	}
	gaps_clear(m);
	if (!first && gaps_find(m, j) > 0) {
		log_info("matrix: the sync left out messages in %zu room(s); fetching them",
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
			m->state = MX_SYNC;
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
pending_add(struct mx *m, const char *txn, const char *room, const char *content, const char *key,
    uint64_t received_ns)
{
	size_t i;

	for (i = 0; i < m->npend; i++)
		if (strcmp(m->pend[i].txn, txn) == 0)
			return;	/* the same reply, queued already */
	if (m->npend >= MX_MAX_PENDING) {
		log_warnx("matrix: more than %d replies waiting; dropping the oldest", MX_MAX_PENDING);
		if (m->pend[0].req == NULL) {
			free(m->pend[0].txn);
			free(m->pend[0].room);
			free(m->pend[0].content);
			free(m->pend[0].key);
			memmove(&m->pend[0], &m->pend[1], (m->npend - 1) * sizeof(m->pend[0]));
			m->npend--;
		}
	}
	m->pend = xreallocarray(m->pend, m->npend + 1, sizeof(*m->pend));
	memset(&m->pend[m->npend], 0, sizeof(m->pend[0]));
	m->pend[m->npend].txn = xstrdup(txn);
	m->pend[m->npend].room = xstrdup(room);
	m->pend[m->npend].content = xstrdup(content);
	m->pend[m->npend].key = key ? xstrdup(key) : NULL;
	m->pend[m->npend].received_ns = received_ns;
	m->npend++;
	if (m->npend > m->pend_peak)
		m->pend_peak = m->npend;
}

static void
pending_remove(struct mx *m, size_t i)
{
	free(m->pend[i].txn);
	free(m->pend[i].room);
	free(m->pend[i].content);
	free(m->pend[i].key);
	memmove(&m->pend[i], &m->pend[i + 1], (m->npend - i - 1) * sizeof(m->pend[0]));
	m->npend--;
}


static void
on_pump(void *arg)
{
	struct mx *m = arg;

	m->pump_timer = 0;
	mx_pump(m);
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
	long ra;
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
			sent_remember(m, eid);
			if (p->key)
				bot_on_sent(m->bot, p->key, eid);
			m->nsent++;
			pending_remove(m, (size_t)(p - m->pend));
			pending_changed(m);
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
		ra = retry_after(r);
		p->not_before = now_ms() + (uint64_t)(ra >= 0 ? ra : (long)backoff_ms(m, 1));
		log_warnx("matrix: send to %s: rate limited; retrying in %ld ms", p->room,
		    ra >= 0 ? ra : (long)(p->not_before - now_ms()));
		mx_pump(m);
		return;
	} else if (r->status >= 400 && r->status < 500 && r->status != 408) {
		log_warnx("matrix: send to %s refused: HTTP %ld %s; dropping this reply", p->room,
		    r->status, errcode(r, ec, sizeof(ec)));
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

static void
mx_pump(struct mx *m)
{
	uint64_t now = now_ms(), next = 0;
	size_t i;

	if (m->state != MX_SYNC || m->token == NULL)
		return;
	for (i = 0; i < m->npend && m->inflight < MX_MAX_INFLIGHT; i++) {
		struct mx_pending *p = &m->pend[i];
		struct send_ctx *sc;
		char *rid, *txn, *u;

		if (p->req != NULL)
			continue;
		if (p->not_before > now) {
			if (next == 0 || p->not_before < next)
				next = p->not_before;
			continue;
		}
		rid = esc(p->room);
		txn = esc(p->txn);
		u = url(m, "/rooms/%s/send/m.room.message/%s", rid, txn);
		sc = xcalloc(1, sizeof(*sc));
		sc->m = m;
		sc->txn = xstrdup(p->txn);
		sc->token_gen = m->token_gen;
		p->req = http_start(m->loop, "PUT", u, m->token, p->content,
		    m->cfg->mx_request_timeout_ms, (size_t)m->cfg->mx_max_body_bytes, on_sent, sc);
		if (p->req == NULL) {
			free(sc->txn);
			free(sc);
			p->not_before = now + 1000;
		} else {
			p->sc = sc;
			m->inflight++;
		}
		free(u);
		free(txn);
		free(rid);
	}
	if (next && m->pump_timer == 0)
		m->pump_timer = loop_timer(m->loop, next > now ? next - now : 0, on_pump, m);
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
	char *content, *txn;

	buf_init(&plain);
	buf_init(&html);
	if (out->mention && out->mention_name) {
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
	}
	ment = cJSON_AddObjectToObject(c, "m.mentions");
	if (out->mention)
		cJSON_AddItemToArray(cJSON_AddArrayToObject(ment, "user_ids"),
		    cJSON_CreateString(out->mention));
	content = cJSON_PrintUnformatted(c);
	cJSON_Delete(c);
	txn = txn_for(m, out->key);
	pending_add(m, txn, out->room, content, out->key, out->received_ns);
	/* Outside a sync batch (alerts, commands), save at once; a batch saves at its end. */
	if (!m->in_batch)
		save_pending(m);
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

	return room[0] == '!' && room_get(m, room, 0) != NULL;
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
	m->inflight = 0;
	loop_timer_cancel(m->loop, m->retry_timer);
	loop_timer_cancel(m->loop, m->pump_timer);
	loop_timer_cancel(m->loop, m->save_timer);
	m->retry_timer = m->pump_timer = m->save_timer = 0;
	save_pending(m);
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
	for (i = 0; i < m->npend; i++) {
		free(m->pend[i].txn);
		free(m->pend[i].room);
		free(m->pend[i].content);
		free(m->pend[i].key);
	}
	free(m->pend);
	for (i = 0; i < m->nrooms; i++) {
		free(m->rooms[i].id);
		cJSON_Delete(m->rooms[i].power);
	}
	free(m->rooms);
	for (i = 0; i < MX_SENT_RING; i++)
		free(m->sent[i]);
	for (i = 0; i < m->nnames; i++) {
		free(m->names[i].user);
		free(m->names[i].name);
	}
	free(m->names);
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
	char *token = m->token;
	cJSON *j, *nb;
	int rc = -1;

	/* The cap the HTTP layer puts on a real reply (http.h), before any parsing. */
	if (len > (size_t)m->cfg->mx_max_body_bytes)
		return -1;
	if (m->user_id == NULL) {
		m->user_id = xstrdup(m->cfg->mx_user_id[0] ? m->cfg->mx_user_id : "@faqbot:localhost");
		m->localpart = xstrdup("faqbot");
	}
	j = cJSON_ParseWithLength(body, len);
	nb = cJSON_GetObjectItemCaseSensitive(j, "next_batch");
	if (cJSON_IsObject(j) && cJSON_IsString(nb)) {
		/* As in a sync, but with no token nothing is sent. */
		m->state = MX_SYNC;
		m->token = NULL;
		m->in_batch = 1;
		rc = handle_sync(m, j, 0);
		m->in_batch = 0;
		save_pending(m);
		m->token = token;
		m->state = saved;
	}
	cJSON_Delete(j);
	return rc;
}

int
mx_healthy(const struct mx *m)
{
	return m->state == MX_SYNC && m->last_ok_ms != 0 &&
	    now_ms() - m->last_ok_ms < (uint64_t)m->cfg->mx_sync_timeout_ms * 2 + 60000;
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
