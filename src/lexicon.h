/*
 * The lexicon: the shared list of synonyms and spellings that brings the
 * many ways people write a thing to one form before matching ("stage iv",
 * "stage four", "stage IV" -> "stage 4"; "keytruda" -> "pembrolizumab"),
 * the vocabulary whose near-misses are corrected ("imunotherapy"), and the
 * named word classes that intents use as @name in keywords and @{name} in
 * patterns. Moderators edit it in intents/lexicon.json; it is loaded with
 * the intents (intent.c) and read by the normaliser (text.c).
 */
#ifndef FAQBOT_LEXICON_H
#define FAQBOT_LEXICON_H

#include <stddef.h>
#include <stdint.h>

/* Longest synonym phrase, in words. */
#define LEXICON_MAX_PHRASE 5

struct lexicon;

/* Returns an empty lexicon; free with lexicon_free(). Never NULL. */
struct lexicon *lexicon_new(void);
void lexicon_free(struct lexicon *lx);

/*
 * Maps variant to canonical. Both are raw text, split into words as the
 * normaliser does. Returns 0, or -1 with *err set to a message the caller
 * frees (empty variant, too many words, the variant already maps elsewhere,
 * or a chain: the canonical form is itself a variant, or the variant is
 * itself the canonical form of another; a rewrite is never rewritten again,
 * so the lexicon must map each variant straight to its final form).
 */
int lexicon_add_synonym(struct lexicon *lx, const char *canonical, const char *variant, char **err);

/* Adds a word whose misspellings are corrected. Returns 0, or -1 and *err. */
int lexicon_add_vocabulary(struct lexicon *lx, const char *word, char **err);

/* Marks a word as known: it is never "corrected" into something else. */
void lexicon_add_known(struct lexicon *lx, const char *word, size_t len);

/*
 * Creates the class `name` (letters, digits, '_'). Returns its index, or -1
 * with *err when the name is malformed or taken.
 */
int lexicon_class_new(struct lexicon *lx, const char *name, char **err);
/*
 * Adds a member to class idx: raw text, normalised through the lexicon, or
 * a prefix "cur*" (its words as written, the trailing '*' kept). Returns 0,
 * or -1 when the member has no words ("!!!", an emoji): it is left out.
 */
int lexicon_class_add(struct lexicon *lx, int idx, const char *member);
/* Looks a class up by name (len bytes); returns its index or -1. */
int lexicon_class_find(const struct lexicon *lx, const char *name, size_t len);
/* The members of class idx, normalised; *n gets their number. */
const char *const *lexicon_class_members(const struct lexicon *lx, int idx, size_t *n);
/* The name of class idx. */
const char *lexicon_class_name(const struct lexicon *lx, int idx);
size_t lexicon_class_count(const struct lexicon *lx);

/*
 * Finds the longest synonym variant starting at words[0] (n words available,
 * lens their lengths). Returns its canonical form (words joined by spaces,
 * owned by the lexicon) and the words it covers in *consumed, or NULL.
 */
const char *lexicon_rewrite(const struct lexicon *lx, const char *const *words,
                            const uint32_t *lens, size_t n, size_t *consumed);

/*
 * Returns the vocabulary word that `word` (len bytes, folded) is a unique
 * near-miss of (one edit for words up to 8 letters, two from 9), or NULL
 * when the word is known, too short, or no single word is that close.
 */
const char *lexicon_correct(const struct lexicon *lx, const char *word, size_t len);

/* Is word a canonical form, a variant, a vocabulary word or marked known? */
int lexicon_is_known(const struct lexicon *lx, const char *word, size_t len);

/*
 * The dictionary of the normaliser's step 3b (text.h): the words the intent
 * files use, taken from any text (examples, keywords, lexicon entries, the
 * words of patterns; an escape such as \b is no part of a word), split as
 * text_words() does. Words written with digits are left out, and once every
 * file is in, lexicon_words_done() leaves out a word with a letter three
 * times in a row that is a word of the dictionary stretched ("sooo", with
 * "so"): those are what step 3b reads, never what it reads them as. The
 * kb fills it before anything is normalised.
 */
void lexicon_add_words(struct lexicon *lx, const char *text, size_t len);
void lexicon_words_done(struct lexicon *lx);
/* Is word (len bytes, as the normaliser splits it) in the dictionary? lx may be NULL. */
int lexicon_has_word(const struct lexicon *lx, const char *word, size_t len);
size_t lexicon_word_count(const struct lexicon *lx);

/* Is word a synonym variant (so it never survives normalisation)? */
const char *lexicon_variant_of(const struct lexicon *lx, const char *word, size_t len);

/*
 * Normalises text (words, then synonyms) the way messages are normalised,
 * into a new string the caller frees.
 */
char *lexicon_normalise(const struct lexicon *lx, const char *text);

/* Sizes, for `faqbot ask` and benchmarks. */
size_t lexicon_synonym_count(const struct lexicon *lx);
size_t lexicon_vocabulary_count(const struct lexicon *lx);

#endif
