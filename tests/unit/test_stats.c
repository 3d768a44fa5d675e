/*
 * Unit tests for stats.c: tables of events whose Prometheus exposition is
 * parsed back by a strict reader of the text format (every line a HELP,
 * TYPE or well-formed sample, every sample of a declared family, label
 * values unescaped, histogram buckets cumulative and ending in +Inf =
 * _count), the moderators' summary, and the JSON file: a round trip, a
 * missing file, and a table of damaged ones.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "stats.h"
#include "util.h"

/* --- a reader of the text exposition format ------------------------------- */

#define MAX_SAMPLES 4096

struct sample {
	char name[128];   /* metric name */
	char labels[512]; /* labels unescaped, "k=v,k=v" in the order given */
	double value;     /* the value */
};

struct family {
	char name[128]; /* from # TYPE */
	char type[16];  /* counter, gauge, histogram, ... */
	int help;       /* a # HELP line was seen */
};

struct expo {
	struct sample *s; /* samples, in order */
	size_t n;
	struct family f[64]; /* declared families */
	size_t nf;
	char err[4096]; /* the first problem, or "" */
};

static int
name_char(char c, int first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

/* Reads a metric or label name at *p into out. 0, or -1. */
static int
read_name(const char **p, char *out, size_t max, int label)
{
	size_t n = 0;

	if (!name_char(**p, 1) || (label && **p == ':'))
		return -1;
	while (name_char(**p, n == 0) && !(label && **p == ':')) {
		if (n + 1 >= max)
			return -1;
		out[n++] = *(*p)++;
	}
	out[n] = '\0';
	return 0;
}

static struct family *
find_family(struct expo *e, const char *name)
{
	size_t i;

	for (i = 0; i < e->nf; i++)
		if (strcmp(e->f[i].name, name) == 0)
			return &e->f[i];
	return NULL;
}

/* The family a sample belongs to: itself, or a histogram's base name. */
static struct family *
sample_family(struct expo *e, const char *name)
{
	static const char *const suffix[] = {"_bucket", "_sum", "_count"};
	struct family *f = find_family(e, name);
	char base[128];
	size_t i, n = strlen(name);

	if (f != NULL)
		return f;
	for (i = 0; i < NELEM(suffix); i++) {
		size_t k = strlen(suffix[i]);

		if (n > k && strcmp(name + n - k, suffix[i]) == 0) {
			memcpy(base, name, n - k);
			base[n - k] = '\0';
			if ((f = find_family(e, base)) != NULL &&
			    (strcmp(f->type, "histogram") == 0 || strcmp(f->type, "summary") == 0))
				return f;
		}
	}
	return NULL;
}

#define EXPO_FAIL(...)                                                                             \
	do {                                                                                       \
		snprintf(e->err, sizeof(e->err), __VA_ARGS__);                                     \
		return -1;                                                                         \
	} while (0)

/* Parses one sample line. */
static int
parse_sample(struct expo *e, const char *line, size_t lineno)
{
	struct sample *s;
	const char *p = line;
	char *end;
	size_t ln = 0;

	if (e->n == MAX_SAMPLES)
		EXPO_FAIL("too many samples");
	s = &e->s[e->n];
	memset(s, 0, sizeof(*s));
	if (read_name(&p, s->name, sizeof(s->name), 0) == -1)
		EXPO_FAIL("line %zu: bad metric name: %s", lineno, line);
	if (*p == '{') {
		p++;
		while (*p != '}') {
			char lname[64];

			if (read_name(&p, lname, sizeof(lname), 1) == -1 || *p++ != '=' ||
			    *p++ != '"')
				EXPO_FAIL("line %zu: bad label: %s", lineno, line);
			ln += (size_t)snprintf(s->labels + ln, sizeof(s->labels) - ln,
			                       "%s%s=", ln ? "," : "", lname);
			for (; *p != '"'; p++) {
				char c = *p;

				if (c == '\0' || c == '\n')
					EXPO_FAIL("line %zu: unterminated label value", lineno);
				if (c == '\\') {
					p++;
					if (*p == 'n')
						c = '\n';
					else if (*p == '\\' || *p == '"')
						c = *p;
					else
						EXPO_FAIL("line %zu: bad escape \\%c", lineno, *p);
				}
				if (ln + 1 < sizeof(s->labels))
					s->labels[ln++] = c;
			}
			s->labels[ln] = '\0';
			p++;
			if (*p == ',')
				p++;
			else if (*p != '}')
				EXPO_FAIL("line %zu: expected , or } in %s", lineno, line);
		}
		p++;
	}
	if (*p++ != ' ' || *p == ' ' || *p == '\t')
		EXPO_FAIL("line %zu: expected one space before the value: %s", lineno, line);
	if (strcmp(p, "+Inf") == 0)
		s->value = INFINITY;
	else if (strcmp(p, "-Inf") == 0)
		s->value = -INFINITY;
	else if (strcmp(p, "NaN") == 0)
		s->value = NAN;
	else {
		s->value = strtod(p, &end);
		if (end == p || *end != '\0')
			EXPO_FAIL("line %zu: bad value (or a timestamp) in %s", lineno, line);
	}
	if (sample_family(e, s->name) == NULL)
		EXPO_FAIL("line %zu: %s has no # TYPE before it", lineno, s->name);
	e->n++;
	return 0;
}

/* Parses text; 0, or -1 with e->err. Free e->s. */
static int
expo_parse(struct expo *e, const char *text)
{
	const char *p = text;
	char line[2048];
	size_t lineno = 0;

	memset(e, 0, sizeof(*e));
	e->s = calloc(MAX_SAMPLES, sizeof(*e->s));
	if (text == NULL || *text == '\0')
		EXPO_FAIL("empty");
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n;

		lineno++;
		if (nl == NULL)
			EXPO_FAIL("line %zu: no final newline", lineno);
		n = (size_t)(nl - p);
		if (n >= sizeof(line))
			EXPO_FAIL("line %zu: too long", lineno);
		memcpy(line, p, n);
		line[n] = '\0';
		p = nl + 1;
		if (n == 0)
			EXPO_FAIL("line %zu: empty", lineno);
		if (strncmp(line, "# TYPE ", 7) == 0) {
			struct family *f;
			char name[128], type[16];

			if (sscanf(line + 7, "%127s %15s", name, type) != 2)
				EXPO_FAIL("line %zu: bad TYPE", lineno);
			if (strcmp(type, "counter") && strcmp(type, "gauge") &&
			    strcmp(type, "histogram") && strcmp(type, "summary") &&
			    strcmp(type, "untyped"))
				EXPO_FAIL("line %zu: unknown type %s", lineno, type);
			if ((f = find_family(e, name)) != NULL && f->type[0])
				EXPO_FAIL("line %zu: second TYPE for %s", lineno, name);
			if (f == NULL) {
				if (e->nf == NELEM(e->f))
					EXPO_FAIL("too many families");
				f = &e->f[e->nf++];
				snprintf(f->name, sizeof(f->name), "%s", name);
			}
			snprintf(f->type, sizeof(f->type), "%s", type);
			if (e->n > 0 && sample_family(e, e->s[e->n - 1].name) == f)
				EXPO_FAIL("line %zu: TYPE after samples of %s", lineno, name);
		} else if (strncmp(line, "# HELP ", 7) == 0) {
			struct family *f;
			char name[128];

			if (sscanf(line + 7, "%127s", name) != 1)
				EXPO_FAIL("line %zu: bad HELP", lineno);
			if ((f = find_family(e, name)) == NULL) {
				if (e->nf == NELEM(e->f))
					EXPO_FAIL("too many families");
				f = &e->f[e->nf++];
				snprintf(f->name, sizeof(f->name), "%s", name);
			}
			if (f->help)
				EXPO_FAIL("line %zu: second HELP for %s", lineno, name);
			f->help = 1;
		} else if (line[0] == '#') {
			continue;
		} else if (parse_sample(e, line, lineno) == -1) {
			return -1;
		}
	}
	return 0;
}

/* The value of the sample name{labels}, or NAN when it is absent. */
static double
expo_get(const struct expo *e, const char *name, const char *labels)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		if (strcmp(e->s[i].name, name) == 0 && strcmp(e->s[i].labels, labels) == 0)
			return e->s[i].value;
	return NAN;
}

/* Checks the histogram: le ascending, counts cumulative, +Inf last and = _count. */
static void
check_histogram(const struct expo *e, const char *base)
{
	char bucket[160], count[160], sum[160];
	double prev_le = -INFINITY, prev = 0, inf = NAN;
	size_t i, nb = 0;

	snprintf(bucket, sizeof(bucket), "%s_bucket", base);
	snprintf(count, sizeof(count), "%s_count", base);
	snprintf(sum, sizeof(sum), "%s_sum", base);
	for (i = 0; i < e->n; i++) {
		double le;

		if (strcmp(e->s[i].name, bucket) != 0)
			continue;
		CHECK(strncmp(e->s[i].labels, "le=", 3) == 0, "bucket label %s", e->s[i].labels);
		le = strcmp(e->s[i].labels + 3, "+Inf") == 0 ? INFINITY
		                                             : strtod(e->s[i].labels + 3, NULL);
		CHECK(le > prev_le, "le %s not ascending", e->s[i].labels);
		CHECK(e->s[i].value >= prev, "bucket %s = %g is below the one before (%g)",
		      e->s[i].labels, e->s[i].value, prev);
		prev_le = le;
		prev = e->s[i].value;
		if (isinf(le))
			inf = e->s[i].value;
		nb++;
	}
	CHECK(nb == 13, "13 buckets, got %zu", nb);
	CHECK(isinf(prev_le), "+Inf bucket last");
	CHECK(inf == expo_get(e, count, ""), "+Inf bucket %g = _count %g", inf,
	      expo_get(e, count, ""));
	CHECK(!isnan(expo_get(e, sum, "")), "_sum present");
}

/* --- tables --------------------------------------------------------------- */

enum ev_kind {
	EV_END,
	EV_ANSWER,
	EV_POINTER,
	EV_CHOICE,
	EV_UNANSWERED,
	EV_ALERT,
	EV_SYNC,
	EV_RELOAD,
	EV_LIMITED,
	EV_LATENCY,
};

struct event {
	enum ev_kind kind;
	const char *arg; /* intent or transport */
	double x;        /* seconds, or reload ok */
	int times;       /* repeat (0 means once) */
};

struct want {
	const char *name;
	const char *labels; /* unescaped, as expo_get compares */
	double value;       /* NAN: must be absent */
};

struct stats_case {
	const char *what;
	struct event ev[12];
	struct want want[16];
};

static const struct stats_case cases[] = {
    {"empty",
     {{EV_END, NULL, 0, 0}},
     {{"faqbot_up", "", 1},
      {"faqbot_choices_total", "", 0},
      {"faqbot_unanswered_total", "", 0},
      {"faqbot_flood_limited_total", "", 0},
      {"faqbot_reloads_total", "result=ok", 0},
      {"faqbot_reloads_total", "result=kept_old", 0},
      {"faqbot_reply_latency_seconds_count", "", 0},
      {"faqbot_reply_latency_seconds_bucket", "le=+Inf", 0},
      {"faqbot_answers_total", "intent=x", NAN},
      {NULL, NULL, 0}}},
    {"answers by intent",
     {{EV_ANSWER, "immunotherapy.what", 0, 3},
      {EV_ANSWER, "kidney.cure", 0, 0},
      {EV_POINTER, "kidney.cure", 0, 2},
      {EV_ALERT, "safety.crisis", 0, 0},
      {EV_END, NULL, 0, 0}},
     {{"faqbot_answers_total", "intent=immunotherapy.what", 3},
      {"faqbot_answers_total", "intent=kidney.cure", 1},
      {"faqbot_pointers_total", "intent=kidney.cure", 2},
      {"faqbot_pointers_total", "intent=immunotherapy.what", NAN},
      {"faqbot_safety_alerts_total", "intent=safety.crisis", 1},
      {"faqbot_answers_total", "intent=safety.crisis", NAN},
      {NULL, NULL, 0}}},
    {"plain counters",
     {{EV_CHOICE, NULL, 0, 4},
      {EV_UNANSWERED, NULL, 0, 7},
      {EV_LIMITED, NULL, 0, 2},
      {EV_RELOAD, NULL, 1, 3},
      {EV_RELOAD, NULL, 0, 1},
      {EV_SYNC, "matrix", 0, 5},
      {EV_SYNC, "irc", 0, 1},
      {EV_END, NULL, 0, 0}},
     {{"faqbot_choices_total", "", 4},
      {"faqbot_unanswered_total", "", 7},
      {"faqbot_flood_limited_total", "", 2},
      {"faqbot_reloads_total", "result=ok", 3},
      {"faqbot_reloads_total", "result=kept_old", 1},
      {"faqbot_sync_errors_total", "transport=matrix", 5},
      {"faqbot_sync_errors_total", "transport=irc", 1},
      {NULL, NULL, 0}}},
    {"latency buckets",
     {{EV_LATENCY, NULL, 0.0001, 0},
      {EV_LATENCY, NULL, 0.0005, 0}, /* on a bound: that bucket */
      {EV_LATENCY, NULL, 0.003, 2},
      {EV_LATENCY, NULL, 0.3, 0},
      {EV_LATENCY, NULL, 7.0, 0},
      {EV_LATENCY, NULL, -1.0, 0}, /* clock went back: counted as 0 */
      {EV_END, NULL, 0, 0}},
     {{"faqbot_reply_latency_seconds_bucket", "le=0.0005", 3},
      {"faqbot_reply_latency_seconds_bucket", "le=0.001", 3},
      {"faqbot_reply_latency_seconds_bucket", "le=0.005", 5},
      {"faqbot_reply_latency_seconds_bucket", "le=0.25", 5},
      {"faqbot_reply_latency_seconds_bucket", "le=0.5", 6},
      {"faqbot_reply_latency_seconds_bucket", "le=2.5", 6},
      {"faqbot_reply_latency_seconds_bucket", "le=+Inf", 7},
      {"faqbot_reply_latency_seconds_count", "", 7},
      {"faqbot_reply_latency_seconds_sum", "", 0.0001 + 0.0005 + 0.006 + 0.3 + 7.0},
      {NULL, NULL, 0}}},
    {"label escaping",
     {{EV_ANSWER, "we\"ird\\id\nx", 0, 0},
      {EV_SYNC, "a\\\"b", 0, 0},
      {EV_ANSWER, "", 0, 0},
      {EV_END, NULL, 0, 0}},
     {{"faqbot_answers_total", "intent=we\"ird\\id\nx", 1},
      {"faqbot_sync_errors_total", "transport=a\\\"b", 1},
      {"faqbot_answers_total", "intent=unknown", 1},
      {NULL, NULL, 0}}},
};

static void
apply(struct stats *s, const struct event *ev)
{
	for (; ev->kind != EV_END; ev++) {
		int i, n = ev->times ? ev->times : 1;

		for (i = 0; i < n; i++) {
			switch (ev->kind) {
			case EV_ANSWER:
				stats_answer(s, ev->arg);
				break;
			case EV_POINTER:
				stats_pointer(s, ev->arg);
				break;
			case EV_CHOICE:
				stats_choice(s);
				break;
			case EV_UNANSWERED:
				stats_unanswered(s);
				break;
			case EV_ALERT:
				stats_safety_alert(s, ev->arg);
				break;
			case EV_SYNC:
				stats_sync_error(s, ev->arg);
				break;
			case EV_RELOAD:
				stats_reload(s, ev->x != 0);
				break;
			case EV_LIMITED:
				stats_limited(s);
				break;
			case EV_LATENCY:
				stats_latency(s, ev->x);
				break;
			case EV_END:
				break;
			}
		}
	}
}

/* Every family the contract names, with its type. */
static void
check_families(struct expo *e)
{
	static const char *const fam[][2] = {
	    {"faqbot_up", "gauge"},
	    {"faqbot_answers_total", "counter"},
	    {"faqbot_pointers_total", "counter"},
	    {"faqbot_choices_total", "counter"},
	    {"faqbot_unanswered_total", "counter"},
	    {"faqbot_safety_alerts_total", "counter"},
	    {"faqbot_sync_errors_total", "counter"},
	    {"faqbot_reloads_total", "counter"},
	    {"faqbot_flood_limited_total", "counter"},
	    {"faqbot_reply_latency_seconds", "histogram"},
	};
	size_t i;

	for (i = 0; i < NELEM(fam); i++) {
		struct family *f = find_family(e, fam[i][0]);

		CHECK(f != NULL && strcmp(f->type, fam[i][1]) == 0 && f->help,
		      "%s: want TYPE %s and HELP", fam[i][0], fam[i][1]);
	}
}

static void
test_prometheus_table(void **state)
{
	size_t i, k;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(cases); i++) {
		struct stats *s = stats_new();
		struct buf out;
		struct expo e;

		apply(s, cases[i].ev);
		buf_init(&out);
		stats_prometheus(s, &out);
		if (!CHECK(expo_parse(&e, out.data) == 0, "%s: %s\n%s", cases[i].what, e.err,
		           out.data)) {
			free(e.s);
			buf_free(&out);
			stats_free(s);
			continue;
		}
		check_families(&e);
		check_histogram(&e, "faqbot_reply_latency_seconds");
		for (k = 0; cases[i].want[k].name != NULL; k++) {
			const struct want *w = &cases[i].want[k];
			double got = expo_get(&e, w->name, w->labels);

			if (isnan(w->value))
				CHECK(isnan(got), "%s: %s{%s} should be absent", cases[i].what,
				      w->name, w->labels);
			else
				CHECK(fabs(got - w->value) < 1e-9, "%s: %s{%s} = %g, want %g",
				      cases[i].what, w->name, w->labels, got, w->value);
		}
		free(e.s);
		buf_free(&out);
		stats_free(s);
	}
	CHECK_END();
}

/* The escaped forms, as text; and the reader itself rejects what it should. */
static void
test_prometheus_escaping(void **state)
{
	static const char *const bad[] = {
	    "",
	    "# TYPE x counter\nx 1",                    /* no final newline */
	    "x 1\n",                                    /* no TYPE */
	    "# TYPE x counter\nx{a=\"b} 1\n",           /* unterminated */
	    "# TYPE x counter\nx{a=\"\\t\"} 1\n",       /* bad escape */
	    "# TYPE x counter\nx  1\n",                 /* two spaces */
	    "# TYPE x counter\nx 1 2\n",                /* timestamp */
	    "# TYPE x counter\n# TYPE x gauge\nx 1\n",  /* TYPE twice */
	    "# TYPE 1x counter\n1x 1\n",                /* bad name */
	    "# TYPE x counter\nx{a=\"1\" b=\"2\"} 1\n", /* no comma */
	};
	struct stats *s = stats_new();
	struct buf out;
	struct expo e;
	size_t i;

	(void)state;
	stats_answer(s, "q\"uote");
	stats_answer(s, "back\\slash");
	stats_answer(s, "new\nline");
	buf_init(&out);
	stats_prometheus(s, &out);
	assert_non_null(strstr(out.data, "faqbot_answers_total{intent=\"q\\\"uote\"} 1\n"));
	assert_non_null(strstr(out.data, "faqbot_answers_total{intent=\"back\\\\slash\"} 1\n"));
	assert_non_null(strstr(out.data, "faqbot_answers_total{intent=\"new\\nline\"} 1\n"));
	assert_int_equal(expo_parse(&e, out.data), 0);
	free(e.s);
	buf_free(&out);
	stats_free(s);
	for (i = 0; i < NELEM(bad); i++) {
		int rc = expo_parse(&e, bad[i]);

		free(e.s);
		if (rc != -1)
			fail_msg("the reader accepted bad input %zu: %s", i, bad[i]);
	}
}

/* Any number of intents: each has its own sample, in a stable order. */
static void
test_many_intents(void **state)
{
	struct stats *s = stats_new();
	struct buf a, b;
	struct expo e;
	char id[32];
	int i;

	(void)state;
	for (i = 0; i < 1000; i++) {
		snprintf(id, sizeof(id), "intent.%d", (i * 7919) % 1000);
		stats_answer(s, id);
		if (i % 2)
			stats_answer(s, id);
	}
	buf_init(&a);
	buf_init(&b);
	stats_prometheus(s, &a);
	stats_prometheus(s, &b);
	assert_string_equal(a.data, b.data);
	assert_int_equal(expo_parse(&e, a.data), 0);
	assert_true(expo_get(&e, "faqbot_answers_total", "intent=intent.0") >= 1);
	assert_true(expo_get(&e, "faqbot_answers_total", "intent=intent.999") >= 1);
	{
		size_t k, n = 0;
		double total = 0;

		for (k = 0; k < e.n; k++)
			if (strcmp(e.s[k].name, "faqbot_answers_total") == 0) {
				n++;
				total += e.s[k].value;
			}
		assert_int_equal(n, 1000);
		assert_true(total == 1500);
	}
	free(e.s);
	buf_free(&a);
	buf_free(&b);
	stats_free(s);
}

static void
test_summary(void **state)
{
	struct stats *s = stats_new();
	struct buf out;
	const char *a, *b;

	(void)state;
	buf_init(&out);
	stats_summary(s, &out);
	assert_non_null(strstr(out.data, "Answers: 0"));
	assert_non_null(strstr(out.data, "none yet"));
	buf_reset(&out);
	stats_answer(s, "kidney.cure");
	stats_answer(s, "immunotherapy.what");
	stats_answer(s, "immunotherapy.what");
	stats_safety_alert(s, "safety.crisis");
	stats_safety_alert(s, "safety.crisis");
	stats_unanswered(s);
	stats_summary(s, &out);
	assert_non_null(strstr(out.data, "Answers: 3"));
	assert_non_null(strstr(out.data, "Unanswered: 1"));
	assert_non_null(strstr(out.data, "Safety alerts: 2"));
	a = strstr(out.data, "`immunotherapy.what` 2");
	b = strstr(out.data, "`kidney.cure` 1");
	assert_non_null(a);
	assert_non_null(b);
	assert_true(a < b); /* most answered first */
	assert_true(out.data[0] == '-');
	buf_free(&out);
	stats_free(s);
}

/* --- the file ------------------------------------------------------------- */

static void
test_save_load(void **state)
{
	struct stats *s = stats_new(), *t = stats_new();
	struct buf a, b;
	char dir[64], path[128];
	struct stat st;
	size_t i;

	(void)state;
	tmp_dir(dir);
	snprintf(path, sizeof(path), "%s/stats.json", dir);
	for (i = 0; i < NELEM(cases); i++)
		apply(s, cases[i].ev);
	assert_int_equal(stats_save(s, path), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	stats_answer(t, "stale"); /* loading replaces what was there */
	assert_int_equal(stats_load(t, path), 0);
	buf_init(&a);
	buf_init(&b);
	stats_prometheus(s, &a);
	stats_prometheus(t, &b);
	assert_string_equal(a.data, b.data);
	/* and it keeps counting from there */
	stats_answer(s, "kidney.cure");
	stats_answer(t, "kidney.cure");
	buf_reset(&a);
	buf_reset(&b);
	stats_summary(s, &a);
	stats_summary(t, &b);
	assert_string_equal(a.data, b.data);
	buf_free(&a);
	buf_free(&b);

	/* a missing file: 0, counters zero */
	snprintf(path, sizeof(path), "%s/none.json", dir);
	assert_int_equal(stats_load(t, path), 0);
	buf_init(&a);
	stats_summary(t, &a);
	assert_non_null(strstr(a.data, "Answers: 0"));
	buf_free(&a);
	/* an unwritable place: -1 */
	snprintf(path, sizeof(path), "%s/no/such/dir/stats.json", dir);
	assert_int_equal(stats_save(s, path), -1);
	stats_free(s);
	stats_free(t);
	tmp_remove(dir);
}

static void
test_load_corrupt(void **state)
{
	static const char *const bad[] = {
	    "not json",
	    "",
	    "{\"answers\": {\"x\": 1}",
	    "[]",
	    "42",
	    "{\"version\": 99}",
	    "{\"answers\": []}",
	    "{\"answers\": {\"x\": -1}}",
	    "{\"answers\": {\"x\": \"3\"}}",
	    "{\"answers\": {\"x\": 1.5}}",
	    "{\"answers\": {\"x\": 1e300}}",
	    "{\"choices\": true}",
	    "{\"sync_errors\": {\"matrix\": null}}",
	    "{\"latency\": {\"buckets\": [1, 2]}}",
	    "{\"latency\": {\"buckets\": [1,1,1,1,1,1,1,1,1,1,1,1,\"x\"]}}",
	    "{\"latency\": {\"sum\": -1}}",
	    "{\"latency\": 5}",
	    "{\"answers\": {\"a\": 1}, \"pointers\": {\"b\": {}}}",
	};
	struct stats *s = stats_new();
	char dir[64], path[128];
	struct buf out;
	size_t i;

	(void)state;
	tmp_dir(dir);
	snprintf(path, sizeof(path), "%s/stats.json", dir);
	check_begin();
	buf_init(&out);
	for (i = 0; i < NELEM(bad); i++) {
		tmp_write(dir, "stats.json", bad[i]);
		stats_answer(s, "before");
		errno = 0;
		CHECK(stats_load(s, path) == -1 && errno != 0, "accepted: %s", bad[i]);
		buf_reset(&out);
		stats_summary(s, &out);
		CHECK(strstr(out.data, "Answers: 0") != NULL, "counters not zero after: %s",
		      bad[i]);
	}
	/* and a good file after a bad one still loads */
	tmp_write(dir, "stats.json", "{\"answers\": {\"a\": 2}, \"unknown_key\": [1]}");
	CHECK(stats_load(s, path) == 0, "good file");
	buf_reset(&out);
	stats_summary(s, &out);
	CHECK(strstr(out.data, "Answers: 2") != NULL, "good file counted: %s", out.data);
	buf_free(&out);
	stats_free(s);
	tmp_remove(dir);
	CHECK_END();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prometheus_table), cmocka_unit_test(test_prometheus_escaping),
	    cmocka_unit_test(test_many_intents),     cmocka_unit_test(test_summary),
	    cmocka_unit_test(test_save_load),        cmocka_unit_test(test_load_corrupt),
	};

	stats_free(NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
