/*
 * The checks behind `faqbot lint` and `faqbot test` that need a whole
 * loaded set: every example reaches its intent and no other, counter-
 * examples do not, intents that overlap, patterns that hit the match limit
 * or use words the lexicon rewrites, and the review state and reading grade
 * of every response. Syntax and per-file checks happen while loading
 * (intent.c, response.c, config.c).
 */
#ifndef FAQBOT_LINT_H
#define FAQBOT_LINT_H

#include <stddef.h>

#include "diag.h"
#include "kb.h"
#include "match.h"

#define LINT_MIN_EXAMPLES         8 /* per intent */
#define LINT_MIN_COUNTER_EXAMPLES 3 /* per intent */

struct lint_opts {
	struct match_opts match; /* threshold, margin, limits */
	double max_grade;        /* highest reading grade */
	int allow_drafts;        /* drafts are fine (a demo) */
	int drafts_are_warnings; /* report each draft as a warning */
	long today;              /* days since 1970 */
};

/* One example's outcome, for `faqbot test`. */
struct lint_example {
	const struct intent *intent;     /* whose example it is */
	const struct intent_example *ex; /* the example */
	int counter;                     /* 1 for a counter-example */
	int ok;                          /* it behaved */
	const struct match_result *res;  /* what matching gave */
};

typedef void (*lint_example_fn)(void *arg, const struct lint_example *e);

/*
 * Runs every example and counter-example of kb, calling fn (may be NULL)
 * for each. Returns the number that failed; *passed gets the others.
 */
size_t lint_examples(const struct kb *kb, const struct match_opts *mo, lint_example_fn fn,
                     void *arg, size_t *passed);

/* Adds every whole-set problem of kb to diags. */
void lint_kb(const struct kb *kb, const struct lint_opts *o, struct diag_list *diags);

/* Describes why an example failed, into a new string (caller frees). */
char *lint_describe(const struct lint_example *e);

#endif
