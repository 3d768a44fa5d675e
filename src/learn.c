/*
 * The learned layer: features, the sparse model, scoring, and the model's
 * file format. Training is in learn_train.c (it needs liblinear; this file
 * does not). See learn.h.
 */
#include "learn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lexicon.h"
#include "smap.h"
#include "text.h"
#include "util.h"

#define NO_MEMBER UINT32_MAX

/* A member of a lexicon word class, for class features. */
struct member {
	const char *words; /* normalised words, joined by spaces (owned by the lexicon) */
	uint32_t len;      /* their length, without a trailing '*' */
	uint32_t cls;      /* the class */
	uint32_t next;     /* next member with the same first word, or NO_MEMBER */
	uint8_t prefix;    /* the last word is a prefix ("spread*") */
};

/*
 * The index of the weights: the buckets that have some (key[], ascending),
 * found through the bucket's top LEARN_HI_BITS (hi[]) then a binary search
 * among the few keys that share them; a key's weights are
 * ecls/ew[kstart[k]..kstart[k+1]), classes ascending. Memory follows the
 * features the model learnt, not the size of the space.
 */
#define LEARN_HI_BITS 12

struct learn_model {
	size_t nclass;        /* classes (see the LEARN_C_ numbers) */
	char **id;            /* their ids */
	float *bias;          /* per class */
	uint32_t *hi;         /* top bits of a bucket -> its keys hi[t]..hi[t+1] */
	uint32_t *key;        /* buckets that have weights, ascending */
	uint32_t *kstart;     /* key k -> its entries kstart[k]..kstart[k+1] */
	size_t nkey;          /* keys */
	uint16_t *ecls;       /* entry class, ascending within a key */
	float *ew;            /* entry weight */
	size_t nent;          /* entries */
	double sig_bias_sum;  /* sum of sigmoid(bias) over the second tier's classes */
	uint32_t *by_bias;    /* classes, highest bias first */
	double *sig_bias;     /* sigmoid(bias) of every class */
	/* Word classes of the lexicon, for class features. */
	const struct lexicon *lx;
	struct member *mem;   /* members */
	size_t nmem;
	struct smap first;    /* first word -> first member with it */
	uint32_t *prefixed;   /* members whose first word is a prefix */
	size_t nprefixed;
	struct learn_params p; /* what it was trained with (the feature ones matter here) */
	struct learn_info info;
};

void
learn_params_default(struct learn_params *p)
{
	/*
	 * The safety tier hardly regularised: liblinear's stopping tolerance ends
	 * training well before the weights run away, and per-file
	 * cross-validation ranked the safety messages best from here on (C 16:
	 * 0.805 of them above all but 1 % of the others; 128: 0.836; 2,048:
	 * 0.854; 8,192: the same). The intents gain next to nothing from it and
	 * keep many more weights (at 1,000 intents, 5.9 million instead of 0.8),
	 * so the second tier stays at 128.
	 */
	p->c = 2048;
	p->c_second = 128;
	p->eps = 0.1;
	p->prune = 0.2;
	p->prune_neg = 0.5;
	p->threads = 2;
	p->gram = 4;
	p->gram_min_word = 6;
	p->gram_weight = 0.5;
	p->tol_second = 0.005;
}

/* The feature parameters of m, or the defaults. */
static const struct learn_params *
params_of(const struct learn_model *m)
{
	static struct learn_params def;
	static int init;

	if (m != NULL)
		return &m->p;
	if (!init) {
		learn_params_default(&def);
		init = 1;
	}
	return &def;
}

/* --- features ----------------------------------------------------------- */

/* FNV-1a over a kind byte and up to two strings, then a final mix. */
static uint32_t
fhash(char kind, const char *a, size_t alen, const char *b, size_t blen)
{
	uint32_t h = 2166136261u;
	size_t i;

	h = (h ^ (unsigned char)kind) * 16777619u;
	for (i = 0; i < alen; i++)
		h = (h ^ (unsigned char)a[i]) * 16777619u;
	if (b != NULL) {
		h = (h ^ 0x1f) * 16777619u;
		for (i = 0; i < blen; i++)
			h = (h ^ (unsigned char)b[i]) * 16777619u;
	}
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	/* Character grams in the upper half of the space, the rest in the lower. */
	return kind == 'g' ? (h & (LEARN_BUCKETS / 2 - 1)) | (LEARN_BUCKETS / 2)
	                   : h & (LEARN_BUCKETS / 2 - 1);
}

struct fstate {
	uint32_t *feat;     /* buckets, unsorted */
	size_t n;           /* how many */
	struct buf *names;  /* readable names, or NULL */
	uint32_t *nbucket;  /* bucket of each name */
	size_t nnames;
	const char *word;   /* the word whose grams are being added */
	size_t wlen;
};

static void
add(struct fstate *fs, char kind, const char *a, size_t alen, const char *b, size_t blen)
{
	uint32_t h;

	if (fs->n >= LEARN_MAX_FEATURES)
		return;
	h = fhash(kind, a, alen, b, blen);
	fs->feat[fs->n++] = h;
	if (fs->names != NULL) {
		switch (kind) {
		case 'w':
			buf_printf(fs->names, "%.*s", (int)alen, a);
			break;
		case 'b':
			buf_printf(fs->names, "%.*s %.*s", (int)alen, a, (int)blen, b);
			break;
		case 'g':
			/* Grams are shown as the word they spell: their weights add up there. */
			buf_printf(fs->names, "%.*s (its letters)", (int)fs->wlen, fs->word);
			break;
		default:
			buf_printf(fs->names, "@%.*s", (int)alen, a);
			break;
		}
		buf_putc(fs->names, '\0');
		fs->nbucket[fs->nnames++] = h;
	}
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

struct word {
	const char *s;
	uint32_t len;
};

/* Does member m match the words from w[i] on? */
static int
member_at(const struct member *m, const struct word *w, size_t nw, size_t i)
{
	const char *p = m->words, *end = m->words + m->len;

	for (; i < nw; i++) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		size_t l = sp ? (size_t)(sp - p) : (size_t)(end - p);

		if (sp == NULL && m->prefix) {
			if (w[i].len < l || memcmp(w[i].s, p, l) != 0)
				return 0;
		} else if (w[i].len != l || memcmp(w[i].s, p, l) != 0) {
			return 0;
		}
		if (sp == NULL)
			return 1;
		p = sp + 1;
	}
	return 0;
}

static int
is_name(const char *s, size_t len, const char *const *names)
{
	for (; names && *names; names++)
		if (strlen(*names) == len && memcmp(*names, s, len) == 0)
			return 1;
	return 0;
}

size_t
learn_features(const struct learn_model *m, const struct text_norm *n,
               const char *const *bot_names, uint32_t *feat, struct buf *names,
               uint32_t *name_bucket, size_t *nnames)
{
	return learn_features_window(m, n, bot_names, 0, SIZE_MAX, feat, names, name_bucket,
	                             nnames);
}

size_t
learn_words(const struct text_norm *n)
{
	const char *t = n->text.data ? n->text.data : "", *q;
	size_t nw = 0;

	for (q = t; *q; q++)
		if (*q != ' ' && (q == t || q[-1] == ' '))
			nw++;
	return nw < TEXT_MAX_TOKENS ? nw : TEXT_MAX_TOKENS;
}

/*
 * What only the whole message shows: its length in words, and its emoji
 * (the text the rules read has none). A three-word reply with a smile is
 * rarely a farewell; a model without them reads "i want pics 😄" by "i
 * want" alone.
 */
static void
whole_message(struct fstate *fs, const struct text_norm *n, size_t nw)
{
	static const char *const len_name[] = {"length 1-3", "length 4-7", "length 8-15",
	                                       "length 16-40", "length 41+"};
	size_t b = nw <= 3 ? 0 : nw <= 7 ? 1 : nw <= 15 ? 2 : nw <= 40 ? 3 : 4, i, k;
	const unsigned char *s = (const unsigned char *)n->src;

	add(fs, 'l', len_name[b], strlen(len_name[b]), NULL, 0);
	for (i = 0, k = 0; s != NULL && i < n->srclen && k < 8; i++) {
		uint32_t cp;

		/* Four-byte sequences from U+1F300 (pictographs, faces, hands, hearts)... */
		if (s[i] == 0xf0 && i + 3 < n->srclen && (s[i + 1] == 0x9f) &&
		    s[i + 2] >= 0x8c && s[i + 2] <= 0xab && (s[i + 3] & 0xc0) == 0x80) {
			add(fs, 'e', (const char *)s + i, 4, NULL, 0);
			i += 3;
			k++;
		} else if (s[i] == 0xe2 && i + 2 < n->srclen && (s[i + 1] & 0xc0) == 0x80 &&
		           (s[i + 2] & 0xc0) == 0x80) {
			/* ...and the symbols and dingbats, U+2600 to U+27BF (♥, ☺, ✌). */
			cp = (uint32_t)(s[i] & 0x0f) << 12 | (uint32_t)(s[i + 1] & 0x3f) << 6 |
			     (uint32_t)(s[i + 2] & 0x3f);
			if (cp >= 0x2600 && cp <= 0x27bf) {
				add(fs, 'e', (const char *)s + i, 3, NULL, 0);
				k++;
			}
			i += 2;
		}
	}
}

size_t
learn_features_window(const struct learn_model *m, const struct text_norm *n,
                      const char *const *bot_names, size_t from, size_t count, uint32_t *feat,
                      struct buf *names, uint32_t *name_bucket, size_t *nnames)
{
	static const char bot[] = "@bot";
	const struct learn_params *p = params_of(m);
	struct word w[TEXT_MAX_TOKENS + 1];
	struct fstate fs = {feat, 0, names, name_bucket, 0, NULL, 0};
	const char *t = n->text.data ? n->text.data : "", *q, *sp;
	char padded[64];
	size_t nw = 0, seen = 0, i, k, out, gram = p->gram > 0 ? (size_t)p->gram : 0;

	for (q = t; *q && nw < NELEM(w); q = sp ? sp + 1 : q + strlen(q)) {
		sp = strchr(q, ' ');
		w[nw].s = q;
		w[nw].len = (uint32_t)(sp ? (size_t)(sp - q) : strlen(q));
		if (w[nw].len == 0)
			continue;
		/* Only the words of the window [from, from + count). */
		if (seen++ < from)
			goto next;
		if (nw >= count)
			break;
		if (is_name(w[nw].s, w[nw].len, bot_names)) {
			w[nw].s = bot;
			w[nw].len = sizeof(bot) - 1;
		}
		nw++;
next:
		if (sp == NULL)
			break;
	}
	for (i = 0; i < nw; i++) {
		add(&fs, 'w', w[i].s, w[i].len, NULL, 0);
		if (i == 0)
			add(&fs, 'b', "^", 1, w[i].s, w[i].len);
		else
			add(&fs, 'b', w[i - 1].s, w[i - 1].len, w[i].s, w[i].len);
		if (i + 1 == nw)
			add(&fs, 'b', w[i].s, w[i].len, "$", 1);
		/* Character grams inside the word, with its edges marked. */
		if (gram > 0 && w[i].len >= (size_t)p->gram_min_word &&
		    w[i].len + 2 < sizeof(padded) && w[i].s != bot) {
			size_t pl = w[i].len + 2;

			padded[0] = '<';
			memcpy(padded + 1, w[i].s, w[i].len);
			padded[pl - 1] = '>';
			fs.word = w[i].s;
			fs.wlen = w[i].len;
			for (k = 0; k + gram <= pl; k++)
				add(&fs, 'g', padded + k, gram, NULL, 0);
		}
		/* The lexicon's word classes. */
		if (m != NULL && m->nmem > 0) {
			uint32_t *first = smap_get(&m->first, w[i].s, w[i].len), j;

			for (j = first ? *first : NO_MEMBER; j != NO_MEMBER; j = m->mem[j].next)
				if (member_at(&m->mem[j], w, nw, i)) {
					const char *cn = lexicon_class_name(m->lx, (int)m->mem[j].cls);

					add(&fs, 'c', cn, strlen(cn), NULL, 0);
				}
			for (k = 0; k < m->nprefixed; k++) {
				const struct member *mm = &m->mem[m->prefixed[k]];

				if (member_at(mm, w, nw, i)) {
					const char *cn = lexicon_class_name(m->lx, (int)mm->cls);

					add(&fs, 'c', cn, strlen(cn), NULL, 0);
				}
			}
		}
	}
	if (from == 0 && count == SIZE_MAX && nw > 0)
		whole_message(&fs, n, nw);
	if (fs.n > 1)
		qsort(feat, fs.n, sizeof(*feat), cmp_u32);
	for (i = 0, out = 0; i < fs.n; i++)
		if (out == 0 || feat[out - 1] != feat[i])
			feat[out++] = feat[i];
	if (nnames)
		*nnames = fs.nnames;
	return out;
}

/*
 * The scale of a message whose buckets are feat[0..n): one over the length
 * of its feature vector, grams counting gw each, words 1.
 */
static double
norm_of(const uint32_t *feat, size_t n, double gw)
{
	size_t i, g = 0;

	for (i = 0; i < n; i++)
		g += feat[i] >= LEARN_BUCKETS / 2;
	return n ? 1.0 / sqrt((double)(n - g) + gw * gw * (double)g) : 0;
}

/* The value of bucket b in a message of that scale. */
static double
value_of(uint32_t b, double norm, double gw)
{
	return b >= LEARN_BUCKETS / 2 ? gw * norm : norm;
}

void
learn_values(const struct learn_model *m, const uint32_t *feat, size_t n, double *val)
{
	double gw = params_of(m)->gram_weight, v = norm_of(feat, n, gw);
	size_t i;

	for (i = 0; i < n; i++)
		val[i] = value_of(feat[i], v, gw);
}

/* --- the model ---------------------------------------------------------- */

static void
vocab_build(struct learn_model *m, const struct lexicon *lx)
{
	size_t c, i, n;
	int added;

	m->lx = lx;
	smap_init(&m->first);
	if (lx == NULL)
		return;
	for (c = 0; c < lexicon_class_count(lx); c++) {
		const char *const *mem = lexicon_class_members(lx, (int)c, &n);

		for (i = 0; i < n; i++) {
			struct member *mm;
			size_t len = strlen(mem[i]);
			const char *sp;

			m->mem = xreallocarray(m->mem, m->nmem + 1, sizeof(*m->mem));
			mm = &m->mem[m->nmem];
			mm->words = mem[i];
			mm->prefix = len > 0 && mem[i][len - 1] == '*';
			mm->len = (uint32_t)(len - mm->prefix);
			mm->cls = (uint32_t)c;
			mm->next = NO_MEMBER;
			sp = memchr(mm->words, ' ', mm->len);
			if (mm->prefix && sp == NULL) {
				m->prefixed = xreallocarray(m->prefixed, m->nprefixed + 1,
				                            sizeof(*m->prefixed));
				m->prefixed[m->nprefixed++] = (uint32_t)m->nmem;
			} else {
				size_t fl = sp ? (size_t)(sp - mm->words) : mm->len;
				uint32_t *slot = smap_put(&m->first, mm->words, fl, (uint32_t)m->nmem,
				                          &added);

				if (!added) {
					/* Chain behind the first member with this word. */
					uint32_t j = *slot;

					while (m->mem[j].next != NO_MEMBER)
						j = m->mem[j].next;
					m->mem[j].next = (uint32_t)m->nmem;
				}
			}
			m->nmem++;
		}
	}
}

struct learn_model *
learn_model_new(const struct lexicon *lx, const struct learn_params *p)
{
	struct learn_model *m = xcalloc(1, sizeof(*m));

	m->p = *p;
	vocab_build(m, lx);
	return m;
}

static int
cmp_weight(const void *a, const void *b)
{
	const struct learn_weight *x = a, *y = b;

	if (x->bucket != y->bucket)
		return x->bucket < y->bucket ? -1 : 1;
	return x->cls < y->cls ? -1 : (x->cls > y->cls);
}

/* A class and its bias, to order the classes by it. */
struct class_bias {
	float bias;
	uint32_t cls;
};

static int
cmp_bias(const void *a, const void *b)
{
	const struct class_bias *x = a, *y = b;

	if (x->bias != y->bias)
		return x->bias > y->bias ? -1 : 1;
	return x->cls < y->cls ? -1 : (x->cls > y->cls);
}

/*
 * The rest of a model whose key, kstart, ecls and ew are in place: its
 * classes, the top-bits index, the normaliser, the classes by bias, info.
 */
static void
learn_model_index(struct learn_model *m, const char *const *ids, size_t nclass,
                  const float *bias, const struct learn_info *info)
{
	struct class_bias *cb;
	size_t c, k;

	m->nclass = nclass;
	m->id = xcalloc(nclass ? nclass : 1, sizeof(*m->id));
	m->bias = xcalloc(nclass ? nclass : 1, sizeof(*m->bias));
	for (c = 0; c < nclass; c++) {
		m->id[c] = xstrdup(ids[c]);
		m->bias[c] = bias[c];
	}
	m->hi = xcalloc((1u << LEARN_HI_BITS) + 1, sizeof(*m->hi));
	for (k = 0; k < m->nkey; k++)
		m->hi[(m->key[k] >> (LEARN_BITS - LEARN_HI_BITS)) + 1]++;
	for (k = 0; k < (1u << LEARN_HI_BITS); k++)
		m->hi[k + 1] += m->hi[k];
	m->nent = m->kstart[m->nkey];
	/* The second tier's normaliser at every class's bias, and the classes by bias. */
	cb = xcalloc(nclass ? nclass : 1, sizeof(*cb));
	m->sig_bias_sum = 0;
	m->sig_bias = xcalloc(nclass ? nclass : 1, sizeof(*m->sig_bias));
	for (c = 0; c < nclass; c++) {
		cb[c] = (struct class_bias){m->bias[c], (uint32_t)c};
		m->sig_bias[c] = 1.0 / (1.0 + exp(-(double)m->bias[c]));
		if (c >= LEARN_C_NULL)
			m->sig_bias_sum += m->sig_bias[c];
	}
	qsort(cb, nclass, sizeof(*cb), cmp_bias);
	m->by_bias = xcalloc(nclass ? nclass : 1, sizeof(*m->by_bias));
	for (c = 0; c < nclass; c++)
		m->by_bias[c] = cb[c].cls;
	free(cb);
	if (info != NULL)
		m->info = *info;
	m->info.weights = m->nent;
	m->info.bytes = sizeof(*m) + ((1u << LEARN_HI_BITS) + 1) * sizeof(*m->hi) +
	                (m->nkey + 1) * (sizeof(*m->key) + sizeof(*m->kstart)) +
	                m->nent * (sizeof(*m->ecls) + sizeof(*m->ew)) +
	                nclass * (sizeof(*m->bias) + sizeof(*m->id) + sizeof(*m->by_bias) +
	                          sizeof(*m->sig_bias)) +
	                m->nmem * sizeof(*m->mem);
	for (c = 0; c < nclass; c++)
		m->info.bytes += strlen(m->id[c]) + 1;
}

void
learn_model_set(struct learn_model *m, const char *const *ids, size_t nclass, const float *bias,
                struct learn_weight *w, size_t nw, const struct learn_info *info)
{
	size_t i, k;

	qsort(w, nw, sizeof(*w), cmp_weight);
	for (i = 0, k = 0; i < nw; i++)
		k += i == 0 || w[i].bucket != w[i - 1].bucket;
	m->nkey = k;
	m->key = xcalloc(k + 1, sizeof(*m->key));
	m->kstart = xcalloc(k + 1, sizeof(*m->kstart));
	m->ecls = xcalloc(nw ? nw : 1, sizeof(*m->ecls));
	m->ew = xcalloc(nw ? nw : 1, sizeof(*m->ew));
	for (i = 0, k = 0; i < nw; i++) {
		if (i == 0 || w[i].bucket != w[i - 1].bucket) {
			m->key[k] = w[i].bucket;
			m->kstart[k] = (uint32_t)i;
			k++;
		}
		m->ecls[i] = (uint16_t)w[i].cls;
		m->ew[i] = w[i].w;
	}
	m->kstart[k] = (uint32_t)nw;
	learn_model_index(m, ids, nclass, bias, info);
}

/* The entries of bucket b: [*from, *to), empty when it has none. */
static void
entries_of(const struct learn_model *m, uint32_t b, uint32_t *from, uint32_t *to)
{
	uint32_t t = b >> (LEARN_BITS - LEARN_HI_BITS), lo = m->hi[t], hi = m->hi[t + 1], mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (m->key[mid] < b)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < m->hi[t + 1] && m->key[lo] == b) {
		*from = m->kstart[lo];
		*to = m->kstart[lo + 1];
	} else {
		*from = *to = 0;
	}
}

void
learn_free(struct learn_model *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nclass; i++)
		free(m->id[i]);
	free(m->id);
	free(m->bias);
	free(m->hi);
	free(m->key);
	free(m->kstart);
	free(m->ecls);
	free(m->ew);
	free(m->by_bias);
	free(m->sig_bias);
	free(m->mem);
	free(m->prefixed);
	smap_free(&m->first);
	free(m);
}

size_t
learn_nclass(const struct learn_model *m)
{
	return m->nclass;
}

const char *
learn_class_id(const struct learn_model *m, uint32_t c)
{
	return c < m->nclass ? m->id[c] : "?";
}

void
learn_model_info(const struct learn_model *m, struct learn_info *out)
{
	*out = m->info;
}

/* --- scoring ------------------------------------------------------------ */

static double
sigmoid(double s)
{
	return 1.0 / (1.0 + exp(-s));
}

void
learn_scratch_free(struct learn_scratch *sc)
{
	free(sc->score);
	free(sc->stamp);
	free(sc->touched);
	memset(sc, 0, sizeof(*sc));
}

/* Class c's score, starting from its bias the first time this message. */
static double *
score_of(const struct learn_model *m, struct learn_scratch *sc, uint32_t c)
{
	if (sc->stamp[c] != sc->gen) {
		sc->stamp[c] = sc->gen;
		sc->score[c] = m->bias[c];
		sc->touched[sc->ntouched++] = c;
	}
	return &sc->score[c];
}

/* Puts class c with probability p among the best in out, if it belongs. */
static void
top_add(struct learn_pred *out, uint32_t c, double p)
{
	size_t k;

	for (k = out->ntop; k > 0 && out->ptop[k - 1] < p; k--)
		if (k < LEARN_TOP) {
			out->top[k] = out->top[k - 1];
			out->ptop[k] = out->ptop[k - 1];
		}
	if (k < LEARN_TOP) {
		out->top[k] = c;
		out->ptop[k] = p;
		if (out->ntop < LEARN_TOP)
			out->ntop++;
	}
}

void
learn_predict(const struct learn_model *m, const uint32_t *feat, size_t nfeat, int all,
              struct learn_scratch *sc, struct learn_pred *out)
{
	double gw = m->p.gram_weight, v = norm_of(feat, nfeat, gw), z;
	uint32_t e, end, c;
	size_t i, k, shown;

	if (sc->cap < m->nclass) {
		sc->score = xreallocarray(sc->score, m->nclass, sizeof(*sc->score));
		sc->stamp = xreallocarray(sc->stamp, m->nclass, sizeof(*sc->stamp));
		sc->touched = xreallocarray(sc->touched, m->nclass, sizeof(*sc->touched));
		memset(sc->stamp, 0, m->nclass * sizeof(*sc->stamp));
		sc->cap = m->nclass;
		sc->gen = 0;
	}
	if (++sc->gen == 0) {
		memset(sc->stamp, 0, sc->cap * sizeof(*sc->stamp));
		sc->gen = 1;
	}
	sc->ntouched = 0;
	for (c = 0; c < LEARN_C_NULL; c++)
		score_of(m, sc, c);
	for (i = 0; i < nfeat; i++) {
		entries_of(m, feat[i], &e, &end);
		/* Classes ascending: the first tier's come first. */
		for (; e < end && (all || m->ecls[e] < LEARN_C_NULL); e++)
			*score_of(m, sc, m->ecls[e]) += value_of(feat[i], v, gw) * m->ew[e];
	}
	memset(out, 0, sizeof(*out));
	/* The first tier: the safety binary, and either safety class claiming it. */
	out->p_emergency = sigmoid(sc->score[LEARN_C_EMERGENCY]);
	out->p_crisis = sigmoid(sc->score[LEARN_C_CRISIS]);
	out->p_safety = (sigmoid(sc->score[LEARN_C_SAFETY]) + out->p_emergency + out->p_crisis -
	                 out->p_emergency * out->p_crisis) /
	                2;
	if (!all)
		return;
	/* The second tier, normalised: every class's share at its bias, corrected
	 * where a feature touched it. */
	z = m->sig_bias_sum;
	for (k = 0; k < sc->ntouched; k++)
		if ((c = sc->touched[k]) >= LEARN_C_NULL) {
			/* The score makes way for its sigmoid: only that is needed from here. */
			sc->score[c] = sigmoid(sc->score[c]);
			z += sc->score[c] - m->sig_bias[c];
		}
	if (!(z > 0))
		z = 1;
	for (k = 0; k < sc->ntouched; k++)
		if ((c = sc->touched[k]) >= LEARN_C_NULL && (out->ntop < LEARN_TOP ||
		                                              sc->score[c] / z > out->ptop[LEARN_TOP - 1]))
			top_add(out, c, sc->score[c] / z);
	/* The untouched classes most likely by their bias alone. */
	for (k = 0, shown = 0; k < m->nclass && shown < LEARN_TOP; k++) {
		c = m->by_bias[k];
		if (c < LEARN_C_NULL || sc->stamp[c] == sc->gen)
			continue;
		top_add(out, c, m->sig_bias[c] / z);
		shown++;
	}
}

void
learn_read(const struct learn_model *m, const struct text_norm *n, const char *const *bot_names,
           int all, struct learn_scratch *sc, uint32_t *feat, struct learn_pred *out)
{
	struct learn_pred wp;
	size_t nf, nw, from;
	double whole, p;

	nf = learn_features(m, n, bot_names, feat, NULL, NULL, NULL);
	learn_predict(m, feat, nf, all, sc, out);
	whole = out->p_safety;
	if ((nw = learn_words(n)) <= LEARN_WINDOW_MIN)
		return;
	/* A long post: the danger may be one sentence of many, and the whole
	 * message's features dilute it. Each window is read as a message too. */
	for (from = 0;; from += LEARN_WINDOW / 2) {
		nf = learn_features_window(m, n, bot_names, from, LEARN_WINDOW, feat, NULL, NULL, NULL);
		learn_predict(m, feat, nf, 0, sc, &wp);
		/* Halfway between the whole post and its most alarming window: one
		 * alarming sentence counts, but not as much as a short message of it. */
		p = (whole + wp.p_safety) / 2;
		if (p > out->p_safety) {
			out->p_safety = p;
			out->p_emergency = wp.p_emergency;
			out->p_crisis = wp.p_crisis;
		}
		if (from + LEARN_WINDOW >= nw)
			break;
	}
}

struct contrib {
	const char *name;
	double w;
};

static int
cmp_contrib(const void *a, const void *b)
{
	double x = ((const struct contrib *)a)->w, y = ((const struct contrib *)b)->w;

	return x > y ? -1 : x < y;
}

void
learn_explain(const struct learn_model *m, const struct text_norm *n,
              const char *const *bot_names, uint32_t c, size_t max, struct buf *out)
{
	uint32_t *feat = xcalloc(LEARN_MAX_FEATURES, sizeof(*feat));
	uint32_t *nb = xcalloc(LEARN_MAX_FEATURES, sizeof(*nb));
	struct contrib *ct = xcalloc(LEARN_MAX_FEATURES, sizeof(*ct));
	struct buf names;
	size_t nf, nn = 0, i, k, nct = 0;
	const char *p;
	double v;
	uint32_t e, end;

	buf_init(&names);
	nf = learn_features(m, n, bot_names, feat, &names, nb, &nn);
	v = norm_of(feat, nf, m->p.gram_weight);
	for (i = 0, p = names.data; i < nn && p; i++, p += strlen(p) + 1) {
		/* A bucket counts once, under the first name that reached it. */
		for (k = 0; k < i; k++)
			if (nb[k] == nb[i])
				break;
		if (k < i)
			continue;
		entries_of(m, nb[i], &e, &end);
		for (; e < end; e++)
			if (m->ecls[e] == c && m->ew[e] > 0)
				ct[nct++] =
				    (struct contrib){p, value_of(nb[i], v, m->p.gram_weight) * m->ew[e]};
	}
	/* The grams of one word are one entry. */
	for (i = 0; i < nct; i++)
		for (k = i + 1; k < nct; k++)
			if (ct[k].name != NULL && ct[i].name != NULL && strcmp(ct[k].name, ct[i].name) == 0) {
				ct[i].w += ct[k].w;
				ct[k].name = NULL;
			}
	for (i = 0, k = 0; i < nct; i++)
		if (ct[i].name != NULL)
			ct[k++] = ct[i];
	nct = k;
	qsort(ct, nct, sizeof(*ct), cmp_contrib);
	for (i = 0; i < nct && i < max; i++)
		buf_printf(out, "%s\"%s\" +%.2f", i ? ", " : "", ct[i].name, ct[i].w);
	if (nct == 0)
		buf_puts(out, "(no feature for it: its prior alone)");
	buf_free(&names);
	free(ct);
	free(nb);
	free(feat);
}

/* --- the file format ------------------------------------------------------ */

#define LEARN_MAGIC   "faqbot-model\n"
#define LEARN_VERSION 4
#define LEARN_MAX_ID  256 /* bytes of a class id in a model file */
/* No weight or bias of a trained model comes near this (C = 128 gives tens at
 * most); a file with larger ones is damaged, and they could add up to
 * infinities. */
#define LEARN_MAX_WEIGHT 1e4f

static void
put_u32(struct buf *b, uint32_t v)
{
	unsigned char c[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
	                      (unsigned char)(v >> 24)};

	buf_append(b, c, 4);
}

static void
put_u64(struct buf *b, uint64_t v)
{
	put_u32(b, (uint32_t)v);
	put_u32(b, (uint32_t)(v >> 32));
}

static void
put_f64(struct buf *b, double d)
{
	uint64_t v;

	memcpy(&v, &d, sizeof(v));
	put_u64(b, v);
}

static void
put_f32(struct buf *b, float f)
{
	uint32_t v;

	memcpy(&v, &f, sizeof(v));
	put_u32(b, v);
}

void
learn_save(const struct learn_model *m, uint64_t input_hash, struct buf *out)
{
	size_t c, k;
	uint32_t e;

	buf_append(out, LEARN_MAGIC, sizeof(LEARN_MAGIC) - 1);
	put_u32(out, LEARN_VERSION);
	put_u64(out, input_hash);
	put_f64(out, m->p.c);
	put_f64(out, m->p.c_second);
	put_f64(out, m->p.eps);
	put_f64(out, m->p.prune);
	put_f64(out, m->p.prune_neg);
	put_f64(out, m->p.gram_weight);
	put_f64(out, m->p.tol_second);
	put_u32(out, (uint32_t)m->p.threads);
	put_u32(out, (uint32_t)m->p.gram);
	put_u32(out, (uint32_t)m->p.gram_min_word);
	put_u64(out, m->info.rows);
	put_u64(out, m->info.features);
	put_f64(out, m->info.seconds);
	put_u32(out, (uint32_t)m->nclass);
	for (c = 0; c < m->nclass; c++) {
		put_u32(out, (uint32_t)strlen(m->id[c]));
		buf_puts(out, m->id[c]);
	}
	for (c = 0; c < m->nclass; c++)
		put_f32(out, m->bias[c]);
	/* The weights by key: its bucket, how many, then each class and weight. */
	put_u64(out, m->nkey);
	put_u64(out, m->nent);
	for (k = 0; k < m->nkey; k++) {
		put_u32(out, m->key[k]);
		put_u32(out, m->kstart[k + 1] - m->kstart[k]);
		for (e = m->kstart[k]; e < m->kstart[k + 1]; e++) {
			unsigned char cls[2] = {(unsigned char)m->ecls[e],
			                        (unsigned char)(m->ecls[e] >> 8)};

			buf_append(out, cls, 2);
			put_f32(out, m->ew[e]);
		}
	}
	put_u64(out, hash_bytes(out->data, out->len));
}

/* A reader over a model file: every get fails once the data runs out. */
struct reader {
	const unsigned char *p;
	size_t left;
	int bad;
};

static const unsigned char *
take(struct reader *r, size_t n)
{
	const unsigned char *p = r->p;

	if (r->bad || r->left < n) {
		r->bad = 1;
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return p;
}

static uint32_t
get_u32(struct reader *r)
{
	const unsigned char *c = take(r, 4);

	return c ? (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 |
	               (uint32_t)c[3] << 24
	         : 0;
}

static uint64_t
get_u64(struct reader *r)
{
	uint64_t lo = get_u32(r);

	return lo | (uint64_t)get_u32(r) << 32;
}

static double
get_f64(struct reader *r)
{
	uint64_t v = get_u64(r);
	double d;

	memcpy(&d, &v, sizeof(d));
	return d;
}

static float
get_f32(struct reader *r)
{
	uint32_t v = get_u32(r);
	float f;

	memcpy(&f, &v, sizeof(f));
	return f;
}

struct learn_model *
learn_load(const void *data, size_t len, const struct lexicon *lx, uint64_t *input_hash,
           const char **err)
{
	struct reader r = {data, len, 0};
	struct learn_params p;
	struct learn_info info;
	struct learn_model *m = NULL;
	char **ids = NULL;
	float *bias = NULL;
	const unsigned char *magic;
	size_t nclass = 0, c, i;
	uint64_t nw, nkey, k, e, sum;

	*err = NULL;
	if (len < sizeof(LEARN_MAGIC) - 1 + 8 ||
	    memcmp(data, LEARN_MAGIC, sizeof(LEARN_MAGIC) - 1) != 0) {
		*err = "not a faqbot model";
		return NULL;
	}
	{
		struct reader t = {(const unsigned char *)data + len - 8, 8, 0};

		sum = get_u64(&t);
	}
	if (sum != hash_bytes(data, len - 8)) {
		*err = "the model is damaged (checksum)";
		return NULL;
	}
	r.left = len - 8;
	magic = take(&r, sizeof(LEARN_MAGIC) - 1);
	(void)magic;
	if (get_u32(&r) != LEARN_VERSION) {
		*err = "a model of another version";
		return NULL;
	}
	*input_hash = get_u64(&r);
	memset(&p, 0, sizeof(p));
	memset(&info, 0, sizeof(info));
	p.c = get_f64(&r);
	p.c_second = get_f64(&r);
	p.eps = get_f64(&r);
	p.prune = get_f64(&r);
	p.prune_neg = get_f64(&r);
	p.gram_weight = get_f64(&r);
	p.tol_second = get_f64(&r);
	p.threads = (int)get_u32(&r);
	p.gram = (int)get_u32(&r);
	p.gram_min_word = (int)get_u32(&r);
	info.rows = get_u64(&r);
	info.features = get_u64(&r);
	info.seconds = get_f64(&r);
	nclass = get_u32(&r);
	if (r.bad || nclass < LEARN_C_FIRST || nclass > LEARN_MAX_CLASSES || p.gram < 0 ||
	    p.gram > 16 || p.gram_min_word < 0 || p.gram_min_word > 64 ||
	    !(p.gram_weight >= 0 && p.gram_weight <= 16)) {
		*err = "the model's header is out of range";
		return NULL;
	}
	ids = xcalloc(nclass, sizeof(*ids));
	bias = xcalloc(nclass, sizeof(*bias));
	for (c = 0; c < nclass; c++) {
		uint32_t l = get_u32(&r);
		const unsigned char *id = l > 0 && l <= LEARN_MAX_ID ? take(&r, l) : NULL;

		/* Ids are printable ASCII: intent ids and the names of the fixed classes. */
		for (i = 0; id != NULL && i < l; i++)
			if (id[i] < 0x20 || id[i] > 0x7e)
				id = NULL;
		if (id == NULL) {
			*err = "a class id of the model is damaged";
			goto fail;
		}
		ids[c] = xstrndup((const char *)id, l);
	}
	for (c = 0; c < nclass; c++)
		if (!(fabsf(bias[c] = get_f32(&r)) <= LEARN_MAX_WEIGHT))
			r.bad = 1;
	nkey = get_u64(&r);
	nw = get_u64(&r);
	if (r.bad || nkey > r.left / 8 || nw > r.left / 6) {
		*err = "the model's weights are damaged";
		goto fail;
	}
	/* Straight into the model's own arrays: a model is as large as its file. */
	m = learn_model_new(lx, &p);
	m->nkey = (size_t)nkey;
	m->key = xcalloc((size_t)nkey + 1, sizeof(*m->key));
	m->kstart = xcalloc((size_t)nkey + 1, sizeof(*m->kstart));
	m->ecls = xcalloc(nw ? (size_t)nw : 1, sizeof(*m->ecls));
	m->ew = xcalloc(nw ? (size_t)nw : 1, sizeof(*m->ew));
	for (k = 0, i = 0; k < nkey; k++) {
		uint32_t bucket = get_u32(&r), count = get_u32(&r);

		if (r.bad || bucket >= LEARN_BUCKETS || (k > 0 && bucket <= m->key[k - 1]) ||
		    count == 0 || count > nw - i) {
			*err = "the model's index is out of range";
			goto fail;
		}
		m->key[k] = bucket;
		m->kstart[k] = (uint32_t)i;
		for (e = 0; e < count; e++, i++) {
			const unsigned char *cls = take(&r, 2);

			m->ecls[i] = cls ? (uint16_t)(cls[0] | cls[1] << 8) : 0;
			m->ew[i] = get_f32(&r);
			if (r.bad || m->ecls[i] >= nclass || !(fabsf(m->ew[i]) <= LEARN_MAX_WEIGHT) ||
			    (e > 0 && m->ecls[i] <= m->ecls[i - 1])) {
				*err = "a weight of the model is out of range";
				goto fail;
			}
		}
	}
	if (i != nw || r.left != 0) {
		*err = r.left ? "the model has bytes after its end" : "the model's index is short";
		goto fail;
	}
	m->kstart[nkey] = (uint32_t)nw;
	learn_model_index(m, (const char *const *)ids, nclass, bias, &info);
	for (c = 0; c < nclass; c++)
		free(ids[c]);
	free(ids);
	free(bias);
	return m;
fail:
	for (c = 0; ids && c < nclass; c++)
		free(ids[c]);
	free(ids);
	free(bias);
	learn_free(m);
	return NULL;
}

/* --- messages taught as safety ------------------------------------------- */

/* A message a moderator taught as an emergency or a crisis. */
struct near_item {
	char *text;     /* as taught (redacted) */
	uint32_t cls;   /* LEARN_C_EMERGENCY or LEARN_C_CRISIS */
	uint32_t *feat; /* its features, for the model and lexicon below */
	size_t nf;
};

struct learn_near {
	struct near_item *it;
	size_t n;
	const void *for_lx;    /* the lexicon and model the features were made with */
	const void *for_model;
	int fresh;             /* ... and they are made for every message */
};

struct learn_near *
learn_near_new(void)
{
	return xcalloc(1, sizeof(struct learn_near));
}

void
learn_near_free(struct learn_near *nr)
{
	size_t i;

	if (nr == NULL)
		return;
	for (i = 0; i < nr->n; i++) {
		free(nr->it[i].text);
		free(nr->it[i].feat);
	}
	free(nr->it);
	free(nr);
}

void
learn_near_add(struct learn_near *nr, const char *text, uint32_t cls)
{
	size_t i;

	for (i = 0; i < nr->n; i++)
		if (strcmp(nr->it[i].text, text) == 0)
			return;
	if (nr->n >= LEARN_NEAR_MAX) {
		/* The oldest goes: by then a reload has taught the model the rest. */
		free(nr->it[0].text);
		free(nr->it[0].feat);
		memmove(nr->it, nr->it + 1, (nr->n - 1) * sizeof(*nr->it));
		nr->n--;
	}
	nr->it = xreallocarray(nr->it, nr->n + 1, sizeof(*nr->it));
	nr->it[nr->n].text = xstrdup(text);
	nr->it[nr->n].cls = cls;
	nr->it[nr->n].feat = NULL;
	nr->it[nr->n].nf = 0;
	nr->n++;
	nr->fresh = 0; /* its features are made on the next match */
}

void
learn_near_stale(struct learn_near *nr)
{
	nr->fresh = 0;
}

size_t
learn_near_count(const struct learn_near *nr)
{
	return nr ? nr->n : 0;
}

/* Shared features of two sorted sets, over the root of their sizes (cosine). */
static double
overlap(const uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
	size_t both = util_sorted_common(a, na, b, nb);

	return na && nb ? (double)both / sqrt((double)na * (double)nb) : 0;
}

int
learn_near_match(struct learn_near *nr, const struct learn_model *m, const struct lexicon *lx,
                 const char *const *bot_names, const uint32_t *feat, size_t nf, double *sim)
{
	struct text_norm tn;
	uint32_t *tmp;
	size_t i;
	double best = 0, s;
	int cls = -1;

	*sim = 0;
	if (nr == NULL || nr->n == 0 || nf == 0)
		return -1;
	if (!nr->fresh || nr->for_lx != (const void *)lx || nr->for_model != (const void *)m) {
		/* Read the taught messages as messages are read now. */
		text_norm_init(&tn);
		tmp = xcalloc(LEARN_MAX_FEATURES, sizeof(*tmp));
		for (i = 0; i < nr->n; i++) {
			text_normalise(lx, bot_names, nr->it[i].text, strlen(nr->it[i].text), &tn);
			nr->it[i].nf = learn_features(m, &tn, bot_names, tmp, NULL, NULL, NULL);
			free(nr->it[i].feat);
			nr->it[i].feat = xcalloc(nr->it[i].nf ? nr->it[i].nf : 1, sizeof(*tmp));
			memcpy(nr->it[i].feat, tmp, nr->it[i].nf * sizeof(*tmp));
		}
		free(tmp);
		text_norm_free(&tn);
		nr->for_lx = lx;
		nr->for_model = m;
		nr->fresh = 1;
	}
	for (i = 0; i < nr->n; i++) {
		s = overlap(feat, nf, nr->it[i].feat, nr->it[i].nf);
		if (s > best) {
			best = s;
			cls = (int)nr->it[i].cls;
		}
	}
	*sim = best;
	return best >= LEARN_NEAR_SIMILAR ? cls : -1;
}
