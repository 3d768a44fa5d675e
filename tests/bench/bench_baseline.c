/*
 * The peer faqbot's matcher is measured against (BENCHMARKS.md: "C, PCRE2
 * loop over every pattern"): every message is lower-cased (no other
 * normalisation: no lexicon, no punctuation rules) and run through every
 * pattern of the set, one pcre2_match() each, interpreted or JIT-compiled.
 * Same patterns (as faqbot expands and compiles them: UTF, UCP, caseless),
 * same messages, same match limits, so the ratios mean something. Prints
 * one block of figures; it never fails on a timing.
 *
 * Two steps, so that the peer's memory is its own and not faqbot's:
 *   bench_baseline --dump [DIR] > patterns.txt
 *       loads the set (DIR, or the embedded one) with faqbot and writes
 *       every positive pattern, expanded, as "intent<TAB>regex" lines;
 *   bench_baseline [-j] [-n COUNT] PATTERNS MESSAGES
 *       compiles them (with -j also JIT-compiles) and classifies MESSAGES.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "bench.h"
#include "diag.h"
#include "kb.h"
#include "text.h"

#define MATCH_LIMIT 100000 /* as match_opts_default() */
#define DEPTH_LIMIT 1000

/* Writes the positive patterns of a set, one a line. Returns 0 or 1. */
static int
dump(const char *dir)
{
	struct diag_list diags;
	struct kb_source src = {0};
	struct kb *kb;
	size_t i, j;
	const char *s;

	diag_list_init(&diags);
	if (dir != NULL) {
		src.intent_paths = &dir;
		src.nintent = 1;
		src.response_paths = &dir;
		src.nresponse = 1;
	}
	kb = dir ? kb_load(&src, &diags) : kb_load_embedded(&diags);
	if (kb == NULL) {
		diag_print(&diags, stderr, DIAG_WARNING);
		return 1;
	}
	for (i = 0; i < kb->nin; i++) {
		for (j = 0; j < kb->in[i].npat; j++) {
			printf("%zu\t", i);
			/* A newline inside a pattern becomes \n, which PCRE2 reads the same. */
			for (s = kb->in[i].pat[j].expanded; *s; s++) {
				if (*s == '\n')
					fputs("\\n", stdout);
				else
					putchar(*s);
			}
			putchar('\n');
		}
	}
	kb_free(kb);
	diag_list_free(&diags);
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_baseline --dump [DIR] > PATTERNS\n"
	                "       bench_baseline [-j] [-n COUNT] PATTERNS MESSAGES\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct bench_msgs pf, m;
	pcre2_code **code;
	uint32_t *intent;
	pcre2_match_data *md;
	pcre2_match_context *mctx;
	pcre2_jit_stack *jstack;
	size_t npat = 0, i, k, maxmsg = 0, matched = 0, answered = 0, errors = 0, bad = 0;
	uint64_t t0, t1, *lat, sum = 0;
	double rss_start, rss_load;
	char *lower = NULL, *tab;
	size_t lowcap = 0;
	int ch, jit = 0, rc;
	uint32_t opts;

	if (argc >= 2 && strcmp(argv[1], "--dump") == 0) {
		if (argc > 3)
			usage();
		return dump(argc == 3 ? argv[2] : NULL);
	}
	while ((ch = getopt(argc, argv, "jn:h")) != -1) {
		if (ch == 'j')
			jit = 1;
		else if (ch == 'n')
			maxmsg = (size_t)atol(optarg);
		else
			usage();
	}
	if (argc - optind != 2)
		usage();

	rss_start = bench_rss_now_mb();
	t0 = bench_ns();
	if (bench_msgs_read(&pf, argv[optind], 0) == -1) {
		perror(argv[optind]);
		return 1;
	}
	code = calloc(pf.n ? pf.n : 1, sizeof(*code));
	intent = calloc(pf.n ? pf.n : 1, sizeof(*intent));
	if (code == NULL || intent == NULL) {
		perror("calloc");
		return 1;
	}
	for (i = 0; i < pf.n; i++) {
		PCRE2_SIZE off;
		int err;

		tab = strchr(pf.msg[i], '\t');
		if (tab == NULL) {
			fprintf(stderr, "%s:%zu: no tab\n", argv[optind], i + 1);
			return 1;
		}
		code[npat] =
		    pcre2_compile((PCRE2_SPTR)(tab + 1), PCRE2_ZERO_TERMINATED,
		                  PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS | PCRE2_NEVER_BACKSLASH_C,
		                  &err, &off, NULL);
		if (code[npat] == NULL) {
			fprintf(stderr, "%s:%zu: does not compile (error %d at %zu)\n",
			        argv[optind], i + 1, err, (size_t)off);
			return 1;
		}
		if (jit && pcre2_jit_compile(code[npat], PCRE2_JIT_COMPLETE) != 0)
			errors++;
		intent[npat] = (uint32_t)strtoul(pf.msg[i], NULL, 10);
		npat++;
	}
	t1 = bench_ns();
	rss_load = bench_rss_peak_mb();
	bench_msgs_free(&pf);

	if (bench_msgs_read(&m, argv[optind + 1], maxmsg) == -1 || m.n == 0) {
		if (m.data == NULL)
			perror(argv[optind + 1]);
		else
			fprintf(stderr, "bench_baseline: no messages\n");
		for (i = 0; i < npat; i++)
			pcre2_code_free(code[i]);
		free(code);
		free(intent);
		bench_msgs_free(&m);
		return 1;
	}
	md = pcre2_match_data_create(32, NULL);
	mctx = pcre2_match_context_create(NULL);
	jstack = pcre2_jit_stack_create(32 * 1024, 512 * 1024, NULL);
	pcre2_jit_stack_assign(mctx, NULL, jstack);
	pcre2_set_match_limit(mctx, MATCH_LIMIT);
	pcre2_set_depth_limit(mctx, DEPTH_LIMIT);
	/* The interpreter, even for patterns the JIT compiled: PCRE2_NO_JIT. */
	opts = PCRE2_NO_UTF_CHECK | (jit ? 0 : PCRE2_NO_JIT);
	lat = calloc(m.n, sizeof(*lat));
	if (lat == NULL || md == NULL || mctx == NULL) {
		perror("alloc");
		return 1;
	}

	printf("== bench_baseline: %s, %s ==\n", jit ? "PCRE2 JIT" : "PCRE2 interpreter",
	       argv[optind]);
	printf("patterns       %zu%s\n", npat, errors ? " (some not JIT-compiled)" : "");
	printf("load           %.1f ms\n", (double)(t1 - t0) / 1e6);
	printf("rss_start      %.2f MB\n", rss_start);
	printf("rss_load       %.2f MB\n", rss_load);
	printf("messages       %zu (%s, %.1f bytes on average)\n", m.n, argv[optind + 1],
	       (double)m.bytes / (double)m.n);

	/* Warm-up, then the timed pass. */
	for (k = 0; k < 2; k++) {
		uint64_t start = bench_ns();

		for (i = 0; i < m.n; i++) {
			size_t j, len = m.len[i], hits = 0;
			long first = -1;

			t0 = bench_ns();
			if (len + 1 > lowcap) {
				lowcap = (len + 1) * 2;
				lower = realloc(lower, lowcap);
				if (lower == NULL) {
					perror("realloc");
					return 1;
				}
			}
			for (j = 0; j < len; j++) {
				unsigned char c = (unsigned char)m.msg[i][j];

				lower[j] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
			}
			lower[len] = '\0';
			if (!text_utf8_valid(lower, len)) {
				bad += k;
				continue;
			}
			for (j = 0; j < npat; j++) {
				rc =
				    pcre2_match(code[j], (PCRE2_SPTR)lower, len, 0, opts, md, mctx);
				if (rc >= 0) {
					hits++;
					if (first < 0)
						first = (long)intent[j];
				}
			}
			t1 = bench_ns();
			if (k == 1) {
				lat[i] = t1 - t0;
				matched += hits;
				answered += first >= 0;
				sum += first >= 0 ? (uint64_t)first + 1 : 0;
			}
		}
		if (k == 1)
			printf("throughput     %.0f msg/s\n",
			       (double)m.n / ((double)(bench_ns() - start) / 1e9));
	}
	printf("answered       %.1f%% (%zu; a pattern matched), %zu pattern matches%s\n",
	       100.0 * (double)answered / (double)m.n, answered, matched,
	       bad ? " (some messages not UTF-8, skipped)" : "");
	bench_print_latency(lat, m.n);
	printf("rss_peak       %.2f MB\n", bench_rss_peak_mb());
	printf("checksum       %llu\n", (unsigned long long)(sum % 1000003));

	for (i = 0; i < npat; i++)
		pcre2_code_free(code[i]);
	free(code);
	free(intent);
	free(lat);
	free(lower);
	pcre2_match_data_free(md);
	pcre2_match_context_free(mctx);
	pcre2_jit_stack_free(jstack);
	bench_msgs_free(&m);
	return 0;
}
