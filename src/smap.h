/*
 * A string-keyed hash table (open addressing, linear probing) mapping byte
 * strings to a 32-bit value. Keys are copied into the table's own arena.
 * Used for the lexicon, keyword indexes and id lookups.
 */
#ifndef FAQBOT_SMAP_H
#define FAQBOT_SMAP_H

#include <stddef.h>
#include <stdint.h>

struct smap_slot {
	uint64_t hash;   /* hash of the key; 0 marks an empty slot */
	const char *key; /* the key, NUL-terminated copy */
	uint32_t keylen; /* its length */
	uint32_t value;  /* the caller's value */
};

struct smap {
	struct smap_slot *slot; /* 2^k slots */
	size_t mask;            /* slots - 1 */
	size_t count;           /* keys stored */
	char **chunks;          /* arena chunks holding the keys */
	size_t nchunks;         /* how many */
	size_t chunk_used;      /* bytes used in the last chunk */
};

void smap_init(struct smap *m);
void smap_free(struct smap *m);

/*
 * Looks key up; returns a pointer to its value, or NULL. The pointer stays
 * valid until the next insertion.
 */
uint32_t *smap_get(const struct smap *m, const char *key, size_t len);

/*
 * Inserts key with value if absent. Returns a pointer to the stored value
 * (the old one when the key was present: *added tells which).
 */
uint32_t *smap_put(struct smap *m, const char *key, size_t len, uint32_t value, int *added);

/* The stored copy of key (NUL-terminated), or NULL when absent. */
const char *smap_key(const struct smap *m, const char *key, size_t len);

#endif
