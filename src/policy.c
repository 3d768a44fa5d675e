/*
 * Room rules with memory; see policy.h. Tables are small arrays searched
 * linearly: a bot serves tens of rooms, and the caps keep them small.
 */
#include "policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util.h"

#define POLICY_MAX_BUCKETS 4096	/* flood buckets kept (users + rooms) */
#define POLICY_MAX_ANSWERS 4096	/* cooldown entries kept */
#define POLICY_MAX_CHOICES 1024	/* open "did you mean" questions kept */
#define POLICY_MAX_PAUSED 1024	/* paused rooms */
#define POLICY_MAX_SAFETY 1024	/* senders whose safety messages are remembered */

struct bucket {
	char *key;		/* "u:" user or "r:" room */
	double tokens;		/* answers available now */
	uint64_t last;		/* when tokens was computed (ms) */
	int told;		/* the user was told of their limit in this stretch */
};

struct safety {
	char *room;		/* where */
	char *sender;		/* who */
	char *intent;		/* which safety intent */
	char *event_id;		/* the latest of their messages, or NULL */
	uint64_t answered;	/* when they were last answered (ms) */
	uint64_t alerted;	/* when the moderators last heard of them (ms) */
	unsigned long more;	/* messages since, not yet reported */
};

struct answer {
	char *room;		/* where */
	char *intent;		/* what */
	char *key;		/* the idempotency key it was sent with */
	char *event_id;		/* the event, once the transport reports it */
	uint64_t when;		/* ms */
};

struct choice {
	char *room;		/* where */
	char *sender;		/* who was asked */
	char *opt[2];		/* the two intents */
	uint64_t expires;	/* ms */
};

struct policy {
	long user_per_min, room_per_min, cooldown_s, choice_timeout_s;
	struct bucket *b;
	size_t nb;
	struct answer *a;
	size_t na;
	struct choice *c;
	size_t nc;
	char **paused;
	size_t npaused;
	long safety_window_s, alert_every_s;
	struct safety *s;
	size_t ns;
};

struct policy *
policy_new(long user_per_min, long room_per_min, long cooldown_s, long choice_timeout_s)
{
	struct policy *p = xcalloc(1, sizeof(*p));

	policy_set_limits(p, user_per_min, room_per_min, cooldown_s, choice_timeout_s);
	policy_set_safety(p, 300, 60);
	return p;
}

void
policy_set_safety(struct policy *p, long window_s, long alert_every_s)
{
	p->safety_window_s = window_s > 0 ? window_s : 0;
	p->alert_every_s = alert_every_s > 0 ? alert_every_s : 1;
}

void
policy_set_limits(struct policy *p, long user_per_min, long room_per_min, long cooldown_s,
    long choice_timeout_s)
{
	p->user_per_min = user_per_min > 0 ? user_per_min : 1;
	p->room_per_min = room_per_min > 0 ? room_per_min : 1;
	p->cooldown_s = cooldown_s;
	p->choice_timeout_s = choice_timeout_s;
}

static void
answer_clear(struct answer *a)
{
	free(a->room);
	free(a->intent);
	free(a->key);
	free(a->event_id);
}

static void
safety_clear(struct safety *s)
{
	free(s->room);
	free(s->sender);
	free(s->intent);
	free(s->event_id);
}

static void
choice_clear(struct choice *c)
{
	free(c->room);
	free(c->sender);
	free(c->opt[0]);
	free(c->opt[1]);
}

void
policy_free(struct policy *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nb; i++)
		free(p->b[i].key);
	free(p->b);
	for (i = 0; i < p->na; i++)
		answer_clear(&p->a[i]);
	free(p->a);
	for (i = 0; i < p->nc; i++)
		choice_clear(&p->c[i]);
	free(p->c);
	for (i = 0; i < p->npaused; i++)
		free(p->paused[i]);
	free(p->paused);
	for (i = 0; i < p->ns; i++)
		safety_clear(&p->s[i]);
	free(p->s);
	free(p);
}

/* The bucket for key, refilled to now; created full, evicting the stalest. */
static struct bucket *
bucket_get(struct policy *p, const char *key, double rate_per_min, uint64_t now)
{
	struct bucket *bk = NULL;
	size_t i, oldest = 0;

	for (i = 0; i < p->nb; i++) {
		if (strcmp(p->b[i].key, key) == 0) {
			bk = &p->b[i];
			break;
		}
		if (p->b[i].last < p->b[oldest].last)
			oldest = i;
	}
	if (bk == NULL) {
		if (p->nb < POLICY_MAX_BUCKETS) {
			p->b = xreallocarray(p->b, p->nb + 1, sizeof(*p->b));
			bk = &p->b[p->nb++];
		} else {
			bk = &p->b[oldest];
			free(bk->key);
		}
		bk->key = xstrdup(key);
		bk->tokens = rate_per_min;
		bk->last = now;
		bk->told = 0;
		return bk;
	}
	if (now > bk->last) {
		bk->tokens += (double)(now - bk->last) * rate_per_min / 60000.0;
		if (bk->tokens > rate_per_min)
			bk->tokens = rate_per_min;
		bk->last = now;
	}
	return bk;
}

int
policy_allow(struct policy *p, const char *room, const char *sender, uint64_t now_ms)
{
	char *ku = xasprintf("u:%s", sender), *kr = xasprintf("r:%s", room);
	struct bucket *bu, *br;
	int ok;

	bu = bucket_get(p, ku, (double)p->user_per_min, now_ms);
	br = bucket_get(p, kr, (double)p->room_per_min, now_ms);
	/* bucket_get may have moved the array: look the first one up again. */
	bu = bucket_get(p, ku, (double)p->user_per_min, now_ms);
	ok = bu->tokens >= 1.0 && br->tokens >= 1.0;
	if (ok) {
		bu->tokens -= 1.0;
		br->tokens -= 1.0;
		bu->told = 0;
	}
	free(ku);
	free(kr);
	return ok;
}

int
policy_limit_notice(struct policy *p, const char *sender, uint64_t now_ms)
{
	char *ku = xasprintf("u:%s", sender);
	struct bucket *bu = bucket_get(p, ku, (double)p->user_per_min, now_ms);
	int say = bu->tokens < 1.0 && !bu->told;

	if (say)
		bu->told = 1;
	free(ku);
	return say;
}

enum policy_safety
policy_safety_seen(struct policy *p, const char *room, const char *sender, const char *intent,
    const char *event_id, uint64_t now_ms, unsigned long *more_before)
{
	struct safety *s = NULL;
	size_t i, oldest = 0;

	*more_before = 0;
	for (i = 0; i < p->ns; i++) {
		if (strcmp(p->s[i].room, room) == 0 && strcmp(p->s[i].sender, sender) == 0 &&
		    strcmp(p->s[i].intent, intent) == 0) {
			s = &p->s[i];
			break;
		}
		if (p->s[i].answered < p->s[oldest].answered)
			oldest = i;
	}
	if (s != NULL && now_ms - s->answered < (uint64_t)p->safety_window_s * 1000) {
		s->more++;
		free(s->event_id);
		s->event_id = event_id ? xstrdup(event_id) : NULL;
		return POLICY_SAFETY_REPEAT;
	}
	if (s != NULL) {
		*more_before = s->more;
	} else if (p->ns < POLICY_MAX_SAFETY) {
		p->s = xreallocarray(p->s, p->ns + 1, sizeof(*p->s));
		s = &p->s[p->ns++];
		memset(s, 0, sizeof(*s));
		s->room = xstrdup(room);
		s->sender = xstrdup(sender);
		s->intent = xstrdup(intent);
	} else {
		s = &p->s[oldest];
		safety_clear(s);
		memset(s, 0, sizeof(*s));
		s->room = xstrdup(room);
		s->sender = xstrdup(sender);
		s->intent = xstrdup(intent);
	}
	free(s->event_id);
	s->event_id = event_id ? xstrdup(event_id) : NULL;
	s->answered = s->alerted = now_ms;
	s->more = 0;
	return POLICY_SAFETY_NEW;
}

int
policy_safety_due(struct policy *p, uint64_t now_ms, struct policy_followup *out)
{
	size_t i;

	for (i = 0; i < p->ns; i++) {
		struct safety *s = &p->s[i];

		if (s->more == 0 || now_ms - s->alerted < (uint64_t)p->alert_every_s * 1000)
			continue;
		out->room = s->room;
		out->sender = s->sender;
		out->intent = s->intent;
		out->event_id = s->event_id;
		out->more = s->more;
		s->more = 0;
		s->alerted = now_ms;
		return 1;
	}
	return 0;
}

int
policy_recent(struct policy *p, const char *room, const char *intent, uint64_t now_ms,
    const char **event_id, uint64_t *age_s)
{
	size_t i;

	for (i = 0; i < p->na; i++) {
		struct answer *a = &p->a[i];

		if (strcmp(a->room, room) != 0 || strcmp(a->intent, intent) != 0)
			continue;
		if (now_ms - a->when >= (uint64_t)p->cooldown_s * 1000)
			return 0;
		*event_id = a->event_id;
		*age_s = (now_ms - a->when) / 1000;
		return 1;
	}
	return 0;
}

void
policy_answered(struct policy *p, const char *room, const char *intent, const char *key,
    uint64_t now_ms)
{
	struct answer *a = NULL;
	size_t i, oldest = 0;

	for (i = 0; i < p->na; i++) {
		if (strcmp(p->a[i].room, room) == 0 && strcmp(p->a[i].intent, intent) == 0) {
			a = &p->a[i];
			answer_clear(a);
			break;
		}
		if (p->a[i].when < p->a[oldest].when)
			oldest = i;
	}
	if (a == NULL) {
		if (p->na < POLICY_MAX_ANSWERS) {
			p->a = xreallocarray(p->a, p->na + 1, sizeof(*p->a));
			a = &p->a[p->na++];
		} else {
			a = &p->a[oldest];
			answer_clear(a);
		}
	}
	a->room = xstrdup(room);
	a->intent = xstrdup(intent);
	a->key = xstrdup(key ? key : "");
	a->event_id = NULL;
	a->when = now_ms;
}

void
policy_sent(struct policy *p, const char *key, const char *event_id)
{
	size_t i;

	if (key == NULL || event_id == NULL)
		return;
	for (i = 0; i < p->na; i++) {
		if (strcmp(p->a[i].key, key) == 0) {
			free(p->a[i].event_id);
			p->a[i].event_id = xstrdup(event_id);
			return;
		}
	}
}

void
policy_choice_open(struct policy *p, const char *room, const char *sender, const char *a,
    const char *b, uint64_t now_ms)
{
	struct choice *c = NULL;
	size_t i, first = 0;

	for (i = 0; i < p->nc; i++) {
		if (strcmp(p->c[i].room, room) == 0 && strcmp(p->c[i].sender, sender) == 0) {
			c = &p->c[i];
			choice_clear(c);
			break;
		}
		if (p->c[i].expires < p->c[first].expires)
			first = i;
	}
	if (c == NULL) {
		if (p->nc < POLICY_MAX_CHOICES) {
			p->c = xreallocarray(p->c, p->nc + 1, sizeof(*p->c));
			c = &p->c[p->nc++];
		} else {
			c = &p->c[first];
			choice_clear(c);
		}
	}
	c->room = xstrdup(room);
	c->sender = xstrdup(sender);
	c->opt[0] = xstrdup(a);
	c->opt[1] = xstrdup(b);
	c->expires = now_ms + (uint64_t)p->choice_timeout_s * 1000;
}

char *
policy_choice_take(struct policy *p, const char *room, const char *sender, int which,
    uint64_t now_ms)
{
	size_t i;
	char *id;

	if (which != 1 && which != 2)
		return NULL;
	for (i = 0; i < p->nc; i++) {
		struct choice *c = &p->c[i];

		if (strcmp(c->room, room) != 0 || strcmp(c->sender, sender) != 0)
			continue;
		id = now_ms < c->expires ? xstrdup(c->opt[which - 1]) : NULL;
		choice_clear(c);
		p->c[i] = p->c[--p->nc];
		return id;
	}
	return NULL;
}

void
policy_pause(struct policy *p, const char *room, int paused)
{
	size_t i;

	for (i = 0; i < p->npaused; i++) {
		if (strcmp(p->paused[i], room) == 0) {
			if (!paused) {
				free(p->paused[i]);
				p->paused[i] = p->paused[--p->npaused];
			}
			return;
		}
	}
	if (paused && p->npaused < POLICY_MAX_PAUSED) {
		p->paused = xreallocarray(p->paused, p->npaused + 1, sizeof(*p->paused));
		p->paused[p->npaused++] = xstrdup(room);
	}
}

int
policy_paused(const struct policy *p, const char *room)
{
	size_t i;

	for (i = 0; i < p->npaused; i++)
		if (strcmp(p->paused[i], room) == 0)
			return 1;
	return 0;
}

char *
policy_paused_list(const struct policy *p)
{
	struct buf b;
	size_t i;

	buf_init(&b);
	for (i = 0; i < p->npaused; i++)
		buf_printf(&b, "%s%s", i ? ", " : "", p->paused[i]);
	return buf_steal(&b);
}

int
policy_save(const struct policy *p, const char *path)
{
	cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "paused");
	char *text;
	size_t i;
	int rc;

	for (i = 0; i < p->npaused; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(p->paused[i]));
	text = cJSON_Print(root);
	cJSON_Delete(root);
	rc = file_write_atomic(path, text, strlen(text), 0600);
	free(text);
	return rc;
}

int
policy_load(struct policy *p, const char *path)
{
	size_t len;
	char *text = file_read(path, 1 << 20, &len);
	cJSON *root, *arr, *e;

	if (text == NULL)
		return errno == ENOENT ? 0 : -1;
	root = cJSON_ParseWithLength(text, len);
	free(text);
	if (root == NULL) {
		errno = EINVAL;
		return -1;
	}
	arr = cJSON_GetObjectItemCaseSensitive(root, "paused");
	cJSON_ArrayForEach(e, arr)
	{
		if (cJSON_IsString(e))
			policy_pause(p, e->valuestring, 1);
	}
	cJSON_Delete(root);
	return 0;
}
