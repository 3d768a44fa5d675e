/*
 * The bot's counters (see stats.h): plain integers updated from the one
 * thread, labelled counters kept in small tables keyed by intent id or
 * transport name, and a fixed-bucket latency histogram. The exposition
 * sorts labels so that two scrapes of the same counts are identical, and
 * the JSON file keeps the histogram's per-bucket counts (not cumulative) so
 * that a file edited by hand cannot make the buckets decrease.
 */
#include "stats.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "smap.h"

/* Upper bounds of the latency buckets, in seconds; +Inf is implied. */
static const double bucket_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                   0.05,   0.1,   0.25,   0.5,   1,    2.5};
/* The same bounds as the exposition prints them. */
static const char *const bucket_text[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
                                          "0.05",   "0.1",   "0.25",   "0.5",   "1",    "2.5"};
#define NBUCKETS (NELEM(bucket_le) + 1) /* the last one is +Inf */

/* Labels kept at most, so that a damaged file cannot make the table huge. */
#define STATS_MAX_LABELS 4096
/* Longest label value kept (intent ids and transport names are short). */
#define STATS_MAX_LABEL_LEN 256
/* Largest stats file read. */
#define STATS_MAX_FILE (4u << 20)

/* Counters for one intent. */
struct stats_intent {
	char *id;          /* the intent id */
	uint64_t answers;  /* answers sent */
	uint64_t pointers; /* cooldown pointers sent instead */
	uint64_t alerts;   /* safety alerts raised */
	uint64_t model;    /* answers chosen by the learned layer (counted in answers too) */
	uint64_t helpful;   /* 👍 reactions to its answers */
	uint64_t unhelpful; /* 👎 reactions */
};

/* Counters for one transport. */
struct stats_transport {
	char *name;           /* "matrix", "irc" */
	uint64_t sync_errors; /* failed polls or sends */
};

struct stats {
	struct smap intent_idx;            /* intent id -> index in intent */
	struct stats_intent *intent;       /* per-intent counters */
	size_t nintent;                    /* used */
	struct smap transport_idx;         /* transport name -> index in transport */
	struct stats_transport *transport; /* per-transport counters */
	size_t ntransport;                 /* used */
	uint64_t choices;                  /* "did you mean" questions */
	uint64_t unanswered;               /* addressed, no answer */
	uint64_t reloads_ok;               /* reloads that took */
	uint64_t reloads_kept_old;         /* reloads that failed (old kb kept) */
	uint64_t limited;                  /* silenced by a flood limit */
	uint64_t safety_repeats;           /* safety messages not answered again */
	uint64_t alerts_undelivered;       /* safety alerts with no moderator room to go to */
	int modroom;                       /* in the moderator room: 1, 0, -1 none or not known */
	int64_t modroom_lost_at;           /* when it was lost (wall clock, s), or 0 */
	uint64_t flags;                    /* silent alerts: the model suspected a safety message */
	uint64_t bucket[NBUCKETS];         /* latency observations per bucket (not cumulative) */
	double latency_sum;                /* seconds, summed */
	uint64_t latency_count;            /* observations */
};

struct stats *
stats_new(void)
{
	struct stats *s = xcalloc(1, sizeof(*s));

	smap_init(&s->intent_idx);
	smap_init(&s->transport_idx);
	s->modroom = -1;
	return s;
}

/* Frees what s holds, leaving it as stats_new() returns it. */
static void
stats_clear(struct stats *s)
{
	size_t i;

	for (i = 0; i < s->nintent; i++)
		free(s->intent[i].id);
	free(s->intent);
	for (i = 0; i < s->ntransport; i++)
		free(s->transport[i].name);
	free(s->transport);
	smap_free(&s->intent_idx);
	smap_free(&s->transport_idx);
	memset(s, 0, sizeof(*s));
	smap_init(&s->intent_idx);
	smap_init(&s->transport_idx);
	s->modroom = -1;
}

void
stats_free(struct stats *s)
{
	if (s == NULL)
		return;
	stats_clear(s);
	free(s);
}

/*
 * The counters of intent id, created on first use; an empty or overlong id
 * counts as "unknown". NULL when the table is full (then the event is not
 * counted per intent).
 */
static struct stats_intent *
intent_get(struct stats *s, const char *id)
{
	size_t len;
	uint32_t *v;
	int added;

	if (id == NULL || (len = strlen(id)) == 0 || len > STATS_MAX_LABEL_LEN) {
		id = "unknown";
		len = strlen(id);
	}
	if ((v = smap_get(&s->intent_idx, id, len)) != NULL)
		return &s->intent[*v];
	if (s->nintent >= STATS_MAX_LABELS)
		return NULL;
	smap_put(&s->intent_idx, id, len, (uint32_t)s->nintent, &added);
	s->intent = xreallocarray(s->intent, s->nintent + 1, sizeof(*s->intent));
	memset(&s->intent[s->nintent], 0, sizeof(*s->intent));
	s->intent[s->nintent].id = xstrndup(id, len);
	return &s->intent[s->nintent++];
}

/* Likewise for a transport. */
static struct stats_transport *
transport_get(struct stats *s, const char *name)
{
	size_t len;
	uint32_t *v;
	int added;

	if (name == NULL || (len = strlen(name)) == 0 || len > STATS_MAX_LABEL_LEN) {
		name = "unknown";
		len = strlen(name);
	}
	if ((v = smap_get(&s->transport_idx, name, len)) != NULL)
		return &s->transport[*v];
	if (s->ntransport >= STATS_MAX_LABELS)
		return NULL;
	smap_put(&s->transport_idx, name, len, (uint32_t)s->ntransport, &added);
	s->transport = xreallocarray(s->transport, s->ntransport + 1, sizeof(*s->transport));
	memset(&s->transport[s->ntransport], 0, sizeof(*s->transport));
	s->transport[s->ntransport].name = xstrndup(name, len);
	return &s->transport[s->ntransport++];
}

void
stats_answer(struct stats *s, const char *intent)
{
	struct stats_intent *in = intent_get(s, intent);

	if (in != NULL)
		in->answers++;
}

void
stats_pointer(struct stats *s, const char *intent)
{
	struct stats_intent *in = intent_get(s, intent);

	if (in != NULL)
		in->pointers++;
}

void
stats_choice(struct stats *s)
{
	s->choices++;
}

void
stats_unanswered(struct stats *s)
{
	s->unanswered++;
}

void
stats_safety_alert(struct stats *s, const char *intent)
{
	struct stats_intent *in = intent_get(s, intent);

	if (in != NULL)
		in->alerts++;
}

void
stats_model_answer(struct stats *s, const char *intent)
{
	struct stats_intent *in = intent_get(s, intent);

	if (in != NULL)
		in->model++;
}

void
stats_feedback(struct stats *s, const char *intent, int helpful)
{
	struct stats_intent *in = intent_get(s, intent);

	if (in == NULL)
		return;
	if (helpful)
		in->helpful++;
	else
		in->unhelpful++;
}

void
stats_safety_flag(struct stats *s)
{
	s->flags++;
}

void
stats_sync_error(struct stats *s, const char *transport)
{
	struct stats_transport *t = transport_get(s, transport);

	if (t != NULL)
		t->sync_errors++;
}

void
stats_reload(struct stats *s, int ok)
{
	if (ok)
		s->reloads_ok++;
	else
		s->reloads_kept_old++;
}

void
stats_limited(struct stats *s)
{
	s->limited++;
}

void
stats_safety_repeat(struct stats *s)
{
	s->safety_repeats++;
}

void
stats_alert_undelivered(struct stats *s)
{
	s->alerts_undelivered++;
}

void
stats_moderator_room(struct stats *s, int joined)
{
	if (!joined && s->modroom != 0)
		s->modroom_lost_at = now_wall();
	s->modroom = joined ? 1 : 0;
}

void
stats_latency(struct stats *s, double seconds)
{
	size_t i;

	if (isnan(seconds))
		return;
	if (seconds < 0)
		seconds = 0;
	for (i = 0; i < NELEM(bucket_le); i++)
		if (seconds <= bucket_le[i])
			break;
	s->bucket[i]++;
	if (isfinite(seconds))
		s->latency_sum += seconds;
	s->latency_count++;
}

/* --- exposition ----------------------------------------------------------- */

/* Appends a label value escaped as the text format wants: \\, \" and \n. */
static void
put_label_value(struct buf *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			buf_puts(out, "\\\\");
		else if (*v == '"')
			buf_puts(out, "\\\"");
		else if (*v == '\n')
			buf_puts(out, "\\n");
		else
			buf_putc(out, *v);
	}
}

static void
put_header(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int
cmp_intent(const void *a, const void *b)
{
	const struct stats_intent *const *x = a, *const *y = b;

	return strcmp((*x)->id, (*y)->id);
}

static int
cmp_transport(const void *a, const void *b)
{
	const struct stats_transport *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* The intents sorted by id, as a new array of pointers (caller frees). */
static const struct stats_intent **
sorted_intents(const struct stats *s)
{
	const struct stats_intent **v = xcalloc(s->nintent + 1, sizeof(*v));
	size_t i;

	for (i = 0; i < s->nintent; i++)
		v[i] = &s->intent[i];
	qsort(v, s->nintent, sizeof(*v), cmp_intent);
	return v;
}

/* Which per-intent counter a family exports. */
enum intent_field {
	FIELD_ANSWERS,
	FIELD_POINTERS,
	FIELD_ALERTS,
	FIELD_MODEL,
	FIELD_HELPFUL,
	FIELD_UNHELPFUL,
};

static uint64_t
intent_field(const struct stats_intent *in, enum intent_field f)
{
	switch (f) {
	case FIELD_ANSWERS:
		return in->answers;
	case FIELD_POINTERS:
		return in->pointers;
	case FIELD_ALERTS:
		return in->alerts;
	case FIELD_MODEL:
		return in->model;
	case FIELD_HELPFUL:
		return in->helpful;
	case FIELD_UNHELPFUL:
		return in->unhelpful;
	}
	return 0;
}

/* One counter family labelled by intent; intents never counted here are left out. */
static void
put_intent_family(struct buf *out, const struct stats_intent **v, size_t n, const char *name,
                  const char *help, enum intent_field f)
{
	size_t i;

	put_header(out, name, "counter", help);
	for (i = 0; i < n; i++) {
		uint64_t c = intent_field(v[i], f);

		if (c == 0)
			continue;
		buf_printf(out, "%s{intent=\"", name);
		put_label_value(out, v[i]->id);
		buf_printf(out, "\"} %" PRIu64 "\n", c);
	}
}

void
stats_prometheus(const struct stats *s, struct buf *out)
{
	const struct stats_intent **iv = sorted_intents(s);
	const struct stats_transport **tv;
	uint64_t cum = 0;
	size_t i;

	put_header(out, "faqbot_up", "gauge", "1 while the bot is running.");
	buf_puts(out, "faqbot_up 1\n");
	put_intent_family(out, iv, s->nintent, "faqbot_answers_total", "Answers sent, by intent.",
	                  FIELD_ANSWERS);
	put_intent_family(out, iv, s->nintent, "faqbot_pointers_total",
	                  "Pointers to an earlier answer sent instead of repeating it, by intent.",
	                  FIELD_POINTERS);
	put_header(out, "faqbot_choices_total", "counter",
	           "\"Did you mean\" questions asked when two intents were close.");
	buf_printf(out, "faqbot_choices_total %" PRIu64 "\n", s->choices);
	put_header(out, "faqbot_unanswered_total", "counter",
	           "Questions addressed to the bot that got no answer.");
	buf_printf(out, "faqbot_unanswered_total %" PRIu64 "\n", s->unanswered);
	put_intent_family(out, iv, s->nintent, "faqbot_safety_alerts_total",
	                  "Safety alerts raised to the moderators, by intent.", FIELD_ALERTS);
	put_intent_family(out, iv, s->nintent, "faqbot_model_answers_total",
	                  "Answers chosen by the learned layer (no rule answered, or a safety "
	                  "message no rule caught), by intent; counted in faqbot_answers_total "
	                  "too.",
	                  FIELD_MODEL);
	put_intent_family(out, iv, s->nintent, "faqbot_helpful_total",
	                  "Thumbs-up reactions to the bot's answers, by intent.", FIELD_HELPFUL);
	put_intent_family(out, iv, s->nintent, "faqbot_unhelpful_total",
	                  "Thumbs-down reactions to the bot's answers, by intent (the question goes "
	                  "to the unanswered log).",
	                  FIELD_UNHELPFUL);
	put_header(out, "faqbot_safety_flags_total", "counter",
	           "Silent alerts to the moderators: the model found a possible emergency or "
	           "crisis, not sure enough to answer.");
	buf_printf(out, "faqbot_safety_flags_total %" PRIu64 "\n", s->flags);
	free(iv);

	tv = xcalloc(s->ntransport + 1, sizeof(*tv));
	for (i = 0; i < s->ntransport; i++)
		tv[i] = &s->transport[i];
	qsort(tv, s->ntransport, sizeof(*tv), cmp_transport);
	put_header(out, "faqbot_sync_errors_total", "counter",
	           "Failed polls or sends, by transport.");
	for (i = 0; i < s->ntransport; i++) {
		buf_puts(out, "faqbot_sync_errors_total{transport=\"");
		put_label_value(out, tv[i]->name);
		buf_printf(out, "\"} %" PRIu64 "\n", tv[i]->sync_errors);
	}
	free(tv);

	put_header(out, "faqbot_reloads_total", "counter",
	           "Reloads of intents and responses: ok, or kept_old when the new set failed.");
	buf_printf(out, "faqbot_reloads_total{result=\"ok\"} %" PRIu64 "\n", s->reloads_ok);
	buf_printf(out, "faqbot_reloads_total{result=\"kept_old\"} %" PRIu64 "\n",
	           s->reloads_kept_old);
	put_header(out, "faqbot_flood_limited_total", "counter",
	           "Answers withheld by a user or room flood limit.");
	buf_printf(out, "faqbot_flood_limited_total %" PRIu64 "\n", s->limited);
	put_header(out, "faqbot_safety_repeats_total", "counter",
	           "Safety messages not answered again: the same person in the same room was "
	           "answered a moment before (the moderators get one follow-up).");
	buf_printf(out, "faqbot_safety_repeats_total %" PRIu64 "\n", s->safety_repeats);
	put_header(out, "faqbot_safety_alerts_undelivered_total", "counter",
	           "Safety alerts that could not be sent: the bot was not in the moderator room.");
	buf_printf(out, "faqbot_safety_alerts_undelivered_total %" PRIu64 "\n",
	           s->alerts_undelivered);
	if (s->modroom >= 0) {
		put_header(out, "faqbot_moderator_room_joined", "gauge",
		           "1 while the bot is in the moderator room, 0 when it is not (safety "
		           "alerts cannot reach the moderators).");
		buf_printf(out, "faqbot_moderator_room_joined %d\n", s->modroom);
	}

	put_header(out, "faqbot_reply_latency_seconds", "histogram",
	           "Seconds from a message's arrival to its reply being handed to the network.");
	for (i = 0; i < NBUCKETS; i++) {
		cum += s->bucket[i];
		buf_printf(out, "faqbot_reply_latency_seconds_bucket{le=\"%s\"} %" PRIu64 "\n",
		           i < NELEM(bucket_text) ? bucket_text[i] : "+Inf", cum);
	}
	buf_printf(out, "faqbot_reply_latency_seconds_sum %.9g\n", s->latency_sum);
	buf_printf(out, "faqbot_reply_latency_seconds_count %" PRIu64 "\n", s->latency_count);
}

/* --- summary -------------------------------------------------------------- */

static int
cmp_by_answers(const void *a, const void *b)
{
	const struct stats_intent *const *x = a, *const *y = b;

	if ((*x)->answers != (*y)->answers)
		return (*x)->answers < (*y)->answers ? 1 : -1;
	return strcmp((*x)->id, (*y)->id);
}

/* Appends s as a Markdown code span (backticks and controls cannot occur in it). */
static void
put_code(struct buf *out, const char *s)
{
	buf_putc(out, '`');
	for (; *s; s++)
		buf_putc(out, *s == '`' || (unsigned char)*s < 0x20 ? '\'' : *s);
	buf_putc(out, '`');
}

void
stats_summary(const struct stats *s, struct buf *out)
{
	const struct stats_intent **v = sorted_intents(s);
	uint64_t answers = 0, pointers = 0, alerts = 0, model = 0, up = 0, down = 0;
	const struct stats_intent *worst = NULL;
	size_t i, shown = 0;

	for (i = 0; i < s->nintent; i++) {
		answers += s->intent[i].answers;
		pointers += s->intent[i].pointers;
		alerts += s->intent[i].alerts;
		model += s->intent[i].model;
		up += s->intent[i].helpful;
		down += s->intent[i].unhelpful;
		if (s->intent[i].unhelpful > 0 &&
		    (worst == NULL || s->intent[i].unhelpful > worst->unhelpful))
			worst = &s->intent[i];
	}
	qsort(v, s->nintent, sizeof(*v), cmp_by_answers);
	buf_printf(out, "- Answers: %" PRIu64, answers);
	if (pointers > 0)
		buf_printf(out, " (and %" PRIu64 " pointers to earlier answers)", pointers);
	buf_puts(out, "\n- Top intents: ");
	for (i = 0; i < s->nintent && shown < 5; i++) {
		if (v[i]->answers == 0)
			break;
		buf_puts(out, shown ? ", " : "");
		put_code(out, v[i]->id);
		buf_printf(out, " %" PRIu64, v[i]->answers);
		shown++;
	}
	if (shown == 0)
		buf_puts(out, "none yet");
	buf_printf(out, "\n- Unanswered: %" PRIu64 "\n", s->unanswered);
	if (model > 0)
		buf_printf(out, "- Answers chosen by the learned model: %" PRIu64 "\n", model);
	if (up + down > 0) {
		buf_printf(out, "- Reactions to answers: %" PRIu64 " helpful, %" PRIu64 " unhelpful",
		           up, down);
		if (worst != NULL) {
			buf_puts(out, " (most unhelpful: ");
			put_code(out, worst->id);
			buf_printf(out, " %" PRIu64 ")", worst->unhelpful);
		}
		buf_putc(out, '\n');
	}
	buf_printf(out, "- Safety alerts: %" PRIu64 "\n", alerts);
	buf_printf(out, "- Silent alerts (possible emergency or crisis): %" PRIu64 "\n", s->flags);
	buf_printf(out, "- \"Did you mean\" questions: %" PRIu64 "\n", s->choices);
	buf_printf(out, "- Withheld by flood limits: %" PRIu64 "\n", s->limited);
	if (s->safety_repeats > 0)
		buf_printf(out,
		           "- Safety messages not answered again (the same person a moment "
		           "later): %" PRIu64 "\n",
		           s->safety_repeats);
	if (s->modroom == 0) {
		char when[32] = "";
		time_t t = (time_t)s->modroom_lost_at;
		struct tm tm;

		if (t > 0 && gmtime_r(&t, &tm) != NULL)
			strftime(when, sizeof(when), " since %Y-%m-%d %H:%M UTC", &tm);
		buf_printf(out,
		           "- **The bot is not in the moderator room**%s: safety alerts cannot "
		           "reach the moderators (%" PRIu64 " not delivered). Invite it back.\n",
		           when, s->alerts_undelivered);
	} else if (s->alerts_undelivered > 0) {
		buf_printf(out, "- Safety alerts not delivered (no moderator room): %" PRIu64 "\n",
		           s->alerts_undelivered);
	}
	if (s->reloads_kept_old > 0)
		buf_printf(out, "- Failed reloads (old set kept): %" PRIu64 "\n",
		           s->reloads_kept_old);
	free(v);
}

/* --- saving --------------------------------------------------------------- */

#define STATS_FILE_VERSION 1

/* Adds {label: count} for every nonzero count of one intent field. */
static void
add_intent_object(cJSON *root, const char *key, const struct stats *s, enum intent_field f)
{
	cJSON *o = cJSON_AddObjectToObject(root, key);
	size_t i;

	for (i = 0; i < s->nintent; i++) {
		uint64_t c = intent_field(&s->intent[i], f);

		if (c > 0)
			cJSON_AddNumberToObject(o, s->intent[i].id, (double)c);
	}
}

int
stats_save(const struct stats *s, const char *path)
{
	cJSON *root = cJSON_CreateObject(), *o, *a;
	char *text;
	size_t i;
	int rc, saved;

	cJSON_AddNumberToObject(root, "version", STATS_FILE_VERSION);
	add_intent_object(root, "answers", s, FIELD_ANSWERS);
	add_intent_object(root, "pointers", s, FIELD_POINTERS);
	add_intent_object(root, "safety_alerts", s, FIELD_ALERTS);
	add_intent_object(root, "model_answers", s, FIELD_MODEL);
	add_intent_object(root, "helpful", s, FIELD_HELPFUL);
	add_intent_object(root, "unhelpful", s, FIELD_UNHELPFUL);
	o = cJSON_AddObjectToObject(root, "sync_errors");
	for (i = 0; i < s->ntransport; i++)
		cJSON_AddNumberToObject(o, s->transport[i].name,
		                        (double)s->transport[i].sync_errors);
	cJSON_AddNumberToObject(root, "choices", (double)s->choices);
	cJSON_AddNumberToObject(root, "unanswered", (double)s->unanswered);
	cJSON_AddNumberToObject(root, "reloads_ok", (double)s->reloads_ok);
	cJSON_AddNumberToObject(root, "reloads_kept_old", (double)s->reloads_kept_old);
	cJSON_AddNumberToObject(root, "flood_limited", (double)s->limited);
	cJSON_AddNumberToObject(root, "safety_repeats", (double)s->safety_repeats);
	cJSON_AddNumberToObject(root, "alerts_undelivered", (double)s->alerts_undelivered);
	cJSON_AddNumberToObject(root, "safety_flags", (double)s->flags);
	o = cJSON_AddObjectToObject(root, "latency");
	a = cJSON_AddArrayToObject(o, "buckets");
	for (i = 0; i < NBUCKETS; i++)
		cJSON_AddItemToArray(a, cJSON_CreateNumber((double)s->bucket[i]));
	cJSON_AddNumberToObject(o, "sum", s->latency_sum);
	cJSON_AddNumberToObject(o, "count", (double)s->latency_count);
	text = cJSON_Print(root);
	cJSON_Delete(root);
	if (text == NULL) {
		errno = ENOMEM;
		return -1;
	}
	rc = file_write_atomic(path, text, strlen(text), 0600);
	saved = errno;
	cJSON_free(text);
	errno = saved;
	return rc;
}

/* Reads a count: a whole number from 0 to 2^53; absent is 0. -1 when malformed. */
static int
get_count(const cJSON *obj, const char *key, uint64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	*out = 0;
	if (v == NULL)
		return 0;
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 9007199254740992.0 ||
	    v->valuedouble != floor(v->valuedouble))
		return -1;
	*out = (uint64_t)v->valuedouble;
	return 0;
}

/* Loads {label: count} into one intent field. */
static int
load_intent_object(struct stats *s, const cJSON *root, const char *key, enum intent_field f)
{
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, key), *it;
	struct stats_intent *in;
	uint64_t c;

	if (o == NULL)
		return 0;
	if (!cJSON_IsObject(o))
		return -1;
	cJSON_ArrayForEach(it, o)
	{
		if (it->string == NULL || get_count(o, it->string, &c) == -1)
			return -1;
		if ((in = intent_get(s, it->string)) == NULL)
			return -1;
		switch (f) {
		case FIELD_ANSWERS:
			in->answers = c;
			break;
		case FIELD_POINTERS:
			in->pointers = c;
			break;
		case FIELD_ALERTS:
			in->alerts = c;
			break;
		case FIELD_MODEL:
			in->model = c;
			break;
		case FIELD_HELPFUL:
			in->helpful = c;
			break;
		case FIELD_UNHELPFUL:
			in->unhelpful = c;
			break;
		}
	}
	return 0;
}

/* Fills s (empty) from the parsed file. 0, or -1 when something is malformed. */
static int
load_tree(struct stats *s, const cJSON *root)
{
	const cJSON *o, *it, *lat, *b;
	struct stats_transport *t;
	uint64_t c;
	size_t i;

	if (!cJSON_IsObject(root))
		return -1;
	if (get_count(root, "version", &c) == -1 || c > STATS_FILE_VERSION)
		return -1;
	if (load_intent_object(s, root, "answers", FIELD_ANSWERS) == -1 ||
	    load_intent_object(s, root, "pointers", FIELD_POINTERS) == -1 ||
	    load_intent_object(s, root, "safety_alerts", FIELD_ALERTS) == -1 ||
	    load_intent_object(s, root, "model_answers", FIELD_MODEL) == -1 ||
	    load_intent_object(s, root, "helpful", FIELD_HELPFUL) == -1 ||
	    load_intent_object(s, root, "unhelpful", FIELD_UNHELPFUL) == -1)
		return -1;
	if ((o = cJSON_GetObjectItemCaseSensitive(root, "sync_errors")) != NULL) {
		if (!cJSON_IsObject(o))
			return -1;
		cJSON_ArrayForEach(it, o)
		{
			if (it->string == NULL || get_count(o, it->string, &c) == -1)
				return -1;
			if ((t = transport_get(s, it->string)) == NULL)
				return -1;
			t->sync_errors = c;
		}
	}
	if (get_count(root, "choices", &s->choices) == -1 ||
	    get_count(root, "unanswered", &s->unanswered) == -1 ||
	    get_count(root, "reloads_ok", &s->reloads_ok) == -1 ||
	    get_count(root, "reloads_kept_old", &s->reloads_kept_old) == -1 ||
	    get_count(root, "flood_limited", &s->limited) == -1 ||
	    get_count(root, "safety_repeats", &s->safety_repeats) == -1 ||
	    get_count(root, "alerts_undelivered", &s->alerts_undelivered) == -1 ||
	    get_count(root, "safety_flags", &s->flags) == -1)
		return -1;
	if ((lat = cJSON_GetObjectItemCaseSensitive(root, "latency")) == NULL)
		return 0;
	if (!cJSON_IsObject(lat))
		return -1;
	if ((b = cJSON_GetObjectItemCaseSensitive(lat, "buckets")) != NULL) {
		if (!cJSON_IsArray(b) || (size_t)cJSON_GetArraySize(b) != NBUCKETS)
			return -1;
		i = 0;
		cJSON_ArrayForEach(it, b)
		{
			if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0) ||
			    it->valuedouble > 9007199254740992.0 ||
			    it->valuedouble != floor(it->valuedouble))
				return -1;
			s->bucket[i++] = (uint64_t)it->valuedouble;
		}
	}
	if (get_count(lat, "count", &s->latency_count) == -1)
		return -1;
	if ((it = cJSON_GetObjectItemCaseSensitive(lat, "sum")) != NULL) {
		if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0) || !isfinite(it->valuedouble))
			return -1;
		s->latency_sum = it->valuedouble;
	}
	return 0;
}

int
stats_load(struct stats *s, const char *path)
{
	struct stats *tmp;
	cJSON *root;
	char *text;
	size_t len;

	stats_clear(s);
	if ((text = file_read(path, STATS_MAX_FILE, &len)) == NULL)
		return errno == ENOENT ? 0 : -1;
	root = cJSON_ParseWithLength(text, len);
	free(text);
	if (root == NULL) {
		errno = EINVAL;
		return -1;
	}
	tmp = stats_new();
	if (load_tree(tmp, root) == -1) {
		cJSON_Delete(root);
		stats_free(tmp);
		errno = EINVAL;
		return -1;
	}
	cJSON_Delete(root);
	/* s was cleared above: it owns nothing, so it can take tmp's contents. */
	*s = *tmp;
	free(tmp);
	return 0;
}
