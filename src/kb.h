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
struct learn_model;
struct learn_params;
struct trainer_job;

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

/* Where a labelled message for the learned layer came from. */
enum kb_row_source {
	KB_ROW_FILE,    /* a TSV file of labelled/ */
	KB_ROW_TAUGHT,  /* the moderators' taught file: learnt from as several rows, since
	                 * one message among thousands would barely move the model */
	KB_ROW_EXAMPLE, /* an intent's example */
	KB_ROW_COUNTER, /* an intent's counter-example: labelled as the rules answer
	                 * it without that intent */
};

/* A labelled message. */
struct kb_row {
	char *text;             /* the message */
	int intent;             /* its intent (index into kb->in), or -1: no answer */
	uint8_t source;         /* enum kb_row_source */
	struct intent_place at; /* where it is written */
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

	/* the learned layer (learn.h) */
	struct learn_model *model; /* trained on the rows below, or NULL */
	uint32_t *intent_class;    /* intent index -> its class in the model */
	int *class_intent;         /* class -> intent index, or -1 (safety binary, none) */
	size_t nclass;             /* classes */
	struct kb_row *rows;       /* the labelled messages, when kept (kb_source.keep_rows) */
	size_t nrows;
	uint64_t input_hash;       /* of the files and names the model learns from */
	struct trainer_job *job;   /* the trainer at work on the model, or NULL */
	char *model_err;           /* why the trainer could not start, until reported */
	char *cache_path;          /* where a model for these inputs is cached, or NULL */
	int labels_builtin;        /* the labelled set built in stands for a missing one:
	                              its messages for intents not in this set are left out */
};

/* Where to load from. NULL or "" paths mean the set built into the binary. */
struct kb_source {
	const char *const *intent_paths; /* files or directories of *.json */
	size_t nintent;
	const char *const *response_paths; /* files or directories of *.md */
	size_t nresponse;
	int partial; /* the paths are only part of a set (lint of single files) */
	/*
	 * Labelled messages (*.tsv files or directories of them). None given:
	 * the embedded set's with embedded intents, else a directory
	 * "labelled" beside each intents directory, when there is one.
	 */
	const char *const *labelled_paths;
	size_t nlabelled;
	const char *taught;            /* a labelled file the moderators taught, or NULL */
	const char *cache_dir;         /* where trained models are kept, by what they learnt
	                                * from (a hit needs no training), or NULL */
	int no_model;                  /* do not train the learned layer */
	int keep_rows;                 /* keep the labelled rows in kb->rows */
	const char *const *bot_names;  /* names the bot answers to (NULL-terminated), or NULL */
	const struct learn_params *learn; /* training parameters, or NULL for the defaults */
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

/*
 * The labelled messages of kb and of the TSV files in lfiles (names and
 * texts; see kb_source), as rows for training, appended to *rows / *nrows
 * (each text a copy the caller frees with kb_rows_free). Counter-examples
 * are labelled with the rules' answer without their intent. Problems (a
 * line without a TAB, an unknown intent) go to diags with their place;
 * returns the number of errors. With rows NULL the files are only checked,
 * and *nrows counts their messages.
 */
int kb_rows_collect(const struct kb *kb, const char *const *bot_names,
                    const char *const *names, const char *const *texts, const size_t *lens,
                    size_t nfiles, struct kb_row **rows, size_t *nrows, struct diag_list *diags);
void kb_rows_free(struct kb_row *rows, size_t n);

/*
 * Trains a model for kb from rows (all of them, or those with keep[i]
 * set when keep is not NULL). Returns NULL when there is too little to
 * learn from. The model refers to kb's lexicon. In learn_train.c: only the
 * trainer and the tests have it (see trainer.h).
 */
struct learn_model *kb_train(const struct kb *kb, const char *const *bot_names,
                             const struct kb_row *rows, size_t nrows,
                             const unsigned char *keep, const struct learn_params *p);

/*
 * How kb_load() trains the model: by default it starts the trainer process
 * (trainer.h) and the model arrives later (kb_model_wait, kb_model_poll);
 * with a function set here, in this process, before kb_load() returns.
 */
typedef struct learn_model *(*kb_trainer_fn)(const struct kb *kb, const char *const *bot_names,
                                             const struct kb_row *rows, size_t nrows,
                                             const unsigned char *keep,
                                             const struct learn_params *p);
void kb_set_trainer(kb_trainer_fn fn);

/*
 * Where trained models are cached: $FAQBOT_CACHE_DIR; else fallback when
 * it is not NULL (the daemon's state directory); else $XDG_CACHE_HOME/faqbot
 * or ~/.cache/faqbot, created if missing. NULL when there is none. Caller
 * frees.
 */
char *kb_cache_dir(const char *fallback);

/* Is kb's model still being trained? */
int kb_model_pending(const struct kb *kb);
/* The descriptors to wait on (POLLIN) while it is; their number (0 to 2). */
int kb_model_fds(const struct kb *kb, int fds[2]);
/*
 * Reads the trainer's progress without blocking: returns 0 while it works,
 * 1 when done (the model attached to kb, or a warning in diags saying why
 * there is none: then the rules answer alone).
 */
int kb_model_poll(struct kb *kb, struct diag_list *diags);
/* Waits for the model. 0, or -1 with a warning in diags (no model). */
int kb_model_wait(struct kb *kb, struct diag_list *diags);

/* Finds an intent by id; returns its index or -1. */
int kb_intent_find(const struct kb *kb, const char *id);

/* The response an intent answers with, in locale (falling back to "en"). */
const struct response *kb_response(const struct kb *kb, const struct intent *in,
                                   const char *locale);

/* Counts for `faqbot ask` and benchmarks. */
void kb_stats(const struct kb *kb, size_t *patterns, size_t *always, size_t *literals,
              size_t *terms);

/*
 * The directory called name beside the directory path ("intents" ->
 * "labelled", "/etc/faqbot/intents/" -> "/etc/faqbot/labelled"), or NULL
 * when path is not a directory. Caller frees.
 */
char *kb_beside(const char *path, const char *name);

#endif
