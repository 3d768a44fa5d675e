/*
 * The knowledge base: everything the bot answers from, loaded and checked
 * as one read-only unit — the lexicon, the intents, the responses, and the
 * index the matcher uses. A reload builds a new kb and swaps one pointer;
 * if anything fails to load, the old kb stays (see bot.c).
 *
 * The index: every pattern's necessary literals (rxlit.h) and every keyword
 * term go into one Aho-Corasick automaton (acm.h). A message is scanned
 * once; only the patterns whose literals occur are run, and only the
 * intents whose terms occur are scored.
 */
#ifndef FAQBOT_KB_H
#define FAQBOT_KB_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "intent.h"
#include "response.h"

struct lexicon;
struct acm;

/* The intents every set must have: the emergency and crisis answers. */
#define KB_SAFETY_IDS {"safety.emergency", "safety.crisis"}

/* Ids in the automaton: terms as they are, literals with this bit set. */
#define KB_LIT_FLAG 0x80000000u

/* What a keyword term does for an intent. */
enum kb_role {
	KB_ROLE_ALL,  /* satisfies all-of group `group` */
	KB_ROLE_ANY,  /* an any-of booster */
	KB_ROLE_NONE, /* a none-of veto */
};

struct kb_term_ref {
	uint32_t intent; /* index into kb->in */
	uint8_t role;    /* enum kb_role */
	uint8_t group;   /* for KB_ROLE_ALL */
};

/* A pattern, by intent and position: positive first, then negative. */
struct kb_pat {
	uint32_t intent;  /* index into kb->in */
	uint16_t idx;     /* index in in->pat or in->neg */
	uint8_t negative; /* 1 for a not_pattern */
};

struct kb {
	struct lexicon *lx; /* synonyms, vocabulary, classes */
	struct intent *in;  /* the intents, in load order */
	size_t nin;
	struct intent_terms terms;     /* keyword terms of all intents */
	struct response_set responses; /* the responses */
	char **files;                  /* names of the files loaded (places point here) */
	size_t nfiles;
	char *origin; /* "embedded", or the directories, for messages */

	/* the index */
	struct acm *ac;     /* literals and terms */
	struct kb_pat *pat; /* every pattern */
	size_t npat;
	uint32_t *lit_start; /* literal i -> pat numbers lit_pat[lit_start[i]..[i+1]] */
	uint32_t *lit_pat;
	size_t nlit;
	uint32_t *term_start; /* term t -> refs term_ref[term_start[t]..[t+1]] */
	struct kb_term_ref *term_ref;
	uint32_t *always; /* patterns without literals: run on every message */
	size_t nalways;
	uint32_t max_captures; /* most capture groups in one pattern */
};

/* Where to load from. NULL or "" paths mean the set built into the binary. */
struct kb_source {
	const char *const *intent_paths; /* files or directories of *.json */
	size_t nintent;
	const char *const *response_paths; /* files or directories of *.md */
	size_t nresponse;
	int partial; /* the paths are only part of a set (lint of single files) */
};

/*
 * Loads and checks everything, builds the index. Returns the kb, or NULL
 * when there were errors (all reported in diags with their places);
 * warnings do not stop the load. Free with kb_free().
 *
 * A set without the safety intents (KB_SAFETY_IDS, which must not be
 * silent) is an error, since emergencies would then get no answer; with
 * src->partial it is a warning. Only regular files are read (a FIFO or a
 * device found in a directory is skipped with a warning, never waited
 * on), each at most 1 MiB, at most 10,000 per directory and 64 MiB in all,
 * so a load is bounded whatever the directories hold.
 */
struct kb *kb_load(const struct kb_source *src, struct diag_list *diags);

/* Loads the set built into the binary. */
struct kb *kb_load_embedded(struct diag_list *diags);

/* A file held in memory, for kb_load_mem(). */
struct kb_mem_file {
	const char *name; /* for diagnostics: "intents/x.json", "responses/y.md" */
	const char *text; /* its bytes (any bytes; need not end with a NUL) */
	size_t len;       /* how many */
};

/*
 * Like kb_load(), from files in memory (copied; the caller keeps its own):
 * nintent intent files (the lexicon sections first, as from a directory)
 * and nresponse response files. No disk is touched; for fuzzers and tests,
 * so the files are taken as part of a set (missing safety intents are a
 * warning). Returns the kb (free with kb_free()), or NULL when there were
 * errors.
 */
struct kb *kb_load_mem(const struct kb_mem_file *intents, size_t nintent,
                       const struct kb_mem_file *responses, size_t nresponse,
                       struct diag_list *diags);

void kb_free(struct kb *kb);

/* Finds an intent by id; returns its index or -1. */
int kb_intent_find(const struct kb *kb, const char *id);

/* The response an intent answers with, in locale (falling back to "en"). */
const struct response *kb_response(const struct kb *kb, const struct intent *in,
                                   const char *locale);

/* Counts for `faqbot ask` and benchmarks. */
void kb_stats(const struct kb *kb, size_t *patterns, size_t *always, size_t *literals,
              size_t *terms);

#endif
