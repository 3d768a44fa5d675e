/*
 * The learned layer: a linear classifier over the normalised text, trained
 * from the labelled messages the project keeps (every intent's examples,
 * counter-examples as evidence against their intent, and the TSV files of
 * labelled/), as the second layer behind the rules.
 *
 * Features are read from the text as the rules see it (text.h: folded,
 * the lexicon's spellings and synonyms applied): every word, every pair of
 * neighbouring words, the character 4-grams inside each word of six
 * letters or more (so that "anymor" still shares most of its grams with
 * "anymore"), and the lexicon's word classes ("@opioid" for "oxycodone").
 * They are hashed into a fixed space of LEARN_BUCKETS and scaled so that
 * every message has the same length, grams at half the weight of words.
 *
 * Training is liblinear's L2-regularised logistic regression, one binary
 * problem per class ("one against the rest"), in two tiers:
 *   - on every message: the safety binary (either safety intent against
 *     everything else), safety.emergency against the rest, safety.crisis
 *     against the rest;
 *   - on the messages that are not safety messages: "no answer" and every
 *     other intent, each against the rest.
 * P(emergency or crisis) is the mean of two views of it: the safety
 * binary's probability, and the probability that either safety class
 * claims the message. The other classes give P(intent | not a safety
 * message), normalised over them. Weights too small to change an answer
 * are pruned and the rest kept sparse, by feature, classes in order, so
 * that scoring reads only what a message's features touch. Training is
 * deterministic: the same rows give the same model and the same answers.
 * The choices (features, C, pruning, the two tiers) were made by
 * cross-validation; docs/intents.md gives the figures.
 */
#ifndef FAQBOT_LEARN_H
#define FAQBOT_LEARN_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct lexicon;
struct text_norm;

#define LEARN_BITS    18                /* the feature space: 2^18 buckets */
#define LEARN_BUCKETS (1u << LEARN_BITS)
#define LEARN_MAX_FEATURES 4096         /* features kept from one message */
#define LEARN_MAX_CLASSES  65000        /* classes fit in 16 bits */
/* Long posts are read in windows too (learn_read); sizes chosen by cross-validation. */
#define LEARN_WINDOW       20           /* words in a window */
#define LEARN_WINDOW_MIN   40           /* messages of more words are read in windows */
#define LEARN_TAUGHT_REPEAT 8           /* a taught message weighs as this many labelled ones */
/*
 * Seeds the hash of what a model is trained from; changes whenever the
 * features or the training change, so that no model of another kind passes
 * for a current one.
 */
#define LEARN_FORMAT_HASH  0x6661716d6f640006ull

/* Fixed class numbers: the safety classes first (read on every message). */
enum {
	LEARN_C_SAFETY = 0,    /* binary: either safety intent, against the rest */
	LEARN_C_EMERGENCY = 1, /* safety.emergency */
	LEARN_C_CRISIS = 2,    /* safety.crisis */
	LEARN_C_NULL = 3,      /* no intent: the bot stays silent */
	LEARN_C_FIRST = 4,     /* the other intents from here, in the order given */
};

/* A labelled message. */
struct learn_row {
	const char *text; /* the message (not owned) */
	uint32_t cls;     /* its class, LEARN_C_EMERGENCY and up */
};

/* Training parameters; the feature ones are kept in the model. */
struct learn_params {
	double c;          /* liblinear's C for the safety tier: less regularisation as it grows */
	double c_second;   /* and for the second tier (no answer and the intents) */
	double eps;        /* liblinear's stopping tolerance */
	double prune;      /* weights smaller than this (absolute) are dropped */
	double prune_neg;  /* the second tier's negative weights, down to minus this */
	int threads;       /* classes trained at once (1 or more) */
	int gram;          /* length of the character grams (0: none) */
	int gram_min_word; /* only in words of at least this many letters */
	double gram_weight; /* a gram's value relative to a word's */
	double tol_second; /* the second tier's classes stop at this relative tolerance, not
	                    * liblinear's eps scaled by their few positives (far tighter) */
};

/* The defaults, chosen by cross-validation (see docs/intents.md). */
void learn_params_default(struct learn_params *p);

struct learn_model;

/* What a model holds, for `faqbot ask`, stats and benchmarks. */
struct learn_info {
	size_t rows;       /* messages it learnt from */
	size_t features;   /* distinct feature buckets seen in them */
	size_t weights;    /* weights kept after pruning */
	size_t bytes;      /* memory the model holds (its lexicon not counted) */
	double seconds;    /* time taken to train */
};

/*
 * The features of a normalised message, as sorted distinct bucket numbers
 * in feat (room for LEARN_MAX_FEATURES); returns how many. m gives the
 * word classes and the feature parameters (NULL: no classes, the default
 * parameters); bot_names (NULL-terminated, may be NULL) are
 * read as one word "@bot", so that the bot's configured name does not
 * matter. When names is not NULL, a readable name of every feature is
 * appended to it, NUL-separated, in the order of the hashes before sorting,
 * and the bucket of each in order is stored in name_bucket (same room).
 */
size_t learn_features(const struct learn_model *m, const struct text_norm *n,
                      const char *const *bot_names, uint32_t *feat, struct buf *names,
                      uint32_t *name_bucket, size_t *nnames);

/*
 * The same for the words from..from+count-1 of the message only, read as a
 * message of their own (a window of a long post); and the number of words.
 */
size_t learn_features_window(const struct learn_model *m, const struct text_norm *n,
                             const char *const *bot_names, size_t from, size_t count,
                             uint32_t *feat, struct buf *names, uint32_t *name_bucket,
                             size_t *nnames);
size_t learn_words(const struct text_norm *n);

/*
 * Trains a model of nclass classes (ids[c] names class c; ids[0] is the
 * safety binary) from rows, normalised through lx. The model refers to lx
 * (for word classes), which must outlive it. Returns the model, or NULL
 * when there is nothing to learn from (fewer than two classes with rows).
 * Free with learn_free(). In learn_train.c, with liblinear: only the
 * trainer (faqbot-train) and the tests link it, so that the bot itself
 * carries neither liblinear nor the memory training takes.
 */
struct learn_model *learn_train(const struct lexicon *lx, const char *const *bot_names,
                                const char *const *ids, size_t nclass,
                                const struct learn_row *rows, size_t nrows,
                                const struct learn_params *p);

void learn_free(struct learn_model *m);

/*
 * The value of each of a message's features (from learn_features) in
 * val[0..n): the message's vector has length 1, grams weighing
 * m's gram_weight against words (m NULL: the defaults).
 */
void learn_values(const struct learn_model *m, const uint32_t *feat, size_t n, double *val);

/* A weight of the model: for a feature bucket and a class. */
struct learn_weight {
	uint32_t bucket;
	uint32_t cls;
	float w;
};

/*
 * A model without classes yet, with the word classes of lx (which must
 * outlive it) and the parameters p; learn_model_set() gives it its
 * classes and weights (w is sorted on the way). For the trainer and the
 * loader.
 */
struct learn_model *learn_model_new(const struct lexicon *lx, const struct learn_params *p);
void learn_model_set(struct learn_model *m, const char *const *ids, size_t nclass,
                     const float *bias, struct learn_weight *w, size_t nw,
                     const struct learn_info *info);

/*
 * The model as bytes (appended to out), with input_hash, a hash of what it
 * was trained from, so that a loader can tell whether it is stale; and
 * back. learn_load() checks everything (a checksum, every size and value)
 * and returns NULL with *err (a static string) when the data is not a
 * sound model; lx is the lexicon the model's word classes come from.
 */
void learn_save(const struct learn_model *m, uint64_t input_hash, struct buf *out);
struct learn_model *learn_load(const void *data, size_t len, const struct lexicon *lx,
                               uint64_t *input_hash, const char **err);

/* The model's classes: how many, and the id of class c. */
size_t learn_nclass(const struct learn_model *m);
const char *learn_class_id(const struct learn_model *m, uint32_t c);

void learn_model_info(const struct learn_model *m, struct learn_info *out);

/* Scratch space for learn_predict(), reused from message to message. */
struct learn_scratch {
	double *score;     /* per class: its decision value (for the touched ones) */
	uint32_t *stamp;   /* per class: gen when touched */
	uint32_t *touched; /* the classes some feature of the message weighs on */
	size_t ntouched;
	size_t cap;        /* room in the arrays, in classes */
	uint32_t gen;      /* message counter */
};
void learn_scratch_free(struct learn_scratch *sc);

#define LEARN_TOP 3 /* best classes reported */

/* What the model says of one message. */
struct learn_pred {
	double p_safety;         /* P(emergency or crisis) */
	double p_emergency;      /* safety.emergency's own probability, against the rest */
	double p_crisis;         /* safety.crisis's own probability, against the rest */
	uint32_t top[LEARN_TOP]; /* the likeliest of the other classes ("no answer" and
	                          * the intents), best first */
	double ptop[LEARN_TOP];  /* their P(class | not a safety message) */
	size_t ntop;
};

/*
 * What the model says of a message's features (from learn_features); see
 * the top of this file for what the probabilities are. Each class's own
 * probability is normalised over the classes of its tier (liblinear's way
 * for one-against-the-rest); only the classes that some feature weighs on
 * are computed one by one, the others keep the share their bias gives them.
 * With all = 0, only the first tier (p_safety, p_emergency, p_crisis):
 * what every message needs; the second only when the model may answer.
 */
void learn_predict(const struct learn_model *m, const uint32_t *feat, size_t nfeat, int all,
                   struct learn_scratch *sc, struct learn_pred *out);

/*
 * What the model says of a normalised message: learn_features then
 * learn_predict, and for a long post (over LEARN_WINDOW_MIN words) the
 * first tier again on every window of LEARN_WINDOW words (half of each
 * overlapping the next): P(emergency or crisis) is then halfway between the
 * whole post's and the most alarming window's, when that is higher. feat is
 * scratch room for LEARN_MAX_FEATURES features.
 */
void learn_read(const struct learn_model *m, const struct text_norm *n, const char *const *bot_names,
                int all, struct learn_scratch *sc, uint32_t *feat, struct learn_pred *out);

/*
 * The features that weighed most for class c in this message: up to max of
 * them, strongest first, appended to out as `"name" +0.52` entries.
 */
void learn_explain(const struct learn_model *m, const struct text_norm *n,
                   const char *const *bot_names, uint32_t c, size_t max, struct buf *out);

/*
 * Messages a moderator taught as an emergency or a crisis, which take
 * effect at once (`!faq teach`): a message close enough to one of them
 * (the cosine of their feature sets at least LEARN_NEAR_SIMILAR) gets its
 * safety answer before any reload has taught the model. At most
 * LEARN_NEAR_MAX are kept, the oldest going first.
 */
#define LEARN_NEAR_SIMILAR 0.5
#define LEARN_NEAR_MAX     500

struct learn_near;
struct lexicon;

struct learn_near *learn_near_new(void);
void learn_near_free(struct learn_near *nr);
/* Adds text (a redacted message) as cls (LEARN_C_EMERGENCY or LEARN_C_CRISIS). */
void learn_near_add(struct learn_near *nr, const char *text, uint32_t cls);
size_t learn_near_count(const struct learn_near *nr);
/* The lexicon or model changed (a reload): read the taught messages again. */
void learn_near_stale(struct learn_near *nr);
/*
 * The class of the taught message closest to a message with features
 * feat[0..nf) (made with model m, which may be NULL, and lexicon lx), when
 * it is close enough, else -1; *sim gets the closeness (0 to 1).
 */
int learn_near_match(struct learn_near *nr, const struct learn_model *m,
                     const struct lexicon *lx, const char *const *bot_names, const uint32_t *feat,
                     size_t nf, double *sim);

#endif
