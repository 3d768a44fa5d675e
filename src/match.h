/*
 * Matching a message against a knowledge base: normalise, find which
 * literals and keywords occur (one Aho-Corasick pass), run only the
 * patterns that can match, score the intents touched, and pick.
 *
 * Scoring is in points, deterministic and explainable:
 *   - the best matching pattern of the intent gives its weight (default 1);
 *   - when every all-of keyword group has a word present, each group gives
 *     its weight (default 0.25), so more specific intents score higher;
 *   - each any-of keyword present adds 0.1 (at most 3), if there is other
 *     evidence;
 *   - a none-of keyword or a not_pattern rules the intent out;
 *   - an intent that needs a question is ruled out when the message asks
 *     nothing, or asks another member ("how did your scan go Mike?").
 * Intents below the threshold are dropped. The highest priority wins (so
 * safety beats personal advice beats the FAQ, whatever the scores); within
 * a priority the highest score. When the runner-up of the same priority is
 * within the margin, the result is ambiguous and carries both. A "silent"
 * intent that wins makes the bot say nothing.
 */
#ifndef FAQBOT_MATCH_H
#define FAQBOT_MATCH_H

#include <stddef.h>
#include <stdint.h>

#include "kb.h"
#include "learn.h"
#include "text.h"
#include "util.h"

#define MATCH_MAX_ALT      4 /* alternatives reported */
#define MATCH_MODEL_TOP    3 /* the model's best classes reported */
/* The learned layer's default thresholds (see docs/intents.md for how they
 * were chosen). */
#define MATCH_MODEL_ANSWER 0.5
#define MATCH_MODEL_ALERT  0.6
#define MATCH_MODEL_FLAG   0.25
#define MATCH_MAX_CAPTURES 8 /* named captures kept for rendering */

struct match_opts {
	double threshold; /* points needed */
	double margin;    /* ambiguity margin */
	long match_limit; /* PCRE2 limits per pattern run */
	long depth_limit;
	const char *const *bot_names; /* NULL-terminated, folded; may be NULL */
	const char *const *enabled;   /* intent ids or "prefix.*" allowed (NULL: all);
	                               * safety.* is always allowed */
	size_t nenabled;
	/* the learned layer (learn.h), when the kb has a model */
	int no_model;        /* rules only */
	double model_answer; /* no rule answered: the model's best intent answers from this
	                      * probability */
	double model_alert;  /* P(emergency or crisis) from which the model gives the safety
	                      * answer, whatever the rules said */
	double model_flag;   /* ... from which, below model_alert, the moderators get a
	                      * silent alert */
	struct learn_near *near; /* messages taught as safety, in effect at once (or NULL) */
};

/* Who chose the answer. */
enum match_by {
	MATCH_BY_RULES, /* a pattern or keywords (or nothing answered) */
	MATCH_BY_MODEL, /* the learned layer */
	MATCH_BY_TAUGHT, /* close to a message a moderator taught as safety */
};

/* A class of the model with its probability (intent NULL: no answer). */
struct match_prob {
	const struct intent *intent;
	double p;
};

struct match_cand {
	const struct intent *intent; /* the intent */
	double score;                /* its points */
};

struct match_result {
	const struct intent *intent;          /* the answer, or NULL: stay silent */
	double score;                         /* its points */
	int ambiguous;                        /* alt[0] is within the margin */
	const struct intent *silenced_by;     /* a silent intent won */
	struct match_cand alt[MATCH_MAX_ALT]; /* the next candidates above threshold */
	size_t nalt;
	uint32_t text_flags;                       /* enum text_flag of the message */
	const char *cap_name[MATCH_MAX_CAPTURES];  /* named captures of the winner */
	const char *cap_value[MATCH_MAX_CAPTURES]; /* (valid until the next match) */
	size_t ncap;
	unsigned limit_hits; /* pattern runs stopped by the match limit */
	/* the learned layer */
	int by;          /* enum match_by: who chose intent */
	int flag;        /* possible emergency or crisis: alert the moderators silently */
	double p_safety; /* the model's P(emergency or crisis), or -1 without a model */
	struct match_prob model_top[MATCH_MODEL_TOP]; /* its best classes, when computed */
	size_t nmodel_top;
};

struct match_ctx;

/* A context holds the scratch space for matching; one per thread. */
struct match_ctx *match_ctx_new(void);
void match_ctx_free(struct match_ctx *ctx);

/* Default options from the built-in defaults (see config.c). */
void match_opts_default(struct match_opts *o);

/*
 * Matches msg (len bytes, anything) against kb. Fills *res. When explain is
 * not NULL, appends a human-readable account of why (normalised text,
 * features, every intent scored and what fired). Never fails.
 */
void match_run(struct match_ctx *ctx, const struct kb *kb, const struct match_opts *opt,
               const char *msg, size_t len, struct match_result *res, struct buf *explain);

/*
 * Applies model m (trained for kb's classes: kb->model, or another trained
 * with kb_train) to the message last matched with ctx, after the rules:
 * the safety classes always; when no rule answered and no silent intent
 * won, every class. Updates res as match_run does with kb's own model (so
 * that match_run with opt->no_model, then this, is match_run with m).
 * When explain is not NULL, appends the model's account to it.
 */
void match_model(struct match_ctx *ctx, const struct kb *kb, const struct learn_model *m,
                 const struct match_opts *opt, struct match_result *res, struct buf *explain);

/* The normalised text of the last message matched with ctx. */
const char *match_normalised(const struct match_ctx *ctx);

/*
 * The patterns (indexes into kb->pat, positive and negative) whose
 * necessary literals occur in the last message matched with ctx: with
 * kb->always, every pattern that can match it. *pats stays valid until the
 * next match. For lint, which runs each of them (the matcher skips those
 * that could not change the answer).
 */
size_t match_candidates(const struct match_ctx *ctx, const uint32_t **pats);

#endif
