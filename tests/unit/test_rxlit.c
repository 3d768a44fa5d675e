/*
 * Unit tests for rxlit.c: a table of patterns and the literal sets they
 * must give (or none), a soundness property test against PCRE2 itself on
 * random patterns and subjects, and hostile inputs (random bytes, deep
 * nesting) that must neither crash nor take long.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "rxlit.h"

/* A table case: a pattern and the literals wanted, NULL-terminated; none: {NULL}. */
struct lit_case {
	const char *pattern;
	const char *want[8];
};

static const struct lit_case cases[] = {
    /* the examples of the design */
    {"\\bcur(e|ed|es|able|ing)\\b", {"cure", "curable", "curing", NULL}},
    {"kidney.*cur", {"kidney", NULL}},
    {"(kidney|renal)\\s+(cancer|ca)\\b", {"kidney", "renal", NULL}},
    {"stage\\s*4", {"stage", NULL}},
    {"(?i)Keytruda", {"keytruda", NULL}},
    {"a+", {NULL}},
    {".*", {NULL}},
    {"(a+)+$", {NULL}},
    {"\\d+ years", {" years", NULL}},
    {"colou?r", {"color", "colour", NULL}},
    {"x{2}yz", {"xxyz", NULL}},
    /* literals, case and escapes */
    {"CHEMO", {"chemo", NULL}},
    {"r\xc3\xa9sum\xc3\xa9", {"r\xc3\xa9sum\xc3\xa9", NULL}},
    {"R\xc3\x89SUM\xc3\x89", {"r\xc3\x89sum\xc3\x89", NULL}},
    {"\\x41bc", {"abc", NULL}},
    {"\\x{e9}t\\x{E9}", {"\xc3\xa9t\xc3\xa9", NULL}},
    {"caf\\o{351}", {"caf\xc3\xa9", NULL}},
    {"\\x{1F600}ok", {"\xf0\x9f\x98\x80ok", NULL}},
    {"a\\tb\\nc", {"a\tb\nc", NULL}},
    {"\\cAxy", {"\x01xy", NULL}},
    {"\\0101x",
     {"\x08"
      "1x",
      NULL}},
    {"\\e\\f\\r\\a", {"\x1b\x0c\x0d\x07", NULL}},
    {"1\\.5\\ mg\\/day", {"1.5 mg/day", NULL}},
    {"\\Q.*?\\E", {".*?", NULL}},
    {"\\Qa.b", {"a.b", NULL}},
    {"abcd\\Q\\E+", {"abc", NULL}},
    {"]}x", {"]}x", NULL}},
    {"x{a}", {"x{a}", NULL}},
    {"ab{,3}cde", {"cde", NULL}},
    {"x{ 2}yzw", {"yzw", NULL}},
    {"a{0}bcd", {"bcd", NULL}},
    {"(?:ab){1,2}c", {"abc", NULL}},
    {"(ab){2}", {"abab", NULL}},
    {"(ab){2,}", {"abab", NULL}},
    {"(ab){3,5}+x", {"abababx", NULL}},
    {"(?:abc)*?def", {"def", NULL}},
    {"(?:abc)?def", {"def", NULL}},
    {"(?:abc){0,2}", {NULL}},
    {"(?:abc)++", {"abc", NULL}},
    {"x{70}", {NULL}},
    /* character classes */
    {"organi[sz]ation", {"organisation", "organization", NULL}},
    {"[Cc]hemo", {"chemo", NULL}},
    {"[a-c]at", {"aat", "bat", "cat", NULL}},
    {"[a-z]at", {NULL}},
    {"[^x]cancer", {"cancer", NULL}},
    {"[[:alpha:]]+ment", {"ment", NULL}},
    {"[\\d.]scan", {"scan", NULL}},
    {"[]x]yz", {"]yz", "xyz", NULL}},
    {"[\\]\\-]ab", {"]ab", "-ab", NULL}},
    {"[\\x{e9}\\x{E8}]t\\x{e9}", {"\xc3\xa9t\xc3\xa9", "\xc3\xa8t\xc3\xa9", NULL}},
    {"[\\w-]abc", {"abc", NULL}},
    {"[:alpha:]", {NULL}},
    /* one-character escapes and anchors */
    {"\\p{L}+ing", {"ing", NULL}},
    {"\\pL\\PLabc", {"abc", NULL}},
    {"\\w+ly\\b", {NULL}},
    {"\\Aabc\\z", {"abc", NULL}},
    {"^abc$", {"abc", NULL}},
    {"a\\Kbcd", {"abcd", NULL}},
    {"ab\\Rcd", {NULL}},
    {"\\N{U+41}bcd", {NULL}},
    /* groups, lookarounds, verbs */
    {"(?<=pre)fixes", {"fixes", NULL}},
    /* a positive lookaround's body is required in the subject; a negative one's is not */
    {"^(?=.*\\bfevers\\b)(?=.*\\bchemo\\b)", {"fevers", NULL}}, /* the longer */
    {"^(?=.*(?:abcd|wxyz))", {"abcd", "wxyz", NULL}},
    {"(?<=after )x", {"after ", NULL}},
    {"^(?!.*\\bnever\\b)", {NULL}},
    {"(?=a|bcd)x", {NULL}},
    {"(*positive_lookahead:.*hello)", {"hello", NULL}},
    {"(*nla:.*hello)", {NULL}},
    {"x(?:(?=abcd)|wxyz)y", {"abcd", "wxyz", NULL}}, /* may consume "wxyz": no exact "xy" */
    {"abc(?:(?=xyz))def", {"abcdef", NULL}}, /* a grouped lookaround still joins */
    {"(?!no)yes", {"yes", NULL}},
    {"(?=abc)abcdef", {"abcdef", NULL}},
    {"abc(?=xyz)def", {"abcdef", NULL}},
    {"(?<name>chemo)therapy", {"chemotherapy", NULL}},
    {"(?'n'x)ray", {"xray", NULL}},
    {"(?P<n>tumou?r)s?", {"tumor", "tumour", NULL}},
    {"(?>atomic)", {"atomic", NULL}},
    {"(?|(ab)|(cd))ef", {"abef", "cdef", NULL}},
    {"(?i:SCAN)ner", {"scanner", NULL}},
    {"(?-i)Scan", {"scan", NULL}},
    {"(?#comment)abcd(?#x)*", {"abc", NULL}},
    {"(*UTF)(*UCP)scan", {"scan", NULL}},
    {"(*MARK:m)scan(*COMMIT)ner", {"scanner", NULL}},
    {"(*pla:abc)abcd", {"abcd", NULL}},
    {"(*atomic:abc)d", {"abcd", NULL}},
    {"abc(*ACCEPT)def", {NULL}},
    {"(?:)abc", {"abc", NULL}},
    /* references, recursion, conditionals, callouts */
    {"(abc)\\1", {"abc", NULL}},
    {"(abcd)\\g{-1}def", {"abcd", NULL}},
    {"(?<n>abcd)\\k<n>def", {"abcd", NULL}},
    {"(?P<n>abcd)(?P=n)", {"abcd", NULL}},
    {"(?(1)abc|def)ghij", {"ghij", NULL}},
    {"(?(?=x)abc|def)ghij", {"ghij", NULL}},
    {"(?R)?abcd", {"abcd", NULL}},
    {"(a)(?1)bcd", {"bcd", NULL}},
    {"(?C1)abcd", {"abcd", NULL}},
    {"(?C\"a)b\")abcd", {"abcd", NULL}},
    /* extended mode */
    {"(?x) kid ney  # a comment\n s", {"kidneys", NULL}},
    {"(?x)abcd *", {"abc", NULL}},
    {"(?x)a\\ b\\#c", {"a b#c", NULL}},
    {"(?x)[ ]abc", {"abc", NULL}},
    {"(?xx)[a b]cde", {"cde", NULL}},
    {"(?x:a b)c d", {"abc d", NULL}},
    {"(?x)(?-x)a b", {"a b", NULL}},
    {"(?x)ab#c\rd\n", {NULL}},
    {"a(?x)bcd|ef gh", {"abcd", "efgh", NULL}},
    {"(ab(?x)c|d e f)g h", {"abcg h", "defg h", NULL}},
    {"(*CR)(?x)abc#d\nef", {NULL}},
    /* alternation */
    {"metasta(sis|ses|tic)|spread", {"metastasis", "metastases", "metastatic", "spread", NULL}},
    {"\\bpet\\b|\\bpet scan", {"pet", NULL}},
    {"(kidney|renal) (cancer|ca)", {"kidney ca", "renal ca", NULL}},
    {"abc|de", {NULL}},
    {"a|", {NULL}},
    {"(a|b|c|d|e|f|g|h|i|j|k|l|m|n|o|p|q)xyz", {"xyz", NULL}},
    {"(alpha|beta|gamma|delta|epsilon|zeta|theta|iota|kappa|lambda|omicron|sigma|tau|"
     "upsilon|chi|omega|rho)s",
	{NULL}},
    {"(abcd0|abcd1|abcd2|abcd3|abcd4|abcd5|abcd6|abcd7|abcd8|abcd9|abce0|abce1|abce2|"
     "abce3|abce4|abce5|abce6)",
     {"abcd", "abce", NULL}},
    /* long literals are cut to 64 bytes */
    {"0123456789012345678901234567890123456789012345678901234567890123456789",
     {"0123456789012345678901234567890123456789012345678901234567890123", NULL}},
    /* malformed: give up */
    {"(abc", {NULL}},
    {"abc)", {NULL}},
    {"[abc", {NULL}},
    {"abc\\", {NULL}},
    {"*abc", {NULL}},
    {"abc**", {NULL}},
    {"abc{2}{3}", {NULL}},
    {"abcd{3,2}", {NULL}},
    {"abcd{99999}", {NULL}},
    {"abc\\i", {NULL}},
    {"abc\\x{110000}", {NULL}},
    {"abc\xff", {NULL}},
    {"abc\xc3", {NULL}},
    {"(?i)*abc", {NULL}},
    {"(?Z)abc", {NULL}},
    {"[z-a]abc", {NULL}},
    {"[[.a.]]abc", {NULL}},
    {"", {NULL}},
};

/* Returns 1 when the extracted set equals the wanted one, in any order. */
static int
same_set(const struct rxlit *r, const char *const *want)
{
	size_t nwant = 0, i, j;

	while (want[nwant] != NULL)
		nwant++;
	if (r->n != nwant)
		return 0;
	for (i = 0; i < nwant; i++) {
		for (j = 0; j < r->n; j++) {
			if (r->len[j] == strlen(want[i]) &&
			    memcmp(r->lit[j], want[i], r->len[j]) == 0)
				break;
		}
		if (j == r->n)
			return 0;
	}
	return 1;
}

/* Prints a set for a failure message into buf. */
static const char *
show(const struct rxlit *r, char *buf, size_t size)
{
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < r->n && off < size; i++)
		off += (size_t)snprintf(buf + off, size - off, "%s\"%s\"", i ? "," : "", r->lit[i]);
	return buf;
}

static void
test_table(void **state)
{
	char buf[1024];
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct lit_case *c = &cases[i];
		struct rxlit r;
		int rc = rxlit_extract(c->pattern, strlen(c->pattern), &r);

		if (!same_set(&r, c->want) || rc != (c->want[0] != NULL))
			fail_msg("pattern %zu \"%s\": got %d {%s}", i, c->pattern, rc,
			         show(&r, buf, sizeof(buf)));
		for (j = 0; j < r.n; j++) {
			assert_true(r.len[j] >= RXLIT_MIN_LEN && r.len[j] <= RXLIT_MAX_LEN);
			assert_int_equal(r.lit[j][r.len[j]], '\0');
		}
		assert_true(r.n <= RXLIT_MAX_SET);
		rxlit_free(&r);
		assert_int_equal(r.n, 0);
	}
	rxlit_free(NULL);
}

static void
test_embedded_nul(void **state)
{
	struct rxlit r;

	(void)state;
	assert_int_equal(rxlit_extract("ab\0cd", 5, &r), 1);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.len[0], 5);
	assert_memory_equal(r.lit[0], "ab\0cd", 5);
	rxlit_free(&r);
	assert_int_equal(rxlit_extract(NULL, 0, &r), 0);
	assert_int_equal(r.n, 0);
}

/* xorshift64*, so that the random cases are the same everywhere */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static size_t
pick(uint64_t *s, size_t n)
{
	return (size_t)(rnd(s) % n);
}

/*
 * Random patterns for the property test: a tree of nodes, printed as a
 * pattern and sampled for subjects that it will often match.
 */
enum gen_type {
	GEN_LIT,    /* one to four characters of the alphabet */
	GEN_CLASS,  /* [...] */
	GEN_ANY,    /* . \w \s \d */
	GEN_SEQ,    /* children in a row */
	GEN_ALT,    /* children as alternatives */
	GEN_GROUP,  /* a group around one child */
	GEN_QUANT,  /* one child repeated */
	GEN_ASSERT, /* \b \B ^ $ and the like */
	GEN_LOOK,   /* a lookaround around one child */
};

#define GEN_KIDS 4

struct gen {
	enum gen_type type;
	char word[5];        /* GEN_LIT: the characters, NUL-terminated */
	const char *text;    /* GEN_CLASS, GEN_ANY, GEN_ASSERT, GEN_LOOK, GEN_GROUP: its text */
	const char *members; /* GEN_CLASS: what it can match */
	int min, max;        /* GEN_QUANT: bounds, max -1 for none */
	const char *qtext;   /* GEN_QUANT: how the quantifier is written */
	struct gen *kid[GEN_KIDS]; /* children */
	int nkid;                  /* how many */
};

#define GEN_POOL 512

/* Nodes of one random pattern. */
struct gen_pool {
	struct gen g[GEN_POOL];
	int n;
};

static const char alphabet[] = "ab c";

static struct gen *
gen_new(struct gen_pool *pool, enum gen_type type)
{
	struct gen *g;

	if (pool->n == GEN_POOL)
		return NULL;
	g = &pool->g[pool->n++];
	memset(g, 0, sizeof(*g));
	g->type = type;
	return g;
}

/* Builds a random tree of at most depth levels; NULL when the pool is full. */
static struct gen *
gen_tree(struct gen_pool *pool, uint64_t *s, int depth)
{
	static const struct {
		const char *text, *members;
	} classes[] = {{"[ab]", "ab"},         {"[a-c]", "abc"}, {"[Bc]", "bc"},
	               {"[^a]", "b c"},        {"[\\s]", " "},   {"[a ]", "a "},
	               {"[[:alpha:]]", "abc"}, {"[^ ]", "abc"},  {"[cC]", "c"},
	               {"[\\x61-\\x62]", "ab"}};
	static const char *const anys[] = {".", "\\w", "\\s", "\\W", "\\S", "\\p{L}", "\\X"};
	static const char *const asserts[] = {"\\b", "\\B", "^",   "$",         "\\A",
	                                      "\\z", "\\Z", "\\K", "(*COMMIT)", "(?#c)"};
	static const char *const looks[] = {"(?=", "(?!", "(?<=", "(?<!", "(*pla:"};
	static const char *const groups[] = {"(", "(?:", "(?>", "(?i:", "(?|", "(?-i:", "(?x:"};
	static const char *const quants[] = {"*",  "+",  "?",  "{2}", "{1,2}",  "{0,1}", "{2,}",
	                                     "*?", "+?", "??", "++",  "{1,3}+", "{0}",   "{3}"};
	static const int qmin[] = {0, 1, 0, 2, 1, 0, 2, 0, 1, 0, 1, 1, 0, 3};
	static const int qmax[] = {-1, -1, 1, 2, 2, 1, -1, -1, -1, 1, -1, 3, 0, 3};
	struct gen *g;
	size_t r = pick(s, depth > 0 ? 10 : 4), i, n;

	switch (r) {
	case 0:
	case 1:
		g = gen_new(pool, GEN_LIT);
		if (g != NULL) {
			n = 1 + pick(s, 4);
			for (i = 0; i < n; i++) {
				g->word[i] = alphabet[pick(s, 4)];
				if (g->word[i] != ' ' && pick(s, 4) == 0)
					g->word[i] -= 'a' - 'A';
			}
		}
		return g;
	case 2:
		g = gen_new(pool, GEN_CLASS);
		if (g != NULL) {
			i = pick(s, sizeof(classes) / sizeof(classes[0]));
			g->text = classes[i].text;
			g->members = classes[i].members;
		}
		return g;
	case 3:
		if (pick(s, 2)) {
			g = gen_new(pool, GEN_ANY);
			if (g != NULL)
				g->text = anys[pick(s, sizeof(anys) / sizeof(anys[0]))];
		} else {
			g = gen_new(pool, GEN_ASSERT);
			if (g != NULL)
				g->text = asserts[pick(s, sizeof(asserts) / sizeof(asserts[0]))];
		}
		return g;
	case 4:
	case 5:
	case 6:
		g = gen_new(pool, r == 6 ? GEN_ALT : GEN_SEQ);
		n = 2 + pick(s, GEN_KIDS - 1);
		break;
	case 7:
		g = gen_new(pool, GEN_GROUP);
		if (g != NULL)
			g->text = groups[pick(s, sizeof(groups) / sizeof(groups[0]))];
		n = 1;
		break;
	case 8:
		g = gen_new(pool, GEN_QUANT);
		if (g != NULL) {
			i = pick(s, sizeof(quants) / sizeof(quants[0]));
			g->qtext = quants[i];
			g->min = qmin[i];
			g->max = qmax[i];
		}
		n = 1;
		break;
	default:
		g = gen_new(pool, GEN_LOOK);
		if (g != NULL)
			g->text = looks[pick(s, sizeof(looks) / sizeof(looks[0]))];
		n = 1;
		break;
	}
	if (g == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if ((g->kid[i] = gen_tree(pool, s, depth - 1)) == NULL)
			return NULL;
	}
	g->nkid = (int)n;
	return g;
}

/* A bounded string being built. */
struct sbuf {
	char b[1024];
	size_t n;
	int full; /* something did not fit */
};

static void
sb_put(struct sbuf *sb, const char *p, size_t n)
{
	if (sb->n + n >= sizeof(sb->b)) {
		sb->full = 1;
		return;
	}
	memcpy(sb->b + sb->n, p, n);
	sb->n += n;
	sb->b[sb->n] = '\0';
}

static void
sb_puts(struct sbuf *sb, const char *p)
{
	sb_put(sb, p, strlen(p));
}

/*
 * Prints g as a pattern. Under extended (the pattern starts with (?x))
 * spaces go in between items and a literal space is escaped.
 */
static void
gen_print(const struct gen *g, struct sbuf *sb, int extended, uint64_t *s)
{
	char c;
	int i;

	if (extended && pick(s, 3) == 0)
		sb_puts(sb, pick(s, 4) ? " " : " #x\n");
	switch (g->type) {
	case GEN_LIT:
		for (i = 0; g->word[i] != '\0'; i++) {
			c = g->word[i];
			if (c == ' ' && extended)
				sb_puts(sb, "\\ ");
			else if (pick(s, 8) == 0 && c == 'a')
				sb_puts(sb, "\\x61");
			else if (pick(s, 8) == 0 && c == 'b')
				sb_puts(sb, "\\Qb\\E");
			else if (pick(s, 8) == 0 && c == 'c')
				sb_puts(sb, "\\x{63}");
			else if (pick(s, 8) == 0 && c == ' ')
				sb_puts(sb, "\\x20");
			else
				sb_put(sb, &c, 1);
		}
		break;
	case GEN_CLASS:
	case GEN_ANY:
	case GEN_ASSERT:
		/* a space in a class is not literal under (?xx); keep to (?x) */
		sb_puts(sb, g->text);
		break;
	case GEN_SEQ:
		for (i = 0; i < g->nkid; i++)
			gen_print(g->kid[i], sb, extended, s);
		break;
	case GEN_ALT:
		sb_puts(sb, "(?:");
		for (i = 0; i < g->nkid; i++) {
			if (i > 0)
				sb_puts(sb, "|");
			gen_print(g->kid[i], sb, extended, s);
		}
		sb_puts(sb, ")");
		break;
	case GEN_GROUP:
	case GEN_LOOK:
		sb_puts(sb, g->text);
		/* (?x: starts extended mode inside; keep it simple and write no spaces there */
		gen_print(g->kid[0], sb, extended && strcmp(g->text, "(?x:") != 0, s);
		sb_puts(sb, ")");
		break;
	case GEN_QUANT:
		sb_puts(sb, "(?:");
		gen_print(g->kid[0], sb, extended, s);
		sb_puts(sb, ")");
		sb_puts(sb, g->qtext);
		break;
	}
}

/* Appends a string that g may match (assertions are left to PCRE2). */
static void
gen_sample(const struct gen *g, struct sbuf *sb, uint64_t *s)
{
	char c;
	int i, k;

	switch (g->type) {
	case GEN_LIT:
		for (i = 0; g->word[i] != '\0'; i++) {
			c = g->word[i];
			if (c >= 'a' && c <= 'z' && pick(s, 3) == 0)
				c -= 'a' - 'A';
			sb_put(sb, &c, 1);
		}
		break;
	case GEN_CLASS:
		c = g->members[pick(s, strlen(g->members))];
		sb_put(sb, &c, 1);
		break;
	case GEN_ANY:
		c = alphabet[pick(s, 4)];
		sb_put(sb, &c, 1);
		break;
	case GEN_SEQ:
		for (i = 0; i < g->nkid; i++)
			gen_sample(g->kid[i], sb, s);
		break;
	case GEN_ALT:
		gen_sample(g->kid[pick(s, (size_t)g->nkid)], sb, s);
		break;
	case GEN_GROUP:
		gen_sample(g->kid[0], sb, s);
		break;
	case GEN_QUANT:
		k = g->min + (int)pick(s, 3);
		if (g->max >= 0 && k > g->max)
			k = g->max;
		for (i = 0; i < k; i++)
			gen_sample(g->kid[0], sb, s);
		break;
	case GEN_ASSERT:
	case GEN_LOOK:
		break;
	}
}

/* Random characters of the alphabet, upper case among them. */
static void
random_text(struct sbuf *sb, uint64_t *s, size_t max)
{
	static const char chars[] = "ab cAB";
	size_t n = pick(s, max + 1), i;

	for (i = 0; i < n; i++)
		sb_put(sb, &chars[pick(s, sizeof(chars) - 1)], 1);
}

/*
 * Checks the promise of rxlit.h on one pattern and subject: when PCRE2
 * matches, one of the literals occurs in the (ASCII) lower-cased subject.
 * Returns 1 when PCRE2 matched.
 */
static int
check_sound(pcre2_code *re, pcre2_match_data *md, const struct rxlit *r, const char *pattern,
            const char *subj, size_t len)
{
	char low[1024];
	size_t i, j;

	if (pcre2_match(re, (PCRE2_SPTR)subj, len, 0, 0, md, NULL) < 0)
		return 0;
	if (r->n == 0)
		return 1;
	for (i = 0; i < len; i++)
		low[i] = (char)(subj[i] >= 'A' && subj[i] <= 'Z' ? subj[i] + ('a' - 'A') : subj[i]);
	for (j = 0; j < r->n; j++) {
		for (i = 0; i + r->len[j] <= len; i++) {
			if (memcmp(low + i, r->lit[j], r->len[j]) == 0)
				return 1;
		}
	}
	fail_msg("unsound: pattern \"%s\" matches \"%.*s\" which holds none of its %zu literals "
	         "(first \"%s\")",
	         pattern, (int)len, subj, r->n, r->lit[0]);
	return 1;
}

/* Compiles pattern as the bot does; NULL when PCRE2 rejects it. */
static pcre2_code *
compile(const char *pattern, size_t len)
{
	PCRE2_SIZE off;
	int err;

	return pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS, &err,
	                     &off, NULL);
}

static void
test_soundness(void **state)
{
	uint64_t seed = 0x853c49e6748fea9bULL;
	struct gen_pool *pool = malloc(sizeof(*pool));
	int iter, compiled = 0, useful = 0, matched = 0;

	(void)state;
	assert_non_null(pool);
	for (iter = 0; iter < 3000; iter++) {
		struct sbuf pat = {.n = 0}, subj;
		struct gen *g;
		struct rxlit r;
		pcre2_code *re;
		pcre2_match_data *md;
		int extended = pick(&seed, 5) == 0, k;

		pool->n = 0;
		g = gen_tree(pool, &seed, 2 + (int)pick(&seed, 4));
		if (g == NULL)
			continue;
		if (extended)
			sb_puts(&pat, "(?x)");
		gen_print(g, &pat, extended, &seed);
		if (pat.full)
			continue;
		rxlit_extract(pat.b, pat.n, &r);
		if ((re = compile(pat.b, pat.n)) == NULL) {
			rxlit_free(&r);
			continue;
		}
		compiled++;
		useful += r.n > 0;
		md = pcre2_match_data_create_from_pattern(re, NULL);
		assert_non_null(md);
		for (k = 0; k < 8; k++) {
			subj.n = 0;
			subj.full = 0;
			subj.b[0] = '\0';
			if (k < 6) {
				/* a sample of the pattern, with noise around it sometimes */
				if (k >= 3)
					random_text(&subj, &seed, 3);
				gen_sample(g, &subj, &seed);
				if (k >= 3)
					random_text(&subj, &seed, 3);
			} else {
				random_text(&subj, &seed, 12);
			}
			if (subj.full)
				continue;
			matched += check_sound(re, md, &r, pat.b, subj.b, subj.n);
		}
		pcre2_match_data_free(md);
		pcre2_code_free(re);
		rxlit_free(&r);
	}
	free(pool);
	print_message("%d patterns compiled, %d with literals, %d subjects matched\n", compiled,
	              useful, matched);
	/* the generator must exercise the analysis, not only give up */
	assert_true(compiled > 1500);
	assert_true(useful > 300);
	assert_true(matched > 3000);
}

/*
 * Random patterns made of PCRE2's syntax characters: most do not compile,
 * but those that do are checked for soundness on random subjects.
 */
static void
test_soundness_syntax_soup(void **state)
{
	static const char *const tokens[] = {
	    "(",   ")",   "(?:", "(?=",  "(?<=",  "(?!", "(?i)", "(?x)",      "|",    "*",
	    "+",   "?",   "{2}", "{1,}", "{,2}",  "[",   "]",    "^",         "-",    "\\",
	    "\\Q", "\\E", "\\b", "\\w",  "\\x61", ".",   "$",    "#",         " ",    "\n",
	    "a",   "b",   "c",   "abc",  "ab",    "bca", "A",    "{",         "}",    ",",
	    "1",   "(?#", "(*",  "F)",   "(?|",   "(?>", "\\1",  "[:alpha:]", "(?-x)"};
	uint64_t seed = 0xda3e39cb94b95bdbULL;
	int iter, k;

	(void)state;
	for (iter = 0; iter < 20000; iter++) {
		char pat[256], subj[64];
		size_t n = 0, len, i, ntok = 1 + pick(&seed, 12);
		struct rxlit r;
		pcre2_code *re;
		pcre2_match_data *md;

		for (i = 0; i < ntok; i++) {
			const char *t = tokens[pick(&seed, sizeof(tokens) / sizeof(tokens[0]))];

			len = strlen(t);
			memcpy(pat + n, t, len);
			n += len;
		}
		pat[n] = '\0';
		rxlit_extract(pat, n, &r);
		if ((re = compile(pat, n)) != NULL) {
			md = pcre2_match_data_create_from_pattern(re, NULL);
			assert_non_null(md);
			for (k = 0; k < 6; k++) {
				static const char chars[] = "abcAB \n#";

				len = pick(&seed, 12);
				for (i = 0; i < len; i++)
					subj[i] = chars[pick(&seed, sizeof(chars) - 1)];
				if (k < 2 && r.n > 0) {
					/* plant a literal, so the pattern has a chance */
					len = r.len[0] < sizeof(subj) ? r.len[0] : 0;
					memcpy(subj, r.lit[0], len);
				}
				check_sound(re, md, &r, pat, subj, len);
			}
			pcre2_match_data_free(md);
			pcre2_code_free(re);
		}
		rxlit_free(&r);
	}
}

static void
test_hostile(void **state)
{
	static const char meta[] = "()[]{}|*+?.\\^$-:=!<>'#PRCQEgkxo0123456789abc, \n";
	uint64_t seed = 0x5851f42d4c957f2dULL;
	struct rxlit r;
	char buf[201];
	char *deep;
	size_t n, i, depth = 10000;
	int iter;

	(void)state;
	for (iter = 0; iter < 50000; iter++) {
		n = pick(&seed, sizeof(buf));
		for (i = 0; i < n; i++) {
			if (iter % 2)
				buf[i] = meta[pick(&seed, sizeof(meta) - 1)];
			else
				buf[i] = (char)rnd(&seed);
		}
		rxlit_extract(buf, n, &r);
		assert_true(r.n <= RXLIT_MAX_SET);
		rxlit_free(&r);
	}

	/* deep nesting, of every kind of group */
	deep = malloc(8 * depth + 16);
	assert_non_null(deep);
	{
		static const char *const opens[] = {"(",    "(?:",   "(?=",    "[",
		                                    "(?i:", "(?(?=", "(*pla:", "(?<n>"};

		for (i = 0; i < sizeof(opens) / sizeof(opens[0]); i++) {
			size_t len = strlen(opens[i]), d;

			n = 0;
			for (d = 0; d < depth; d++) {
				memcpy(deep + n, opens[i], len);
				n += len;
			}
			memcpy(deep + n, "abc", 3);
			n += 3;
			rxlit_extract(deep, n, &r);
			assert_int_equal(r.n, 0);
			rxlit_free(&r);
			/* and closed again */
			for (d = 0; d < depth && n < 8 * depth + 8; d++)
				deep[n++] = ')';
			rxlit_extract(deep, n, &r);
			rxlit_free(&r);
		}
	}
	/* nesting within the limit still works */
	n = 0;
	for (i = 0; i < 150; i++)
		deep[n++] = '(';
	memcpy(deep + n, "abc", 3);
	n += 3;
	for (i = 0; i < 150; i++)
		deep[n++] = ')';
	assert_int_equal(rxlit_extract(deep, n, &r), 1);
	assert_int_equal(r.n, 1);
	assert_memory_equal(r.lit[0], "abc", 3);
	rxlit_free(&r);
	free(deep);

	/* long patterns are bounded in work too */
	{
		size_t big = 200000;
		char *p = malloc(big);

		assert_non_null(p);
		for (i = 0; i < big; i++)
			p[i] = "[ab]"[i % 4];
		rxlit_extract(p, big, &r);
		rxlit_free(&r);
		for (i = 0; i < big; i++)
			p[i] = "a|"[i % 2];
		rxlit_extract(p, big - 1, &r);
		assert_int_equal(r.n, 0);
		rxlit_free(&r);
		for (i = 0; i < big; i++)
			p[i] = "x{65535}"[i % 8];
		rxlit_extract(p, big, &r);
		rxlit_free(&r);
		free(p);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),     cmocka_unit_test(test_embedded_nul),
	    cmocka_unit_test(test_soundness), cmocka_unit_test(test_soundness_syntax_soup),
	    cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
