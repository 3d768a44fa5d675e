/*
 * The lexicon: synonyms, spelling vocabulary and word classes. See
 * lexicon.h for what each is for.
 */
#include "lexicon.h"

#include <stdlib.h>
#include <string.h>

#include "smap.h"
#include "text.h"
#include "util.h"

#define CORRECT_MIN_LEN 6 /* shorter words are never corrected */

/* What the dictionary says of a word. */
enum {
	DICT_WORD,      /* a word */
	DICT_RUN,       /* has a letter three times in a row: not judged yet */
	DICT_STRETCHED, /* a word stretched ("sooo"): not a word of its own */
};

struct lex_class {
	char *name;    /* the class name, as written after @ */
	char **member; /* members, normalised */
	size_t n;      /* how many */
};

struct lexicon {
	struct smap variant;   /* variant phrase -> index into canon[] */
	struct smap canonidx;  /* canonical form -> its first synonym, for chains */
	struct smap lead;      /* first word of a phrase -> longest phrase length */
	char **canon;          /* canonical forms */
	char **vtext;          /* the variant of each synonym, normalised */
	size_t ncanon;         /* how many synonyms */
	struct smap known;     /* words that are never corrected */
	struct smap vocab;     /* the vocabulary, for duplicates */
	char **vword;          /* vocabulary words, in insertion order */
	size_t nvocab;         /* how many */
	struct smap classidx;  /* class name -> index */
	struct lex_class *cls; /* the classes */
	size_t ncls;           /* how many */
	struct smap dict;      /* every word the intent files use (for text.c's step 3b) */
};

struct lexicon *
lexicon_new(void)
{
	struct lexicon *lx = xcalloc(1, sizeof(*lx));

	smap_init(&lx->variant);
	smap_init(&lx->canonidx);
	smap_init(&lx->lead);
	smap_init(&lx->known);
	smap_init(&lx->vocab);
	smap_init(&lx->classidx);
	smap_init(&lx->dict);
	return lx;
}

void
lexicon_free(struct lexicon *lx)
{
	size_t i, j;

	if (lx == NULL)
		return;
	for (i = 0; i < lx->ncanon; i++) {
		free(lx->canon[i]);
		free(lx->vtext[i]);
	}
	free(lx->canon);
	free(lx->vtext);
	for (i = 0; i < lx->nvocab; i++)
		free(lx->vword[i]);
	free(lx->vword);
	for (i = 0; i < lx->ncls; i++) {
		for (j = 0; j < lx->cls[i].n; j++)
			free(lx->cls[i].member[j]);
		free(lx->cls[i].member);
		free(lx->cls[i].name);
	}
	free(lx->cls);
	smap_free(&lx->variant);
	smap_free(&lx->canonidx);
	smap_free(&lx->lead);
	smap_free(&lx->known);
	smap_free(&lx->vocab);
	smap_free(&lx->classidx);
	smap_free(&lx->dict);
	free(lx);
}

static size_t
count_words(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (*s != ' ' && (s[1] == ' ' || s[1] == '\0'))
			n++;
	return n;
}

static void
add_known_words(struct lexicon *lx, const char *s)
{
	const char *p = s, *q;

	while (*p) {
		q = strchr(p, ' ');
		if (q == NULL)
			q = p + strlen(p);
		if (q > p)
			smap_put(&lx->known, p, (size_t)(q - p), 0, NULL);
		p = *q ? q + 1 : q;
	}
}

int
lexicon_add_synonym(struct lexicon *lx, const char *canonical, const char *variant, char **err)
{
	struct buf v, c;
	uint32_t *slot;
	size_t words;
	int added, rc = -1;
	const char *sp;

	buf_init(&v);
	buf_init(&c);
	text_words(variant, strlen(variant), &v);
	text_words(canonical, strlen(canonical), &c);
	if (v.len == 0) {
		*err = xasprintf("variant \"%s\" has no words", variant);
		goto out;
	}
	if (c.len == 0) {
		*err = xasprintf("canonical form \"%s\" has no words", canonical);
		goto out;
	}
	words = count_words(v.data);
	if (words > LEXICON_MAX_PHRASE) {
		*err =
		    xasprintf("variant \"%s\" has more than %d words", variant, LEXICON_MAX_PHRASE);
		goto out;
	}
	if (strcmp(v.data, c.data) == 0) {
		rc = 0; /* a canonical form listed among its variants */
		add_known_words(lx, c.data);
		goto out;
	}
	if ((slot = smap_get(&lx->variant, v.data, v.len)) != NULL) {
		if (strcmp(lx->canon[*slot], c.data) == 0) {
			*err = xasprintf("variant \"%s\" is listed twice", variant);
		} else {
			*err = xasprintf("variant \"%s\" already maps to \"%s\"", variant,
			                 lx->canon[*slot]);
		}
		goto out;
	}
	/*
	 * Chains are refused, in either order of adding: a rewrite is never
	 * rewritten again, so "metz" -> "mets" -> "metastatic" would leave
	 * "mets", which no pattern or keyword can name (they are normalised
	 * too). The moderator is told which flat mapping to write instead.
	 */
	if ((slot = smap_get(&lx->variant, c.data, c.len)) != NULL) {
		*err = xasprintf("canonical form \"%s\" is itself a variant of \"%s\": list "
		                 "\"%s\" under \"%s\" instead (a rewritten word is not "
		                 "rewritten again)",
		                 canonical, lx->canon[*slot], variant, lx->canon[*slot]);
		goto out;
	}
	if ((slot = smap_get(&lx->canonidx, v.data, v.len)) != NULL) {
		*err = xasprintf("variant \"%s\" is itself the canonical form of \"%s\": list "
		                 "\"%s\" under \"%s\" too (a rewritten word is not rewritten "
		                 "again)",
		                 variant, lx->vtext[*slot], lx->vtext[*slot], c.data);
		goto out;
	}
	smap_put(&lx->variant, v.data, v.len, (uint32_t)lx->ncanon, &added);
	smap_put(&lx->canonidx, c.data, c.len, (uint32_t)lx->ncanon, &added);
	lx->canon = xreallocarray(lx->canon, lx->ncanon + 1, sizeof(*lx->canon));
	lx->vtext = xreallocarray(lx->vtext, lx->ncanon + 1, sizeof(*lx->vtext));
	lx->vtext[lx->ncanon] = xstrdup(v.data);
	lx->canon[lx->ncanon++] = xstrdup(c.data);
	sp = strchr(v.data, ' ');
	if (sp != NULL) {
		slot = smap_put(&lx->lead, v.data, (size_t)(sp - v.data), 0, NULL);
		if (*slot < words)
			*slot = (uint32_t)words;
	}
	add_known_words(lx, c.data);
	rc = 0;
out:
	buf_free(&v);
	buf_free(&c);
	return rc;
}

int
lexicon_add_vocabulary(struct lexicon *lx, const char *word, char **err)
{
	struct buf w;
	int added;

	buf_init(&w);
	text_words(word, strlen(word), &w);
	if (w.len == 0 || strchr(w.data, ' ') != NULL) {
		*err = xasprintf("vocabulary entry \"%s\" must be one word", word);
		buf_free(&w);
		return -1;
	}
	if (w.len < CORRECT_MIN_LEN) {
		*err = xasprintf("vocabulary word \"%s\" is shorter than %d letters: "
		                 "near-misses of short words are too often other words",
		                 word, CORRECT_MIN_LEN);
		buf_free(&w);
		return -1;
	}
	smap_put(&lx->vocab, w.data, w.len, (uint32_t)lx->nvocab, &added);
	if (!added) {
		*err = xasprintf("vocabulary word \"%s\" is listed twice", word);
		buf_free(&w);
		return -1;
	}
	lx->vword = xreallocarray(lx->vword, lx->nvocab + 1, sizeof(*lx->vword));
	lx->vword[lx->nvocab++] = buf_steal(&w);
	smap_put(&lx->known, lx->vword[lx->nvocab - 1], strlen(lx->vword[lx->nvocab - 1]), 0, NULL);
	return 0;
}

void
lexicon_add_known(struct lexicon *lx, const char *word, size_t len)
{
	smap_put(&lx->known, word, len, 0, NULL);
}

int
lexicon_class_new(struct lexicon *lx, const char *name, char **err)
{
	const char *p;
	int added;

	if (*name == '\0') {
		*err = xstrdup("class name is empty");
		return -1;
	}
	for (p = name; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
			*err = xasprintf("class name \"%s\": use only a-z, 0-9 and _", name);
			return -1;
		}
	}
	smap_put(&lx->classidx, name, strlen(name), (uint32_t)lx->ncls, &added);
	if (!added) {
		*err = xasprintf("class \"%s\" is defined twice", name);
		return -1;
	}
	lx->cls = xreallocarray(lx->cls, lx->ncls + 1, sizeof(*lx->cls));
	memset(&lx->cls[lx->ncls], 0, sizeof(lx->cls[0]));
	lx->cls[lx->ncls].name = xstrdup(name);
	return (int)lx->ncls++;
}

int
lexicon_class_add(struct lexicon *lx, int idx, const char *member)
{
	struct lex_class *c = &lx->cls[idx];
	size_t len = strlen(member);
	char *m;

	if (len > 1 && member[len - 1] == '*') {
		/* A prefix: its words as written, the '*' kept. */
		struct buf b;

		buf_init(&b);
		text_words(member, len - 1, &b);
		if (b.len > 0)
			buf_putc(&b, '*');
		m = buf_steal(&b);
	} else {
		m = lexicon_normalise(lx, member);
	}
	if (*m == '\0') {
		free(m);
		return -1;
	}
	c->member = xreallocarray(c->member, c->n + 1, sizeof(*c->member));
	c->member[c->n++] = m;
	return 0;
}

int
lexicon_class_find(const struct lexicon *lx, const char *name, size_t len)
{
	uint32_t *v = smap_get(&lx->classidx, name, len);

	return v ? (int)*v : -1;
}

const char *const *
lexicon_class_members(const struct lexicon *lx, int idx, size_t *n)
{
	*n = lx->cls[idx].n;
	return (const char *const *)lx->cls[idx].member;
}

const char *
lexicon_class_name(const struct lexicon *lx, int idx)
{
	return lx->cls[idx].name;
}

size_t
lexicon_class_count(const struct lexicon *lx)
{
	return lx->ncls;
}

size_t
lexicon_synonym_count(const struct lexicon *lx)
{
	return lx->ncanon;
}

size_t
lexicon_vocabulary_count(const struct lexicon *lx)
{
	return lx->nvocab;
}

const char *
lexicon_rewrite(const struct lexicon *lx, const char *const *words, const uint32_t *lens, size_t n,
                size_t *consumed)
{
	char key[256];
	size_t maxw = 1, w, klen, i;
	uint32_t *v;

	if (n == 0 || lx->ncanon == 0)
		return NULL;
	if ((v = smap_get(&lx->lead, words[0], lens[0])) != NULL)
		maxw = *v;
	if (maxw > n)
		maxw = n;
	for (w = maxw; w >= 1; w--) {
		klen = 0;
		for (i = 0; i < w; i++) {
			if (klen + lens[i] + 1 > sizeof(key))
				break;
			if (i)
				key[klen++] = ' ';
			memcpy(key + klen, words[i], lens[i]);
			klen += lens[i];
		}
		if (i < w)
			continue;
		if ((v = smap_get(&lx->variant, key, klen)) != NULL) {
			*consumed = w;
			return lx->canon[*v];
		}
	}
	return NULL;
}

/*
 * Optimal string alignment distance between a and b, giving up (returning
 * max + 1) as soon as it must exceed max.
 */
static size_t
osa_distance(const char *a, size_t la, const char *b, size_t lb, size_t max)
{
	size_t d[3][40], i, j, rowmin, v;
	size_t *pp, *p, *c;

	if (la >= 40 || lb >= 40)
		return max + 1;
	for (j = 0; j <= lb; j++)
		d[1][j] = j;
	pp = d[0];
	p = d[1];
	c = d[2];
	for (i = 1; i <= la; i++) {
		c[0] = i;
		rowmin = i;
		for (j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;

			v = p[j] + 1;
			if (c[j - 1] + 1 < v)
				v = c[j - 1] + 1;
			if (p[j - 1] + cost < v)
				v = p[j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    pp[j - 2] + 1 < v)
				v = pp[j - 2] + 1;
			c[j] = v;
			if (v < rowmin)
				rowmin = v;
		}
		if (rowmin > max)
			return max + 1;
		{
			size_t *t = pp;
			pp = p;
			p = c;
			c = t;
		}
	}
	return p[lb];
}

const char *
lexicon_correct(const struct lexicon *lx, const char *word, size_t len)
{
	const char *best = NULL;
	size_t i, bestd = 99, d, vl, max;
	int tie = 0;

	if (len < CORRECT_MIN_LEN || lx->nvocab == 0)
		return NULL;
	for (i = 0; i < len; i++)
		if (!((word[i] >= 'a' && word[i] <= 'z')))
			return NULL; /* digits or non-ASCII: leave alone */
	if (smap_get(&lx->known, word, len) != NULL)
		return NULL;
	for (i = 0; i < lx->nvocab; i++) {
		const char *v = lx->vword[i];

		/* Nearly every typo keeps the first letter; it saves most comparisons. */
		if (v[0] != word[0])
			continue;
		vl = strlen(v);
		max = (vl < 9 || len < 9) ? 1 : 2;
		if ((vl > len ? vl - len : len - vl) > max)
			continue;
		d = osa_distance(word, len, v, vl, max);
		if (d > max)
			continue;
		if (d < bestd) {
			bestd = d;
			best = v;
			tie = 0;
		} else if (d == bestd) {
			tie = 1;
		}
	}
	return tie ? NULL : best;
}

int
lexicon_is_known(const struct lexicon *lx, const char *word, size_t len)
{
	return smap_get(&lx->known, word, len) != NULL || smap_get(&lx->variant, word, len) != NULL;
}

void
lexicon_add_words(struct lexicon *lx, const char *text, size_t len)
{
	struct buf clean, words;
	const char *p, *q;
	size_t i, k;
	int digits, letters, run, maxrun;

	buf_init(&clean);
	buf_init(&words);
	/* "\\bkill\\b" in a pattern: an escape (the backslash and its letter) is no word. */
	for (i = 0; i < len; i++) {
		if (text[i] == '\\' && i + 1 < len) {
			buf_puts(&clean, "  ");
			i++;
		} else {
			buf_putc(&clean, text[i]);
		}
	}
	text_words(clean.data ? clean.data : "", clean.len, &words);
	for (p = words.data; *p; p = *q ? q + 1 : q) {
		q = strchr(p, ' ');
		if (q == NULL)
			q = p + strlen(p);
		/* Only words as written: not "k1ll", not "sooo", not "b17". */
		digits = letters = 0;
		maxrun = run = 0;
		for (k = 0; p + k < q; k++) {
			if (p[k] >= '0' && p[k] <= '9')
				digits++;
			else
				letters++;
			run = k > 0 && p[k] == p[k - 1] ? run + 1 : 1;
			if (run > maxrun)
				maxrun = run;
		}
		/* A letter three times: kept for lexicon_words_done() to judge. */
		if (letters > 0 && digits == 0)
			smap_put(&lx->dict, p, (size_t)(q - p), maxrun >= 3 ? DICT_RUN : DICT_WORD,
			         NULL);
	}
	buf_free(&clean);
	buf_free(&words);
}

/* Is some shortening of w's runs (each to two letters or one) a plain word of the dictionary? */
static int
stretched_word(const struct lexicon *lx, const char *w, size_t n)
{
	size_t starts[8], lens[8], nr = 0, i, k;
	unsigned c, combos;
	struct buf b;
	uint32_t *v;
	int found = 0;

	for (i = 0; i < n; i = k) {
		for (k = i + 1; k < n && w[k] == w[i]; k++)
			;
		if (k - i >= 3 && nr < NELEM(starts)) {
			starts[nr] = i;
			lens[nr++] = k - i;
		}
	}
	combos = 1u << nr;
	buf_init(&b);
	for (c = 0; c < combos && !found; c++) {
		size_t r = 0;

		buf_reset(&b);
		for (i = 0; i < n;) {
			if (r < nr && i == starts[r]) {
				buf_append(&b, w + i, (c >> r) & 1 ? 1 : 2);
				i += lens[r++];
			} else {
				buf_putc(&b, w[i++]);
			}
		}
		v = smap_get(&lx->dict, b.data, b.len);
		found = v != NULL && *v == DICT_WORD;
	}
	buf_free(&b);
	return found;
}

void
lexicon_words_done(struct lexicon *lx)
{
	size_t i;

	/* "sooo" in an example is "so" stretched, not a word; "zzz" or "www" may be one. */
	for (i = 0; lx->dict.slot && i <= lx->dict.mask; i++) {
		struct smap_slot *sl = &lx->dict.slot[i];

		if (sl->hash && sl->value == DICT_RUN)
			sl->value = stretched_word(lx, sl->key, sl->keylen) ? DICT_STRETCHED : DICT_WORD;
	}
}

int
lexicon_has_word(const struct lexicon *lx, const char *word, size_t len)
{
	uint32_t *v;

	return lx != NULL && (v = smap_get(&lx->dict, word, len)) != NULL && *v != DICT_STRETCHED;
}

size_t
lexicon_word_count(const struct lexicon *lx)
{
	return lx->dict.count;
}

const char *
lexicon_variant_of(const struct lexicon *lx, const char *word, size_t len)
{
	uint32_t *v = smap_get(&lx->variant, word, len);

	return v ? lx->canon[*v] : NULL;
}

char *
lexicon_normalise(const struct lexicon *lx, const char *text)
{
	struct text_norm n;
	char *out;

	text_norm_init(&n);
	text_normalise(lx, NULL, text, strlen(text), &n);
	out = xstrdup(n.text.data ? n.text.data : "");
	text_norm_free(&n);
	return out;
}
