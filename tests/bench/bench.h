/*
 * What the benchmarks share: reading a message file, the clock, percentiles
 * and memory figures. Header-only (static inline) because every
 * tests/bench/bench_*.c is built as a program of its own (see
 * CMakeLists.txt), and a second .c here would become one too.
 */
#ifndef FAQBOT_BENCH_H
#define FAQBOT_BENCH_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_FILE     (64u << 20) /* bytes of messages read */
#define BENCH_MAX_MESSAGES 1000000     /* lines kept */

/* Messages: lines of one file, each NUL-terminated in place. */
struct bench_msgs {
	char *data;       /* the file (owned) */
	const char **msg; /* the lines */
	size_t *len;      /* their lengths */
	size_t n;         /* how many */
	size_t bytes;     /* their total length */
};

/* Nanoseconds on the monotonic clock. */
static inline uint64_t
bench_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Reads path (at most BENCH_MAX_FILE bytes) and splits it into lines,
 * skipping empty ones; keeps at most max lines (0: BENCH_MAX_MESSAGES).
 * Returns 0, or -1 with errno set. Free with bench_msgs_free().
 */
static inline int
bench_msgs_read(struct bench_msgs *m, const char *path, size_t max)
{
	FILE *fp;
	size_t cap = 0, got, size;
	char *p, *end, *nl;
	struct stat st;
	int err;

	memset(m, 0, sizeof(*m));
	if (max == 0 || max > BENCH_MAX_MESSAGES)
		max = BENCH_MAX_MESSAGES;
	if ((fp = fopen(path, "rb")) == NULL)
		return -1;
	/* Sized to the file, so that the peak RSS holds no untouched buffer. */
	if (fstat(fileno(fp), &st) == -1) {
		err = errno;
		fclose(fp);
		errno = err;
		return -1;
	}
	if (st.st_size > (off_t)BENCH_MAX_FILE) {
		fclose(fp);
		errno = EFBIG;
		return -1;
	}
	size = (size_t)st.st_size;
	if ((m->data = malloc(size + 1)) == NULL) {
		fclose(fp);
		return -1;
	}
	got = fread(m->data, 1, size, fp);
	err = ferror(fp) ? EIO : 0;
	fclose(fp);
	if (err) {
		free(m->data);
		m->data = NULL;
		errno = err;
		return -1;
	}
	m->data[got] = '\0';
	for (p = m->data, end = m->data + got; p < end && m->n < max; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		*nl = '\0';
		if (nl > p && nl[-1] == '\r')
			nl[-1] = '\0';
		if (*p == '\0')
			continue;
		if (m->n == cap) {
			cap = cap ? cap * 2 : 1024;
			m->msg = realloc(m->msg, cap * sizeof(*m->msg));
			m->len = realloc(m->len, cap * sizeof(*m->len));
			if (m->msg == NULL || m->len == NULL) {
				perror("realloc");
				exit(1);
			}
		}
		m->msg[m->n] = p;
		m->len[m->n] = strlen(p);
		m->bytes += m->len[m->n];
		m->n++;
	}
	return 0;
}

static inline void
bench_msgs_free(struct bench_msgs *m)
{
	free(m->data);
	free(m->msg);
	free(m->len);
	memset(m, 0, sizeof(*m));
}

static inline int
bench_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The p-th percentile (0..100, nearest rank) of n sorted values. */
static inline uint64_t
bench_pct(const uint64_t *sorted, size_t n, double p)
{
	size_t r;

	if (n == 0)
		return 0;
	r = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (r < 1)
		r = 1;
	if (r > n)
		r = n;
	return sorted[r - 1];
}

/* Peak resident set size so far, in MB (getrusage: ru_maxrss is in KiB). */
static inline double
bench_rss_peak_mb(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) == -1)
		return -1;
	return (double)ru.ru_maxrss / 1024.0;
}

/* Resident set size now, in MB (from /proc/self/statm), or -1. */
static inline double
bench_rss_now_mb(void)
{
	FILE *fp = fopen("/proc/self/statm", "r");
	unsigned long size, res;
	int ok;

	if (fp == NULL)
		return -1;
	ok = fscanf(fp, "%lu %lu", &size, &res) == 2;
	fclose(fp);
	return ok ? (double)res * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0) : -1;
}

/* Prints the latency lines for n per-message times (sorts them). */
static inline void
bench_print_latency(uint64_t *ns, size_t n)
{
	qsort(ns, n, sizeof(*ns), bench_cmp_u64);
	printf("median         %.2f us\n", (double)bench_pct(ns, n, 50) / 1e3);
	printf("p90            %.2f us\n", (double)bench_pct(ns, n, 90) / 1e3);
	printf("p99            %.2f us\n", (double)bench_pct(ns, n, 99) / 1e3);
	printf("max            %.2f us\n", n ? (double)ns[n - 1] / 1e3 : 0.0);
}

#endif
