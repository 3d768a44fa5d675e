/*
 * Unit tests for text.c: what every message goes through before matching.
 * Tables of messages and the normalised text a moderator would expect
 * (case folding, punctuation, apostrophes, hyphens, hostile bytes), the
 * question and "put to another member" features, the reading grade, and
 * the UTF-8 primitives with their edge cases (overlongs, surrogates,
 * code points above U+10FFFF, cut sequences).
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

#define T(s) s, sizeof(s) - 1

/* --- normalisation ------------------------------------------------------- */

struct norm_case {
	const char *name;
	const char *msg;
	size_t len;
	const char *want;   /* the normalised text */
	uint32_t flags_on;  /* flags that must be set */
	uint32_t flags_off; /* flags that must not be set */
};

static const struct norm_case norm_cases[] = {
    /* case folding */
    {"ASCII upper case", T("WHAT IS Palliative CARE"), "what is palliative care", 0, 0},
    {"Latin accents keep their letters", T("ÉTAPE Über"), "étape über", 0, 0},
    {"Cyrillic", T("РАК ПОЧКИ"), "рак почки", 0, 0},
    {"titlecase digraph: its two letters (NFKC)", T("ǅ"), "dž", 0, 0},
    /* compatibility forms read as the letters they show (NFKC) */
    {"fullwidth letters", T("ｋｉｌｌ ｍｙｓｅｌｆ"), "kill myself", 0, 0},
    {"mathematical bold", T("\xf0\x9d\x90\xa4\xf0\x9d\x90\xa2\xf0\x9d\x90\xa5\xf0\x9d\x90\xa5"),
     "kill", 0, 0},
    {"a ligature", T("\xef\xac\x81ne"), "fine", 0, 0},
    {"a symbol spelt in letters is a word of its own", T("Keytruda\xe2\x84\xa2 works"),
     "keytruda tm works", 0, 0},
    {"a unit sign, a word of its own", T("10\xe3\x8e\x8e"), "10 mg", 0, 0},
    {"fullwidth digits", T("stage \xef\xbc\x94"), "stage 4", 0, 0},
    {"Kelvin sign folds to k", T("\xe2\x84\xaaIDNEY"), "kidney", 0, 0},
    {"capital sharp s", T("STRAẞE"), "straße", 0, 0},
    /* punctuation, emoji and the question mark */
    {"punctuation separates words", T("Hello,world!ok."), "hello world ok", 0, TEXT_INVALID_UTF8},
    {"emoji between words", T("so scared \xf0\x9f\x98\xa2\xf0\x9f\x98\xa2 today"),
     "so scared today", 0, TEXT_INVALID_UTF8},
    {"emoji glued to a word",
     T("cancer\xf0\x9f\x98\x80"
       "free"),
     "cancer free", 0, 0},
    {"? is a word of its own", T("is it bad?"), "is it bad ?", TEXT_QUESTION, 0},
    {"repeated ? count once", T("is it bad???"), "is it bad ?", TEXT_QUESTION, 0},
    {"full-width question mark", T("is it bad\xef\xbc\x9f"), "is it bad ?", TEXT_QUESTION, 0},
    {"only punctuation", T("!!! ... ,,,"), "", 0, TEXT_QUESTION},
    {"empty message", T(""), "", 0, TEXT_QUESTION | TEXT_INVALID_UTF8 | TEXT_TRUNCATED},
    {"spaces and tabs collapse", T("  what \t\t is\n\n it  "), "what is it", 0, 0},
    /* apostrophes */
    {"ASCII apostrophe dropped", T("what's"), "whats", 0, 0},
    {"typographic apostrophe dropped", T("what\xe2\x80\x99s it"), "whats it", 0, 0},
    {"quotes around a word are not apostrophes", T("'quoted' words"), "quoted words", 0, 0},
    {"plural possessive", T("patients' families"), "patients families", 0, 0},
    {"can't", T("I can't sleep"), "i cant sleep", 0, 0},
    /* hyphens and slashes */
    {"hyphen splits", T("PD-L1"), "pd l1", 0, 0},
    {"slash splits", T("and/or"), "and or", 0, 0},
    {"digits stay in words", T("4th round, 2nd-line"), "4th round 2nd line", 0, 0},
    /* hostile bytes */
    {"invalid bytes between words", T("bad \xff\xfe bytes"), "bad bytes", TEXT_INVALID_UTF8, 0},
    {"invalid byte inside a word splits it",
     T("can\xff"
       "cer"),
     "can cer", TEXT_INVALID_UTF8, 0},
    {"overlong 'A' is not a letter", T("x\xc1\x81y"), "x y", TEXT_INVALID_UTF8, 0},
    {"overlong '/' is not a slash",
     T("a\xc0\xaf"
       "b"),
     "a b", TEXT_INVALID_UTF8, 0},
    {"surrogate half",
     T("a\xed\xa0\x80"
       "b"),
     "a b", TEXT_INVALID_UTF8, 0},
    {"truncated sequence at the end", T("abc\xe2\x82"), "abc", TEXT_INVALID_UTF8, 0},
    {"lone continuation bytes", T("\x80\x80hi\xbf"), "hi", TEXT_INVALID_UTF8, 0},
    {"a literal U+FFFD is valid",
     T("a\xef\xbf\xbd"
       "b"),
     "a b", 0, TEXT_INVALID_UTF8},
    {"NUL bytes do not end the message", T("what is\0 palliative\0care?"),
     "what is palliative care ?", TEXT_QUESTION, TEXT_INVALID_UTF8},
    {"only NUL bytes", T("\0\0\0"), "", 0, TEXT_INVALID_UTF8},
    /* invisible characters */
    {"right-to-left override dropped",
     T("abc\xe2\x80\xae"
       "def"),
     "abcdef", 0, 0},
    {"bidi isolate dropped", T("\xe2\x81\xa7kidney\xe2\x81\xa9 cancer"), "kidney cancer", 0, 0},
    {"zero-width space inside a word", T("imm\xe2\x80\x8bunotherapy"), "immunotherapy", 0, 0},
    {"soft hyphen inside a word",
     T("chemo\xc2\xad"
       "therapy"),
     "chemotherapy", 0, 0},
    {"combining accent dropped", T("cafe\xcc\x81"), "cafe", 0, 0},
    {"byte order mark", T("\xef\xbb\xbfhello"), "hello", 0, 0},
};

static void
test_normalise_table(void **state)
{
	struct text_norm n;
	size_t i;

	(void)state;
	check_begin();
	text_norm_init(&n);
	for (i = 0; i < NELEM(norm_cases); i++) {
		const struct norm_case *c = &norm_cases[i];
		const char *got;

		text_normalise(NULL, NULL, c->msg, c->len, &n);
		got = n.text.data ? n.text.data : "";
		CHECK_STR(got, c->want, c->name);
		CHECK((n.flags & c->flags_on) == c->flags_on, "%s: flags 0x%x lack 0x%x", c->name,
		      n.flags, c->flags_on);
		CHECK((n.flags & c->flags_off) == 0, "%s: flags 0x%x have 0x%x", c->name, n.flags,
		      n.flags & c->flags_off);
		/* the normalised text is what its tokens say, and valid UTF-8 */
		CHECK(text_utf8_valid(got, strlen(got)), "%s: output is not valid UTF-8", c->name);
		CHECK(n.ntok == 0 || n.tok[n.ntok - 1].off + n.tok[n.ntok - 1].len == strlen(got),
		      "%s: last token does not end the text", c->name);
	}
	text_norm_free(&n);
	CHECK_END();
}

/* Greek: capital, small and final sigma all read the same after folding. */
static void
test_greek_sigma(void **state)
{
	static const char *const same[] = {"ΟΔΟΣ", "οδος", "Οδος", "οδοσ", "ΟΔΟς"};
	struct text_norm n;
	char *first = NULL;
	size_t i;

	(void)state;
	check_begin();
	text_norm_init(&n);
	for (i = 0; i < NELEM(same); i++) {
		text_normalise(NULL, NULL, same[i], strlen(same[i]), &n);
		if (first == NULL)
			first = xstrdup(n.text.data);
		CHECK_STR(n.text.data, first, same[i]);
		CHECK(strncmp(n.text.data, "οδο", strlen("οδο")) == 0, "%s: not lower case: %s",
		      same[i], n.text.data);
	}
	free(first);
	text_norm_free(&n);
	CHECK_END();
}

/* The source spans of the tokens point at the words as they were written. */
static void
test_token_spans(void **state)
{
	static const char msg[] = "Can \xe2\x80\x9cPD-L1\xe2\x80\x9d tests help?";
	static const char *const want[] = {"Can", "PD", "L1", "tests", "help", "?"};
	struct text_norm n;
	size_t i;

	(void)state;
	text_norm_init(&n);
	text_normalise(NULL, NULL, msg, sizeof(msg) - 1, &n);
	assert_int_equal(n.ntok, NELEM(want));
	for (i = 0; i < n.ntok; i++) {
		assert_int_equal(n.tok[i].src_len, strlen(want[i]));
		assert_memory_equal(msg + n.tok[i].src_off, want[i], strlen(want[i]));
	}
	assert_true(n.tok[0].flags & TOK_CAPITALISED);
	assert_true(n.tok[0].flags & TOK_CLAUSE_START);
	assert_true(n.tok[1].flags & TOK_ALLCAPS);
	assert_true(n.tok[5].flags & TOK_QMARK);
	text_norm_free(&n);
}

/* Big and hostile inputs: capped, flagged, fast, never a crash. */
static void
test_big_inputs(void **state)
{
	size_t n1 = 1u << 20, i;
	char *m = malloc(n1);
	struct text_norm n;
	double t0, el;

	(void)state;
	assert_non_null(m);
	check_begin();
	text_norm_init(&n);

	/* a 1 MB message of words */
	for (i = 0; i < n1; i++)
		m[i] = "what is it? "[i % 12];
	t0 = seconds_now();
	text_normalise(NULL, NULL, m, n1, &n);
	el = seconds_now() - t0;
	CHECK(n.flags & TEXT_TRUNCATED, "over the cap but not flagged TEXT_TRUNCATED");
	CHECK(!(n.flags & TEXT_INVALID_UTF8), "not n.flags & TEXT_INVALID_UTF8");
	CHECK(n.ntok <= TEXT_MAX_TOKENS, "n.ntok <= TEXT_MAX_TOKENS");
	CHECK(n.text.len <= TEXT_MAX_INPUT, "n.text.len <= TEXT_MAX_INPUT");
	CHECK(el < 1.0, "1 MB message took %.3f s", el);
	CHECK(memcmp(n.text.data, "what is it ? what is it ?", 25) == 0, "start of the text");

	/* a 1 MB single word */
	memset(m, 'a', n1);
	t0 = seconds_now();
	text_normalise(NULL, NULL, m, n1, &n);
	el = seconds_now() - t0;
	CHECK(n.flags & TEXT_TRUNCATED, "over the cap but not flagged TEXT_TRUNCATED");
	CHECK((n.ntok) == (1), "n.ntok == 1");
	CHECK(n.text.len <= TEXT_MAX_INPUT, "n.text.len <= TEXT_MAX_INPUT");
	CHECK(el < 1.0, "1 MB message took %.3f s", el);

	/* a word under the cap with 5,000 combining accents: one clean word */
	{
		size_t len = 1 + 5000 * 2 + 1;

		m[0] = 'a';
		for (i = 0; i < 5000; i++) {
			m[1 + 2 * i] = (char)0xcc;
			m[2 + 2 * i] = (char)0x81;
		}
		m[len - 1] = 'b';
		text_normalise(NULL, NULL, m, len, &n);
		CHECK_STR(n.text.data, "ab", "normalised");
		CHECK((n.flags) == (0), "n.flags == 0");
	}

	/*
	 * 10,000 combining accents (20,002 bytes, past the cap): truncated,
	 * but the message was valid UTF-8, so it must not be reported as
	 * invalid just because the cap fell inside a character.
	 */
	{
		size_t len = 1 + 10000 * 2 + 1;

		m[0] = 'a';
		for (i = 0; i < 10000; i++) {
			m[1 + 2 * i] = (char)0xcc;
			m[2 + 2 * i] = (char)0x81;
		}
		m[len - 1] = 'b';
		text_normalise(NULL, NULL, m, len, &n);
		CHECK(n.flags & TEXT_TRUNCATED, "over the cap but not flagged TEXT_TRUNCATED");
		CHECK_STR(n.text.data, "a", "normalised");
		CHECK(!(n.flags & TEXT_INVALID_UTF8),
		      "a valid message cut at the cap is flagged TEXT_INVALID_UTF8");
	}

	/*
	 * Four-byte characters (emoji) across the cap: the cut falls between
	 * two of them. An invalid byte just before the cap is still reported.
	 */
	{
		size_t len = 2 + 5000 * 4;

		memcpy(m, "a ", 2);
		for (i = 0; i < 5000; i++)
			memcpy(m + 2 + 4 * i, "\xf0\x9f\x98\x80", 4);
		text_normalise(NULL, NULL, m, len, &n);
		CHECK(n.flags & TEXT_TRUNCATED, "over the cap but not flagged TEXT_TRUNCATED");
		CHECK(!(n.flags & TEXT_INVALID_UTF8),
		      "a valid message cut inside an emoji is flagged TEXT_INVALID_UTF8");
		m[TEXT_MAX_INPUT - 1] = (char)0xff;
		text_normalise(NULL, NULL, m, len, &n);
		CHECK(n.flags & TEXT_INVALID_UTF8, "an invalid byte before the cap is not flagged");
	}

	/* 1 MB of invalid bytes */
	memset(m, 0xff, n1);
	text_normalise(NULL, NULL, m, n1, &n);
	CHECK(n.flags & TEXT_INVALID_UTF8, "n.flags & TEXT_INVALID_UTF8");
	CHECK(n.flags & TEXT_TRUNCATED, "over the cap but not flagged TEXT_TRUNCATED");
	CHECK((n.ntok) == (0), "n.ntok == 0");

	/* more words than TEXT_MAX_TOKENS, under the byte cap */
	for (i = 0; i < 4000; i++)
		m[i] = (i % 2) ? ' ' : 'x';
	text_normalise(NULL, NULL, m, 4000, &n);
	CHECK(n.flags & TEXT_TRUNCATED, "over the cap but not flagged TEXT_TRUNCATED");
	CHECK((n.ntok) == (TEXT_MAX_TOKENS), "n.ntok == TEXT_MAX_TOKENS");

	/* NULL message */
	text_normalise(NULL, NULL, NULL, 5, &n);
	CHECK((n.ntok) == (0), "n.ntok == 0");

	text_norm_free(&n);
	free(m);
	CHECK_END();
}

/* --- features: a question, put to another member ------------------------ */

struct feat_case {
	const char *msg;
	int question;  /* TEXT_QUESTION expected */
	int to_member; /* TEXT_TO_MEMBER expected */
	int to_bot;    /* TEXT_TO_BOT expected */
};

static const struct feat_case feat_cases[] = {
    /* questions */
    {"is it bad?", 1, 0, 0},
    {"what is palliative care", 1, 0, 0},
    {"How long does immunotherapy take", 1, 0, 0},
    {"can it be cured", 1, 0, 0},
    {"my dad has kidney cancer, can it be cured", 1, 0, 0},
    {"my dad has kidney cancer can it be cured", 1, 0, 0},
    {"is there a cure", 1, 0, 0},
    {"tell me about immunotherapy", 1, 0, 0},
    {"please explain targeted therapy", 1, 0, 0},
    {"I want to know about scans", 1, 0, 0},
    {"any info on clinical trials", 1, 0, 0},
    {"help", 1, 0, 0},
    {"Help!", 1, 0, 0},
    {"faqbot help", 1, 0, 1},
    {"Does anyone know if it spreads to the bones", 1, 0, 0},
    {"they want to radiate my hip, if its everywhere why bother with one spot", 1, 0, 0},
    {"why bother", 1, 0, 0},
    {"if the immunotherapy stops working what comes after that", 1, 0, 0},
    {"chemo or radiation, which is better", 1, 0, 0},
    {"scan shows PD again \xf0\x9f\x98\x9e whats usually next", 1, 0, 0},
    {"they will radiate my hip but why only there", 1, 0, 0},
    {"genuine q not being negative - once it spreads is a cure a real thing", 1, 0, 0},
    /* a mention, then a clause to the whole room */
    {"@Bev so sorry hun. btw does anyone know what oligometastatic means", 1, 0, 0},
    {"@Rach thanks, can I ask, what is advanced cancer exactly", 1, 0, 0},
    {"@Mark did the onc agree?", 1, 1, 0},
    {"@Sue so sorry. does anyone at your hospital run trials?", 1, 1, 0},
    {"@Sue does anyone know?", 1, 1, 0},
    /* statements */
    {"just finished my 4th round of keytruda", 0, 0, 0},
    {"has been a rough day", 0, 0, 0},
    {"Was told it's stage 4", 0, 0, 0},
    {"had my scan today, all clear", 0, 0, 0},
    {"that is it for today.", 0, 0, 0},
    {"thank you all for the support", 0, 0, 0},
    {"I need help with nothing, just venting", 0, 0, 0},
    {"i didnt bother going to the group today", 0, 0, 0},
    {"the oncologist is away till the 20th which is annoying", 0, 0, 0},
    {"my friend who is a nurse came with me", 0, 0, 0},
    /* put to another member */
    {"how did your scan go Mike?", 1, 1, 0},
    {"Tom how are you feeling?", 1, 1, 0},
    {"Mike are you there?", 1, 1, 0},
    {"how are you doing Sarah", 1, 1, 0},
    {"Thanks Sarah, how are you?", 1, 1, 0},
    {"Morning Jen, did you sleep at all?", 1, 1, 0},
    {"thank you so much Priya, how did it go?", 1, 1, 0},
    {"how are you getting on Sue?", 1, 1, 0},
    {"how are you Ana, hope the scan went ok", 1, 1, 0},
    /* asked of the bot, or of nobody in particular */
    {"can you explain Immunotherapy?", 1, 0, 0},
    {"what can you do?", 1, 0, 0},
    {"could you tell me about Lutathera?", 1, 0, 0},
    /* a name after a preposition, a title or "tried" is talked about, not to */
    {"have you heard of Pluvicto?", 1, 0, 0},
    {"have you tried Xofigo?", 1, 0, 0},
    {"what do you think of Dr Patel?", 1, 0, 0},
    {"how did you get on at Mercy?", 1, 0, 0},
    {"can you help me Faqbot?", 1, 0, 1},
    {"faqbot, how are you?", 1, 0, 1},
    {"how is your day going?", 1, 0, 0},
};

static void
test_features_table(void **state)
{
	static const char *const names[] = {"faqbot", NULL};
	struct lexicon *lx = lexicon_new();
	struct text_norm n;
	char *err = NULL;
	size_t i;

	(void)state;
	check_begin();
	/* a lexicon that knows the medical words, as the shipped one does */
	assert_int_equal(lexicon_add_vocabulary(lx, "immunotherapy", &err), 0);
	text_norm_init(&n);
	for (i = 0; i < NELEM(feat_cases); i++) {
		const struct feat_case *c = &feat_cases[i];

		text_normalise(lx, names, c->msg, strlen(c->msg), &n);
		CHECK(!!(n.flags & TEXT_QUESTION) == c->question, "\"%s\": %s a question", c->msg,
		      c->question ? "should be" : "should not be");
		CHECK(!!(n.flags & TEXT_TO_MEMBER) == c->to_member,
		      "\"%s\": %s put to another member", c->msg,
		      c->to_member ? "should be" : "should not be");
		CHECK(!!(n.flags & TEXT_TO_BOT) == c->to_bot, "\"%s\": %s addressed to the bot",
		      c->msg, c->to_bot ? "should be" : "should not be");
	}
	text_norm_free(&n);
	lexicon_free(lx);
	CHECK_END();
}

/* --- reading grade -------------------------------------------------------- */

struct grade_pair {
	const char *easier;
	const char *harder;
};

static const struct grade_pair grade_pairs[] = {
    {"The cat sat. The dog ran.",
     "Immunotherapy utilises monoclonal antibodies targeting programmed death ligand "
     "interactions, potentiating cytotoxic lymphocyte activity."},
    {"Care helps you feel well. It is not giving up.",
     "Palliative care is specialised multidisciplinary medical care focusing on "
     "alleviating symptoms and improving quality of life."},
    /* the same words in three sentences read easier than in one */
    {"The nurse came. The scan was done. We went home.",
     "The nurse came and the scan was done and we went home."},
};

static void
test_reading_grade(void **state)
{
	size_t i;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(grade_pairs); i++) {
		const struct grade_pair *p = &grade_pairs[i];
		double a = text_reading_grade(p->easier, strlen(p->easier));
		double b = text_reading_grade(p->harder, strlen(p->harder));

		CHECK(a < b, "grade of \"%s\" (%.2f) should be below \"%s\" (%.2f)", p->easier, a,
		      p->harder, b);
	}
	CHECK(text_reading_grade("", 0) == 0, "empty text grades 0");
	CHECK(text_reading_grade("...", 3) == 0, "text without words grades 0");
	CHECK(text_reading_grade(grade_pairs[0].easier, strlen(grade_pairs[0].easier)) < 3,
	      "two three-word sentences are early primary school reading");
	CHECK(text_reading_grade(grade_pairs[0].harder, strlen(grade_pairs[0].harder)) > 12,
	      "a sentence of long technical words is above school level");
	CHECK_END();
}

/* --- UTF-8 ------------------------------------------------------------------ */

struct dec_case {
	const char *name;
	const char *s;
	size_t n;
	uint32_t cp;     /* decoded code point */
	size_t consumed; /* bytes taken */
};

static const struct dec_case dec_cases[] = {
    {"ASCII", T("A"), 0x41, 1},
    {"NUL", "\0", 1, 0, 1},
    {"two bytes", T("\xc3\xa9"), 0xe9, 2},
    {"three bytes", T("\xe2\x82\xac"), 0x20ac, 3},
    {"four bytes", T("\xf0\x9f\x98\x80"), 0x1f600, 4},
    {"U+FFFD itself", T("\xef\xbf\xbd"), 0xfffd, 3},
    {"smallest two-byte", T("\xc2\x80"), 0x80, 2},
    {"smallest three-byte", T("\xe0\xa0\x80"), 0x800, 3},
    {"smallest four-byte", T("\xf0\x90\x80\x80"), 0x10000, 4},
    {"U+10FFFF", T("\xf4\x8f\xbf\xbf"), 0x10ffff, 4},
    {"U+D7FF before the surrogates", T("\xed\x9f\xbf"), 0xd7ff, 3},
    {"U+E000 after the surrogates", T("\xee\x80\x80"), 0xe000, 3},
    {"overlong NUL", T("\xc0\x80"), 0xfffd, 1},
    {"overlong slash", T("\xc0\xaf"), 0xfffd, 1},
    {"overlong 0x7f", T("\xc1\xbf"), 0xfffd, 1},
    {"overlong three-byte", T("\xe0\x80\xaf"), 0xfffd, 1},
    {"overlong U+07FF", T("\xe0\x9f\xbf"), 0xfffd, 1},
    {"overlong four-byte", T("\xf0\x8f\xbf\xbf"), 0xfffd, 1},
    {"high surrogate", T("\xed\xa0\x80"), 0xfffd, 1},
    {"low surrogate", T("\xed\xbf\xbf"), 0xfffd, 1},
    {"U+110000", T("\xf4\x90\x80\x80"), 0xfffd, 1},
    {"lead byte F5", T("\xf5\x80\x80\x80"), 0xfffd, 1},
    {"five-byte form", T("\xf8\x88\x80\x80\x80"), 0xfffd, 1},
    {"byte FF", T("\xff"), 0xfffd, 1},
    {"lone continuation", T("\x80"), 0xfffd, 1},
    {"cut two-byte", T("\xc3"), 0xfffd, 1},
    {"cut three-byte", T("\xe2\x82"), 0xfffd, 1},
    {"cut four-byte", T("\xf0\x9f\x98"), 0xfffd, 1},
    {"three-byte with an ASCII byte inside",
     T("\xe2\x82"
       "A"),
     0xfffd, 1},
    {"four-byte with a lead byte inside", T("\xf0\x9f\xc3\xa9"), 0xfffd, 1},
};

static void
test_utf8_decode(void **state)
{
	size_t i, k;
	uint32_t cp;
	char enc[4];

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(dec_cases); i++) {
		const struct dec_case *c = &dec_cases[i];

		cp = 0x12345;
		k = text_utf8_decode((const unsigned char *)c->s, c->n, &cp);
		CHECK(cp == c->cp && k == c->consumed,
		      "%s: decoded U+%04X in %zu bytes, want U+%04X in %zu", c->name, cp, k, c->cp,
		      c->consumed);
		/* a valid character encodes back to the same bytes */
		if (c->cp != 0xfffd || c->consumed == 3) {
			k = text_utf8_encode(cp, enc);
			CHECK(k == c->n && memcmp(enc, c->s, k) == 0, "%s: does not encode back",
			      c->name);
		}
		/* valid() agrees with decode() on a whole string of one character */
		CHECK(text_utf8_valid(c->s, c->n) == (c->cp != 0xfffd || c->consumed == 3),
		      "%s: text_utf8_valid disagrees", c->name);
	}
	CHECK_END();
}

struct valid_case {
	const char *name;
	const char *s;
	size_t n;
	int valid;
};

static const struct valid_case valid_cases[] = {
    {"empty", "", 0, 1},
    {"ASCII", T("hello"), 1},
    {"mixed", T("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), 1},
    {"NUL inside", T("a\0b"), 1},
    {"invalid at the end", T("hello\xff"), 0},
    {"invalid at the start", T("\xfehello"), 0},
    {"cut at the end", T("caf\xc3"), 0},
    {"surrogate pair as CESU-8", T("\xed\xa0\xbd\xed\xb8\x80"), 0},
    {"length excludes the bad byte", "ok\xff", 2, 1},
};

static void
test_utf8_valid(void **state)
{
	size_t i;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(valid_cases); i++) {
		const struct valid_case *c = &valid_cases[i];

		CHECK(text_utf8_valid(c->s, c->n) == c->valid, "%s: valid() should be %d", c->name,
		      c->valid);
	}
	CHECK_END();
}

/* text_fold and text_words: the same mapping as the normaliser. */
static void
test_fold_and_words(void **state)
{
	static const struct {
		const char *in;
		const char *fold;  /* text_fold */
		const char *words; /* text_words */
	} cases[] = {
	    {"ÉTAPE IV", "étape iv", "étape iv"},
	    {"What's PD-L1?", "what's pd-l1?", "whats pd l1 ?"},
	    {"bad\xff", "bad\xef\xbf\xbd", "bad"},
	    {"", "", ""},
	};
	struct buf b;
	size_t i, len;
	char *f;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(cases); i++) {
		f = text_fold(cases[i].in, strlen(cases[i].in), &len);
		CHECK(len == strlen(cases[i].fold), "\"%s\": fold length %zu", cases[i].in, len);
		/* look for the terminator within what was produced before reading it */
		if (CHECK(len == strlen(cases[i].fold) && memchr(f, '\0', len + 1) != NULL,
		          "\"%s\": text_fold result is not NUL-terminated", cases[i].in))
			CHECK_STR(f, cases[i].fold, cases[i].in);
		free(f);
		buf_init(&b);
		text_words(cases[i].in, strlen(cases[i].in), &b);
		CHECK_STR(b.data ? b.data : "", cases[i].words, cases[i].in);
		buf_free(&b);
	}
	CHECK_END();
}

/*
 * A message with no words, normalised by a fresh text_norm (the first
 * message a bot sees could be a lone emoji): the text is "" (a terminated
 * empty string), not whatever the allocation held.
 */
static void
test_fresh_norm_no_words(void **state)
{
	static const char *const msgs[] = {"", "!!!", "\xf0\x9f\x91\x8d", "\xff", "  "};
	struct text_norm n;
	size_t i;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(msgs); i++) {
		text_norm_init(&n);
		text_normalise(NULL, NULL, msgs[i], strlen(msgs[i]), &n);
		CHECK(n.ntok == 0 && n.text.len == 0, "message %zu: has words", i);
		CHECK(n.text.data == NULL || memchr(n.text.data, '\0', 1) != NULL,
		      "message %zu: normalised text is not a terminated empty string", i);
		text_norm_free(&n);
	}
	CHECK_END();
}

/* --- step 3b: words as people disguise or stretch them --------------------- */

/* The dictionary of the cases below, as intent files would give it. */
static const char obf_words[] =
    "i want to kill myself die dying end my life suicide unconscious not breathing "
    "so too tired kind of good feel really please help me no why yes sleep "
    "weeks cycles stage round after on at and im sam pills overdose soon see";

static const struct {
	const char *name;
	const char *msg;
	const char *want;
	int flagged; /* some word carries TOK_DEOBFUSCATED */
} obf_cases[] = {
    /* what evasion does */
    {"a Cyrillic letter in a Latin word", "\xd0\xbaill myself", "kill myself", 1},
    {"a Cyrillic capital", "\xd0\x9aILL MYSELF", "kill myself", 1},
    {"a Greek omicron", "s\xce\xbf tired", "so tired", 1},
    {"a whole word of lookalikes, known", "\xd1\x80\xd0\xbe\xd1\x80", "pop", 1},
    {"digits for letters", "k1ll mys3lf", "kill myself", 1},
    {"a zero for an o", "my dad is unc0nscious", "my dad is unconscious", 1},
    {"a digit first", "0verdose", "overdose", 1},
    {"a symbol for a letter", "k!ll myself", "kill myself", 1},
    {"a pipe for an l", "k|ll myself", "kill myself", 1},
    {"a dollar for an s", "$uicide", "suicide", 1},
    {"an at sign for an a", "i w@nt to die", "i want to die", 1},
    {"two for to between words", "want2die", "want to die", 1},
    {"four for for", "pills4sleep", "pills for sleep", 1},
    /* what distress does */
    {"a long vowel at the end", "i want to dieeeee", "i want to die", 1},
    {"a long vowel inside", "kiiiill myself", "kill myself", 1},
    {"a long double letter", "killllll myself", "kill myself", 1},
    {"a double letter kept", "tooooo tired", "too tired", 1},
    {"a double letter in a word", "goooood", "good", 1},
    {"so", "sooo tired", "so tired", 1},
    {"kind of", "kiiind of", "kind of", 1},
    {"an unknown word: one letter", "hmmmm zzzzz", "hm z", 1},
    /* what must stay */
    {"numbers", "2 weeks after 4 cycles, stage 4", "2 weeks after 4 cycles stage 4", 0},
    {"ordinals and doses", "4th round, 10mg, 5am", "4th round 10mg 5am", 0},
    {"drug and marker names", "on 5fu and b17 and her2 and ca125", "on 5fu and b17 and her2 and ca125",
     0},
    {"a year in a word", "covid19 in 2019", "covid19 in 2019", 0},
    {"Roman numerals", "stage iii and stage IIIb", "stage iii and stage iiib", 0},
    {"a known word", "kill", "kill", 0},
    {"an unknown word with a digit", "zq3x", "zq3x", 0},
    {"an address", "mail jo@example.org", "mail jo example org", 0},
    {"an exclamation between words", "good!so tired", "good so tired", 0},
    {"a Russian word", "\xd1\x80\xd0\xb0\xd0\xba \xd0\xbf\xd0\xbe\xd1\x87\xd0\xba\xd0\xb8",
     "\xd1\x80\xd0\xb0\xd0\xba \xd0\xbf\xd0\xbe\xd1\x87\xd0\xba\xd0\xb8", 0},
    {"accents", "caf\xc3\xa9 na\xc3\xafve", "caf\xc3\xa9 na\xc3\xafve", 0},
};

static void
test_obfuscation_table(void **state)
{
	struct lexicon *lx = lexicon_new();
	struct text_norm n;
	size_t i, k;
	int flagged;

	(void)state;
	check_begin();
	lexicon_add_words(lx, obf_words, strlen(obf_words));
	/* a word of lookalikes is read only when it comes out known */
	lexicon_add_words(lx, "pop", 3);
	/* stretched words in the files are no words; a word with a letter three times may be */
	lexicon_add_words(lx, "sooo tired and zzzap", 20);
	lexicon_words_done(lx);
	text_norm_init(&n);
	for (i = 0; i < NELEM(obf_cases); i++) {
		text_normalise(lx, NULL, obf_cases[i].msg, strlen(obf_cases[i].msg), &n);
		CHECK_STR(n.text.data, obf_cases[i].want, obf_cases[i].name);
		for (k = 0, flagged = 0; k < n.ntok; k++)
			flagged |= !!(n.tok[k].flags & TOK_DEOBFUSCATED);
		CHECK(flagged == obf_cases[i].flagged, "%s: TOK_DEOBFUSCATED %s", obf_cases[i].name,
		      flagged ? "set" : "not set");
	}
	/* Without a lexicon (keywords, synonyms as written) nothing is read through. */
	text_normalise(NULL, NULL, "k1ll kiiill", 11, &n);
	CHECK_STR(n.text.data, "k1ll kiiill", "no lexicon");
	/* Words with digits or stretched are not taken into the dictionary, nor escapes. */
	lexicon_add_words(lx, "k1ll \\bdie\\b", 12);
	CHECK(!lexicon_has_word(lx, "k1ll", 4) && !lexicon_has_word(lx, "sooo", 4) &&
	          !lexicon_has_word(lx, "bdie", 4) && lexicon_has_word(lx, "zzzap", 5),
	      "the dictionary took a disguised word or a pattern's escape, or left out zzzap");
	text_normalise(lx, NULL, "zzzap", 5, &n);
	CHECK_STR(n.text.data, "zzzap", "a word of the files with a letter three times");
	text_norm_free(&n);
	lexicon_free(lx);
	CHECK_END();
}

/* What a stranger's display name may hold, made safe to show before an answer. */
static void
test_display_safe(void **state)
{
	static const struct {
		const char *in;
		size_t max;
		const char *want;
	} cases[] = {
	    {"Anne Smith", 256, "Anne Smith"},
	    {"\xe2\x80\xae" "evil" "\xe2\x80\xac", 256, "evil"},   /* RLO ... PDF */
	    {"a\xe2\x81\xa6" "b" "\xe2\x81\xa9" "c", 256, "abc"}, /* LRI ... PDI */
	    {"tab\there\nnew", 256, "tab here new"},
	    {"bad\xff byte", 256, "bad\xef\xbf\xbd byte"},
	    {"Zo\xc3\xab", 3, "Zo"}, /* never half of the e with diaeresis */
	    {"", 256, ""},
	    {NULL, 256, ""},
	};
	size_t i;

	(void)state;
	check_begin();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = text_display_safe(cases[i].in, cases[i].max);

		CHECK_STR(got, cases[i].want, cases[i].in ? cases[i].in : "(null)");
		free(got);
	}
	CHECK_END();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_normalise_table),     cmocka_unit_test(test_greek_sigma),
	    cmocka_unit_test(test_token_spans),         cmocka_unit_test(test_big_inputs),
	    cmocka_unit_test(test_features_table),      cmocka_unit_test(test_reading_grade),
	    cmocka_unit_test(test_utf8_decode),         cmocka_unit_test(test_utf8_valid),
	    cmocka_unit_test(test_fresh_norm_no_words), cmocka_unit_test(test_fold_and_words),
	    cmocka_unit_test(test_display_safe),        cmocka_unit_test(test_obfuscation_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
