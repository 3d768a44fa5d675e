/*
 * Intents: what a message can be asking, as moderators write them in
 * the JSON files of intents/. An intent has an id, the response it answers with, a
 * priority, PCRE2 patterns (run on the normalised text), keyword groups
 * (all-of groups of synonyms, any-of boosters, none-of vetoes), negative
 * patterns, and example questions that must reach it and counter-examples
 * that must not. The same files hold the lexicon sections (synonyms,
 * vocabulary, classes), read first.
 *
 * The file format is described in intents/README.md. This module parses and
 * compiles; kb.c drives the loading of a whole set and match.c scores.
 */
#ifndef FAQBOT_INTENT_H
#define FAQBOT_INTENT_H

#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "diag.h"
#include "json.h"

struct lexicon;

/* Defaults, in score points (see match.h for how points add up). */
#define INTENT_PATTERN_WEIGHT  1.0  /* a matching pattern */
#define INTENT_GROUP_WEIGHT    0.25 /* each all-of keyword group, when all are present */
#define INTENT_ANY_WEIGHT      0.1  /* each any-of keyword present */
#define INTENT_ANY_MAX         3    /* at most this many any-of keywords count */
#define INTENT_MAX_PATTERN_LEN 2000 /* bytes, after class expansion */
#define INTENT_MAX_GROUPS      16   /* all-of groups in one intent */
/*
 * Patterns that compile to fewer bytes than this run in PCRE2's interpreter:
 * for a short pattern the JIT's machine code (about ten times the compiled
 * size) costs memory and instruction-cache misses and saves little; long
 * ones (class alternations, lookahead conjunctions) gain several times.
 * Measured with tests/bench: at 1,000 generated intents the median fell
 * from 33 to 11 us and the JIT code from 15 MB to none; on the shipped set
 * the median stayed near 15 us with half the JIT code.
 */
#define INTENT_JIT_MIN_SIZE    1000
#define INTENT_MAX_PATTERNS    1000 /* patterns (and not_patterns) in one intent: the
                                     * index keeps 16-bit pattern numbers */

/* Where something was written, for diagnostics and `faqbot ask`. */
struct intent_place {
	const char *file; /* the file (owned by the kb) */
	int line;         /* 1-based */
	int col;          /* 1-based */
};

struct intent_pattern {
	char *src;              /* as written, with @{class} references */
	char *expanded;         /* with the classes expanded: what was compiled */
	pcre2_code *code;       /* compiled (JIT when available) */
	double weight;          /* points when it matches */
	int always;             /* no literal prefilter: run on every message */
	uint32_t index;         /* 1-based number within its list, for messages */
	struct intent_place at; /* where it was written */
};

/* A keyword term: normalised words, possibly a prefix ("cur*"). */
struct intent_term_ref {
	uint32_t term; /* index into the kb's term table */
};

struct intent_group {
	uint32_t *term; /* term indexes; any one satisfies the group */
	size_t n;       /* how many */
	char *label;    /* the group as written, for explanations */
};

struct intent_example {
	char *text;             /* the message */
	struct intent_place at; /* where it was written */
};

struct intent {
	char *id;           /* e.g. "kidney.cure_if_spread" */
	char *title;        /* a few words for "did you mean", e.g. "what palliative care is" */
	char *response;     /* response id it answers with */
	int priority;       /* higher wins over lower, whatever the scores */
	int needs_question; /* only a question not put to another member */
	int silent;         /* when it wins, the bot stays silent */
	double min_score;   /* its own threshold, or 0 for the configured one */
	struct intent_pattern *pat; /* patterns */
	size_t npat;
	struct intent_pattern *neg; /* negative patterns: a match rules the intent out */
	size_t nneg;
	struct intent_group *all; /* all-of groups */
	size_t nall;
	double group_weight;       /* points per all-of group */
	struct intent_group any;   /* any-of boosters */
	struct intent_group none;  /* none-of vetoes */
	struct intent_example *ex; /* examples that must reach it */
	size_t nex;
	struct intent_example *cex; /* counter-examples that must not */
	size_t ncex;
	struct intent_place at; /* where the intent starts */
};

/* The table of keyword terms shared by all intents of a set. */
struct intent_terms {
	char **text;     /* normalised words of each term */
	uint32_t *len;   /* their lengths */
	uint8_t *prefix; /* 1 when the last word is a prefix ("cur*") */
	size_t n;        /* how many */
	size_t cap;      /* allocated */
	void *index;     /* text -> term number (struct smap *) */
};

/*
 * Reads the lexicon sections (synonyms, vocabulary, classes) of a parsed
 * intent file into lx. Problems go to diags; returns the number of errors.
 */
int intent_file_lexicon(const struct json_doc *doc, struct lexicon *lx, struct diag_list *diags);

/*
 * Reads the intents of a parsed file, appending to *arr / *n. Keywords are
 * normalised through lx and added to terms; patterns are compiled with
 * @{class} expanded from lx. Problems go to diags; returns the number of
 * errors. The intents keep pointers to file (which must outlive them).
 */
int intent_file_intents(const struct json_doc *doc, const char *file, struct lexicon *lx,
                        struct intent_terms *terms, struct intent **arr, size_t *n,
                        struct diag_list *diags);

/* Frees what one intent holds (not the struct itself). */
void intent_clear(struct intent *in);

/*
 * Whether patterns compiled from now on get the PCRE2 JIT (on by default,
 * for patterns of INTENT_JIT_MIN_SIZE bytes or more; the interpreter gives
 * the same results). Process-wide: set it from the configuration before
 * loading.
 */
void intent_set_jit(int on);

void intent_terms_init(struct intent_terms *t);
void intent_terms_free(struct intent_terms *t);

/*
 * Compiles a pattern the way intents' patterns are compiled (UTF, UCP,
 * caseless, JIT), after expanding @{class}. Returns the code and, if
 * expanded is not NULL, the expanded pattern (caller frees); or NULL with a
 * message (caller frees) and the offset in the pattern as written.
 */
pcre2_code *intent_compile(const char *pattern, const struct lexicon *lx, char **expanded,
                           char **err, size_t *erroff);

#endif
