/*
 * Unit tests for lexicon.c: synonyms (multi-word, longest match first,
 * brands to generic names), the conflicts a moderator must be told about,
 * spelling correction of the vocabulary (how far, ties, known words,
 * digits), and word classes with prefixes. Every case goes through the
 * normaliser, as messages do, unless it tests one function's contract.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "lexicon.h"
#include "text.h"
#include "util.h"

/* A lexicon like a small intents/lexicon.json. */
static struct lexicon *
sample_lexicon(void)
{
	static const char *const syn[][2] = {
	    {"stage 4", "stage iv"},
	    {"stage 4", "stage four"},
	    {"stage 4", "stage IV"}, /* the same variant once folded: must be refused */
	    {"pembrolizumab", "Keytruda"},
	    {"nivolumab", "opdivo"},
	    {"metastatic", "mets"},
	    {"metastatic", "secondary"},
	    {"metastatic breast cancer", "secondary breast cancer"},
	    {"non small cell lung cancer", "non small cell"},
	    {"non small cell lung cancer", "NSCLC"},
	    {"small cell lung cancer", "small cell"},
	    {"side effect", "side-effects"},
	    {"side effect", "side affects"},
	    {"radiation", "radiotherapy"},
	};
	static const char *const vocab[] = {"immunotherapy", "palliative",  "biopsy",
	                                    "oncology",      "metastasis",  "metastases",
	                                    "cachexia",      "capecitabine"};
	struct lexicon *lx = lexicon_new();
	char *err;
	size_t i;

	for (i = 0; i < NELEM(syn); i++) {
		err = NULL;
		if (lexicon_add_synonym(lx, syn[i][0], syn[i][1], &err) == -1) {
			/* only the deliberate duplicate may be refused */
			if (strcmp(syn[i][1], "stage IV") != 0)
				fail_msg("synonym %s -> %s refused: %s", syn[i][1], syn[i][0], err);
			free(err);
		} else if (strcmp(syn[i][1], "stage IV") == 0) {
			fail_msg("\"stage IV\" accepted though \"stage iv\" is listed");
		}
	}
	for (i = 0; i < NELEM(vocab); i++) {
		err = NULL;
		if (lexicon_add_vocabulary(lx, vocab[i], &err) == -1)
			fail_msg("vocabulary %s refused: %s", vocab[i], err);
	}
	lexicon_add_known(lx, "ontology", strlen("ontology"));
	return lx;
}

struct norm_case {
	const char *msg;
	const char *want;
};

static const struct norm_case synonym_cases[] = {
    {"stage iv", "stage 4"},
    {"Stage IV kidney cancer", "stage 4 kidney cancer"},
    {"STAGE FOUR", "stage 4"},
    {"is it stage-iv?", "is it stage 4 ?"},
    {"stage iv?", "stage 4 ?"},
    {"stage", "stage"},
    {"stage? iv", "stage ? iv"}, /* a phrase never spans a "?" */
    {"on Keytruda since May", "on pembrolizumab since may"},
    {"KEYTRUDA and Opdivo", "pembrolizumab and nivolumab"},
    {"keytrudas", "keytrudas"}, /* whole words only */
    {"mets in the liver", "metastatic in the liver"},
    {"secondary breast cancer", "metastatic breast cancer"}, /* longest first */
    {"secondary bone cancer", "metastatic bone cancer"},
    {"secondary breast", "metastatic breast"},
    {"non small cell", "non small cell lung cancer"},
    {"non-small cell", "non small cell lung cancer"},
    {"small cell", "small cell lung cancer"},
    {"nsclc and small cell", "non small cell lung cancer and small cell lung cancer"},
    {"any side-effects", "any side effect"},
    {"any side affects", "any side effect"},
    {"radiotherapy radiotherapy", "radiation radiation"},
};

static void
test_synonyms(void **state)
{
	struct lexicon *lx = sample_lexicon();
	size_t i;
	char *got;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(synonym_cases); i++) {
		got = lexicon_normalise(lx, synonym_cases[i].msg);
		CHECK_STR(got, synonym_cases[i].want, synonym_cases[i].msg);
		free(got);
	}
	/* variants and canonical forms are known, and variants say what they become */
	CHECK_STR(lexicon_variant_of(lx, "keytruda", 8), "pembrolizumab", "variant_of keytruda");
	CHECK_STR(lexicon_variant_of(lx, "stage iv", 8), "stage 4", "variant_of stage iv");
	CHECK(lexicon_variant_of(lx, "pembrolizumab", 13) == NULL,
	      "a canonical form is no variant");
	CHECK(lexicon_is_known(lx, "pembrolizumab", 13), "canonical forms are known");
	CHECK(lexicon_is_known(lx, "keytruda", 8), "variants are known");
	CHECK(lexicon_synonym_count(lx) == 13, "13 synonyms, got %zu", lexicon_synonym_count(lx));
	lexicon_free(lx);
	CHECK_END();
}

/* Rewritten words are flagged and keep their place in the message. */
static void
test_rewrite_tokens(void **state)
{
	static const char msg[] = "Is Stage IV curable?";
	struct lexicon *lx = sample_lexicon();
	struct text_norm n;

	(void)state;
	text_norm_init(&n);
	text_normalise(lx, NULL, msg, sizeof(msg) - 1, &n);
	assert_string_equal(n.text.data, "is stage 4 curable ?");
	assert_int_equal(n.ntok, 5);
	assert_false(n.tok[0].flags & TOK_REWRITTEN);
	assert_true(n.tok[1].flags & TOK_REWRITTEN);
	assert_true(n.tok[2].flags & TOK_REWRITTEN);
	/* both words of "stage 4" come from "Stage IV" */
	assert_int_equal(n.tok[1].src_off, 3);
	assert_int_equal(n.tok[1].src_len, strlen("Stage IV"));
	assert_int_equal(n.tok[2].src_off + n.tok[2].src_len, 3 + strlen("Stage IV"));
	text_norm_free(&n);
	lexicon_free(lx);
}

/* lexicon_rewrite on words given directly: the longest variant first. */
static void
test_rewrite_api(void **state)
{
	const char *words[] = {"secondary", "breast", "cancer", "spread"};
	uint32_t lens[] = {9, 6, 6, 6};
	struct lexicon *lx = sample_lexicon();
	struct lexicon *empty = lexicon_new();
	size_t used = 99;
	const char *c;

	(void)state;
	c = lexicon_rewrite(lx, words, lens, 4, &used);
	assert_non_null(c);
	assert_string_equal(c, "metastatic breast cancer");
	assert_int_equal(used, 3);
	c = lexicon_rewrite(lx, words, lens, 2, &used); /* the long phrase does not fit */
	assert_string_equal(c, "metastatic");
	assert_int_equal(used, 1);
	assert_null(lexicon_rewrite(lx, words + 3, lens + 3, 1, &used));
	assert_null(lexicon_rewrite(lx, words, lens, 0, &used));
	assert_null(lexicon_rewrite(empty, words, lens, 4, &used));
	lexicon_free(empty);
	lexicon_free(lx);
}

/* What a moderator must be told when adding synonyms. */
struct syn_err_case {
	const char *canonical;
	const char *variant;
	const char *want_err; /* NULL: accepted */
};

static const struct syn_err_case syn_err_cases[] = {
    {"metastatic", "mets", NULL},
    {"metastatic", "mets", "variant \"mets\" is listed twice"},
    {"metastatic", "METS", "variant \"METS\" is listed twice"},
    {"secondary cancer", "mets", "variant \"mets\" already maps to \"metastatic\""},
    {"x", "one two three four five six",
     "variant \"one two three four five six\" has more "
     "than 5 words"},
    {"x", "one two three four five", NULL},
    {"y", "!!!", "variant \"!!!\" has no words"},
    {"", "something", "canonical form \"\" has no words"},
    {"metastatic", "metastatic", NULL}, /* a canonical form among its own variants */
};

static void
test_synonym_errors(void **state)
{
	struct lexicon *lx = lexicon_new();
	size_t i;
	char *err;
	int rc;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(syn_err_cases); i++) {
		const struct syn_err_case *c = &syn_err_cases[i];

		err = NULL;
		rc = lexicon_add_synonym(lx, c->canonical, c->variant, &err);
		if (c->want_err == NULL) {
			CHECK(rc == 0, "%s -> %s refused: %s", c->variant, c->canonical,
			      err ? err : "");
		} else {
			CHECK(rc == -1, "%s -> %s accepted", c->variant, c->canonical);
			CHECK_STR(err, c->want_err, c->variant);
		}
		free(err);
	}
	lexicon_free(lx);
	CHECK_END();
}

/*
 * Chains: the canonical form of one synonym is a variant of another. A
 * variant "never survives normalisation" (lexicon.h), so either the second
 * entry is refused with a message, or the chain is followed to the end.
 * Both orders of adding are tried.
 */
static void
test_synonym_chains(void **state)
{
	static const char *const order[2][2][2] = {
	    {{"metastatic", "mets"}, {"mets", "metz"}},
	    {{"mets", "metz"}, {"metastatic", "mets"}},
	};
	size_t o, k;

	(void)state;
	check_begin();
	for (o = 0; o < 2; o++) {
		struct lexicon *lx = lexicon_new();
		int refused = 0;
		char *err, *got;

		for (k = 0; k < 2; k++) {
			err = NULL;
			if (lexicon_add_synonym(lx, order[o][k][0], order[o][k][1], &err) == -1) {
				refused = 1;
				CHECK(err != NULL && err[0], "order %zu: refused without a message",
				      o);
			}
			free(err);
		}
		if (!refused) {
			got = lexicon_normalise(lx, "metz");
			CHECK(
			    lexicon_variant_of(lx, got, strlen(got)) == NULL,
			    "order %zu: \"metz\" normalises to \"%s\", itself a variant of \"%s\"; "
			    "the chain was neither refused nor followed",
			    o, got, lexicon_variant_of(lx, got, strlen(got)));
			free(got);
		}
		lexicon_free(lx);
	}
	CHECK_END();
}

/* --- spelling ------------------------------------------------------------ */

struct spell_case {
	const char *word;
	const char *want; /* NULL: left alone */
	const char *why;
};

static const struct spell_case spell_cases[] = {
    {"imunotherapy", "immunotherapy", "one letter missing"},
    {"immunotheraphy", "immunotherapy", "one letter too many"},
    {"immunotehrapy", "immunotherapy", "two letters swapped count as one edit"},
    {"imunotherapi", "immunotherapy", "two edits in a long word"},
    {"imunotherapie", NULL, "three edits are too many"},
    {"paliative", "palliative", "one edit"},
    {"palliatve", "palliative", "one edit"},
    {"biopsi", "biopsy", "one edit in a six-letter word"},
    {"biospy", "biopsy", "a transposition in a short word"},
    {"bioppsyy", NULL, "two edits in a short word are too many"},
    {"onkology", "oncology", "one edit in an eight-letter word"},
    {"onkolojy", NULL, "two edits in an eight-letter word are too many"},
    {"cachexya", "cachexia", "one edit"},
    {"metastasas", NULL, "as close to metastasis as to metastases: a tie"},
    {"metastasiss", "metastasis", "one edit from metastasis, two from metastases"},
    {"immunotherapy", NULL, "a vocabulary word is left as it is"},
    {"ontology", NULL, "a known word is never corrected"},
    /* (a 1 would be read as an i before this step: see test_text's obfuscation table) */
    {"capecitab9ne", NULL, "words with digits are never corrected"},
    {"immunothérapy", NULL, "non-ASCII words are left alone"},
    {"biops", NULL, "words under six letters are never corrected"},
    {"pembrolizumab", NULL, "not in the vocabulary"},
};

static void
test_spelling(void **state)
{
	struct lexicon *lx = sample_lexicon();
	struct text_norm n;
	size_t i;

	(void)state;
	check_begin();
	text_norm_init(&n);
	for (i = 0; i < NELEM(spell_cases); i++) {
		const struct spell_case *c = &spell_cases[i];
		const char *got = lexicon_correct(lx, c->word, strlen(c->word));
		const char *want_text = c->want ? c->want : c->word;

		CHECK((got == NULL && c->want == NULL) ||
		          (got && c->want && strcmp(got, c->want) == 0),
		      "%s (%s): corrected to %s, want %s", c->word, c->why, got ? got : "nothing",
		      c->want ? c->want : "nothing");
		/* and in a message, in capitals, flagged as corrected */
		{
			char msg[128], want[128], *up;

			snprintf(msg, sizeof(msg), "what is %s?", c->word);
			for (up = msg; *up; up++)
				if (*up >= 'a' && *up <= 'z')
					*up = (char)(*up - 32);
			snprintf(want, sizeof(want), "what is %s ?", want_text);
			text_normalise(lx, NULL, msg, strlen(msg), &n);
			CHECK_STR(n.text.data, want, msg);
			CHECK(n.ntok == 4 &&
			          !!(n.tok[2].flags & TOK_CORRECTED) == (c->want != NULL),
			      "%s: TOK_CORRECTED flag", msg);
		}
	}
	text_norm_free(&n);
	lexicon_free(lx);
	CHECK_END();
}

static void
test_vocabulary_errors(void **state)
{
	static const struct {
		const char *word;
		const char *want_err;
	} cases[] = {
	    {"chemo", "vocabulary word \"chemo\" is shorter than 6 letters: near-misses of short "
	              "words are too often other words"},
	    {"side effect", "vocabulary entry \"side effect\" must be one word"},
	    {"", "vocabulary entry \"\" must be one word"},
	    {"Palliative", "vocabulary word \"Palliative\" is listed twice"},
	    {"radiation", NULL},
	};
	struct lexicon *lx = sample_lexicon();
	size_t i;
	char *err;
	int rc;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(cases); i++) {
		err = NULL;
		rc = lexicon_add_vocabulary(lx, cases[i].word, &err);
		CHECK(rc == (cases[i].want_err ? -1 : 0), "%s: rc %d", cases[i].word, rc);
		if (cases[i].want_err)
			CHECK_STR(err, cases[i].want_err, cases[i].word);
		free(err);
	}
	CHECK(lexicon_vocabulary_count(lx) == 9, "vocabulary count %zu",
	      lexicon_vocabulary_count(lx));
	lexicon_free(lx);
	CHECK_END();
}

/* --- classes ---------------------------------------------------------------- */

static void
test_classes(void **state)
{
	struct lexicon *lx = sample_lexicon();
	const char *const *m;
	size_t n;
	int cure, spread, idx;
	char *err = NULL;

	(void)state;
	cure = lexicon_class_new(lx, "cure", &err);
	assert_true(cure >= 0);
	lexicon_class_add(lx, cure, "curable");
	lexicon_class_add(lx, cure, "cur*");
	lexicon_class_add(lx, cure, "Remission");
	spread = lexicon_class_new(lx, "spread_2", &err);
	assert_true(spread >= 0 && spread != cure);
	lexicon_class_add(lx, spread, "Stage IV");  /* through the synonyms */
	lexicon_class_add(lx, spread, "mets");      /* a variant becomes its canonical form */
	lexicon_class_add(lx, spread, "Side eff*"); /* a prefix keeps its words as written */

	m = lexicon_class_members(lx, cure, &n);
	assert_int_equal(n, 3);
	assert_string_equal(m[0], "curable");
	assert_string_equal(m[1], "cur*");
	assert_string_equal(m[2], "remission");
	m = lexicon_class_members(lx, spread, &n);
	assert_int_equal(n, 3);
	assert_string_equal(m[0], "stage 4");
	assert_string_equal(m[1], "metastatic");
	assert_string_equal(m[2], "side eff*");

	assert_int_equal(lexicon_class_find(lx, "cure", 4), cure);
	assert_int_equal(lexicon_class_find(lx, "spread_2", 8), spread);
	assert_int_equal(lexicon_class_find(lx, "cur", 3), -1);
	assert_int_equal(lexicon_class_find(lx, "curex", 4), cure); /* by length */
	assert_string_equal(lexicon_class_name(lx, spread), "spread_2");
	assert_int_equal(lexicon_class_count(lx), 2);

	/* refused names, each with a message */
	idx = lexicon_class_new(lx, "cure", &err);
	assert_int_equal(idx, -1);
	assert_string_equal(err, "class \"cure\" is defined twice");
	free(err);
	idx = lexicon_class_new(lx, "Cure", &err);
	assert_int_equal(idx, -1);
	assert_string_equal(err, "class name \"Cure\": use only a-z, 0-9 and _");
	free(err);
	idx = lexicon_class_new(lx, "side effect", &err);
	assert_int_equal(idx, -1);
	free(err);
	idx = lexicon_class_new(lx, "", &err);
	assert_int_equal(idx, -1);
	assert_string_equal(err, "class name is empty");
	free(err);
	assert_int_equal(lexicon_class_count(lx), 2);
	lexicon_free(lx);
}

/* In a child: a class with members that have no words, then one word. */
static void
class_without_words(void *arg, int fd)
{
	static const char *const members[] = {"!!!", "\xf0\x9f\x91\x8d", "...", "-"};
	struct lexicon *lx = lexicon_new();
	const char *const *m;
	char *err = NULL;
	size_t i, n;
	int idx;

	(void)arg;
	idx = lexicon_class_new(lx, "empty", &err);
	for (i = 0; i < NELEM(members); i++)
		lexicon_class_add(lx, idx, members[i]);
	lexicon_class_add(lx, idx, "word");
	m = lexicon_class_members(lx, idx, &n);
	for (i = 0; i < n; i++) {
		fd_puts(fd, m[i]);
		fd_puts(fd, "|");
	}
	lexicon_free(lx);
}

/*
 * A class member with no words ("!!!", an emoji) is skipped, and reading
 * it must not touch memory it does not own (run in a child process, so
 * that a sanitizer report fails this test only).
 */
static void
test_class_member_without_words(void **state)
{
	char out[256], why[128];

	(void)state;
	if (run_in_child(class_without_words, NULL, out, sizeof(out), why, sizeof(why)) == -1)
		fail_msg("adding class members without words %s", why);
	assert_string_equal(out, "word|");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_synonyms),
	    cmocka_unit_test(test_rewrite_tokens),
	    cmocka_unit_test(test_rewrite_api),
	    cmocka_unit_test(test_synonym_errors),
	    cmocka_unit_test(test_synonym_chains),
	    cmocka_unit_test(test_spelling),
	    cmocka_unit_test(test_vocabulary_errors),
	    cmocka_unit_test(test_classes),
	    cmocka_unit_test(test_class_member_without_words),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
