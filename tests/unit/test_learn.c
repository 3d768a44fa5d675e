/*
 * Unit tests for the learned layer (learn.c), its training from labelled
 * files (kb.c), its place behind the rules (match.c) and cross-validation
 * (evaluate.c). A small set is written to a scratch directory: intents
 * whose rules catch one phrase each, and a labelled/ directory beside them
 * with messages in other words, so that what the rules miss shows what the
 * model adds.
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
#include "evaluate.h"
#include "helpers.h"
#include "kb.h"
#include "learn.h"
#include "match.h"
#include "text.h"
#include "util.h"

static const char intents_json[] =
    "{\"intents\": [\n"
    " {\"id\": \"safety.emergency\", \"response\": \"safety.emergency\", \"priority\": 100,\n"
    "  \"needs_question\": false, \"patterns\": [\"\\\\bcannot breathe\\\\b\"]},\n"
    " {\"id\": \"safety.crisis\", \"response\": \"safety.crisis\", \"priority\": 100,\n"
    "  \"needs_question\": false, \"patterns\": [\"\\\\bkill myself\\\\b\"]},\n"
    " {\"id\": \"palliative\", \"response\": \"palliative\",\n"
    "  \"patterns\": [\"\\\\bwhat is palliative care\\\\b\"],\n"
    "  \"examples\": [\"what is palliative care?\"]},\n"
    " {\"id\": \"hospice\", \"response\": \"hospice\",\n"
    "  \"patterns\": [\"\\\\bwhat is a hospice\\\\b\"],\n"
    "  \"examples\": [\"what is a hospice?\"],\n"
    "  \"counter_examples\": [\"what is palliative care, is it like a hospice?\"]},\n"
    " {\"id\": \"chatter\", \"silent\": true, \"patterns\": [\"\\\\bgood morning\\\\b\"],\n"
    "  \"examples\": [\"good morning everyone\"]}\n"
    "]}\n";

/* Labelled messages: several wordings of each, none caught by the rules. */
static const char labelled_tsv[] =
    "intent\tmessage\n"
    "# comments and blank lines are allowed\n"
    "\n"
    "safety.crisis\ti want to end it all tonight\n"
    "safety.crisis\ti dont want to live anymore\n"
    "safety.crisis\tthere is no point going on, i want to die\n"
    "safety.crisis\ti have saved my pills and i want to end my life\n"
    "safety.crisis\teveryone would be better off if i was dead\n"
    "safety.crisis\ti want to die, i cant go on\n"
    "safety.crisis\tmy dad says he wants to end his life\n"
    "safety.crisis\twriting goodbye letters, i want to die tonight\n"
    "safety.emergency\tmy husband is struggling to breathe and his lips are blue\n"
    "safety.emergency\ther chest pain is crushing and she is sweating\n"
    "safety.emergency\tthe bleeding will not stop and he is pale\n"
    "safety.emergency\tshe is having a seizure right now\n"
    "safety.emergency\tmum collapsed and we cannot wake her\n"
    "safety.emergency\tfever of 39 on chemo and shaking\n"
    "safety.emergency\the is gasping for breath and going grey\n"
    "safety.emergency\tblood everywhere, bleeding from his port, will not stop\n"
    "palliative\tdoes palliative care mean giving up?\n"
    "palliative\tis palliative care only for the last days?\n"
    "palliative\tcan you get palliative care alongside chemo?\n"
    "palliative\twhat do the palliative team do?\n"
    "palliative\twhy would they offer palliative care so early?\n"
    "palliative\tis palliative the same as end of life care?\n"
    "hospice\thow does a hospice work?\n"
    "hospice\tcan you stay at a hospice for long?\n"
    "hospice\tdo you pay for a hospice?\n"
    "hospice\twhat happens in a hospice?\n"
    "hospice\tcan you go home from a hospice?\n"
    "hospice\tis a hospice just for dying people?\n"
    "null\tthanks everyone, feeling a bit better today\n"
    "null\tscan was stable, so happy\n"
    "null\thad a lovely walk with the dog\n"
    "null\tthis waiting room is killing me lol\n"
    "null\tdying for a cup of tea\n"
    "null\tsee you all at the meetup on friday\n"
    "null\tthe nurses were lovely today\n"
    "null\tsending love to everyone here\n"
    "null\thow was your scan mike?\n"
    "null\tmy cat is asleep on my feet\n";

/* A set on disk and the kb loaded from it. */
struct set {
	char dir[64];
	struct kb *kb;
};

static void
set_write(struct set *s, const char *tsv)
{
	static const char *const ids[] = {"safety.emergency", "safety.crisis", "palliative",
	                                  "hospice"};
	char name[128], body[256];
	size_t i;

	tmp_dir(s->dir);
	tmp_write(s->dir, "intents/set.json", intents_json);
	for (i = 0; i < NELEM(ids); i++) {
		snprintf(name, sizeof(name), "responses/%s.md", ids[i]);
		snprintf(body, sizeof(body),
		         "---\nid: %s\ntype: %s\nstatus: draft\n---\nThe answer %s.\n", ids[i],
		         strncmp(ids[i], "safety.", 7) == 0 ? "safety" : "info", ids[i]);
		tmp_write(s->dir, name, body);
	}
	if (tsv != NULL)
		tmp_write(s->dir, "labelled/rows.tsv", tsv);
}

/* Loads the set written by set_write; diags get the problems. */
static struct kb *
set_load(struct set *s, int keep_rows, struct diag_list *d)
{
	char ipath[128], rpath[128];
	const char *ip[1], *rp[1];
	static const char *const names[] = {"faqbot", NULL};
	struct kb_source src = {0};

	snprintf(ipath, sizeof(ipath), "%s/intents", s->dir);
	snprintf(rpath, sizeof(rpath), "%s/responses", s->dir);
	ip[0] = ipath;
	rp[0] = rpath;
	src.intent_paths = ip;
	src.nintent = 1;
	src.response_paths = rp;
	src.nresponse = 1;
	src.keep_rows = keep_rows;
	src.bot_names = names;
	return kb_load(&src, d);
}

static void
set_open(struct set *s, int keep_rows)
{
	struct diag_list d;

	set_write(s, labelled_tsv);
	diag_list_init(&d);
	s->kb = set_load(s, keep_rows, &d);
	if (s->kb == NULL) {
		diag_print(&d, stderr, DIAG_WARNING);
		diag_list_free(&d);
		tmp_remove(s->dir);
		fail_msg("the set did not load");
	}
	diag_list_free(&d);
}

static void
set_close(struct set *s)
{
	kb_free(s->kb);
	tmp_remove(s->dir);
}

/* The features of text, normalised with kb's lexicon (or none). */
static size_t
features_of(const struct learn_model *m, const char *text, const char *const *names,
            uint32_t *feat)
{
	struct text_norm n;
	size_t nf;

	text_norm_init(&n);
	text_normalise(NULL, names, text, strlen(text), &n);
	nf = learn_features(m, &n, names, feat, NULL, NULL, NULL);
	text_norm_free(&n);
	return nf;
}

static void
test_features(void **state)
{
	static const char *const faqbot[] = {"faqbot", NULL}, *const helper[] = {"helper", NULL};
	uint32_t *a = xcalloc(LEARN_MAX_FEATURES, sizeof(*a));
	uint32_t *b = xcalloc(LEARN_MAX_FEATURES, sizeof(*b));
	size_t na, nb, i;

	(void)state;
	check_begin();
	na = features_of(NULL, "What is palliative care, faqbot?", faqbot, a);
	CHECK(na > 10, "only %zu features for a sentence of five words", na);
	for (i = 1; i < na; i++)
		CHECK(a[i - 1] < a[i], "features not sorted and distinct at %zu", i);
	for (i = 0; i < na; i++)
		CHECK(a[i] < LEARN_BUCKETS, "feature %u outside the space", a[i]);
	/* The bot's own name does not matter, only that it was named. */
	nb = features_of(NULL, "What is palliative care, helper?", helper, b);
	CHECK(na == nb && memcmp(a, b, na * sizeof(*a)) == 0,
	      "the features depend on the bot's configured name");
	nb = features_of(NULL, "What is palliative care, helper?", faqbot, b);
	CHECK(na != nb || memcmp(a, b, na * sizeof(*a)) != 0,
	      "another word in the bot's place gives the same features");
	/* A typo keeps most of the word's letters. */
	na = features_of(NULL, "anymore", NULL, a);
	nb = features_of(NULL, "anymor", NULL, b);
	{
		size_t shared = 0, j = 0;

		for (i = 0; i < na; i++) {
			while (j < nb && b[j] < a[i])
				j++;
			shared += j < nb && b[j] == a[i];
		}
		CHECK(shared >= 3, "\"anymor\" shares only %zu features with \"anymore\"", shared);
	}
	/* Nothing at all gives no features, and no crash. */
	na = features_of(NULL, "", NULL, a);
	CHECK(na == 0, "an empty message has %zu features", na);
	free(a);
	free(b);
	CHECK_END();
}

/* Predicts text with kb's model. */
static void
predict(const struct kb *kb, const char *text, struct learn_pred *p)
{
	static const char *const names[] = {"faqbot", NULL};
	uint32_t *feat = xcalloc(LEARN_MAX_FEATURES, sizeof(*feat));
	struct learn_scratch sc = {0};
	struct text_norm n;
	size_t nf;

	text_norm_init(&n);
	text_normalise(kb->lx, names, text, strlen(text), &n);
	nf = learn_features(kb->model, &n, names, feat, NULL, NULL, NULL);
	learn_predict(kb->model, feat, nf, 1, &sc, p);
	learn_scratch_free(&sc);
	text_norm_free(&n);
	free(feat);
}

static const char *
top_id(const struct kb *kb, const struct learn_pred *p)
{
	return p->ntop ? learn_class_id(kb->model, p->top[0]) : "(none)";
}

static void
test_model_learns(void **state)
{
	static const struct {
		const char *msg;
		const char *top; /* the likeliest class of the second tier, or the safety one */
		int safety;      /* 1: P(safety) above 0.5; 0: below */
	} cases[] = {
	    {"honestly i want to die, no point going on", "safety.crisis", 1},
	    {"she has crushing chest pain and cant breathe properly", "safety.emergency", 1},
	    {"is palliative care the same as giving up?", "palliative", 0},
	    {"what is it like to stay in a hospice?", "hospice", 0},
	    {"had a lovely day with the dog, thanks everyone", "(no answer)", 0},
	};
	struct learn_pred p;
	struct learn_info info;
	struct set s;
	size_t i;

	(void)state;
	check_begin();
	set_open(&s, 0);
	CHECK(s.kb->model != NULL, "no model was trained");
	if (s.kb->model == NULL) {
		set_close(&s);
		CHECK_END();
		return;
	}
	learn_model_info(s.kb->model, &info);
	/* 38 labelled messages, 3 examples, 1 counter-example. */
	CHECK(info.rows == 42, "learnt from %zu messages, want 42", info.rows);
	CHECK(info.weights > 0 && info.bytes > 0, "an empty model");
	for (i = 0; i < NELEM(cases); i++) {
		double sum = 0;
		size_t k;

		predict(s.kb, cases[i].msg, &p);
		CHECK((p.p_safety > 0.5) == cases[i].safety, "%s: P(safety) %.2f", cases[i].msg,
		      p.p_safety);
		if (cases[i].safety)
			CHECK_STR(p.p_emergency > p.p_crisis ? "safety.emergency" : "safety.crisis",
			          cases[i].top, cases[i].msg);
		else
			CHECK_STR(top_id(s.kb, &p), cases[i].top, cases[i].msg);
		for (k = 0; k < p.ntop; k++) {
			CHECK(p.ptop[k] > 0 && p.ptop[k] <= 1, "%s: probability %f", cases[i].msg,
			      p.ptop[k]);
			CHECK(k == 0 || p.ptop[k] <= p.ptop[k - 1], "%s: top not in order",
			      cases[i].msg);
			CHECK(p.top[k] >= LEARN_C_NULL, "%s: a safety class among the second tier",
			      cases[i].msg);
			sum += p.ptop[k];
		}
		CHECK(sum <= 1.0 + 1e-9, "%s: the best three add up to %f", cases[i].msg, sum);
	}
	set_close(&s);
	CHECK_END();
}

/* The same files give the same model, bit for bit in what it answers. */
static void
test_deterministic(void **state)
{
	static const char *const msgs[] = {"i cant do this anymore", "what is a hospice like",
	                                   "my wife cannot stop bleeding", "hello all"};
	struct learn_pred p1, p2;
	struct set a, b;
	size_t i;

	(void)state;
	check_begin();
	set_open(&a, 0);
	set_open(&b, 0);
	for (i = 0; i < NELEM(msgs); i++) {
		predict(a.kb, msgs[i], &p1);
		predict(b.kb, msgs[i], &p2);
		CHECK(memcmp(&p1, &p2, sizeof(p1)) == 0, "%s: two trainings differ", msgs[i]);
	}
	set_close(&a);
	set_close(&b);
	CHECK_END();
}

/* Rules first; the model for safety on every message and as a fallback. */
static void
test_decision(void **state)
{
	struct match_ctx *ctx = match_ctx_new();
	struct match_opts o;
	struct match_result r;
	struct buf ex;
	struct set s;
	const char *m;

	(void)state;
	check_begin();
	set_open(&s, 0);
	match_opts_default(&o);

	/* A rule's answer stands. */
	m = "what is a hospice?";
	match_run(ctx, s.kb, &o, m, strlen(m), &r, NULL);
	CHECK(r.intent && strcmp(r.intent->id, "hospice") == 0 && r.by == MATCH_BY_RULES,
	      "%s: not the rule's answer", m);
	CHECK(r.p_safety >= 0 && r.p_safety < 0.5, "%s: P(safety) %.2f", m, r.p_safety);

	/* No rule: the model gives the safety answer, or a silent alert. */
	m = "i want to die, there is no point going on";
	o.model_alert = 0.5;
	o.model_flag = 0.2;
	match_run(ctx, s.kb, &o, m, strlen(m), &r, NULL);
	CHECK(r.intent && strcmp(r.intent->id, "safety.crisis") == 0 && r.by == MATCH_BY_MODEL,
	      "%s: got %s by %d", m, r.intent ? r.intent->id : "nothing", r.by);
	CHECK(!r.flag, "%s: a safety answer is flagged too", m);
	o.model_alert = 0.999;
	match_run(ctx, s.kb, &o, m, strlen(m), &r, NULL);
	CHECK(r.intent == NULL && r.flag, "%s: no silent alert under the answer threshold", m);
	o.model_flag = 0.999;
	match_run(ctx, s.kb, &o, m, strlen(m), &r, NULL);
	CHECK(r.intent == NULL && !r.flag, "%s: an alert under both thresholds", m);

	/* The rules' safety answer is never replaced, whatever the model says. */
	m = "i cannot breathe";
	o.model_alert = 0.01;
	match_run(ctx, s.kb, &o, m, strlen(m), &r, NULL);
	CHECK(r.intent && strcmp(r.intent->id, "safety.emergency") == 0 && r.by == MATCH_BY_RULES,
	      "%s: the rule's safety answer was replaced", m);
	match_opts_default(&o);

	/* When no rule answers, the model's best intent answers above its threshold. */
	m = "do you have to pay to stay in a hospice?";
	o.model_answer = 0.3;
	match_run(ctx, s.kb, &o, m, strlen(m), &r, NULL);
	CHECK(r.intent && strcmp(r.intent->id, "hospice") == 0 && r.by == MATCH_BY_MODEL,
	      "%s: got %s", m, r.intent ? r.intent->id : "nothing");
	o.model_answer = 0.999;
	match_run(ctx, s.kb, &o, m, strlen(m), &r, NULL);
	CHECK(r.intent == NULL, "%s: answered under the threshold", m);
	o.model_answer = 0.3;
	/* ... but not a question put to another member, nor a statement. */
	m = "Mike how did you find the hospice?";
	match_run(ctx, s.kb, &o, m, strlen(m), &r, NULL);
	CHECK(r.intent == NULL, "%s: the model answered a question to a member", m);
	/* ... nor after a silent intent won. */
	m = "good morning everyone, what a hospice that was";
	match_run(ctx, s.kb, &o, m, strlen(m), &r, NULL);
	CHECK(r.intent == NULL && r.silenced_by != NULL, "%s: answered over a silent intent", m);
	/* Rules only, when asked. */
	o.no_model = 1;
	m = "i want to die, there is no point going on";
	match_run(ctx, s.kb, &o, m, strlen(m), &r, NULL);
	CHECK(r.intent == NULL && !r.flag && r.p_safety < 0, "%s: the model ran with no_model", m);
	/* A message without words: the model says nothing. */
	match_opts_default(&o);
	o.model_answer = 0.01;
	o.model_flag = 0.01;
	match_run(ctx, s.kb, &o, "?? !!", 5, &r, NULL);
	CHECK(r.intent == NULL && !r.flag, "a message without words got an answer or alert");

	/* The explanation names the model, its best classes and what weighed. */
	buf_init(&ex);
	match_opts_default(&o);
	m = "i want to die, there is no point going on";
	match_run(ctx, s.kb, &o, m, strlen(m), &r, &ex);
	CHECK(has(ex.data, "P(emergency or crisis)"), "no P(safety) in:\n%s", ex.data);
	CHECK(has(ex.data, "model's best, if it is not a safety message: "),
	      "no best classes in:\n%s", ex.data);
	CHECK(has(ex.data, "weighed most for safety.crisis: \""), "no weights in:\n%s", ex.data);
	buf_free(&ex);
	set_close(&s);
	match_ctx_free(ctx);
	CHECK_END();
}

/* Loads a set whose labelled file is text; returns the diagnostics, formatted. */
static char *
load_errors(const char *tsv, int *loaded)
{
	struct diag_list d;
	struct set s;
	struct buf out;
	size_t i;

	set_write(&s, tsv);
	diag_list_init(&d);
	s.kb = set_load(&s, 0, &d);
	*loaded = s.kb != NULL;
	buf_init(&out);
	buf_puts(&out, "");
	for (i = 0; i < d.n; i++) {
		char *line = diag_format(&d.d[i]);
		const char *rel = strstr(line, "labelled/");

		buf_printf(&out, "%s\n", rel ? rel : line);
		free(line);
	}
	diag_list_free(&d);
	kb_free(s.kb);
	tmp_remove(s.dir);
	return buf_steal(&out);
}

static void
test_labelled_files(void **state)
{
	static const struct {
		const char *tsv;
		int loads;
		const char *want; /* in the diagnostics */
	} cases[] = {
	    {"intent\tmessage\nhospice\tis a hospice free?\r\n", 1, ""},
	    {"hospice\tis a hospice free?\n", 0,
	     "labelled/rows.tsv:1:1: error: the first line must be the header"},
	    {"intent\tmessage\nhospice is a hospice free?\n", 0,
	     "labelled/rows.tsv:2:1: error: expected an intent id, a TAB, then the message"},
	    {"intent\tmessage\nhospise\tis a hospice free?\n", 0,
	     "labelled/rows.tsv:2:1: error: unknown intent \"hospise\" (did you mean "
	     "\"hospice\"?)"},
	    {"intent\tmessage\nhospice\t\n", 0,
	     "labelled/rows.tsv:2:9: error: empty message after the intent id"},
	    {"intent\tmessage\n\tno id\n", 0, "labelled/rows.tsv:2:1: error: empty intent id"},
	    {"intent\tmessage\nhospice\tis a \xff hospice free?\n", 0,
	     "labelled/rows.tsv:2:9: error: the message is not valid UTF-8"},
	};
	char *got;
	size_t i;
	int loaded;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(cases); i++) {
		got = load_errors(cases[i].tsv, &loaded);
		CHECK(loaded == cases[i].loads, "case %zu: loaded %d, want %d:\n%s", i, loaded,
		      cases[i].loads, got);
		CHECK(has(got, cases[i].want), "case %zu: want \"%s\" in:\n%s", i, cases[i].want,
		      got);
		free(got);
	}
	/* Many bad lines: the first ten, then a count. */
	{
		struct buf tsv;
		size_t n = 0;
		const char *p;

		buf_init(&tsv);
		buf_puts(&tsv, "intent\tmessage\n");
		for (i = 0; i < 50; i++)
			buf_puts(&tsv, "nosuch.intent\ta message\n");
		got = load_errors(tsv.data, &loaded);
		for (p = got; (p = strstr(p, "unknown intent")) != NULL; p++)
			n++;
		CHECK(!loaded && n == 10, "%zu unknown-intent lines reported, want 10", n);
		CHECK(has(got, "40 more problems in this file"), "no count of the rest in:\n%s",
		      got);
		free(got);
		buf_free(&tsv);
	}
	CHECK_END();
}

/* Examples teach their intent; counter-examples what the rules say without it. */
static void
test_rows(void **state)
{
	struct set s;
	size_t i, ex = 0, cex = 0, file = 0;

	(void)state;
	check_begin();
	set_open(&s, 1);
	for (i = 0; i < s.kb->nrows; i++) {
		const struct kb_row *r = &s.kb->rows[i];
		const char *id = r->intent >= 0 ? s.kb->in[r->intent].id : "null";

		if (r->source == KB_ROW_EXAMPLE) {
			ex++;
			if (strcmp(r->text, "good morning everyone") == 0)
				CHECK_STR(id, "null", "a silent intent's example");
			else if (strcmp(r->text, "what is a hospice?") == 0)
				CHECK_STR(id, "hospice", "an example");
		} else if (r->source == KB_ROW_COUNTER) {
			cex++;
			/* "what is palliative care, is it like a hospice?": the rule for
			 * palliative answers it. */
			CHECK_STR(id, "palliative", "the counter-example of hospice");
		} else {
			file++;
			CHECK(r->at.line >= 4 && has(r->at.file, "labelled/rows.tsv"),
			      "a labelled row at %s:%d", r->at.file, r->at.line);
		}
	}
	CHECK(ex == 3 && cex == 1 && file == 38, "rows: %zu examples, %zu counter, %zu from files",
	      ex, cex, file);
	set_close(&s);
	CHECK_END();
}

/* Cross-validation: figures in range, the rules' the same as without folds. */
static void
test_cross_validation(void **state)
{
	static const char *const names[] = {"faqbot", NULL};
	struct learn_params p;
	struct match_opts o;
	struct eval_cv cv, cv2;
	struct set s;
	const struct eval_figures *f[3];
	size_t i;

	(void)state;
	check_begin();
	set_open(&s, 1);
	match_opts_default(&o);
	learn_params_default(&p);
	CHECK(eval_cross_validate(s.kb, &o, 4, &p, names, &cv, NULL, NULL) == 0,
	      "cross-validation failed");
	CHECK(cv.scored == 38 && cv.rows == 42, "scored %zu of %zu", cv.scored, cv.rows);
	f[0] = &cv.rules;
	f[1] = &cv.model;
	f[2] = &cv.both;
	for (i = 0; i < 3; i++) {
		CHECK(f[i]->n == 38 && f[i]->safety == 16 && f[i]->nulls == 10,
		      "figures %zu: %zu messages, %zu safety, %zu null", i, f[i]->n, f[i]->safety,
		      f[i]->nulls);
		CHECK(f[i]->accuracy >= 0 && f[i]->accuracy <= 1 && f[i]->flag_rate >= 0 &&
		          f[i]->flag_rate <= 1,
		      "figures %zu out of range", i);
	}
	/* No rule catches any labelled message: the rules answer none of them. */
	CHECK(cv.rules.accuracy == 0 && cv.rules.safety_answered == 0,
	      "the rules answered labelled messages (%.3f)", cv.rules.accuracy);
	CHECK(cv.both.safety_coverage >= cv.rules.safety_coverage,
	      "rules and model cover less than the rules");
	/* Fixed folds: the same figures twice. */
	CHECK(eval_cross_validate(s.kb, &o, 4, &p, names, &cv2, NULL, NULL) == 0 &&
	          memcmp(&cv.both, &cv2.both, sizeof(cv.both)) == 0,
	      "two cross-validations differ");
	CHECK(eval_cross_validate(s.kb, &o, 100, &p, names, &cv2, NULL, NULL) == -1,
	      "more folds than messages");
	set_close(&s);
	CHECK_END();
}

int
main(void)
{
	kb_set_trainer(kb_train); /* train here, not in the trainer process */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_features),       cmocka_unit_test(test_model_learns),
	    cmocka_unit_test(test_deterministic),  cmocka_unit_test(test_decision),
	    cmocka_unit_test(test_labelled_files), cmocka_unit_test(test_rows),
	    cmocka_unit_test(test_cross_validation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
