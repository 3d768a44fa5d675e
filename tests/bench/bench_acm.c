/*
 * Micro-benchmark of acm.c: builds an automaton of generated words, as the
 * matcher does with the literals of every intent, and scans a generated
 * 100-byte message many times. Prints figures only; it never fails on a
 * timing.
 *
 * Usage: bench_acm [words [scans]]   (defaults: 10000 words, 1000000 scans)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acm.h"
#include "util.h"

#define MSG_LEN 100

/* xorshift64*: the same words and message on every run */
static uint64_t
bench_rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/* Writes a lower-case word of 3 to 12 letters, skewed to common letters. */
static size_t
bench_word(uint64_t *seed, char *out)
{
	static const char letters[] = "etaoinshrdlcumwfgypbvkjxqz";
	size_t len = 3 + bench_rnd(seed) % 10, i;

	for (i = 0; i < len; i++) {
		/* squaring the draw favours the front of the list */
		uint64_t r = bench_rnd(seed) % 26;

		out[i] = letters[(r * r) / 26];
	}
	return len;
}

static int
bench_hit(void *arg, uint32_t id, size_t end, size_t len)
{
	(void)id;
	(void)end;
	(void)len;
	(*(unsigned long *)arg)++;
	return 0;
}

int
main(int argc, char **argv)
{
	long nwords = argc > 1 ? atol(argv[1]) : 10000;
	long nscans = argc > 2 ? atol(argv[2]) : 1000000;
	uint64_t seed = 0x2545f4914f6cdd1dULL, t0, t1;
	char words[16][16], msg[MSG_LEN + 16], w[16];
	size_t wl[16], len, msglen = 0;
	unsigned long hits = 0;
	struct acm *a;
	long i;

	if (nwords < 1 || nscans < 1) {
		fprintf(stderr, "usage: bench_acm [words [scans]]\n");
		return 2;
	}
	a = acm_new();
	t0 = now_ns();
	for (i = 0; i < nwords; i++) {
		len = bench_word(&seed, w);
		if (i < 16) {
			memcpy(words[i], w, len);
			wl[i] = len;
		}
		if (acm_add(a, w, len, (uint32_t)i) == -1) {
			fprintf(stderr, "acm_add failed\n");
			return 1;
		}
	}
	acm_build(a);
	t1 = now_ns();

	/* a message of words separated by spaces, some of them in the set */
	while (msglen < MSG_LEN) {
		if (bench_rnd(&seed) % 3 == 0 && nwords >= 16) {
			i = (long)(bench_rnd(&seed) % 16);
			memcpy(msg + msglen, words[i], wl[i]);
			len = wl[i];
		} else {
			len = bench_word(&seed, msg + msglen);
		}
		msglen += len;
		msg[msglen++] = ' ';
	}
	msglen = MSG_LEN;

	printf("words          %ld\n", nwords);
	printf("nodes          %zu\n", acm_nodes(a));
	printf("memory         %zu bytes (%.1f per node)\n", acm_memory(a),
	       (double)acm_memory(a) / (double)acm_nodes(a));
	printf("build          %.2f ms\n", (double)(t1 - t0) / 1e6);
	printf("hits per scan  %ld\n", acm_scan(a, msg, msglen, NULL, NULL));

	t0 = now_ns();
	for (i = 0; i < nscans; i++)
		acm_scan(a, msg, msglen, bench_hit, &hits);
	t1 = now_ns();
	printf("scan           %.1f ns per %zu-byte message (%.2f ns/byte, %ld scans)\n",
	       (double)(t1 - t0) / (double)nscans, msglen,
	       (double)(t1 - t0) / (double)nscans / (double)msglen, nscans);
	printf("checksum       %lu\n", hits);
	acm_free(a);
	return 0;
}
