/*
 * The matcher: one pass to find literals and keywords, then only the
 * patterns and intents they point to. See match.h for the scoring rules.
 */
#include "match.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "acm.h"
#include "intent.h"
#include "lexicon.h"

/* Per-intent state for one message; valid when stamp == ctx->gen. */
struct istate {
	uint32_t stamp;    /* message generation when last touched */
	uint32_t groups;   /* all-of groups satisfied, as bits */
	uint8_t anyn;      /* distinct any-of terms present */
	uint8_t veto;      /* 1: a none-of term, 2: a not_pattern */
	int16_t pbest;     /* best matching pattern, or -1 */
	double pmax;       /* its weight */
	uint32_t why_veto; /* the term or pattern index that vetoed */
	double score;      /* computed at the end */
	uint8_t gate;      /* 0 ok, 1 below threshold, 2 not a question, 3 to a member,
	                    * 4 disabled here, 5 silent but the bot is addressed */
};

struct match_ctx {
	struct text_norm norm;     /* the message, normalised */
	pcre2_match_context *mctx; /* limits */
	pcre2_jit_stack *jit;      /* JIT stack for all patterns */
	pcre2_match_data *md;      /* ovector */
	uint32_t md_pairs;         /* its size */
	uint32_t gen;              /* message counter */
	long limits[2];            /* match and depth limit set on mctx */

	struct istate *is; /* per intent */
	size_t nis;
	uint32_t *touched; /* intents touched this message */
	size_t ntouched;
	uint32_t *pstamp; /* per pattern: gen when a candidate */
	size_t npstamp;
	uint32_t *pcand; /* candidate patterns this message */
	size_t npcand;
	uint32_t *tstamp; /* per term: gen when seen */
	size_t ntstamp;
	uint32_t *tseen; /* terms seen this message */
	size_t ntseen;
	struct match_cand *cands; /* intents ranked */
	struct buf capbuf;        /* capture names and values */
	unsigned limit_hits;      /* this message */
	const struct kb *kb;      /* during a scan */
	/* the learned layer */
	uint32_t *feat;            /* the message's features (LEARN_MAX_FEATURES) */
	struct learn_scratch lsc;  /* scores */
};

struct match_ctx *
match_ctx_new(void)
{
	struct match_ctx *ctx = xcalloc(1, sizeof(*ctx));

	text_norm_init(&ctx->norm);
	ctx->mctx = pcre2_match_context_create(NULL);
	ctx->jit = pcre2_jit_stack_create(32 * 1024, 512 * 1024, NULL);
	if (ctx->jit)
		pcre2_jit_stack_assign(ctx->mctx, NULL, ctx->jit);
	pcre2_set_heap_limit(ctx->mctx, 8192); /* KiB */
	buf_init(&ctx->capbuf);
	return ctx;
}

void
match_ctx_free(struct match_ctx *ctx)
{
	if (ctx == NULL)
		return;
	text_norm_free(&ctx->norm);
	pcre2_match_context_free(ctx->mctx);
	pcre2_jit_stack_free(ctx->jit);
	pcre2_match_data_free(ctx->md);
	free(ctx->is);
	free(ctx->touched);
	free(ctx->pstamp);
	free(ctx->pcand);
	free(ctx->tstamp);
	free(ctx->tseen);
	free(ctx->cands);
	buf_free(&ctx->capbuf);
	free(ctx->feat);
	learn_scratch_free(&ctx->lsc);
	free(ctx);
}

void
match_opts_default(struct match_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->threshold = 0.5;
	o->margin = 0.15;
	o->match_limit = 100000;
	o->depth_limit = 1000;
	o->model_answer = MATCH_MODEL_ANSWER;
	o->model_alert = MATCH_MODEL_ALERT;
	o->model_flag = MATCH_MODEL_FLAG;
}

size_t
match_candidates(const struct match_ctx *ctx, const uint32_t **pats)
{
	*pats = ctx->pcand;
	return ctx->npcand;
}

const char *
match_normalised(const struct match_ctx *ctx)
{
	return ctx->norm.text.data ? ctx->norm.text.data : "";
}

/* Grows an array of n elements to at least want, zeroing the new part. */
static void *
grow(void *p, size_t *n, size_t want, size_t size)
{
	if (want <= *n)
		return p;
	p = xreallocarray(p, want, size);
	memset((char *)p + *n * size, 0, (want - *n) * size);
	*n = want;
	return p;
}

static void
ctx_fit(struct match_ctx *ctx, const struct kb *kb)
{
	size_t dummy;
	uint32_t pairs = kb->max_captures + 1;

	ctx->is = grow(ctx->is, &ctx->nis, kb->nin, sizeof(*ctx->is));
	dummy = ctx->nis;
	(void)dummy;
	ctx->touched = xreallocarray(ctx->touched, kb->nin ? kb->nin : 1, sizeof(*ctx->touched));
	ctx->cands = xreallocarray(ctx->cands, kb->nin ? kb->nin : 1, sizeof(*ctx->cands));
	ctx->pstamp = grow(ctx->pstamp, &ctx->npstamp, kb->npat, sizeof(*ctx->pstamp));
	ctx->pcand = xreallocarray(ctx->pcand, kb->npat ? kb->npat : 1, sizeof(*ctx->pcand));
	ctx->tstamp = grow(ctx->tstamp, &ctx->ntstamp, kb->terms.n, sizeof(*ctx->tstamp));
	ctx->tseen = xreallocarray(ctx->tseen, kb->terms.n ? kb->terms.n : 1, sizeof(*ctx->tseen));
	if (ctx->md == NULL || ctx->md_pairs < pairs) {
		pcre2_match_data_free(ctx->md);
		ctx->md = pcre2_match_data_create(pairs, NULL);
		ctx->md_pairs = pairs;
	}
}

static struct istate *
touch(struct match_ctx *ctx, uint32_t intent)
{
	struct istate *s = &ctx->is[intent];

	if (s->stamp != ctx->gen) {
		memset(s, 0, sizeof(*s));
		s->stamp = ctx->gen;
		s->pbest = -1;
		ctx->touched[ctx->ntouched++] = intent;
	}
	return s;
}

static int
on_hit(void *arg, uint32_t id, size_t end, size_t len)
{
	struct match_ctx *ctx = arg;
	const struct kb *kb = ctx->kb;
	const char *text = ctx->norm.text.data;
	size_t tlen = ctx->norm.text.len, start = end - len;
	uint32_t i, p;

	if (id & KB_LIT_FLAG) {
		id &= ~KB_LIT_FLAG;
		for (i = kb->lit_start[id]; i < kb->lit_start[id + 1]; i++) {
			p = kb->lit_pat[i];
			if (ctx->pstamp[p] != ctx->gen) {
				ctx->pstamp[p] = ctx->gen;
				ctx->pcand[ctx->npcand++] = p;
			}
		}
		return 0;
	}
	if (start > 0 && text[start - 1] != ' ')
		return 0;
	if (!kb->terms.prefix[id] && end < tlen && text[end] != ' ')
		return 0;
	if (ctx->tstamp[id] != ctx->gen) {
		ctx->tstamp[id] = ctx->gen;
		ctx->tseen[ctx->ntseen++] = id;
	}
	return 0;
}

/* Runs one pattern on the normalised text: 1 match, 0 no match. */
static int
run_pattern(struct match_ctx *ctx, const struct intent_pattern *ip)
{
	int rc = pcre2_match(ip->code, (PCRE2_SPTR)ctx->norm.text.data, ctx->norm.text.len, 0,
	                     PCRE2_NO_UTF_CHECK, ctx->md, ctx->mctx);

	if (rc >= 0)
		return 1;
	if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
	    rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT)
		ctx->limit_hits++;
	return 0;
}

static const struct intent_pattern *
pat_of(const struct kb *kb, uint32_t p)
{
	const struct kb_pat *kp = &kb->pat[p];
	const struct intent *in = &kb->in[kp->intent];

	return kp->negative ? &in->neg[kp->idx] : &in->pat[kp->idx];
}

static int
enabled(const struct match_opts *opt, const struct intent *in)
{
	size_t i, n;

	if (opt->enabled == NULL || strncmp(in->id, "safety.", 7) == 0)
		return 1;
	for (i = 0; i < opt->nenabled; i++) {
		const char *e = opt->enabled[i];

		n = strlen(e);
		if (n >= 2 && e[n - 1] == '*' && strncmp(in->id, e, n - 1) == 0)
			return 1;
		if (strcmp(in->id, e) == 0)
			return 1;
	}
	return 0;
}

/*
 * Whether in may answer this message, whatever its score: 0, or the
 * reason it may not (see struct istate's gate).
 */
static int
gate_of(const struct match_ctx *ctx, const struct match_opts *opt, const struct intent *in)
{
	if (in->needs_question) {
		if (!(ctx->norm.flags & TEXT_QUESTION))
			return 2;
		if ((ctx->norm.flags & TEXT_TO_MEMBER) && !(ctx->norm.flags & TEXT_TO_BOT))
			return 3;
	}
	if (!enabled(opt, in))
		return 4;
	/* Chatter between members cannot silence a message put to the bot. */
	if (in->silent && (ctx->norm.flags & TEXT_TO_BOT))
		return 5;
	return 0;
}

static int
cand_cmp(const void *a, const void *b)
{
	const struct match_cand *x = a, *y = b;

	if (x->intent->priority != y->intent->priority)
		return x->intent->priority > y->intent->priority ? -1 : 1;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->intent < y->intent ? -1 : (x->intent > y->intent);
}

/* The winner's named captures, copied out of the text. */
static void
collect_captures(struct match_ctx *ctx, const struct intent_pattern *ip, struct match_result *res)
{
	PCRE2_SPTR table, e;
	uint32_t count, size, i;
	PCRE2_SIZE *ov;
	size_t offs[MATCH_MAX_CAPTURES][2], n = 0;

	buf_reset(&ctx->capbuf);
	if (pcre2_pattern_info(ip->code, PCRE2_INFO_NAMECOUNT, &count) != 0 || count == 0)
		return;
	if (!run_pattern(ctx, ip))
		return;
	pcre2_pattern_info(ip->code, PCRE2_INFO_NAMETABLE, &table);
	pcre2_pattern_info(ip->code, PCRE2_INFO_NAMEENTRYSIZE, &size);
	ov = pcre2_get_ovector_pointer(ctx->md);
	for (i = 0, e = table; i < count && n < MATCH_MAX_CAPTURES; i++, e += size) {
		uint32_t g = ((uint32_t)e[0] << 8) | e[1];

		if (ov[2 * g] == PCRE2_UNSET)
			continue;
		offs[n][0] = ctx->capbuf.len;
		buf_puts(&ctx->capbuf, (const char *)e + 2);
		buf_putc(&ctx->capbuf, '\0');
		offs[n][1] = ctx->capbuf.len;
		buf_append(&ctx->capbuf, ctx->norm.text.data + ov[2 * g],
		           ov[2 * g + 1] - ov[2 * g]);
		buf_putc(&ctx->capbuf, '\0');
		n++;
	}
	for (i = 0; i < n; i++) {
		res->cap_name[i] = ctx->capbuf.data + offs[i][0];
		res->cap_value[i] = ctx->capbuf.data + offs[i][1];
	}
	res->ncap = n;
}

static void
explain_intent(const struct kb *kb, const struct match_ctx *ctx, uint32_t idx,
               const struct match_opts *opt, struct buf *ex)
{
	static const char *gates[] = {"", "below the threshold", "not a question",
	                              "put to another member", "not enabled in this room",
	                              "silent, but the message addresses the bot"};
	const struct intent *in = &kb->in[idx];
	const struct istate *s = &ctx->is[idx];
	size_t g, t, k;
	int allsat = in->nall > 0 && s->groups == ((1u << in->nall) - 1);

	buf_printf(ex, "  %-28s %5.2f", in->id, s->score);
	if (in->priority)
		buf_printf(ex, "  priority %d", in->priority);
	if (s->veto == 1)
		buf_printf(ex, "  ruled out by none-of keyword \"%s\"",
		           kb->terms.text[s->why_veto]);
	else if (s->veto == 2)
		buf_printf(ex, "  ruled out by not_pattern %u", s->why_veto + 1);
	else if (s->gate)
		buf_printf(ex, "  (%s)", gates[s->gate]);
	buf_putc(ex, '\n');
	if (s->pbest >= 0)
		buf_printf(ex, "      pattern %d /%s/ +%.2f\n", s->pbest + 1, in->pat[s->pbest].src,
		           in->pat[s->pbest].weight);
	if (in->nall > 0) {
		buf_printf(ex, "      all-of:");
		for (g = 0; g < in->nall; g++)
			buf_printf(ex, " [%s]%s", in->all[g].label,
			           (s->groups >> g) & 1 ? "" : " (missing)");
		if (allsat)
			buf_printf(ex, " +%.2f", in->group_weight * (double)in->nall);
		buf_putc(ex, '\n');
	}
	if (s->anyn) {
		buf_printf(ex, "      any-of:");
		for (k = 0; k < ctx->ntseen; k++) {
			t = ctx->tseen[k];
			for (g = 0; g < in->any.n; g++)
				if (in->any.term[g] == t)
					buf_printf(ex, " \"%s\"", kb->terms.text[t]);
		}
		buf_printf(ex, " +%.2f\n",
		           INTENT_ANY_WEIGHT *
		               (double)(s->anyn > INTENT_ANY_MAX ? INTENT_ANY_MAX : s->anyn));
	}
	(void)opt;
}

/* in answers, chosen by the learned layer (by) instead of what the rules said. */
static void
answer_by(struct match_result *res, const struct intent *in, int by, double score)
{
	res->intent = in;
	res->by = by;
	res->score = score;
	res->ambiguous = 0;
	res->silenced_by = NULL;
	res->ncap = 0;
}

static void match_near(struct match_ctx *ctx, const struct kb *kb, const struct match_opts *opt,
                       struct match_result *res, struct buf *explain);
static const struct intent *class_intent(const struct kb *kb, uint32_t c);

void
match_run(struct match_ctx *ctx, const struct kb *kb, const struct match_opts *opt, const char *msg,
          size_t len, struct match_result *res, struct buf *explain)
{
	size_t i, j, ncand = 0;
	uint32_t k;

	memset(res, 0, sizeof(*res));
	ctx_fit(ctx, kb);
	if (ctx->limits[0] != opt->match_limit || ctx->limits[1] != opt->depth_limit) {
		pcre2_set_match_limit(ctx->mctx, (uint32_t)opt->match_limit);
		pcre2_set_depth_limit(ctx->mctx, (uint32_t)opt->depth_limit);
		ctx->limits[0] = opt->match_limit;
		ctx->limits[1] = opt->depth_limit;
	}
	if (++ctx->gen == 0) {
		/* Wrapped: clear the stamps so nothing old looks current. */
		memset(ctx->is, 0, ctx->nis * sizeof(*ctx->is));
		memset(ctx->pstamp, 0, ctx->npstamp * sizeof(*ctx->pstamp));
		memset(ctx->tstamp, 0, ctx->ntstamp * sizeof(*ctx->tstamp));
		ctx->gen = 1;
	}
	ctx->ntouched = ctx->npcand = ctx->ntseen = 0;
	ctx->limit_hits = 0;
	ctx->kb = kb;

	text_normalise(kb->lx, opt->bot_names, msg, len, &ctx->norm);
	res->text_flags = ctx->norm.flags;
	acm_scan(kb->ac, ctx->norm.text.data, ctx->norm.text.len, on_hit, ctx);

	/* Keywords. */
	for (i = 0; i < ctx->ntseen; i++) {
		uint32_t t = ctx->tseen[i];

		for (k = kb->term_start[t]; k < kb->term_start[t + 1]; k++) {
			const struct kb_term_ref *r = &kb->term_ref[k];
			struct istate *s = touch(ctx, r->intent);

			if (r->role == KB_ROLE_ALL) {
				s->groups |= 1u << r->group;
			} else if (r->role == KB_ROLE_ANY) {
				if (s->anyn < 255)
					s->anyn++;
			} else if (!s->veto) {
				s->veto = 1;
				s->why_veto = t;
			}
		}
	}
	/* Patterns whose literals occur, then those that always run. */
	for (j = 0; j < 2; j++) {
		size_t n = j == 0 ? ctx->npcand : kb->nalways;

		for (i = 0; i < n; i++) {
			uint32_t p = j == 0 ? ctx->pcand[i] : kb->always[i];
			const struct kb_pat *kp = &kb->pat[p];
			const struct intent_pattern *ip = pat_of(kb, p);
			struct istate *s;

			if (kp->negative)
				continue;
			if (ctx->is[kp->intent].stamp == ctx->gen && ctx->is[kp->intent].veto)
				continue;
			if (ctx->is[kp->intent].stamp == ctx->gen &&
			    ctx->is[kp->intent].pmax >= ip->weight)
				continue; /* cannot raise the score */
			if (!run_pattern(ctx, ip))
				continue;
			s = touch(ctx, kp->intent);
			if (ip->weight > s->pmax || s->pbest < 0) {
				s->pmax = ip->weight;
				s->pbest = (int16_t)kp->idx;
			}
		}
	}
	/* Scores; negative patterns only where there is something to rule out. */
	for (i = 0; i < ctx->ntouched; i++) {
		uint32_t idx = ctx->touched[i];
		const struct intent *in = &kb->in[idx];
		struct istate *s = &ctx->is[idx];
		int allsat = in->nall > 0 && s->groups == ((1u << in->nall) - 1);
		double score = 0;

		if (s->pbest >= 0)
			score += s->pmax;
		if (allsat)
			score += in->group_weight * (double)in->nall;
		if (score > 0 && s->anyn)
			score += INTENT_ANY_WEIGHT *
			         (double)(s->anyn > INTENT_ANY_MAX ? INTENT_ANY_MAX : s->anyn);
		s->score = score;
		if (score <= 0 || s->veto)
			continue;
		for (j = 0; j < in->nneg; j++) {
			if (!in->neg[j].always) {
				/* Only if one of its literals occurred: find it among candidates.
				 */
				size_t c;

				for (c = 0; c < ctx->npcand; c++) {
					const struct kb_pat *kp = &kb->pat[ctx->pcand[c]];

					if (kp->negative && kp->intent == idx && kp->idx == j)
						break;
				}
				if (c == ctx->npcand)
					continue;
			}
			if (run_pattern(ctx, &in->neg[j])) {
				s->veto = 2;
				s->why_veto = (uint32_t)j;
				break;
			}
		}
		if (s->veto)
			continue;
		if (score < (in->min_score > 0 ? in->min_score : opt->threshold)) {
			s->gate = 1;
			continue;
		}
		if ((s->gate = (uint8_t)gate_of(ctx, opt, in)) != 0)
			continue;
		ctx->cands[ncand].intent = in;
		ctx->cands[ncand].score = score;
		ncand++;
	}
	qsort(ctx->cands, ncand, sizeof(*ctx->cands), cand_cmp);
	res->limit_hits = ctx->limit_hits;
	if (ncand > 0) {
		const struct intent *top = ctx->cands[0].intent;

		res->score = ctx->cands[0].score;
		for (i = 1; i < ncand && res->nalt < MATCH_MAX_ALT; i++)
			res->alt[res->nalt++] = ctx->cands[i];
		if (ncand > 1 && ctx->cands[1].intent->priority == top->priority &&
		    res->score - ctx->cands[1].score < opt->margin && !top->silent &&
		    !ctx->cands[1].intent->silent)
			res->ambiguous = 1;
		if (top->silent) {
			res->silenced_by = top;
		} else {
			res->intent = top;
			{
				uint32_t idx = (uint32_t)(top - kb->in);

				if (ctx->is[idx].pbest >= 0)
					collect_captures(ctx, &top->pat[ctx->is[idx].pbest], res);
			}
		}
	}
	if (explain != NULL) {
		buf_printf(explain, "normalised: \"%s\"\n", match_normalised(ctx));
		buf_printf(explain, "features:  %s%s%s%s%s\n",
		           ctx->norm.flags & TEXT_QUESTION ? "question" : "not a question",
		           ctx->norm.flags & TEXT_TO_MEMBER ? ", put to another member" : "",
		           ctx->norm.flags & TEXT_TO_BOT ? ", addresses the bot" : "",
		           ctx->norm.flags & TEXT_INVALID_UTF8 ? ", invalid UTF-8 replaced" : "",
		           ctx->norm.flags & TEXT_TRUNCATED ? ", truncated" : "");
		if (ctx->ntouched == 0)
			buf_puts(explain, "no intent has a keyword or pattern in this message\n");
		else
			buf_puts(explain, "intents scored (points):\n");
		/* Best first, for reading. */
		for (i = 0; i < ctx->ntouched; i++)
			for (j = i + 1; j < ctx->ntouched; j++)
				if (ctx->is[ctx->touched[j]].score >
				    ctx->is[ctx->touched[i]].score) {
					uint32_t t = ctx->touched[i];

					ctx->touched[i] = ctx->touched[j];
					ctx->touched[j] = t;
				}
		for (i = 0; i < ctx->ntouched; i++)
			explain_intent(kb, ctx, ctx->touched[i], opt, explain);
		if (ctx->limit_hits)
			buf_printf(explain, "%u pattern run(s) stopped at the match limit\n",
			           ctx->limit_hits);
		if (res->intent)
			buf_printf(explain, "result: %s (%.2f)%s\n", res->intent->id, res->score,
			           res->ambiguous ? ", ambiguous" : "");
		else if (res->silenced_by)
			buf_printf(explain, "result: silence (%s won, and it is a silent intent)\n",
			           res->silenced_by->id);
		else
			buf_printf(explain, "result: no answer (threshold %.2f)\n", opt->threshold);
	}
	res->by = MATCH_BY_RULES;
	res->p_safety = -1;
	if (!opt->no_model && kb->model != NULL)
		match_model(ctx, kb, kb->model, opt, res, explain);
	if (opt->near != NULL && learn_near_count(opt->near) > 0)
		match_near(ctx, kb, opt, res, explain);
	ctx->kb = NULL;
}

/*
 * A message close to one a moderator taught as an emergency or a crisis
 * gets that answer at once, unless it already has a safety answer.
 */
static void
match_near(struct match_ctx *ctx, const struct kb *kb, const struct match_opts *opt,
           struct match_result *res, struct buf *explain)
{
	const struct intent *in;
	size_t nf;
	double sim;
	int c;

	if (res->intent != NULL && strncmp(res->intent->id, "safety.", 7) == 0)
		return;
	if (ctx->feat == NULL)
		ctx->feat = xcalloc(LEARN_MAX_FEATURES, sizeof(*ctx->feat));
	nf = learn_features(opt->no_model ? NULL : kb->model, &ctx->norm, opt->bot_names, ctx->feat,
	                    NULL, NULL, NULL);
	c = learn_near_match(opt->near, opt->no_model ? NULL : kb->model, kb->lx, opt->bot_names,
	                     ctx->feat, nf, &sim);
	if (explain != NULL)
		buf_printf(explain, "taught: closest to a message moderators taught as safety: %.2f "
		                    "(from %.2f it answers)\n",
		           sim, LEARN_NEAR_SIMILAR);
	if (c < 0 || (in = class_intent(kb, (uint32_t)c)) == NULL)
		return;
	answer_by(res, in, MATCH_BY_TAUGHT, sim);
	res->flag = 0;
	if (explain != NULL)
		buf_printf(explain, "result: %s, close to a message moderators taught\n", in->id);
}

/* The intent of model class c, or NULL (no answer, the safety binary). */
static const struct intent *
class_intent(const struct kb *kb, uint32_t c)
{
	int i = c < kb->nclass ? kb->class_intent[c] : -1;

	return i >= 0 ? &kb->in[i] : NULL;
}

void
match_model(struct match_ctx *ctx, const struct kb *kb, const struct learn_model *m,
            const struct match_opts *opt, struct match_result *res, struct buf *explain)
{
	struct learn_pred pred;
	const struct intent *in;
	size_t k;
	double ps;
	int rule_safety = res->intent != NULL && strncmp(res->intent->id, "safety.", 7) == 0;

	/* A message without a word ("??", emoji) says nothing the model could read. */
	for (k = 0; k < ctx->norm.ntok; k++)
		if (ctx->norm.tok[k].flags & TOK_HAS_ALPHA)
			break;
	if (k == ctx->norm.ntok) {
		res->p_safety = 0;
		res->nmodel_top = 0;
		if (explain != NULL)
			buf_puts(explain, "model: not consulted (the message has no words)\n");
		return;
	}
	if (ctx->feat == NULL)
		ctx->feat = xcalloc(LEARN_MAX_FEATURES, sizeof(*ctx->feat));
	/* Every class only when the model may answer, or to explain. */
	learn_read(m, &ctx->norm, opt->bot_names,
	           explain != NULL || (res->intent == NULL && res->silenced_by == NULL), &ctx->lsc,
	           ctx->feat, &pred);
	res->p_safety = ps = pred.p_safety;
	res->nmodel_top = 0;
	for (k = 0; k < pred.ntop && k < MATCH_MODEL_TOP; k++) {
		res->model_top[k].intent = class_intent(kb, pred.top[k]);
		res->model_top[k].p = pred.ptop[k];
		res->nmodel_top++;
	}
	if (!rule_safety && ps >= opt->model_alert) {
		/* Which answer: the likelier of the two safety classes. */
		uint32_t c = pred.p_emergency >= pred.p_crisis ? LEARN_C_EMERGENCY : LEARN_C_CRISIS;

		if ((in = class_intent(kb, c)) != NULL) {
			answer_by(res, in, MATCH_BY_MODEL, ps);
		} else {
			res->flag = 1;
		}
	} else if (!rule_safety && ps >= opt->model_flag) {
		res->flag = 1;
	} else if (res->intent == NULL && res->silenced_by == NULL && res->nmodel_top > 0 &&
	           (in = res->model_top[0].intent) != NULL && res->model_top[0].p >= opt->model_answer &&
	           gate_of(ctx, opt, in) == 0) {
		/* The model's best guess, when it is an intent and likely enough. */
		res->intent = in;
		res->by = MATCH_BY_MODEL;
		res->score = res->model_top[0].p;
	}
	if (explain != NULL) {
		uint32_t safe = pred.p_emergency >= pred.p_crisis ? LEARN_C_EMERGENCY : LEARN_C_CRISIS;

		buf_printf(explain,
		           "model: P(emergency or crisis) %.2f (safety answer from %.2f, moderators "
		           "alerted from %.2f); on their own, emergency %.2f, crisis %.2f\n",
		           ps, opt->model_alert, opt->model_flag, pred.p_emergency, pred.p_crisis);
		if (ps >= opt->model_flag) {
			buf_printf(explain, "weighed most for %s: ", learn_class_id(m, safe));
			learn_explain(m, &ctx->norm, opt->bot_names, safe, 8, explain);
			buf_putc(explain, '\n');
		}
		buf_puts(explain, "model's best, if it is not a safety message:");
		for (k = 0; k < res->nmodel_top; k++)
			buf_printf(explain, "%s %s %.2f", k ? "," : "",
			           res->model_top[k].intent ? res->model_top[k].intent->id
			                                    : "(no answer)",
			           res->model_top[k].p);
		buf_putc(explain, '\n');
		if (res->nmodel_top > 0) {
			uint32_t top = res->model_top[0].intent
			                   ? kb->intent_class[res->model_top[0].intent - kb->in]
			                   : LEARN_C_NULL;

			buf_printf(explain, "weighed most for %s: ", learn_class_id(m, top));
			learn_explain(m, &ctx->norm, opt->bot_names, top, 8, explain);
			buf_putc(explain, '\n');
		}
		if (res->by == MATCH_BY_MODEL)
			buf_printf(explain, "result: %s, by the model (%.2f)\n", res->intent->id,
			           res->score);
		else if (res->flag)
			buf_puts(explain, "result: the moderators would get a silent alert "
			                  "(possible emergency or crisis)\n");
	}
}
