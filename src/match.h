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
#include "text.h"
#include "util.h"

#define MATCH_MAX_ALT      4 /* alternatives reported */
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
