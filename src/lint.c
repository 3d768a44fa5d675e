/*
 * Whole-set checks for `faqbot lint` and `faqbot test`. See lint.h.
 */
#include "lint.h"

#include <stdlib.h>
#include <string.h>

#include "lexicon.h"
#include "rxlit.h"
#include "smap.h"
#include "text.h"
#include "util.h"

size_t
lint_examples(const struct kb *kb, const struct match_opts *mo, lint_example_fn fn, void *arg,
              size_t *passed)
{
	struct match_ctx *ctx = match_ctx_new();
	struct match_result res;
	struct lint_example e;
	size_t i, j, failed = 0, ok = 0;

	for (i = 0; i < kb->nin; i++) {
		const struct intent *in = &kb->in[i];

		for (j = 0; j < in->nex + in->ncex; j++) {
			int counter = j >= in->nex;
			const struct intent_example *ex =
			    counter ? &in->cex[j - in->nex] : &in->ex[j];
			const struct intent *got;

			match_run(ctx, kb, mo, ex->text, strlen(ex->text), &res, NULL);
			got = res.intent ? res.intent : res.silenced_by;
			e.intent = in;
			e.ex = ex;
			e.counter = counter;
			e.res = &res;
			if (counter)
				e.ok = got != in;
			else
				e.ok = got == in;
			if (e.ok)
				ok++;
			else
				failed++;
			if (fn)
				fn(arg, &e);
		}
	}
	match_ctx_free(ctx);
	if (passed)
		*passed = ok;
	return failed;
}

char *
lint_describe(const struct lint_example *e)
{
	const struct match_result *r = e->res;
	const struct intent *got = r->intent ? r->intent : r->silenced_by;

	if (e->counter)
		return xasprintf("counter-example \"%s\" reaches intent %s (%.2f points)",
		                 e->ex->text, e->intent->id, r->score);
	if (got == NULL) {
		const char *why = "";

		if (!(r->text_flags & TEXT_QUESTION))
			why = "; the message is not read as a question";
		else if (r->text_flags & TEXT_TO_MEMBER)
			why = "; the message is read as put to another member";
		return xasprintf("example \"%s\" gets no answer (want %s%s; try `faqbot ask`)",
		                 e->ex->text, e->intent->id, why);
	}
	return xasprintf("example \"%s\" is won by %s%s (%.2f points) instead of %s", e->ex->text,
	                 got->id, got->silent ? " (a silent intent)" : "", r->score, e->intent->id);
}

struct lint_state {
	struct diag_list *diags;
	const struct kb *kb;
	const struct lint_opts *o;
};

static void
on_example(void *arg, const struct lint_example *e)
{
	struct lint_state *st = arg;
	char *msg;
	size_t i;

	if (!e->ok) {
		msg = lint_describe(e);
		diag_add(st->diags, DIAG_ERROR, e->ex->at.file, e->ex->at.line, e->ex->at.col, "%s",
		         msg);
		free(msg);
		return;
	}
	if (e->counter || !e->res->ambiguous)
		return;
	for (i = 0; i < e->res->nalt; i++) {
		const struct match_cand *c = &e->res->alt[i];

		if (c->intent->priority == e->intent->priority &&
		    e->res->score - c->score < st->o->match.margin) {
			diag_add(st->diags, DIAG_WARNING, e->ex->at.file, e->ex->at.line,
			         e->ex->at.col,
			         "intents %s and %s overlap: example \"%s\" scores %.2f and %.2f "
			         "(closer than the margin %.2f, so the bot asks which was meant)",
			         e->intent->id, c->intent->id, e->ex->text, e->res->score, c->score,
			         st->o->match.margin);
			break;
		}
	}
}

/* Warns about pattern literals the lexicon rewrites: they can never occur. */
static void
check_pattern_words(const struct kb *kb, const struct intent_pattern *ip, const char *what,
                    struct diag_list *diags)
{
	struct rxlit r;
	size_t i;
	const char *p, *q, *canon;

	if (rxlit_extract(ip->expanded, strlen(ip->expanded), &r) <= 0) {
		rxlit_free(&r);
		return;
	}
	for (i = 0; i < r.n; i++) {
		for (p = r.lit[i]; *p; p = *q ? q + 1 : q) {
			q = strchr(p, ' ');
			if (q == NULL)
				q = p + strlen(p);
			/* A word at an edge of a longer literal may be part of a word. */
			if ((p == r.lit[i]) != (*q == '\0'))
				continue;
			canon = lexicon_variant_of(kb->lx, p, (size_t)(q - p));
			if (canon != NULL) {
				diag_add(
				    diags, DIAG_WARNING, ip->at.file, ip->at.line, ip->at.col,
				    "%s %u: \"%.*s\" never appears in normalised text (the lexicon "
				    "rewrites it to \"%s\")",
				    what, ip->index, (int)(q - p), p, canon);
				goto out;
			}
		}
	}
out:
	rxlit_free(&r);
}

/* Patterns written twice, in one intent or in two: each copy is reported against the first. */
static void
check_duplicate_patterns(const struct kb *kb, struct diag_list *diags)
{
	struct smap first; /* pattern text -> its first pattern, as kb->pat's index */
	uint32_t *slot;
	size_t p;
	int added;

	smap_init(&first);
	for (p = 0; p < kb->npat; p++) {
		const struct kb_pat *kp = &kb->pat[p], *kf;
		const struct intent_pattern *ip, *fp;

		if (kp->negative)
			continue;
		ip = &kb->in[kp->intent].pat[kp->idx];
		slot = smap_put(&first, ip->src, strlen(ip->src), (uint32_t)p, &added);
		if (added)
			continue;
		kf = &kb->pat[*slot];
		fp = &kb->in[kf->intent].pat[kf->idx];
		diag_add(diags, DIAG_WARNING, ip->at.file, ip->at.line, ip->at.col,
		         "pattern %u of %s is the same as pattern %u of %s", ip->index,
		         kb->in[kp->intent].id, fp->index, kb->in[kf->intent].id);
	}
	smap_free(&first);
}

/* Runs pattern p of kb on text; reports it (once) when it hits the match limit. */
static void
limit_check(const struct kb *kb, uint32_t p, const char *text, size_t len,
            pcre2_match_data *md, pcre2_match_context *mc, unsigned char *reported,
            struct diag_list *diags)
{
	const struct kb_pat *kp = &kb->pat[p];
	const struct intent *in = &kb->in[kp->intent];
	const struct intent_pattern *ip = kp->negative ? &in->neg[kp->idx] : &in->pat[kp->idx];
	int rc;

	if (reported[p])
		return;
	rc = pcre2_match(ip->code, (PCRE2_SPTR)text, len, 0, PCRE2_NO_UTF_CHECK, md, mc);
	if (rc != PCRE2_ERROR_MATCHLIMIT && rc != PCRE2_ERROR_DEPTHLIMIT &&
	    rc != PCRE2_ERROR_HEAPLIMIT)
		return;
	reported[p] = 1;
	diag_add(diags, DIAG_WARNING, ip->at.file, ip->at.line, ip->at.col,
	         "%s %u of %s hits the match limit on \"%s\": it backtracks too much, and never "
	         "matches such messages",
	         kp->negative ? "not_pattern" : "pattern", ip->index, in->id, text);
}

/*
 * Patterns that hit the match limit on any example: they backtrack too
 * much. Each example runs the patterns the matcher's prefilter would let
 * run on it (those whose literals it holds, and those without literals),
 * so the check grows with the examples and their candidates, not with
 * every pattern times every example.
 */
static void
check_limits(const struct kb *kb, const struct lint_opts *o, struct diag_list *diags)
{
	pcre2_match_context *mc = pcre2_match_context_create(NULL);
	pcre2_match_data *md = pcre2_match_data_create(kb->max_captures + 1, NULL);
	struct match_ctx *ctx = match_ctx_new();
	unsigned char *reported = xcalloc(kb->npat ? kb->npat : 1, 1);
	struct match_result res;
	const uint32_t *cand;
	const char *text;
	size_t i, k, c, n, len;

	pcre2_set_match_limit(mc, (uint32_t)o->match.match_limit);
	pcre2_set_depth_limit(mc, (uint32_t)o->match.depth_limit);
	for (i = 0; i < kb->nin; i++) {
		for (k = 0; k < kb->in[i].nex + kb->in[i].ncex; k++) {
			const struct intent_example *ex = k < kb->in[i].nex
			                                      ? &kb->in[i].ex[k]
			                                      : &kb->in[i].cex[k - kb->in[i].nex];

			match_run(ctx, kb, &o->match, ex->text, strlen(ex->text), &res, NULL);
			text = match_normalised(ctx);
			len = strlen(text);
			n = match_candidates(ctx, &cand);
			for (c = 0; c < n; c++)
				limit_check(kb, cand[c], text, len, md, mc, reported, diags);
			for (c = 0; c < kb->nalways; c++)
				limit_check(kb, kb->always[c], text, len, md, mc, reported, diags);
		}
	}
	free(reported);
	match_ctx_free(ctx);
	pcre2_match_data_free(md);
	pcre2_match_context_free(mc);
}

void
lint_kb(const struct kb *kb, const struct lint_opts *o, struct diag_list *diags)
{
	struct lint_state st = {diags, kb, o};
	size_t i, j, drafts = 0;

	lint_examples(kb, &o->match, on_example, &st, NULL);
	for (i = 0; i < kb->nin; i++) {
		const struct intent *in = &kb->in[i];

		if (in->nex < LINT_MIN_EXAMPLES)
			diag_add(
			    diags, DIAG_WARNING, in->at.file, in->at.line, in->at.col,
			    "intent %s has %zu examples; write at least %d, in the words people "
			    "use",
			    in->id, in->nex, LINT_MIN_EXAMPLES);
		if (in->ncex < LINT_MIN_COUNTER_EXAMPLES)
			diag_add(diags, DIAG_WARNING, in->at.file, in->at.line, in->at.col,
			         "intent %s has %zu counter-examples; write at least %d near "
			         "misses that "
			         "must not reach it",
			         in->id, in->ncex, LINT_MIN_COUNTER_EXAMPLES);
		for (j = 0; j < in->npat; j++)
			check_pattern_words(kb, &in->pat[j], "pattern", diags);
		for (j = 0; j < in->nneg; j++)
			check_pattern_words(kb, &in->neg[j], "not_pattern", diags);
	}
	check_duplicate_patterns(kb, diags);
	check_limits(kb, o, diags);
	for (i = 0; i < kb->responses.n; i++) {
		const struct response *r = &kb->responses.r[i];

		response_check(r, o->max_grade, o->today, diags);
		if (r->status == RESPONSE_DRAFT) {
			drafts++;
			if (o->drafts_are_warnings)
				diag_add(diags, DIAG_WARNING, r->file, 1, 1,
				         "draft: awaiting clinical review, and drafts are not "
				         "allowed, so "
				         "this response is never sent");
		}
	}
	if (drafts && !o->drafts_are_warnings)
		diag_add(diags, DIAG_NOTE, kb->origin, 0, 0,
		         "%zu of %zu responses are drafts awaiting clinical review; they are sent "
		         "only where responses.allow_drafts is on (lint --config FILE reports each "
		         "one when it is off)",
		         drafts, kb->responses.n);
}
