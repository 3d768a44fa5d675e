/*
 * Cross-validation of the learned layer. See evaluate.h.
 */
#include "evaluate.h"

#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "util.h"

static int
is_safety(const char *id)
{
	return id != NULL && strncmp(id, "safety.", 7) == 0;
}

void
eval_add(struct eval_count *c, const char *want, const char *got, int flagged)
{
	int ws = is_safety(want), gs = is_safety(got);

	c->n++;
	if (want != NULL) {
		c->inscope++;
		c->correct += got != NULL && strcmp(want, got) == 0;
	} else {
		c->nulls++;
		c->false_ans += got != NULL;
	}
	if (ws) {
		c->safety++;
		c->safety_ok += got != NULL && strcmp(want, got) == 0;
		c->safety_any += gs;
		c->covered += gs || flagged;
	} else {
		c->others++;
		if (gs)
			c->alarms++;
		else if (flagged)
			c->flags++;
	}
}

static double
frac(size_t a, size_t b)
{
	return (double)a / (double)(b ? b : 1);
}

void
eval_finish(const struct eval_count *c, struct eval_figures *f)
{
	f->n = c->n;
	f->inscope = c->inscope;
	f->nulls = c->nulls;
	f->safety = c->safety;
	f->accuracy = frac(c->correct, c->inscope);
	f->false_answers = frac(c->false_ans, c->nulls);
	f->safety_recall = frac(c->safety_ok, c->safety);
	f->safety_answered = frac(c->safety_any, c->safety);
	f->safety_coverage = frac(c->covered, c->safety);
	f->alarm_rate = frac(c->alarms, c->others);
	f->flag_rate = frac(c->flags, c->others);
}

/* One setting of the thresholds, for the sweep. */
struct setting {
	double answer, alert, flag;
	int which; /* 0 answer, 1 alert, 2 flag: the one that moves */
	struct eval_count count;
};

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Share of pos[0..npos) above the value that all but `rate` of neg[] are under. */
static double
share_above(double *neg, size_t nneg, const double *pos, size_t npos, double rate)
{
	size_t i, k, n = 0;
	double t;

	if (nneg == 0 || npos == 0)
		return 0;
	qsort(neg, nneg, sizeof(*neg), cmp_double);
	k = (size_t)((double)nneg * (1.0 - rate));
	t = neg[k < nneg ? k : nneg - 1];
	for (i = 0; i < npos; i++)
		n += pos[i] > t;
	return (double)n / (double)npos;
}

static const char *
id_of(const struct match_result *r)
{
	return r->intent ? r->intent->id : NULL;
}

/*
 * The fold of every row into fold[]: every k-th row, or (k == 0) one fold
 * per labelled file, the intents' examples always learnt from (-1).
 * Returns the number of folds.
 */
static int
assign_folds(const struct kb *kb, int k, int *fold)
{
	const char **files = NULL;
	size_t i;
	int j, nfiles = 0;

	if (k > 0) {
		for (i = 0; i < kb->nrows; i++)
			fold[i] = (int)(i % (size_t)k);
		return k;
	}
	for (i = 0; i < kb->nrows; i++) {
		fold[i] = -1;
		if (kb->rows[i].source != KB_ROW_FILE && kb->rows[i].source != KB_ROW_TAUGHT)
			continue;
		/* Rows of one file are together: compare with the files seen. */
		for (j = nfiles - 1; j >= 0; j--)
			if (strcmp(files[j], kb->rows[i].at.file) == 0)
				break;
		if (j < 0) {
			files = xreallocarray(files, (size_t)nfiles + 1, sizeof(*files));
			files[nfiles] = kb->rows[i].at.file;
			j = nfiles++;
		}
		fold[i] = j;
	}
	free(files);
	return nfiles;
}

int
eval_cross_validate(const struct kb *kb, const struct match_opts *mo, int k,
                    const struct learn_params *p, const char *const *bot_names,
                    struct eval_cv *out, FILE *sweep, FILE *misses)
{
	struct learn_model **models;
	struct match_ctx *ctx;
	struct match_opts rules_only = *mo, o;
	struct match_result rr, res;
	struct eval_count crules = {0}, cmodel = {0}, cboth = {0};
	unsigned char *keep;
	struct setting *set = NULL;
	double *pneg, *ppos;
	size_t nneg = 0, npos = 0, nset = 0, i, s;
	int f, *fold;
	double v, secs = 0;

	memset(out, 0, sizeof(*out));
	if (kb->rows == NULL || k == 1 || k < 0 || kb->nrows < (size_t)k)
		return -1;
	fold = xcalloc(kb->nrows, sizeof(*fold));
	if ((k = assign_folds(kb, k, fold)) < 2) {
		free(fold);
		return -1;
	}
	out->folds = k;
	if (sweep != NULL) {
		for (v = 0.20; v < 0.951; v += 0.05, nset++) {
			set = xreallocarray(set, nset + 1, sizeof(*set));
			set[nset] = (struct setting){v, mo->model_alert, mo->model_flag, 0, {0}};
		}
		for (v = 0.30; v < 0.991; v += 0.05, nset++) {
			set = xreallocarray(set, nset + 1, sizeof(*set));
			set[nset] = (struct setting){mo->model_answer, v, mo->model_flag, 1, {0}};
		}
		for (v = 0.05; v < 0.701; v += 0.05, nset++) {
			set = xreallocarray(set, nset + 1, sizeof(*set));
			set[nset] = (struct setting){mo->model_answer, mo->model_alert, v, 2, {0}};
		}
	}
	pneg = xcalloc(kb->nrows, sizeof(*pneg));
	ppos = xcalloc(kb->nrows, sizeof(*ppos));
	models = xcalloc((size_t)k, sizeof(*models));
	keep = xcalloc(kb->nrows, 1);
	for (f = 0; f < k; f++) {
		struct learn_info info;

		for (i = 0; i < kb->nrows; i++)
			keep[i] = fold[i] != f;
		models[f] = kb_train(kb, bot_names, kb->rows, kb->nrows, keep, p);
		if (models[f] != NULL) {
			learn_model_info(models[f], &info);
			secs += info.seconds;
		}
	}
	free(keep);
	rules_only.no_model = 1;
	ctx = match_ctx_new();
	for (i = 0; i < kb->nrows; i++) {
		const struct kb_row *row = &kb->rows[i];
		const struct learn_model *m = fold[i] >= 0 ? models[fold[i]] : NULL;
		const char *want = row->intent >= 0 ? kb->in[row->intent].id : NULL;

		if (row->source != KB_ROW_FILE && row->source != KB_ROW_TAUGHT)
			continue;
		/* A silent intent's label means "no answer". */
		if (row->intent >= 0 && kb->in[row->intent].silent)
			want = NULL;
		match_run(ctx, kb, &rules_only, row->text, strlen(row->text), &rr, NULL);
		eval_add(&crules, want, id_of(&rr), 0);
		if (m == NULL) {
			eval_add(&cmodel, want, NULL, 0);
			eval_add(&cboth, want, id_of(&rr), 0);
			continue;
		}
		memset(&res, 0, sizeof(res));
		res.p_safety = -1;
		match_model(ctx, kb, m, mo, &res, NULL);
		eval_add(&cmodel, want, id_of(&res), res.flag);
		if (is_safety(want))
			ppos[npos++] = res.p_safety;
		else
			pneg[nneg++] = res.p_safety;
		res = rr;
		match_model(ctx, kb, m, mo, &res, NULL);
		eval_add(&cboth, want, id_of(&res), res.flag);
		if (misses != NULL && (want == NULL ? id_of(&res) != NULL
		                                    : id_of(&res) == NULL || strcmp(want, id_of(&res)) != 0)) {
			char *shown = text_display_safe(row->text, 160);

			fprintf(misses, "%s:%d: want %s, got %s%s (P(safety) %.2f): %s\n",
			        row->at.file, row->at.line, want ? want : "null",
			        id_of(&res) ? id_of(&res) : "null",
			        res.flag ? " (flagged)" : res.by == MATCH_BY_MODEL ? " (model)" : "",
			        res.p_safety, shown);
			free(shown);
		}
		for (s = 0; s < nset; s++) {
			o = *mo;
			o.model_answer = set[s].answer;
			o.model_alert = set[s].alert;
			o.model_flag = set[s].flag;
			res = rr;
			match_model(ctx, kb, m, &o, &res, NULL);
			eval_add(&set[s].count, want, id_of(&res), res.flag);
		}
	}
	match_ctx_free(ctx);
	for (f = 0; f < k; f++)
		learn_free(models[f]);
	free(models);
	eval_finish(&crules, &out->rules);
	eval_finish(&cmodel, &out->model);
	eval_finish(&cboth, &out->both);
	out->rows = kb->nrows;
	out->scored = crules.n;
	out->train_seconds = secs / k;
	out->safety_at_5 = share_above(pneg, nneg, ppos, npos, 0.05);
	out->safety_at_1 = share_above(pneg, nneg, ppos, npos, 0.01);
	free(pneg);
	free(ppos);
	free(fold);
	if (sweep != NULL) {
		static const char *const head[] = {
		    "model.answer_threshold    accuracy  false answers",
		    "model.safety_answer       safety answered  alarm rate",
		    "model.safety_alert        safety coverage  flag rate"};
		int last = -1;

		for (s = 0; s < nset; s++) {
			struct eval_figures fg;
			double t = set[s].which == 0 ? set[s].answer
			           : set[s].which == 1 ? set[s].alert
			                               : set[s].flag;

			eval_finish(&set[s].count, &fg);
			if (set[s].which != last)
				fprintf(sweep, "%s%s\n", last >= 0 ? "\n" : "", head[set[s].which]);
			last = set[s].which;
			if (set[s].which == 0)
				fprintf(sweep, "  %.2f                    %.3f     %.3f\n", t,
				        fg.accuracy, fg.false_answers);
			else if (set[s].which == 1)
				fprintf(sweep, "  %.2f                    %.3f            %.3f\n", t,
				        fg.safety_answered, fg.alarm_rate);
			else
				fprintf(sweep, "  %.2f                    %.3f            %.3f\n", t,
				        fg.safety_coverage, fg.flag_rate);
		}
	}
	free(set);
	return 0;
}

void
eval_print(const struct eval_cv *cv, FILE *fp)
{
	const struct eval_figures *f[3] = {&cv->rules, &cv->model, &cv->both};
	static const char *const name[3] = {"rules only", "model only", "both"};
	int i;

	fprintf(fp,
	        "cross-validation: %zu labelled messages scored (of %zu learnt from, with the "
	        "intents' examples), %zu with an intent, %zu safety, %zu with none; "
	        "%.2f s to train a fold\n",
	        cv->scored, cv->rows, cv->both.inscope, cv->both.safety, cv->both.nulls,
	        cv->train_seconds);
	fprintf(fp, "%-11s %8s %7s %7s %8s %8s %7s %7s\n", "", "accuracy", "false", "safety",
	        "safety", "safety", "alarm", "flag");
	fprintf(fp, "%-11s %8s %7s %7s %8s %8s %7s %7s\n", "", "", "answers", "recall",
	        "answered", "coverage", "rate", "rate");
	for (i = 0; i < 3; i++)
		fprintf(fp, "%-11s %8.3f %7.3f %7.3f %8.3f %8.3f %7.3f %7.3f\n", name[i],
		        f[i]->accuracy, f[i]->false_answers, f[i]->safety_recall,
		        f[i]->safety_answered, f[i]->safety_coverage, f[i]->alarm_rate,
		        f[i]->flag_rate);
	fprintf(fp,
	        "the model's safety classifier alone: %.3f of safety messages above all but 5 %% "
	        "of the others, %.3f above all but 1 %%\n",
	        cv->safety_at_5, cv->safety_at_1);
}
