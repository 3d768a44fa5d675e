/*
 * Necessary literals of a regular expression: from a PCRE2 pattern, computes
 * a small set of literal strings such that every subject the pattern can
 * match contains at least one of them. The matcher indexes these literals in
 * an Aho-Corasick automaton (acm.h) and runs a pattern only when one of its
 * literals occurs in the message, instead of running every pattern on every
 * message (in the manner of RE2's prefilter and codesearch's trigram index,
 * but with whole literals).
 *
 * The analysis is conservative: it must never drop a pattern that could
 * match. For any construct it does not understand it answers "no useful set"
 * and the pattern is then run on every message.
 *
 * Literals are folded to lower case (ASCII letters only; the caller folds
 * non-ASCII letters with text_fold()), because patterns are compiled
 * caseless and messages are folded before matching.
 */
#ifndef FAQBOT_RXLIT_H
#define FAQBOT_RXLIT_H

#include <stddef.h>

/* Analysis limits. */
#define RXLIT_MAX_SET 16 /* most alternatives kept for one node */
#define RXLIT_MIN_LEN 3  /* shorter literals are not selective enough */
#define RXLIT_MAX_LEN 64 /* longer exact strings are cut to a necessary piece */

struct rxlit {
	char **lit;  /* the literals, NUL-terminated, ASCII folded to lower case */
	size_t *len; /* their lengths in bytes */
	size_t n;    /* how many */
};

/*
 * Analyses pattern (patlen bytes, UTF-8, compiled by the caller with
 * PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS). On success fills *out (free with
 * rxlit_free) and returns 1 when a useful set was found: any subject the
 * pattern matches contains one of out->lit[i]. Returns 0 (and out->n == 0)
 * when no useful set exists, so the pattern must always run. Never fails on
 * any input, valid or not.
 */
int rxlit_extract(const char *pattern, size_t patlen, struct rxlit *out);

/* Frees the literals; the struct itself belongs to the caller. */
void rxlit_free(struct rxlit *r);

#endif
