/*
 * String hash table; see smap.h.
 */
#include "smap.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SMAP_CHUNK 8192

static uint64_t
smap_hash(const char *key, size_t len)
{
	uint64_t h = hash_bytes(key, len);

	return h ? h : 1;
}

void
smap_init(struct smap *m)
{
	memset(m, 0, sizeof(*m));
}

void
smap_free(struct smap *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nchunks; i++)
		free(m->chunks[i]);
	free(m->chunks);
	free(m->slot);
	smap_init(m);
}

static const char *
smap_copy_key(struct smap *m, const char *key, size_t len)
{
	char *p;

	if (len + 1 > SMAP_CHUNK) {
		/* A big key gets a chunk of its own, kept before the current one. */
		m->chunks = xreallocarray(m->chunks, m->nchunks + 1, sizeof(*m->chunks));
		p = xmalloc(len + 1);
		if (m->nchunks > 0) {
			m->chunks[m->nchunks] = m->chunks[m->nchunks - 1];
			m->chunks[m->nchunks - 1] = p;
		} else {
			m->chunks[0] = p;
			m->chunk_used = SMAP_CHUNK; /* full: next key starts a chunk */
		}
		m->nchunks++;
	} else {
		if (m->nchunks == 0 || m->chunk_used + len + 1 > SMAP_CHUNK) {
			m->chunks = xreallocarray(m->chunks, m->nchunks + 1, sizeof(*m->chunks));
			m->chunks[m->nchunks++] = xmalloc(SMAP_CHUNK);
			m->chunk_used = 0;
		}
		p = m->chunks[m->nchunks - 1] + m->chunk_used;
		m->chunk_used += len + 1;
	}
	memcpy(p, key, len);
	p[len] = '\0';
	return p;
}

static struct smap_slot *
smap_find(const struct smap *m, const char *key, size_t len, uint64_t h)
{
	size_t i;

	if (m->slot == NULL)
		return NULL;
	for (i = h & m->mask;; i = (i + 1) & m->mask) {
		struct smap_slot *s = &m->slot[i];

		if (s->hash == 0)
			return s;
		if (s->hash == h && s->keylen == len && memcmp(s->key, key, len) == 0)
			return s;
	}
}

static void
smap_grow(struct smap *m)
{
	struct smap_slot *old = m->slot;
	size_t oldn = m->slot ? m->mask + 1 : 0, n = oldn ? oldn * 2 : 16, i;

	m->slot = xcalloc(n, sizeof(*m->slot));
	m->mask = n - 1;
	for (i = 0; i < oldn; i++) {
		if (old[i].hash) {
			struct smap_slot *s = smap_find(m, old[i].key, old[i].keylen, old[i].hash);
			*s = old[i];
		}
	}
	free(old);
}

uint32_t *
smap_get(const struct smap *m, const char *key, size_t len)
{
	struct smap_slot *s = smap_find(m, key, len, smap_hash(key, len));

	return s && s->hash ? &s->value : NULL;
}

const char *
smap_key(const struct smap *m, const char *key, size_t len)
{
	struct smap_slot *s = smap_find(m, key, len, smap_hash(key, len));

	return s && s->hash ? s->key : NULL;
}

uint32_t *
smap_put(struct smap *m, const char *key, size_t len, uint32_t value, int *added)
{
	uint64_t h = smap_hash(key, len);
	struct smap_slot *s;

	if (m->slot == NULL || (m->count + 1) * 4 > (m->mask + 1) * 3)
		smap_grow(m);
	s = smap_find(m, key, len, h);
	if (s->hash) {
		if (added)
			*added = 0;
		return &s->value;
	}
	s->hash = h;
	s->key = smap_copy_key(m, key, len);
	s->keylen = (uint32_t)len;
	s->value = value;
	m->count++;
	if (added)
		*added = 1;
	return &s->value;
}
