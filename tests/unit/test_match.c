/*
 * Unit tests for match.c: small intent sets are written to a scratch
 * directory and loaded with kb_load, as the bot loads intents/, then
 * messages are matched and the results checked against the scoring rules
 * of match.h and docs/intents.md: pattern weights, all-of groups, the
 * capped any-of bonus, vetoes, the question gate, priority tiers, ties,
 * silent intents, thresholds, the rooms' enabled lists, determinism, the
 * PCRE2 match limit, named captures and the explanation.
 *
 * Intent files are written in C strings with two shorthands, undone by
 * json_of(): ' stands for " and ~ for a regex backslash (\\ in JSON), so
 * '~bpalliative~b' is the JSON string "\\bpalliative\\b".
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "diag.h"
#include "helpers.h"
#include "kb.h"
#include "match.h"
#include "util.h"

/* Every response id the sets below may answer with (drafts of type info). */
static const char *const response_ids[] = {"a",
                                           "b",
                                           "c",
                                           "care.palliative",
                                           "care.hospice",
                                           "safety.emergency",
                                           "safety.crisis",
                                           "personal.stop",
                                           "drug.info"};

/* Expands the shorthands of the file comment into real JSON (caller frees). */
static char *
json_of(const char *s)
{
	struct buf b;

	buf_init(&b);
	for (; *s; s++) {
		if (*s == '\'')
			buf_putc(&b, '"');
		else if (*s == '~')
			buf_puts(&b, "\\\\");
		else
			buf_putc(&b, *s);
	}
	return buf_steal(&b);
}

/* A loaded set and the scratch directory it came from. */
struct set {
	char dir[64];
	struct kb *kb;
};

/*
 * Writes intents (shorthand JSON: the whole file) and the responses, then
 * loads them. Fails the test, printing the diagnostics, if the set does not
 * load.
 */
static void
set_load(struct set *s, const char *intents)
{
	char ipath[128], rpath[128], name[128], body[256];
	const char *ip[1], *rp[1];
	struct kb_source src = {.no_model = 1}; /* the rules alone */
	struct diag_list d;
	char *json = json_of(intents);
	size_t i;

	tmp_dir(s->dir);
	tmp_write(s->dir, "intents/set.json", json);
	free(json);
	for (i = 0; i < NELEM(response_ids); i++) {
		snprintf(name, sizeof(name), "responses/%s.md", response_ids[i]);
		snprintf(body, sizeof(body),
		         "---\nid: %s\ntype: info\nstatus: draft\n---\nThe answer %s.\n",
		         response_ids[i], response_ids[i]);
		tmp_write(s->dir, name, body);
	}
	snprintf(ipath, sizeof(ipath), "%s/intents", s->dir);
	snprintf(rpath, sizeof(rpath), "%s/responses", s->dir);
	ip[0] = ipath;
	rp[0] = rpath;
	src.intent_paths = ip;
	src.nintent = 1;
	src.response_paths = rp;
	src.nresponse = 1;
	src.partial = 1; /* sets of a few intents, without the safety ones */
	diag_list_init(&d);
	s->kb = kb_load(&src, &d);
	if (s->kb == NULL) {
		diag_print(&d, stderr, DIAG_WARNING);
		diag_list_free(&d);
		tmp_remove(s->dir);
		fail_msg("the intent set did not load");
	}
	diag_list_free(&d);
}

static void
set_free(struct set *s)
{
	kb_free(s->kb);
	tmp_remove(s->dir);
}

/* What one message must give. */
struct probe {
	const char *msg;
	const char *want;     /* the intent answered, or NULL */
	double score;         /* its points */
	int ambiguous;        /* res.ambiguous */
	const char *other;    /* an intent that must be among the alternatives */
	const char *silenced; /* res.silenced_by, or NULL */
};

struct match_case {
	const char *name;
	const char *intents; /* shorthand JSON */
	struct probe p[8];
};

static const struct match_case match_cases[] = {
    {"a pattern scores its weight; the best pattern counts, not the sum",
     "{'intents': ["
     " {'id': 'a', 'patterns': ['~bpalliative~b', '~bcare~b']},"
     " {'id': 'b', 'patterns': [{'regex': '~bhospice~b', 'weight': 0.8}]}]}",
     {{"what is palliative care?", "a", 1.0, 0, NULL, NULL},
      {"what is a hospice?", "b", 0.8, 0, NULL, NULL},
      {"is a hospice the same as palliative care?", "a", 1.0, 0, "b", NULL},
      {"what is radiotherapy?", NULL, 0, 0, NULL, NULL}}},

    {"all-of groups give points only when every group has a word",
     "{'intents': ["
     " {'id': 'a', 'keywords': {'all': [['kidney', 'renal'], 'cur*', ['spread*', "
     "'metastatic']]}},"
     " {'id': 'b', 'patterns': ['~bmarrow~b'], 'keywords': {'all': [['bone', 'bones']], "
     "'weight': 0.5}}]}",
     {{"can kidney cancer be cured if it spreads?", "a", 0.75, 0, NULL, NULL},
      {"is renal cancer curable once metastatic?", "a", 0.75, 0, NULL, NULL},
      {"can kidney cancer be cured?", NULL, 0, 0, NULL, NULL},
      {"is bone marrow affected?", "b", 1.5, 0, NULL, NULL},
      {"is marrow affected?", "b", 1.0, 0, NULL, NULL},
      {"is the bone cancer spreading?", "b", 0.5, 0, NULL, NULL},
      {"is the cancer spreading?", NULL, 0, 0, NULL, NULL}}},

    {"the any-of bonus needs other evidence and is capped at three words",
     "{'intents': [{'id': 'a', 'patterns': ['~bpalliative~b'],"
     " 'keywords': {'any': ['hope', 'comfort', 'pain', 'family', 'home']}}]}",
     {{"what is palliative care?", "a", 1.0, 0, NULL, NULL},
      {"can palliative care help with pain?", "a", 1.1, 0, NULL, NULL},
      {"does palliative care help pain at home?", "a", 1.2, 0, NULL, NULL},
      {"is palliative about hope, comfort, pain, family and home?", "a", 1.3, 0, NULL, NULL},
      {"pain pain pain, is that palliative?", "a", 1.1, 0, NULL, NULL},
      {"is there hope and comfort and pain relief?", NULL, 0, 0, NULL, NULL}}},

    {"none-of keywords and not_patterns rule an intent out",
     "{'intents': ["
     " {'id': 'a', 'patterns': ['~bpalliative~b'], 'keywords': {'none': ['nurse']},"
     "  'not_patterns': ['~bpalliative team (?:is|was) (?:lovely|great)~b']},"
     " {'id': 'b', 'patterns': [{'regex': '~bpalliative~b', 'weight': 0.6}]}]}",
     {{"what does palliative care mean?", "a", 1.0, 0, "b", NULL},
      {"what does the palliative nurse do?", "b", 0.6, 0, NULL, NULL},
      {"why is the palliative team so great?", "a", 1.0, 0, NULL, NULL},
      {"isn't the palliative team great?", "a", 1.0, 0, NULL, NULL},
      {"who knew the palliative team was lovely?", "b", 0.6, 0, NULL, NULL}}},

    {"intents answer questions not put to another member, unless they say not to",
     "{'intents': ["
     " {'id': 'a', 'patterns': ['~bpalliative~b']},"
     " {'id': 'safety.emergency', 'priority': 100, 'needs_question': false,"
     "  'patterns': ['~bcannot breathe~b']}]}",
     {{"palliative care is hard", NULL, 0, 0, NULL, NULL},
      {"what is palliative care", "a", 1.0, 0, NULL, NULL},
      {"how is your palliative care going Mike?", NULL, 0, 0, NULL, NULL},
      {"i cannot breathe", "safety.emergency", 1.0, 0, NULL, NULL},
      {"Mike I cannot breathe", "safety.emergency", 1.0, 0, NULL, NULL}}},

    {"a higher priority wins whatever the scores",
     "{'intents': ["
     " {'id': 'safety.emergency', 'priority': 100, 'needs_question': false,"
     "  'patterns': [{'regex': '~bchest pain~b', 'weight': 0.6}]},"
     " {'id': 'personal.stop', 'priority': 50, 'patterns': [{'regex': '~bshould i~b', "
     "'weight': 0.6}]},"
     " {'id': 'a', 'patterns': [{'regex': '~b(?:pain|immunotherapy)~b', 'weight': 2}],"
     "  'keywords': {'all': [['immunotherapy', 'pain']]}}]}",
     {{"is chest pain normal on immunotherapy?", "safety.emergency", 0.6, 0, "a", NULL},
      {"should i stop immunotherapy?", "personal.stop", 0.6, 0, "a", NULL},
      {"is pain normal on immunotherapy?", "a", 2.25, 0, NULL, NULL},
      {"should i worry about chest pain?", "safety.emergency", 0.6, 0, "personal.stop", NULL}}},

    {"ties and near ties are ambiguous and carry both",
     "{'intents': ["
     " {'id': 'a', 'patterns': ['~bscan~b']},"
     " {'id': 'b', 'patterns': ['~bscan~b', {'regex': '~bresults?~b', 'weight': 0.9}]},"
     " {'id': 'c', 'patterns': [{'regex': '~bresults?~b', 'weight': 0.8}]}]}",
     {{"what does a scan show?", "a", 1.0, 1, "b", NULL},
      {"what do my results mean?", "b", 0.9, 1, "c", NULL}}},

    {"a silent intent that wins keeps the bot quiet",
     "{'intents': ["
     " {'id': 'chat.hello', 'priority': 60, 'silent': true, 'patterns': ['~bhow are you~b']},"
     " {'id': 'a', 'patterns': ['~bhow~b']}]}",
     {{"how are you?", NULL, 0, 0, NULL, "chat.hello"},
      {"how does it work?", "a", 1.0, 0, NULL, NULL}}},

    {"below the threshold nothing answers; min_score overrides it",
     "{'intents': ["
     " {'id': 'a', 'patterns': [{'regex': '~bscan~b', 'weight': 0.4}]},"
     " {'id': 'b', 'min_score': 0.3, 'patterns': [{'regex': '~bbiopsy~b', 'weight': 0.4}]},"
     " {'id': 'c', 'min_score': 2, 'patterns': ['~bmarker~b']}]}",
     {{"what does a scan show?", NULL, 0, 0, NULL, NULL},
      {"what does a biopsy show?", "b", 0.4, 0, NULL, NULL},
      {"what is a tumour marker?", NULL, 0, 0, NULL, NULL}}},

    {"patterns see the normalised text: synonyms, classes and spelling",
     "{'synonyms': {'stage 4': ['stage iv', 'stage four'], 'nivolumab': ['opdivo']},"
     " 'vocabulary': ['immunotherapy'],"
     " 'classes': {'cure': ['curable', 'cur*', 'remission']},"
     " 'intents': ["
     "  {'id': 'a', 'patterns': ['~bstage 4~b.*~b@{cure}~b']},"
     "  {'id': 'b', 'patterns': ['~bimmunotherapy~b'], 'keywords': {'all': ['@cure']}}]}",
     {{"Is Stage IV curable?", "a", 1.0, 0, NULL, NULL},
      {"stage four, can it be cured?", "a", 1.0, 0, NULL, NULL},
      {"can imunotherapy lead to remission?", "b", 1.25, 0, NULL, NULL},
      {"is stage 4 procurable?", NULL, 0, 0, NULL, NULL}}},
};

static void
check_probe(const struct match_case *c, const struct probe *p, const struct match_result *r)
{
	const char *got = r->intent ? r->intent->id : NULL;
	size_t i;
	int found;

	CHECK((got == NULL && p->want == NULL) || (got && p->want && strcmp(got, p->want) == 0),
	      "[%s] \"%s\": answered by %s, want %s", c->name, p->msg, got ? got : "nothing",
	      p->want ? p->want : "nothing");
	if (p->want && got && strcmp(got, p->want) == 0)
		CHECK(fabs(r->score - p->score) < 1e-9, "[%s] \"%s\": %.4f points, want %.4f",
		      c->name, p->msg, r->score, p->score);
	CHECK(r->ambiguous == p->ambiguous, "[%s] \"%s\": ambiguous is %d, want %d", c->name,
	      p->msg, r->ambiguous, p->ambiguous);
	if (p->other) {
		for (found = 0, i = 0; i < r->nalt; i++)
			found |= strcmp(r->alt[i].intent->id, p->other) == 0;
		CHECK(found, "[%s] \"%s\": %s is not among the %zu alternatives", c->name, p->msg,
		      p->other, r->nalt);
	}
	if (p->ambiguous && p->other && r->nalt > 0)
		CHECK(strcmp(r->alt[0].intent->id, p->other) == 0 &&
		          fabs(r->alt[0].score - r->score) < 0.15,
		      "[%s] \"%s\": the runner-up should be %s", c->name, p->msg, p->other);
	CHECK((r->silenced_by == NULL && p->silenced == NULL) ||
	          (r->silenced_by && p->silenced && strcmp(r->silenced_by->id, p->silenced) == 0),
	      "[%s] \"%s\": silenced by %s, want %s", c->name, p->msg,
	      r->silenced_by ? r->silenced_by->id : "nothing",
	      p->silenced ? p->silenced : "nothing");
	/* alternatives are ranked and never repeat the winner */
	for (i = 0; i < r->nalt; i++) {
		CHECK(r->alt[i].intent != r->intent, "[%s] \"%s\": winner among alternatives",
		      c->name, p->msg);
		if (i > 0 && r->alt[i].intent->priority == r->alt[i - 1].intent->priority)
			CHECK(r->alt[i].score <= r->alt[i - 1].score,
			      "[%s] \"%s\": alternatives out "
			      "of order",
			      c->name, p->msg);
	}
}

static void
test_match_table(void **state)
{
	struct match_ctx *ctx = match_ctx_new();
	struct match_opts o;
	struct match_result r;
	size_t i, j;

	(void)state;
	check_begin();
	match_opts_default(&o);
	for (i = 0; i < NELEM(match_cases); i++) {
		const struct match_case *c = &match_cases[i];
		struct set s;

		set_load(&s, c->intents);
		for (j = 0; j < NELEM(c->p) && c->p[j].msg; j++) {
			const struct probe *p = &c->p[j];

			match_run(ctx, s.kb, &o, p->msg, strlen(p->msg), &r, NULL);
			check_probe(c, p, &r);
		}
		set_free(&s);
	}
	match_ctx_free(ctx);
	CHECK_END();
}

/*
 * The literal prefilter only skips patterns that cannot match: for every
 * pattern and message, the intent answers exactly when PCRE2 itself finds
 * the pattern in the normalised text.
 */
static void
test_prefilter_agrees_with_pcre2(void **state)
{
	static const char *const patterns[] = {
	    "colou?r",
	    "~b(?:chemo|radio)therapy~b",
	    "x{2}ray",
	    "a~x{62}c",
	    "[Cc]ure",
	    "~bcur(?:e|able)~b",
	    "(?=.*~bpain~b)(?=.*~bchest~b)",
	    "~bstage [34]~b",
	    "scan(?!ner)",
	    "~bside~s+effects?~b",
	    "(?i:KIDNEY)",
	    "~bcan ?cer~b",
	    "~bÉTAPE~b",
	    "~N{U+00E9}tape",
	    "^what~b",
	    "~?$",
	    "~d+(?:st|nd|rd|th)~b",
	    "~bre-?occur",
	    "~bΟΔΟΣ~b",
	    "~x{3a3}",
	    "(?:can|could) (?:it|they) be cur",
	    "~b(?:a|b)~b",
	    "[^a-z ]",
	};
	static const char *const msgs[] = {
	    "what colour is it",
	    "what color",
	    "chemotherapy and radiotherapy",
	    "xxray",
	    "abc",
	    "a.b",
	    "Cure",
	    "is it curable",
	    "chest pain and more pain",
	    "pain in my chest",
	    "stage 3 or stage 4",
	    "scanner",
	    "scan",
	    "side   effects",
	    "side effect",
	    "KIDNEY",
	    "can cer",
	    "cancer",
	    "ÉTAPE",
	    "étape deux",
	    "what now",
	    "now what?",
	    "4th round",
	    "reoccur",
	    "re-occur",
	    "ΟΔΟΣ",
	    "οδος",
	    "can it be cured",
	    "a or b",
	    "4",
	};
	struct match_ctx *ctx = match_ctx_new();
	pcre2_match_data *md = pcre2_match_data_create(4, NULL);
	struct match_opts o;
	struct match_result r;
	size_t i, j, erroff, matched = 0;
	char json[512], *err, *rx;

	(void)state;
	check_begin();
	match_opts_default(&o);
	for (i = 0; i < NELEM(patterns); i++) {
		struct set s;
		pcre2_code *code;

		snprintf(json, sizeof(json),
		         "{'intents': [{'id': 'a', 'needs_question': false, 'patterns': ['%s']}]}",
		         patterns[i]);
		set_load(&s, json);
		rx = json_of(patterns[i]);
		/* the JSON escape \\ is one backslash in the regex */
		{
			char *p, *q;

			for (p = q = rx; *p; p++, q++) {
				if (p[0] == '\\' && p[1] == '\\')
					p++;
				*q = *p;
			}
			*q = '\0';
		}
		code = intent_compile(rx, s.kb->lx, NULL, &err, &erroff);
		assert_non_null(code);
		for (j = 0; j < NELEM(msgs); j++) {
			const char *norm;
			int want;

			match_run(ctx, s.kb, &o, msgs[j], strlen(msgs[j]), &r, NULL);
			norm = match_normalised(ctx);
			want =
			    pcre2_match(code, (PCRE2_SPTR)norm, strlen(norm), 0, 0, md, NULL) >= 0;
			matched += want;
			CHECK(want == (r.intent != NULL),
			      "pattern /%s/ on \"%s\" (normalised \"%s\"): PCRE2 says %s, the "
			      "matcher "
			      "%s",
			      rx, msgs[j], norm, want ? "match" : "no match",
			      r.intent ? "answers" : "does not answer");
		}
		pcre2_code_free(code);
		free(rx);
		set_free(&s);
	}
	/* the table is only worth something if it has matches to lose */
	CHECK(matched >= 30, "only %zu pattern/message pairs match", matched);
	pcre2_match_data_free(md);
	match_ctx_free(ctx);
	CHECK_END();
}

/* The configured threshold and margin are what decide. */
static void
test_threshold_and_margin_options(void **state)
{
	struct match_ctx *ctx = match_ctx_new();
	struct match_opts o;
	struct match_result r;
	struct set s;
	const char *m = "what do my scan results mean?";

	(void)state;
	set_load(&s, "{'intents': ["
	             " {'id': 'a', 'patterns': ['~bscan~b']},"
	             " {'id': 'b', 'patterns': [{'regex': '~bresults~b', 'weight': 0.7}]}]}");
	match_opts_default(&o);
	match_run(ctx, s.kb, &o, m, strlen(m), &r, NULL);
	assert_non_null(r.intent);
	assert_string_equal(r.intent->id, "a");
	assert_false(r.ambiguous); /* 1.0 against 0.7 */
	o.margin = 0.5;
	match_run(ctx, s.kb, &o, m, strlen(m), &r, NULL);
	assert_true(r.ambiguous);
	assert_string_equal(r.alt[0].intent->id, "b");
	o.threshold = 1.5;
	match_run(ctx, s.kb, &o, m, strlen(m), &r, NULL);
	assert_null(r.intent);
	assert_int_equal(r.nalt, 0);
	set_free(&s);
	match_ctx_free(ctx);
}

/* A room's "intents" list: only those answer, but safety.* always does. */
static void
test_enabled_filter(void **state)
{
	static const struct {
		const char *enabled[3];
		size_t n;
		const char *msg;
		const char *want;
	} cases[] = {
	    {{"care.hospice"}, 1, "what is palliative care?", NULL},
	    {{"care.hospice"}, 1, "what is a hospice?", "care.hospice"},
	    {{"care.*"}, 1, "what is palliative care?", "care.palliative"},
	    {{"care.palliative"}, 1, "I want to end my life", "safety.crisis"},
	    {{"care.hospice", "care.palliative"}, 2, "what is palliative care?", "care.palliative"},
	    {{"safety.crisis"}, 0, "I want to end my life", "safety.crisis"},
	    {{"safety.crisis"}, 0, "what is palliative care?", NULL},
	    {{"care"}, 1, "what is palliative care?", NULL},
	};
	struct match_ctx *ctx = match_ctx_new();
	struct match_opts o;
	struct match_result r;
	struct set s;
	size_t i;

	(void)state;
	check_begin();
	set_load(&s, "{'intents': ["
	             " {'id': 'care.palliative', 'patterns': ['~bpalliative~b']},"
	             " {'id': 'care.hospice', 'patterns': ['~bhospice~b']},"
	             " {'id': 'safety.crisis', 'priority': 100, 'needs_question': false,"
	             "  'patterns': ['~bend my life~b']}]}");
	for (i = 0; i < NELEM(cases); i++) {
		const char *got;

		match_opts_default(&o);
		o.enabled = cases[i].enabled;
		o.nenabled = cases[i].n;
		match_run(ctx, s.kb, &o, cases[i].msg, strlen(cases[i].msg), &r, NULL);
		got = r.intent ? r.intent->id : NULL;
		CHECK((got == NULL && cases[i].want == NULL) ||
		          (got && cases[i].want && strcmp(got, cases[i].want) == 0),
		      "case %zu (\"%s\"): answered by %s, want %s", i, cases[i].msg,
		      got ? got : "nothing", cases[i].want ? cases[i].want : "nothing");
	}
	set_free(&s);
	match_ctx_free(ctx);
	CHECK_END();
}

/* The same message always gives the same result, whatever came before. */
static void
test_deterministic(void **state)
{
	static const char *const msgs[] = {"what does a scan show?", "what is palliative care?",
	                                   "scan results for palliative?", "hello"};
	struct match_ctx *c1 = match_ctx_new(), *c2 = match_ctx_new();
	struct match_opts o;
	struct match_result first[NELEM(msgs)], r;
	struct set s;
	size_t i, k;

	(void)state;
	check_begin();
	set_load(&s,
	         "{'intents': ["
	         " {'id': 'a', 'patterns': ['~bscan~b', '~bpalliative~b']},"
	         " {'id': 'b', 'patterns': ['~bscan~b', {'regex': '~bresults~b', 'weight': 0.9}]},"
	         " {'id': 'c', 'patterns': ['~bpalliative~b']}]}");
	match_opts_default(&o);
	for (i = 0; i < NELEM(msgs); i++)
		match_run(c1, s.kb, &o, msgs[i], strlen(msgs[i]), &first[i], NULL);
	for (k = 0; k < 200; k++) {
		i = (k * 7) % NELEM(msgs);
		match_run(k % 2 ? c1 : c2, s.kb, &o, msgs[i], strlen(msgs[i]), &r, NULL);
		CHECK(r.intent == first[i].intent && r.score == first[i].score &&
		          r.ambiguous == first[i].ambiguous && r.nalt == first[i].nalt &&
		          (r.nalt == 0 || r.alt[0].intent == first[i].alt[0].intent),
		      "run %zu of \"%s\" differs from the first", k, msgs[i]);
	}
	set_free(&s);
	match_ctx_free(c1);
	match_ctx_free(c2);
	CHECK_END();
}

/* A pattern that backtracks catastrophically is stopped by the match limit. */
static void
test_match_limit(void **state)
{
	struct match_ctx *ctx = match_ctx_new();
	struct match_opts o;
	struct match_result r;
	struct buf ex;
	struct set s;
	size_t n = 12000, i;
	char *m = malloc(n + 2);
	double t0, el;

	(void)state;
	assert_non_null(m);
	for (i = 0; i < n; i++)
		m[i] = 'a';
	m[n] = 'b';
	m[n + 1] = '\0';
	set_load(&s, "{'intents': ["
	             " {'id': 'a', 'needs_question': false, 'patterns': ['(a+)+$']},"
	             " {'id': 'b', 'needs_question': false, 'patterns': ['(?:x|xx)+y']}]}");
	match_opts_default(&o);
	buf_init(&ex);
	t0 = seconds_now();
	match_run(ctx, s.kb, &o, m, n + 1, &r, &ex);
	el = seconds_now() - t0;
	assert_null(r.intent);
	assert_true(r.limit_hits >= 1);
	assert_true(el < 2.0);
	assert_true(has(ex.data, "stopped at the match limit"));
	/* the context is still good for the next message */
	match_run(ctx, s.kb, &o, "aaa", 3, &r, NULL);
	assert_non_null(r.intent);
	assert_string_equal(r.intent->id, "a");
	assert_int_equal(r.limit_hits, 0);
	/* the other runaway pattern too */
	for (i = 0; i < 40; i++)
		m[i] = 'x';
	t0 = seconds_now();
	match_run(ctx, s.kb, &o, m, 40, &r, NULL);
	assert_true(seconds_now() - t0 < 2.0);
	assert_null(r.intent);
	buf_free(&ex);
	free(m);
	set_free(&s);
	match_ctx_free(ctx);
}

/* Named groups of the winning pattern reach the result, for {{capture.NAME}}. */
static void
test_captures(void **state)
{
	struct match_ctx *ctx = match_ctx_new();
	struct match_opts o;
	struct match_result r;
	struct set s;
	const char *m = "what are the side effects of Opdivo?";

	(void)state;
	set_load(&s, "{'synonyms': {'nivolumab': ['opdivo']}, 'intents': ["
	             " {'id': 'drug.info', 'patterns': "
	             "['~bside effects? of (?<drug>pembrolizumab|nivolumab)(?<never>xyz)?~b']}]}");
	match_opts_default(&o);
	match_run(ctx, s.kb, &o, m, strlen(m), &r, NULL);
	assert_non_null(r.intent);
	assert_string_equal(r.intent->id, "drug.info");
	assert_int_equal(r.ncap, 1); /* an unset group is not reported */
	assert_string_equal(r.cap_name[0], "drug");
	assert_string_equal(r.cap_value[0], "nivolumab");
	/* a message that answers nothing carries no captures */
	match_run(ctx, s.kb, &o, "hello", 5, &r, NULL);
	assert_null(r.intent);
	assert_int_equal(r.ncap, 0);
	set_free(&s);
	match_ctx_free(ctx);
}

/* The explanation names the normalised text, the pattern that fired, vetoes and the result. */
static void
test_explain(void **state)
{
	struct match_ctx *ctx = match_ctx_new();
	struct match_opts o;
	struct match_result r;
	struct buf ex;
	struct set s;
	const char *m1 = "What's palliative care for?";
	const char *m2 = "what does the palliative nurse do?";

	(void)state;
	set_load(&s, "{'intents': ["
	             " {'id': 'care.palliative', 'patterns': ['~bhospice~b', '~bpalliative~b'],"
	             "  'keywords': {'all': [['care']], 'none': ['nurse']}}]}");
	match_opts_default(&o);
	buf_init(&ex);
	match_run(ctx, s.kb, &o, m1, strlen(m1), &r, &ex);
	assert_non_null(r.intent);
	if (!has(ex.data, "normalised: \"whats palliative care for ?\"") ||
	    !has(ex.data, "pattern 2 /\\bpalliative\\b/ +1.00") || !has(ex.data, "[care]") ||
	    !has(ex.data, "result: care.palliative (1.25)"))
		fail_msg("explanation lacks the pattern, the group or the result:\n%s", ex.data);
	buf_free(&ex);
	match_run(ctx, s.kb, &o, m2, strlen(m2), &r, &ex);
	assert_null(r.intent);
	if (!has(ex.data, "ruled out by none-of keyword \"nurse\"") ||
	    !has(ex.data, "result: no answer"))
		fail_msg("explanation lacks the veto:\n%s", ex.data);
	buf_free(&ex);
	set_free(&s);
	match_ctx_free(ctx);
}

/* Hostile messages: empty, NUL bytes, invalid UTF-8, huge; never a crash. */
static void
test_hostile_messages(void **state)
{
	struct match_ctx *ctx = match_ctx_new();
	struct match_opts o;
	struct match_result r;
	struct set s;
	size_t big = 1u << 20;
	char *m = malloc(big);
	double t0;

	(void)state;
	assert_non_null(m);
	set_load(&s, "{'intents': [{'id': 'a', 'patterns': ['~bpalliative~b']}]}");
	match_opts_default(&o);
	match_run(ctx, s.kb, &o, "what is\0palliative?", 19, &r, NULL);
	assert_non_null(r.intent);
	match_run(ctx, s.kb, &o, "what is \xff\xfe palliative?", 22, &r, NULL);
	assert_non_null(r.intent);
	assert_true(r.text_flags & TEXT_INVALID_UTF8);
	memset(m, 'x', big);
	memcpy(m, "what is palliative? ", 20);
	t0 = seconds_now();
	match_run(ctx, s.kb, &o, m, big, &r, NULL);
	assert_true(seconds_now() - t0 < 1.0);
	assert_non_null(r.intent);
	assert_true(r.text_flags & TEXT_TRUNCATED);
	free(m);
	set_free(&s);
	match_ctx_free(ctx);
}

/*
 * The first message a context sees has no words (a lone emoji): the
 * normalised text must read "", and the explanation must not read past it.
 * (Kept last: when it fails, ASan ends the run.)
 */
static void
test_first_message_without_words(void **state)
{
	struct match_ctx *ctx = match_ctx_new();
	struct match_opts o;
	struct match_result r;
	struct set s;
	const char *norm;

	(void)state;
	check_begin();
	set_load(&s, "{'intents': [{'id': 'a', 'patterns': ['~bpalliative~b']}]}");
	match_opts_default(&o);
	match_run(ctx, s.kb, &o, "\xf0\x9f\x91\x8d", 4, &r, NULL);
	CHECK(r.intent == NULL, "a lone emoji is answered");
	norm = match_normalised(ctx);
	CHECK(memchr(norm, '\0', 1) != NULL,
	      "match_normalised() after a message without words is not \"\"");
	set_free(&s);
	match_ctx_free(ctx);
	CHECK_END();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_match_table),
	    cmocka_unit_test(test_prefilter_agrees_with_pcre2),
	    cmocka_unit_test(test_threshold_and_margin_options),
	    cmocka_unit_test(test_enabled_filter),
	    cmocka_unit_test(test_deterministic),
	    cmocka_unit_test(test_match_limit),
	    cmocka_unit_test(test_captures),
	    cmocka_unit_test(test_explain),
	    cmocka_unit_test(test_hostile_messages),
	    cmocka_unit_test(test_first_message_without_words),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
