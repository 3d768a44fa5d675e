/*
 * Unit tests for acm.c: the classic he/she/his/hers case, duplicate
 * strings, binary bytes, degenerate texts and the API's refusals, then a
 * randomized cross-check against a naive search with a fixed seed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "acm.h"

#define MAX_HITS 4096

/* One reported occurrence. */
struct hit {
	uint32_t id;
	size_t end;
	size_t len;
};

/* What the scan callback collects. */
struct hits {
	struct hit h[MAX_HITS];
	size_t n;
	size_t stop_after; /* return non-zero on this hit (1-based); 0: never */
};

static int
collect(void *arg, uint32_t id, size_t end, size_t len)
{
	struct hits *hs = arg;

	assert_true(hs->n < MAX_HITS);
	hs->h[hs->n].id = id;
	hs->h[hs->n].end = end;
	hs->h[hs->n].len = len;
	hs->n++;
	return hs->stop_after != 0 && hs->n == hs->stop_after;
}

/* A string to add: bytes, length and id. */
struct word {
	const char *s;
	size_t len;
	uint32_t id;
};

/* A table case: words, a text, and the hits expected in order. */
struct scan_case {
	const char *name;
	struct word words[8];
	size_t nwords;
	const char *text;
	size_t textlen;
	struct hit want[16];
	size_t nwant;
};

#define W(str, id)                                                                                 \
	{                                                                                          \
		str, sizeof(str) - 1, id                                                           \
	}
#define T(str) str, sizeof(str) - 1

static const struct scan_case cases[] = {
    {"he/she/his/hers",
     {W("he", 1), W("she", 2), W("his", 3), W("hers", 4)},
     4,
     T("ushers"),
     {{2, 4, 3}, {1, 4, 2}, {4, 6, 4}},
     3},
    {"overlaps in a row",
     {W("he", 1), W("she", 2), W("his", 3), W("hers", 4)},
     4,
     T("hishershe"),
     {{3, 3, 3}, {2, 5, 3}, {1, 5, 2}, {4, 7, 4}, {2, 9, 3}, {1, 9, 2}},
     6},
    {"duplicates keep every id",
     {W("ab", 7), W("ab", 8), W("b", 9), W("ab", 7)},
     4,
     T("xab"),
     {{7, 3, 2}, {8, 3, 2}, {7, 3, 2}, {9, 3, 1}},
     4},
    {"nested suffixes",
     {W("a", 1), W("aa", 2), W("aaa", 3)},
     3,
     T("aaa"),
     {{1, 1, 1}, {2, 2, 2}, {1, 2, 1}, {3, 3, 3}, {2, 3, 2}, {1, 3, 1}},
     6},
    {"binary and NUL",
     {W("\0\0", 1), W("\xff\x00\xfe", 2), W("\x00", 3)},
     3,
     T("\x01\x00\x00\xff\x00\xfe"),
     {{3, 2, 1}, {1, 3, 2}, {3, 3, 1}, {3, 5, 1}, {2, 6, 3}},
     5},
    {"empty text", {W("a", 1)}, 1, "", 0, {{0, 0, 0}}, 0},
    {"strings longer than the text",
     {W("abcdef", 1), W("bcdefg", 2)},
     2,
     T("abcde"),
     {{0, 0, 0}},
     0},
    {"no strings at all", {{NULL, 0, 0}}, 0, T("anything"), {{0, 0, 0}}, 0},
    {"failure into a deep node",
     {W("abcd", 1), W("bcx", 2), W("cde", 3)},
     3,
     T("abcde"),
     {{1, 4, 4}, {3, 5, 3}},
     2},
    {"case matters", {W("Kidney", 1), W("kidney", 2)}, 2, T("my kidney"), {{2, 9, 6}}, 1},
};

static void
test_table(void **state)
{
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct scan_case *c = &cases[i];
		struct acm *a = acm_new();
		struct hits *hs = calloc(1, sizeof(*hs));
		long n;

		assert_non_null(hs);
		for (j = 0; j < c->nwords; j++)
			assert_int_equal(acm_add(a, c->words[j].s, c->words[j].len, c->words[j].id),
			                 0);
		assert_int_equal(acm_build(a), 0);
		n = acm_scan(a, c->text, c->textlen, collect, hs);
		if ((size_t)n != c->nwant || hs->n != c->nwant)
			fail_msg("%s: %ld hits, want %zu", c->name, n, c->nwant);
		for (j = 0; j < c->nwant; j++) {
			if (hs->h[j].id != c->want[j].id || hs->h[j].end != c->want[j].end ||
			    hs->h[j].len != c->want[j].len)
				fail_msg("%s: hit %zu is (%u,%zu,%zu), want (%u,%zu,%zu)", c->name,
				         j, hs->h[j].id, hs->h[j].end, hs->h[j].len, c->want[j].id,
				         c->want[j].end, c->want[j].len);
		}
		/* the counting scan agrees */
		assert_int_equal(acm_scan(a, c->text, c->textlen, NULL, NULL), n);
		free(hs);
		acm_free(a);
	}
}

static void
test_api(void **state)
{
	struct acm *a = acm_new();
	struct hits *hs = calloc(1, sizeof(*hs));

	(void)state;
	assert_non_null(hs);
	assert_int_equal(acm_add(a, "x", 0, 1), -1);
	assert_int_equal(acm_scan(a, "abc", 3, collect, hs), -1);
	assert_int_equal(acm_add(a, "ab", 2, 1), 0);
	assert_int_equal(acm_add(a, "b", 1, 2), 0);
	assert_int_equal(acm_nodes(a), 4); /* root, a, ab, b */
	assert_true(acm_memory(a) > 0);
	assert_int_equal(acm_build(a), 0);
	assert_int_equal(acm_build(a), -1);
	assert_int_equal(acm_add(a, "c", 1, 3), -1);
	assert_int_equal(acm_nodes(a), 4);
	assert_true(acm_memory(a) > 0);

	/* the callback stops the scan */
	hs->stop_after = 2;
	assert_int_equal(acm_scan(a, "ababab", 6, collect, hs), 2);
	assert_int_equal(hs->n, 2);

	acm_free(a);
	acm_free(NULL);
	free(hs);
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

static int
cmp_hit(const void *x, const void *y)
{
	const struct hit *a = x, *b = y;

	if (a->end != b->end)
		return a->end < b->end ? -1 : 1;
	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	return 0;
}

/*
 * Random sets of short strings over a few bytes (NUL and 0xff among them,
 * or all 256 bytes so that wide nodes are bisected) against random texts,
 * compared with a naive search.
 */
static void
test_random(void **state)
{
	static const uint8_t small[] = {'a', 'b', 0, 0xff};
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	struct hits *hs = calloc(1, sizeof(*hs));
	struct hit *want = calloc(MAX_HITS, sizeof(*want));
	int iter;

	(void)state;
	assert_non_null(hs);
	assert_non_null(want);
	for (iter = 0; iter < 600; iter++) {
		int wide = iter % 3 == 2;
		size_t nw = 1 + rnd(&seed) % (wide ? 200 : 12), textlen = rnd(&seed) % 160;
		uint8_t words[200][6], text[160];
		size_t wlen[200], nwant = 0, i, j, k;
		struct acm *a = acm_new();
		long n;

		for (i = 0; i < nw; i++) {
			wlen[i] = 1 + rnd(&seed) % (wide ? 3 : 6);
			for (k = 0; k < wlen[i]; k++)
				words[i][k] = wide ? (uint8_t)rnd(&seed) : small[rnd(&seed) % 4];
			/* wide sets share a few first bytes, so inner nodes get wide too */
			if (wide && wlen[i] > 1)
				words[i][0] = small[rnd(&seed) % 2];
			assert_int_equal(acm_add(a, words[i], wlen[i], (uint32_t)i), 0);
		}
		for (k = 0; k < textlen;) {
			/* wide texts are made of the words and noise, so that some match */
			if (wide && rnd(&seed) % 2) {
				i = rnd(&seed) % nw;
				for (j = 0; j < wlen[i] && k < textlen; j++)
					text[k++] = words[i][j];
			} else {
				text[k++] = wide ? (uint8_t)rnd(&seed) : small[rnd(&seed) % 4];
			}
		}
		assert_int_equal(acm_build(a), 0);

		for (j = 1; j <= textlen; j++) {
			for (i = 0; i < nw; i++) {
				if (wlen[i] <= j &&
				    memcmp(text + j - wlen[i], words[i], wlen[i]) == 0) {
					assert_true(nwant < MAX_HITS);
					want[nwant].id = (uint32_t)i;
					want[nwant].end = j;
					want[nwant].len = wlen[i];
					nwant++;
				}
			}
		}
		hs->n = 0;
		n = acm_scan(a, text, textlen, collect, hs);
		assert_int_equal((size_t)n, nwant);
		assert_int_equal(hs->n, nwant);
		for (i = 1; i < hs->n; i++)
			assert_true(hs->h[i - 1].end <= hs->h[i].end);
		qsort(hs->h, hs->n, sizeof(hs->h[0]), cmp_hit);
		for (i = 0; i < nwant; i++) {
			if (hs->h[i].id != want[i].id || hs->h[i].end != want[i].end ||
			    hs->h[i].len != want[i].len)
				fail_msg("case %d: hit %zu is (%u,%zu,%zu), want (%u,%zu,%zu)",
				         iter, i, hs->h[i].id, hs->h[i].end, hs->h[i].len,
				         want[i].id, want[i].end, want[i].len);
		}
		acm_free(a);
	}
	free(want);
	free(hs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_api),
	    cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
