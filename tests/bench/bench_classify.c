/*
 * Benchmark of the whole matcher, as the bot runs it: loads a knowledge
 * base (a directory of intents and responses, or the set built into the
 * binary), then classifies every line of a message file with match_run().
 * Prints one block of figures: load time, index sizes, throughput, latency
 * per message (median, p90, p99, max), where the time goes (normalising,
 * the Aho-Corasick scan, the rest) and peak RSS. Figures only; it never
 * fails on a timing.
 *
 * Usage: bench_classify [-I] [-M] [-m MESSAGES] [-n COUNT] [-p PASSES] [DIR]
 *   DIR        intents (*.json) and responses (*.md), and the labelled
 *              messages of a directory "labelled" beside it, if any; none:
 *              the embedded set
 *   -M         no learned layer: the rules alone
 *   -m FILE    one message a line (default: the examples of the set)
 *   -n COUNT   use at most COUNT messages
 *   -p PASSES  timed passes over the messages (default 1), after a warm-up
 *   -I         an experiment: after loading, compile every pattern again
 *              without the JIT, so that the matcher runs PCRE2's
 *              interpreter (shows what the JIT costs in memory and buys
 *              in time; the peak RSS still holds the JIT's load)
 */
#include <getopt.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acm.h"
#include "bench.h"
#include "intent.h"
#include "diag.h"
#include "kb.h"
#include "learn.h"
#include "match.h"
#include "text.h"

/* Candidate patterns of one message, found as match.c finds them. */
struct cand_count {
	const struct kb *kb;
	uint32_t *stamp; /* per pattern: message number + 1 when a candidate */
	uint32_t gen;    /* this message's number + 1 */
	size_t n;        /* positive candidates this message */
};

static int
cand_hit(void *arg, uint32_t id, size_t end, size_t len)
{
	struct cand_count *cc = arg;
	const struct kb *kb = cc->kb;
	uint32_t i, p;

	(void)end;
	(void)len;
	if (!(id & KB_LIT_FLAG))
		return 0;
	id &= ~KB_LIT_FLAG;
	for (i = kb->lit_start[id]; i < kb->lit_start[id + 1]; i++) {
		p = kb->lit_pat[i];
		if (cc->stamp[p] != cc->gen) {
			cc->stamp[p] = cc->gen;
			if (!kb->pat[p].negative)
				cc->n++;
		}
	}
	return 0;
}

static int
null_hit(void *arg, uint32_t id, size_t end, size_t len)
{
	(void)arg;
	(void)id;
	(void)end;
	(void)len;
	return 0;
}

/* The set's examples as messages, when no message file is given. */
static void
msgs_from_examples(struct bench_msgs *m, const struct kb *kb, size_t max)
{
	size_t i, j, cap = 0;

	memset(m, 0, sizeof(*m));
	for (i = 0; i < kb->nin; i++)
		cap += kb->in[i].nex;
	if (max && cap > max)
		cap = max;
	m->msg = xcalloc(cap ? cap : 1, sizeof(*m->msg));
	m->len = xcalloc(cap ? cap : 1, sizeof(*m->len));
	for (i = 0; i < kb->nin && m->n < cap; i++)
		for (j = 0; j < kb->in[i].nex && m->n < cap; j++) {
			m->msg[m->n] = kb->in[i].ex[j].text;
			m->len[m->n] = strlen(m->msg[m->n]);
			m->bytes += m->len[m->n];
			m->n++;
		}
}

/* Prints the heap in use and the heap malloc holds (glibc only). */
static void
print_heap(const char *what)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
	struct mallinfo2 mi = mallinfo2();

	printf("heap_%-9s %.2f MB in use, %.2f MB held by malloc\n", what,
	       (double)mi.uordblks / (1024.0 * 1024.0),
	       (double)(mi.arena + mi.hblkhd) / (1024.0 * 1024.0));
#else
	(void)what;
#endif
}

/* Bytes of compiled code of every pattern: interpreted, and JIT. */
static void
code_sizes(const struct kb *kb, size_t *code, size_t *jit)
{
	size_t i, j, k, sz;

	*code = *jit = 0;
	for (i = 0; i < kb->nin; i++) {
		const struct intent *in = &kb->in[i];

		for (k = 0; k < 2; k++) {
			const struct intent_pattern *ps = k ? in->neg : in->pat;
			size_t n = k ? in->nneg : in->npat;

			for (j = 0; j < n; j++) {
				if (pcre2_pattern_info(ps[j].code, PCRE2_INFO_SIZE, &sz) == 0)
					*code += sz;
				if (pcre2_pattern_info(ps[j].code, PCRE2_INFO_JITSIZE, &sz) == 0)
					*jit += sz;
			}
		}
	}
}

/* Replaces every compiled pattern by one the interpreter runs. Returns 0 or -1. */
static int
drop_jit(struct kb *kb)
{
	size_t i, j, k;

	for (i = 0; i < kb->nin; i++) {
		struct intent *in = &kb->in[i];

		for (k = 0; k < 2; k++) {
			struct intent_pattern *ps = k ? in->neg : in->pat;
			size_t n = k ? in->nneg : in->npat;

			for (j = 0; j < n; j++) {
				PCRE2_SIZE off;
				int err;
				pcre2_code *c =
				    pcre2_compile((PCRE2_SPTR)ps[j].expanded, PCRE2_ZERO_TERMINATED,
				                  PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS |
				                      PCRE2_NEVER_BACKSLASH_C,
				                  &err, &off, NULL);

				if (c == NULL)
					return -1;
				pcre2_code_free(ps[j].code);
				ps[j].code = c;
			}
		}
	}
	return 0;
}

static void
usage(void)
{
	fprintf(stderr,
	        "usage: bench_classify [-I] [-M] [-m MESSAGES] [-n COUNT] [-p PASSES] [DIR]\n");
	exit(2);
}

/* Prints the set: its sizes and what loading it cost. */
static void
print_set(const struct kb *kb, const char *dir, int interp, double load_ms, double model_ms,
          double rss_start, double rss_load, double rss_kb)
{
	size_t npat, nalways, nlit, nterm, code_bytes, jit_bytes;

	kb_stats(kb, &npat, &nalways, &nlit, &nterm);
	code_sizes(kb, &code_bytes, &jit_bytes);
	printf("== bench_classify: %s%s ==\n", dir ? dir : "embedded set",
	       interp ? ", patterns without the JIT (-I)" : "");
	printf("intents        %zu (%zu responses)\n", kb->nin, kb->responses.n);
	printf("patterns       %zu (%zu run on every message)\n", npat, nalways);
	printf("pattern_code   %.1f KiB compiled, %.1f KiB JIT code\n", (double)code_bytes / 1024.0,
	       (double)jit_bytes / 1024.0);
	printf("literals       %zu\n", nlit);
	printf("terms          %zu\n", nterm);
	printf("automaton      %zu nodes, %.1f KiB\n", acm_nodes(kb->ac),
	       (double)acm_memory(kb->ac) / 1024.0);
	printf("load           %.1f ms\n", load_ms);
	if (kb->model != NULL) {
		struct learn_info li;

		learn_model_info(kb->model, &li);
		printf("model          %zu classes, %zu messages, %zu features, %zu weights, "
		       "%.2f MB, trained in %.0f ms (by faqbot-train); %.0f ms to get it "
		       "(trained or cached)\n",
		       learn_nclass(kb->model), li.rows, li.features, li.weights,
		       (double)li.bytes / 1e6, li.seconds * 1e3, model_ms);
	} else {
		printf("model          none\n");
	}
	printf("rss_start      %.2f MB\n", rss_start);
	printf("rss_load       %.2f MB peak, %.2f MB after\n", rss_load, rss_kb);
	print_heap("load");
	if (interp)
		printf("rss_nojit      %.2f MB after compiling without the JIT\n",
		       bench_rss_now_mb());
}

/*
 * Classifies the messages: a warm-up pass, a pass for throughput, passes
 * timed message by message, then the breakdown. Prints the figures.
 */
static void
run(const struct kb *kb, const struct bench_msgs *m, long passes)
{
	struct match_opts opt;
	struct match_ctx *ctx = match_ctx_new();
	struct match_result res;
	struct text_norm norm;
	struct cand_count cc = {0};
	size_t i, npat = kb->npat, answered = 0, silent = 0, ambiguous = 0, limit_hits = 0,
	          cand_total = 0, cand_max = 0, nlat = m->n * (size_t)passes;
	uint64_t t0, t1, sum = 0;
	uint64_t *lat = xcalloc(nlat, sizeof(*lat));
	uint64_t *lat_rules = xcalloc(nlat, sizeof(*lat_rules));
	struct match_opts rules_only;
	uint64_t *lat_norm = xcalloc(m->n, sizeof(*lat_norm));
	uint64_t *lat_scan = xcalloc(m->n, sizeof(*lat_scan));
	long p;

	match_opts_default(&opt);
	rules_only = opt;
	rules_only.no_model = 1;
	/* Warm-up: caches, the JIT's code pages, the context's buffers. */
	for (i = 0; i < m->n; i++) {
		match_run(ctx, kb, &opt, m->msg[i], m->len[i], &res, NULL);
		sum += res.intent ? (uint64_t)(res.intent - kb->in) + 1 : 0;
	}
	/* Throughput, without the clock in the loop. */
	t0 = bench_ns();
	for (i = 0; i < m->n; i++) {
		match_run(ctx, kb, &opt, m->msg[i], m->len[i], &res, NULL);
		sum += res.intent ? (uint64_t)(res.intent - kb->in) + 1 : 0;
	}
	t1 = bench_ns();
	printf("throughput     %.0f msg/s\n", (double)m->n / ((double)(t1 - t0) / 1e9));
	/*
	 * Latency, message by message: as the bot runs (with the learned layer
	 * when the set has one) and, right after, the rules alone on the same
	 * message, so that both see the same machine load.
	 */
	for (p = 0; p < passes; p++) {
		for (i = 0; i < m->n; i++) {
			t0 = bench_ns();
			match_run(ctx, kb, &rules_only, m->msg[i], m->len[i], &res, NULL);
			t1 = bench_ns();
			lat_rules[(size_t)p * m->n + i] = t1 - t0;
			t0 = bench_ns();
			match_run(ctx, kb, &opt, m->msg[i], m->len[i], &res, NULL);
			t1 = bench_ns();
			lat[(size_t)p * m->n + i] = t1 - t0;
			if (p > 0)
				continue;
			if (res.intent)
				answered++;
			else if (res.silenced_by)
				silent++;
			ambiguous += res.ambiguous != 0;
			limit_hits += res.limit_hits;
		}
	}
	/*
	 * Where the time goes: a pass of the normaliser alone, then a pass of
	 * the normaliser and the scan (separate passes, so that each message is
	 * as warm in both as in match_run), then the candidates.
	 */
	text_norm_init(&norm);
	for (i = 0; i < m->n; i++) {
		t0 = bench_ns();
		text_normalise(kb->lx, opt.bot_names, m->msg[i], m->len[i], &norm);
		t1 = bench_ns();
		lat_norm[i] = t1 - t0;
	}
	for (i = 0; i < m->n; i++) {
		t0 = bench_ns();
		text_normalise(kb->lx, opt.bot_names, m->msg[i], m->len[i], &norm);
		acm_scan(kb->ac, norm.text.data, norm.text.len, null_hit, NULL);
		t1 = bench_ns();
		lat_scan[i] = t1 - t0;
	}
	cc.kb = kb;
	cc.stamp = xcalloc(npat ? npat : 1, sizeof(*cc.stamp));
	for (i = 0; i < m->n; i++) {
		text_normalise(kb->lx, opt.bot_names, m->msg[i], m->len[i], &norm);
		cc.gen = (uint32_t)i + 1;
		cc.n = 0;
		acm_scan(kb->ac, norm.text.data, norm.text.len, cand_hit, &cc);
		cand_total += cc.n;
		if (cc.n > cand_max)
			cand_max = cc.n;
	}
	printf("answered       %.1f%% (%zu), silent %zu, ambiguous %zu, limit hits %zu\n",
	       100.0 * (double)answered / (double)m->n, answered, silent, ambiguous, limit_hits);
	printf("candidates     %.2f patterns per message (max %zu), + %zu always\n",
	       (double)cand_total / (double)m->n, cand_max, kb->nalways);
	bench_print_latency(lat, nlat);
	if (kb->model != NULL) {
		qsort(lat_rules, nlat, sizeof(*lat_rules), bench_cmp_u64);
		printf("rules_only     %.2f us median, %.2f us p99; with the model %.2fx the median\n",
		       (double)bench_pct(lat_rules, nlat, 50) / 1e3,
		       (double)bench_pct(lat_rules, nlat, 99) / 1e3,
		       (double)bench_pct(lat, nlat, 50) / (double)bench_pct(lat_rules, nlat, 50));
	}
	qsort(lat_norm, m->n, sizeof(*lat_norm), bench_cmp_u64);
	qsort(lat_scan, m->n, sizeof(*lat_scan), bench_cmp_u64);
	printf("normalise      %.2f us median, %.2f us p99 (text_normalise alone)\n",
	       (double)bench_pct(lat_norm, m->n, 50) / 1e3,
	       (double)bench_pct(lat_norm, m->n, 99) / 1e3);
	printf("norm+scan      %.2f us median, %.2f us p99 (and acm_scan)\n",
	       (double)bench_pct(lat_scan, m->n, 50) / 1e3,
	       (double)bench_pct(lat_scan, m->n, 99) / 1e3);
	printf("rss_peak       %.2f MB (%.2f MB now)\n", bench_rss_peak_mb(), bench_rss_now_mb());
	printf("checksum       %llu\n", (unsigned long long)(sum % 1000003));

	text_norm_free(&norm);
	free(cc.stamp);
	free(lat);
	free(lat_rules);
	free(lat_norm);
	free(lat_scan);
	match_ctx_free(ctx);
}

int
main(int argc, char **argv)
{
	const char *msgfile = NULL, *dir = NULL;
	long maxmsg = 0, passes = 1;
	struct diag_list diags;
	struct kb_source src = {0};
	struct bench_msgs m = {0};
	struct kb *kb = NULL;
	uint64_t t0, t1;
	double rss_start, rss_load, rss_kb, model_ms = 0;
	int ch, interp = 0, rc = 1;

	while ((ch = getopt(argc, argv, "IMm:n:p:h")) != -1) {
		if (ch == 'I')
			interp = 1;
		else if (ch == 'M')
			src.no_model = 1;
		else if (ch == 'm')
			msgfile = optarg;
		else if (ch == 'n')
			maxmsg = atol(optarg);
		else if (ch == 'p')
			passes = atol(optarg);
		else
			usage();
	}
	if (argc - optind > 1 || maxmsg < 0 || passes < 1 || passes > 100)
		usage();
	if (optind < argc) {
		dir = argv[optind];
		src.intent_paths = &dir;
		src.nintent = 1;
		src.response_paths = &dir;
		src.nresponse = 1;
	}

	rss_start = bench_rss_now_mb();
	diag_list_init(&diags);
	/* Models are cached where the bot would keep them ($FAQBOT_CACHE_DIR). */
	src.cache_dir = getenv("FAQBOT_CACHE_DIR");
	t0 = bench_ns();
	kb = kb_load(&src, &diags);
	t1 = bench_ns();
	/* The model, from the trainer process as the bot gets it ($FAQBOT_TRAINER). */
	if (kb != NULL && kb_model_wait(kb, &diags) == -1)
		diag_print(&diags, stderr, DIAG_WARNING);
	model_ms = (double)(bench_ns() - t1) / 1e6;
	if (kb == NULL) {
		diag_print(&diags, stderr, DIAG_WARNING);
		fprintf(stderr, "bench_classify: %s did not load\n",
		        dir ? dir : "the embedded set");
		goto out;
	}
	rss_load = bench_rss_peak_mb();
	rss_kb = bench_rss_now_mb();
	if (interp && drop_jit(kb) == -1) {
		fprintf(stderr, "bench_classify: a pattern does not compile again\n");
		goto out;
	}
	if (msgfile != NULL) {
		if (bench_msgs_read(&m, msgfile, (size_t)maxmsg) == -1) {
			perror(msgfile);
			goto out;
		}
	} else {
		msgs_from_examples(&m, kb, (size_t)maxmsg);
	}
	if (m.n == 0) {
		fprintf(stderr, "bench_classify: no messages\n");
		goto out;
	}
	print_set(kb, dir, interp, (double)(t1 - t0) / 1e6, model_ms, rss_start, rss_load, rss_kb);
	printf("messages       %zu (%s, %.1f bytes on average)\n", m.n,
	       msgfile ? msgfile : "the set's examples", (double)m.bytes / (double)m.n);
	run(kb, &m, passes);
	rc = 0;
out:
	if (msgfile != NULL) {
		bench_msgs_free(&m);
	} else {
		free(m.msg);
		free(m.len);
	}
	kb_free(kb);
	diag_list_free(&diags);
	return rc;
}
