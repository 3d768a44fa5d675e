/*
 * Unit tests for lint.c: how its work grows with the set (it must follow
 * the matcher's prefilter, not run every pattern on every example), and
 * what it says about patterns written twice.
 *
 * The work is counted, not timed: this program defines pcre2_match_8, so
 * every pattern run made by the library linked into it comes through here
 * (counted) on its way to PCRE2's own.
 */
#define _GNU_SOURCE /* RTLD_NEXT */

#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cmocka.h>

#include "diag.h"
#include "helpers.h"
#include "kb.h"
#include "lint.h"
#include "util.h"

static unsigned long pattern_runs;

typedef int (*pcre2_match_fn)(const pcre2_code *, PCRE2_SPTR, PCRE2_SIZE, PCRE2_SIZE, uint32_t,
                              pcre2_match_data *, pcre2_match_context *);

int
pcre2_match_8(const pcre2_code *code, PCRE2_SPTR subject, PCRE2_SIZE length,
              PCRE2_SIZE start_offset, uint32_t options, pcre2_match_data *match_data,
              pcre2_match_context *mcontext)
{
	static pcre2_match_fn real;

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "pcre2_match_8");
	pattern_runs++;
	return real(code, subject, length, start_offset, options, match_data, mcontext);
}

/*
 * Intent i's own two words: "zqb zqc"-like, from i in base 24 (no digits,
 * and no letter three times in a row: the normaliser reads those).
 */
static void
word_of(size_t i, int which, char *out)
{
	static const char letters[] = "abcdefghijklmnoprstuvwxy";
	size_t n = i * 2 + (size_t)which, k = 0;
	char rev[16];

	do {
		rev[k++] = letters[n % 24];
		n /= 24;
	} while (n > 0);
	out[0] = 'z';
	out[1] = 'q';
	while (k > 0)
		*(out++ + 2) = rev[--k];
	out[2] = '\0';
}

/*
 * A set of n intents, each about two words of its own, with the two safety
 * intents' stand-ins, loaded from memory. Each intent: three patterns, 8
 * examples, 3 counter-examples (as the benchmark sets).
 */
static struct kb *
make_set(size_t n)
{
	struct buf j, r;
	struct kb_mem_file in, *resp;
	struct diag_list d;
	struct kb *kb;
	char a[16], b[16];
	size_t i, k;

	buf_init(&j);
	buf_puts(&j, "{\"intents\": [");
	resp = xcalloc(n, sizeof(*resp));
	for (i = 0; i < n; i++) {
		word_of(i, 0, a);
		word_of(i, 1, b);
		buf_printf(&j,
		           "%s{\"id\": \"t.%s\", \"patterns\": [\"\\\\b%s %s\\\\b\", \"\\\\b%s of "
		           "%s\\\\b\", \"\\\\b%s (?:\\\\w+ ){0,2}%s\\\\b\"], \"examples\": [",
		           i ? ", " : "", a, a, b, b, a, a, b);
		for (k = 0; k < 8; k++)
			buf_printf(&j, "%s\"what about %s %s number %c?\"", k ? ", " : "", a, b,
			           (char)('a' + k));
		buf_printf(&j, "], \"counter_examples\": [\"%s is fine\", \"%s was fine\", \"no %s "
		           "today\"]}",
		           a, b, a);
		buf_init(&r);
		buf_printf(&r, "---\nid: t.%s\ntype: info\nstatus: draft\n---\nAbout %s.\n", a, a);
		resp[i].name = "responses/t.md";
		resp[i].len = r.len;
		resp[i].text = buf_steal(&r);
	}
	buf_puts(&j, "]}");
	in.name = "intents/t.json";
	in.text = j.data;
	in.len = j.len;
	diag_list_init(&d);
	kb = kb_load_mem(&in, 1, resp, n, &d);
	if (kb == NULL)
		diag_print(&d, stderr, DIAG_WARNING);
	diag_list_free(&d);
	for (i = 0; i < n; i++)
		free((char *)resp[i].text);
	free(resp);
	buf_free(&j);
	return kb;
}

/* Pattern runs of lint on a set of n intents. */
static unsigned long
lint_runs(size_t n)
{
	struct lint_opts lo;
	struct diag_list d;
	struct kb *kb = make_set(n);

	assert_non_null(kb);
	memset(&lo, 0, sizeof(lo));
	match_opts_default(&lo.match);
	lo.max_grade = 20;
	lo.today = 20000;
	diag_list_init(&d);
	pattern_runs = 0;
	lint_kb(kb, &lo, &d);
	if (d.errors)
		diag_print(&d, stderr, DIAG_ERROR);
	assert_int_equal(d.errors, 0);
	diag_list_free(&d);
	kb_free(kb);
	return pattern_runs;
}

/*
 * Twice the intents (and the examples) take about twice the pattern runs,
 * not four times: lint runs on each example only the patterns the
 * prefilter lets through, as the matcher does.
 */
static void
test_lint_work_grows_with_the_set(void **state)
{
	unsigned long small, big;

	(void)state;
	small = lint_runs(150);
	big = lint_runs(300);
	print_message("    pattern runs: %lu for 150 intents, %lu for 300 (x%.2f)\n", small, big,
	              (double)big / (double)small);
	assert_true(pattern_runs > 0);
	if ((double)big > 2.5 * (double)small)
		fail_msg("lint's work grows faster than the set: %lu runs for 150 intents, %lu for "
		         "300",
		         small, big);
}

/* Three copies of a pattern: each later one is reported against the first. */
static void
test_duplicate_patterns(void **state)
{
	static const char intents[] =
	    "{\"intents\": [{\"id\": \"a\", \"patterns\": [\"\\\\bhospice\\\\b\", "
	    "\"\\\\bhospice\\\\b\"]}, {\"id\": \"b\", \"patterns\": [\"\\\\bhospice\\\\b\", "
	    "\"\\\\bhome\\\\b\"]}]}";
	static const char resp[] = "---\nid: a\ntype: info\nstatus: draft\n---\nA.\n";
	static const char resp_b[] = "---\nid: b\ntype: info\nstatus: draft\n---\nB.\n";
	struct kb_mem_file in = {"intents/x.json", intents, sizeof(intents) - 1};
	struct kb_mem_file r[2] = {{"responses/a.md", resp, sizeof(resp) - 1},
	                           {"responses/b.md", resp_b, sizeof(resp_b) - 1}};
	struct lint_opts lo;
	struct diag_list d;
	struct kb *kb;
	size_t i, dup = 0;

	(void)state;
	diag_list_init(&d);
	kb = kb_load_mem(&in, 1, r, 2, &d);
	assert_non_null(kb);
	memset(&lo, 0, sizeof(lo));
	match_opts_default(&lo.match);
	lint_kb(kb, &lo, &d);
	for (i = 0; i < d.n; i++) {
		if (!has(d.d[i].msg, "is the same as"))
			continue;
		dup++;
		assert_true(has(d.d[i].msg, "pattern 2 of a is the same as pattern 1 of a") ||
		            has(d.d[i].msg, "pattern 1 of b is the same as pattern 1 of a"));
	}
	assert_int_equal(dup, 2);
	diag_list_free(&d);
	kb_free(kb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lint_work_grows_with_the_set),
	    cmocka_unit_test(test_duplicate_patterns),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
