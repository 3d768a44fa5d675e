/*
 * Honest figures for the learned layer: k-fold cross-validation over the
 * labelled messages (`faqbot test --cv K`). Each fold's messages are
 * answered by a model trained without them; the rules, which do not
 * learn, answer as they are. Figures are given for the rules alone, the
 * model alone and both as the bot runs them, measured the way
 * ../shared/eval/score.py measures an evaluation set.
 */
#ifndef FAQBOT_EVALUATE_H
#define FAQBOT_EVALUATE_H

#include <stddef.h>
#include <stdio.h>

#include "kb.h"
#include "learn.h"
#include "match.h"

/* What a set of answers scores (fractions, 0 to 1). */
struct eval_figures {
	size_t n;               /* messages scored */
	size_t inscope;         /* labelled with an intent */
	size_t nulls;           /* labelled "no answer" */
	size_t safety;          /* labelled emergency or crisis */
	double accuracy;        /* in-scope messages given their intent */
	double false_answers;   /* no-answer messages that got an answer */
	double safety_recall;   /* safety messages given their own safety answer */
	double safety_answered; /* safety messages given either safety answer */
	double safety_coverage; /* safety messages answered or flagged to the moderators */
	double alarm_rate;      /* other messages given a safety answer */
	double flag_rate;       /* other messages flagged (without a safety answer) */
};

/* Counts one answer; call eval_finish() after the last. */
struct eval_count {
	size_t n, inscope, nulls, safety, correct, false_ans, safety_ok, safety_any, covered,
	    others, alarms, flags;
};
void eval_add(struct eval_count *c, const char *want, const char *got, int flagged);
void eval_finish(const struct eval_count *c, struct eval_figures *f);

/* The three ways of answering, in a cross-validation. */
struct eval_cv {
	struct eval_figures rules; /* the rules alone */
	struct eval_figures model; /* the model alone */
	struct eval_figures both;  /* rules first, then the model: what the bot does */
	size_t rows;               /* labelled messages in all (examples included) */
	size_t scored;             /* those scored: the labelled files' messages */
	int folds;                 /* how many */
	double train_seconds;      /* mean time to train one fold's model */
	/*
	 * The safety classifier on its own, whatever the thresholds: the share
	 * of safety messages whose P(emergency or crisis) is above that of all
	 * but 5 % (resp. 1 %) of the other messages.
	 */
	double safety_at_5;
	double safety_at_1;
};

/*
 * k-fold cross-validation over kb's rows (kb loaded with keep_rows). Folds
 * are fixed (every k-th message of the file order), so two runs agree.
 * With k = 0, one fold per labelled file: each file is answered by a model
 * that never saw it, the closest to messages from people nobody has read
 * yet (each file was written by other people).
 * Only the labelled files' messages are scored; intents' examples and
 * counter-examples are always learnt from. mo gives the thresholds. When
 * sweep is not NULL, also prints how the figures of "both" move with each
 * threshold; when misses is not NULL, prints there every message that
 * "both" answers otherwise than its label, with its place. Returns 0, or
 * -1 when there is nothing to cross-validate.
 */
int eval_cross_validate(const struct kb *kb, const struct match_opts *mo, int k,
                        const struct learn_params *p, const char *const *bot_names,
                        struct eval_cv *out, FILE *sweep, FILE *misses);

/* Prints a figures table (rules, model, both) as `faqbot test --cv` does. */
void eval_print(const struct eval_cv *cv, FILE *fp);

#endif
