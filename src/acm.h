/*
 * Aho-Corasick multi-string search: finds every occurrence of a set of byte
 * strings in a text in one pass, in time linear in the text length plus the
 * number of hits. The matcher uses it to find which regex literals and
 * keywords occur in a message, so that only the patterns that can match are
 * run (see prefilter in intent.c).
 *
 * Build once (acm_add ... acm_build), then scan from any number of readers;
 * a built automaton is read-only. Memory is compact (sorted edge arrays, not
 * 256-way tables): a few tens of bytes per trie node.
 */
#ifndef FAQBOT_ACM_H
#define FAQBOT_ACM_H

#include <stddef.h>
#include <stdint.h>

struct acm;

/* Returns a new empty automaton; free with acm_free(). Never NULL. */
struct acm *acm_new(void);

/* Frees the automaton; acm_free(NULL) does nothing. */
void acm_free(struct acm *a);

/*
 * Adds the string s (len bytes, len >= 1, any bytes including NUL) with the
 * caller's id. The same string may be added several times with different
 * ids; each id is reported. Only before acm_build(). Returns 0, or -1 when
 * len is 0 or the automaton is already built.
 */
int acm_add(struct acm *a, const void *s, size_t len, uint32_t id);

/* Computes failure links and output lists. Returns 0, or -1 if built twice. */
int acm_build(struct acm *a);

/*
 * Called for every occurrence: id as given to acm_add, end the offset just
 * past the occurrence in the text, len the string's length (so it started at
 * end - len). Return 0 to go on, non-zero to stop the scan.
 */
typedef int (*acm_hit_fn)(void *arg, uint32_t id, size_t end, size_t len);

/*
 * Scans text (len bytes) and calls hit for every occurrence of every added
 * string, in order of end offset. Returns the number of hits reported, or
 * -1 when the automaton is not built.
 */
long acm_scan(const struct acm *a, const void *text, size_t len, acm_hit_fn hit, void *arg);

/* Number of trie nodes and bytes allocated, for benchmarks. */
size_t acm_nodes(const struct acm *a);
size_t acm_memory(const struct acm *a);

#endif
