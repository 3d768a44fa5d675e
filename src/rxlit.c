/*
 * Necessary literals of a PCRE2 pattern (see rxlit.h).
 *
 * A recursive-descent parser of PCRE2 syntax computes, for every node of
 * the pattern, one of three facts (the algebra of RE2's prefilter):
 *
 *   EXACT  a finite set of strings that holds every string the node can
 *          match (at most RXLIT_MAX_SET strings of at most RXLIT_MAX_LEN
 *          bytes, folded);
 *   NEC    a set of literals one of which occurs in every string the node
 *          can match (every literal at least RXLIT_MIN_LEN bytes long;
 *          a set that would hold a shorter one is useless and becomes ANY);
 *   ANY    nothing is known.
 *
 * Only a superset of what a node matches is ever claimed, so every rule can
 * be checked on its own: concatenation takes the cross product of exact
 * sets while it stays small and otherwise keeps the most selective
 * necessary set of its parts; alternation takes the union; a repetition
 * with a minimum of one keeps what its body requires; anything that may
 * match the empty string gives ANY unless it is a small exact set.
 *
 * Anything unknown or malformed makes rxlit_extract() give up (no set),
 * which only costs speed: the pattern then runs on every message. The
 * parser bounds its recursion depth and its work, so no byte string can
 * crash it or make it slow.
 */
#include "rxlit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define RXLIT_CAP        (2 * RXLIT_MAX_SET) /* room for a union before it is reduced */
#define RXLIT_CLASS_MAX  4                   /* a class of more characters is "any one" */
#define RXLIT_MAX_DEPTH  200                 /* nested groups before giving up */
#define RXLIT_MAX_WORK   (1UL << 26)         /* byte operations before giving up */
#define RXLIT_MAX_REPEAT 65535               /* PCRE2's largest {n,m} */

enum rxlit_kind {
	RXLIT_ANY,   /* no constraint */
	RXLIT_EXACT, /* the node matches only strings of the set */
	RXLIT_NEC,   /* every match contains one string of the set */
};

/* What is known about one node of the pattern. */
struct rxlit_node {
	enum rxlit_kind kind;             /* which fact; ANY has no strings */
	size_t n;                         /* strings in use */
	unsigned char len[RXLIT_CAP];     /* their lengths */
	char s[RXLIT_CAP][RXLIT_MAX_LEN]; /* their bytes, ASCII folded, not terminated */
	struct rxlit_node *next;          /* free list link */
	struct rxlit_node *all;           /* every node of the parse, to free them */
	int isfree;                       /* on the free list */
	int zw;                           /* NEC of a positive lookaround: matches "" */
};

/* Option bits that change how the pattern is read. */
enum rxlit_flag {
	RXLIT_FX = 1 << 0, /* (?x): white space and # comments are ignored */
};

/* Parser state; p walks the pattern. */
struct rxlit_parser {
	const unsigned char *p;   /* next byte */
	const unsigned char *end; /* end of the pattern */
	int flags;                /* enum rxlit_flag in force */
	int quote;                /* inside \Q...\E */
	int nlverb;               /* a (*CR)-style newline verb was seen */
	int depth;                /* nested alternations */
	int fail;                 /* gave up: no useful set */
	unsigned long work;       /* work done, bounded by RXLIT_MAX_WORK */
	struct rxlit_node *free;  /* nodes to reuse */
	struct rxlit_node *all;   /* every node allocated, freed by rxlit_extract */
};

/* The state of a concatenation being read, item by item. */
struct rxlit_cat {
	struct rxlit_node *cur;  /* exact set of the items since the last split */
	struct rxlit_node *best; /* most selective necessary set so far, or NULL */
	int split;               /* cur no longer covers the whole concatenation */
	int zwbest;              /* a lookaround offered a necessary set */
};

/* Marks the parse as failed; returns NULL for the caller's convenience. */
static struct rxlit_node *
rxlit_giveup(struct rxlit_parser *ps)
{
	ps->fail = 1;
	return NULL;
}

/* Charges n units of work; gives up beyond the cap. Returns 0 or -1. */
static int
rxlit_charge(struct rxlit_parser *ps, unsigned long n)
{
	ps->work += n;
	if (ps->work > RXLIT_MAX_WORK) {
		ps->fail = 1;
		return -1;
	}
	return 0;
}

/*
 * Returns a node of the given kind with no strings. Never NULL. Nodes are
 * recycled through a free list and all released at the end of the parse,
 * so an error path cannot leak one.
 */
static struct rxlit_node *
rxlit_node_new(struct rxlit_parser *ps, enum rxlit_kind kind)
{
	struct rxlit_node *nd = ps->free;

	if (nd != NULL) {
		ps->free = nd->next;
	} else {
		nd = xmalloc(sizeof(*nd));
		nd->all = ps->all;
		ps->all = nd;
	}
	nd->kind = kind;
	nd->n = 0;
	nd->next = NULL;
	nd->isfree = 0;
	nd->zw = 0;
	return nd;
}

/* Puts a node back for reuse; NULL is ignored. */
static void
rxlit_node_free(struct rxlit_parser *ps, struct rxlit_node *nd)
{
	if (nd == NULL)
		return;
	if (nd->isfree) {
		/* cannot happen; if it did, the result could not be trusted */
		ps->fail = 1;
		return;
	}
	nd->isfree = 1;
	nd->next = ps->free;
	ps->free = nd;
}

/* Returns the exact set {""}: a node that matches only the empty string. */
static struct rxlit_node *
rxlit_node_empty(struct rxlit_parser *ps)
{
	struct rxlit_node *nd = rxlit_node_new(ps, RXLIT_EXACT);

	nd->n = 1;
	nd->len[0] = 0;
	return nd;
}

/*
 * Adds s (len <= RXLIT_MAX_LEN bytes) to the strings of nd unless it is
 * there already. Returns 0, or -1 when the node is full.
 */
static int
rxlit_node_add(struct rxlit_parser *ps, struct rxlit_node *nd, const char *s, size_t len)
{
	size_t i;

	(void)rxlit_charge(ps, nd->n + len);
	for (i = 0; i < nd->n; i++) {
		if (nd->len[i] == len && memcmp(nd->s[i], s, len) == 0)
			return 0;
	}
	if (nd->n == RXLIT_CAP)
		return -1;
	memcpy(nd->s[nd->n], s, len);
	nd->len[nd->n++] = (unsigned char)len;
	return 0;
}

/* Returns 1 when the bytes n (nlen) occur in h (hlen). */
static int
rxlit_contains(const char *h, size_t hlen, const char *n, size_t nlen)
{
	size_t i;

	if (nlen > hlen)
		return 0;
	for (i = 0; i + nlen <= hlen; i++) {
		if (memcmp(h + i, n, nlen) == 0)
			return 1;
	}
	return 0;
}

/* Removes string i of nd, keeping the order of the others. */
static void
rxlit_node_remove(struct rxlit_node *nd, size_t i)
{
	for (; i + 1 < nd->n; i++) {
		nd->len[i] = nd->len[i + 1];
		memcpy(nd->s[i], nd->s[i + 1], nd->len[i]);
	}
	nd->n--;
}

/*
 * Simplifies a necessary set: duplicates go, and so does any literal that
 * contains another one (a subject holding it holds the shorter one too).
 */
static void
rxlit_simplify(struct rxlit_parser *ps, struct rxlit_node *nd)
{
	size_t i, j;

	for (i = 0; i < nd->n;) {
		int drop = 0;

		for (j = 0; j < nd->n && !drop; j++) {
			if (j == i || nd->len[j] > nd->len[i])
				continue;
			(void)rxlit_charge(ps, (unsigned long)(nd->len[i] - nd->len[j] + 1) *
			                           (nd->len[j] + 1));
			/* of two equal strings, the later one goes */
			if (nd->len[j] == nd->len[i] && j > i)
				continue;
			drop = rxlit_contains(nd->s[i], nd->len[i], nd->s[j], nd->len[j]);
		}
		if (drop)
			rxlit_node_remove(nd, i);
		else
			i++;
	}
}

/*
 * Returns the length of string i of nd cut to at most cut bytes, backed
 * off to a UTF-8 character boundary so that the caller can still fold it.
 */
static size_t
rxlit_cut_len(const struct rxlit_node *nd, size_t i, size_t cut)
{
	size_t l = nd->len[i] < cut ? nd->len[i] : cut;

	while (l > 0 && l < nd->len[i] && ((unsigned char)nd->s[i][l] & 0xc0) == 0x80)
		l--;
	return l;
}

/*
 * Returns how many distinct literals nd would hold with every one cut to
 * cut bytes, or SIZE_MAX when one would get shorter than RXLIT_MIN_LEN.
 */
static size_t
rxlit_count_cut(struct rxlit_parser *ps, const struct rxlit_node *nd, size_t cut)
{
	size_t i, j, li, n = 0;

	for (i = 0; i < nd->n; i++) {
		if ((li = rxlit_cut_len(nd, i, cut)) < RXLIT_MIN_LEN)
			return SIZE_MAX;
		for (j = 0; j < i; j++) {
			(void)rxlit_charge(ps, li);
			if (rxlit_cut_len(nd, j, cut) == li && memcmp(nd->s[i], nd->s[j], li) == 0)
				break;
		}
		n += j == i;
	}
	return n;
}

/*
 * Turns nd into a necessary set in place: an exact set is one already,
 * as every match is one of its strings. A set holding a literal shorter
 * than RXLIT_MIN_LEN (the empty string included) is useless and becomes
 * ANY, and so does a set too large to reduce to RXLIT_MAX_SET literals.
 */
static void
rxlit_to_nec(struct rxlit_parser *ps, struct rxlit_node *nd)
{
	size_t i, cut, maxlen = 0;

	if (nd->kind == RXLIT_ANY)
		return;
	nd->kind = RXLIT_NEC;
	for (i = 0; i < nd->n; i++) {
		if (nd->len[i] < RXLIT_MIN_LEN)
			goto any;
		maxlen = nd->len[i] > maxlen ? nd->len[i] : maxlen;
	}
	if (nd->n == 0)
		goto any;
	rxlit_simplify(ps, nd);
	if (nd->n <= RXLIT_MAX_SET)
		return;
	/*
	 * Too many literals: cut them all to the longest prefix length at
	 * which few enough remain (a prefix of a necessary literal is
	 * necessary too).
	 */
	for (cut = maxlen - 1; cut >= RXLIT_MIN_LEN; cut--) {
		if (rxlit_count_cut(ps, nd, cut) <= RXLIT_MAX_SET)
			break;
	}
	if (cut < RXLIT_MIN_LEN)
		goto any;
	for (i = 0; i < nd->n; i++)
		nd->len[i] = (unsigned char)rxlit_cut_len(nd, i, cut);
	rxlit_simplify(ps, nd);
	if (nd->n <= RXLIT_MAX_SET)
		return;
any:
	nd->kind = RXLIT_ANY;
	nd->n = 0;
}

/*
 * Returns the exact cross product of the exact sets a and b (every string
 * of a followed by every string of b), or NULL when it would hold more
 * than RXLIT_MAX_SET strings or one longer than RXLIT_MAX_LEN. a and b are
 * left alone.
 */
static struct rxlit_node *
rxlit_cross(struct rxlit_parser *ps, const struct rxlit_node *a, const struct rxlit_node *b)
{
	struct rxlit_node *r;
	char tmp[RXLIT_MAX_LEN];
	size_t i, j;

	if (a->n * b->n > RXLIT_MAX_SET)
		return NULL;
	for (i = 0; i < a->n; i++) {
		for (j = 0; j < b->n; j++) {
			if ((size_t)a->len[i] + b->len[j] > RXLIT_MAX_LEN)
				return NULL;
		}
	}
	r = rxlit_node_new(ps, RXLIT_EXACT);
	for (i = 0; i < a->n; i++) {
		for (j = 0; j < b->n; j++) {
			memcpy(tmp, a->s[i], a->len[i]);
			memcpy(tmp + a->len[i], b->s[j], b->len[j]);
			(void)rxlit_node_add(ps, r, tmp, (size_t)a->len[i] + b->len[j]);
		}
	}
	return r;
}

/*
 * Returns 1 when the necessary set a is more selective than b: its
 * shortest literal is longer, or as long with fewer literals.
 */
static int
rxlit_better(const struct rxlit_node *a, const struct rxlit_node *b)
{
	size_t i, mina = SIZE_MAX, minb = SIZE_MAX;

	for (i = 0; i < a->n; i++)
		mina = a->len[i] < mina ? a->len[i] : mina;
	for (i = 0; i < b->n; i++)
		minb = b->len[i] < minb ? b->len[i] : minb;
	if (mina != minb)
		return mina > minb;
	return a->n < b->n;
}

/*
 * Returns the alternation of a and b (both consumed): the union of two
 * exact sets while it is small, else the union of their necessary sets.
 */
static struct rxlit_node *
rxlit_alt(struct rxlit_parser *ps, struct rxlit_node *a, struct rxlit_node *b)
{
	size_t i;

	/* zero-width only if both are: "(?:(?=abc)|wxyz)" may consume "wxyz" */
	a->zw = a->zw && b->zw;
	if (a->kind == RXLIT_ANY || b->kind == RXLIT_ANY)
		goto any;
	if (a->kind != RXLIT_EXACT || b->kind != RXLIT_EXACT) {
		rxlit_to_nec(ps, a);
		rxlit_to_nec(ps, b);
		if (a->kind == RXLIT_ANY || b->kind == RXLIT_ANY)
			goto any;
	}
	/* both sets hold at most RXLIT_MAX_SET strings, so they fit in RXLIT_CAP */
	for (i = 0; i < b->n; i++)
		(void)rxlit_node_add(ps, a, b->s[i], b->len[i]);
	rxlit_node_free(ps, b);
	if (a->kind == RXLIT_NEC || a->n > RXLIT_MAX_SET)
		rxlit_to_nec(ps, a);
	return a;
any:
	rxlit_node_free(ps, b);
	a->kind = RXLIT_ANY;
	a->n = 0;
	return a;
}

/* Returns x^k, the exact set of k strings of x in a row, or NULL when too large. */
static struct rxlit_node *
rxlit_power(struct rxlit_parser *ps, const struct rxlit_node *x, long k)
{
	struct rxlit_node *r = rxlit_node_empty(ps), *t;

	for (; k > 0; k--) {
		t = rxlit_cross(ps, r, x);
		rxlit_node_free(ps, r);
		if (t == NULL || ps->fail) {
			rxlit_node_free(ps, t);
			return NULL;
		}
		r = t;
	}
	return r;
}

/*
 * Returns what is known of x repeated min to max times (max -1: no limit);
 * x is consumed. A small exact set stays exact ({0,1}, {2}, {1,3}); with a
 * minimum of one or more, the first min repetitions are necessary; a node
 * that may repeat zero times requires nothing.
 */
static struct rxlit_node *
rxlit_repeat(struct rxlit_parser *ps, struct rxlit_node *x, long min, long max)
{
	struct rxlit_node *acc, *cur, *t;
	long k;
	size_t i;

	if (x->kind == RXLIT_ANY)
		return x;
	if (x->kind == RXLIT_NEC) {
		if (min >= 1)
			return x;
		goto any;
	}
	if (x->n == 1 && x->len[0] == 0)
		return x; /* {""} repeated is {""} */

	/*
	 * Every string of x^(k+1) is longer than the longest of x^k or there
	 * are more of them, so the loops end within RXLIT_MAX_LEN steps.
	 */
	if (max >= 0 && (cur = rxlit_power(ps, x, min)) != NULL) {
		acc = rxlit_node_new(ps, RXLIT_EXACT);
		for (k = min;; k++) {
			for (i = 0; i < cur->n; i++)
				(void)rxlit_node_add(ps, acc, cur->s[i], cur->len[i]);
			if (acc->n > RXLIT_MAX_SET || k == max || ps->fail)
				break;
			t = rxlit_cross(ps, cur, x);
			rxlit_node_free(ps, cur);
			if ((cur = t) == NULL)
				break;
		}
		rxlit_node_free(ps, cur);
		if (k == max && acc->n <= RXLIT_MAX_SET && !ps->fail) {
			rxlit_node_free(ps, x);
			return acc;
		}
		rxlit_node_free(ps, acc);
	}
	if (min == 0)
		goto any;
	if ((t = rxlit_power(ps, x, min)) != NULL) {
		rxlit_to_nec(ps, t);
		if (t->kind == RXLIT_NEC) {
			rxlit_node_free(ps, x);
			return t;
		}
		rxlit_node_free(ps, t);
	}
	rxlit_to_nec(ps, x);
	return x;
any:
	x->kind = RXLIT_ANY;
	x->n = 0;
	return x;
}

/* Starts reading a concatenation. */
static void
rxlit_cat_init(struct rxlit_parser *ps, struct rxlit_cat *cat)
{
	cat->cur = rxlit_node_empty(ps);
	cat->best = NULL;
	cat->split = 0;
	cat->zwbest = 0;
}

/* Offers nd (consumed) as a necessary set of the concatenation. */
static void
rxlit_cat_offer(struct rxlit_parser *ps, struct rxlit_cat *cat, struct rxlit_node *nd)
{
	rxlit_to_nec(ps, nd);
	if (nd->kind == RXLIT_ANY) {
		rxlit_node_free(ps, nd);
	} else if (cat->best == NULL || rxlit_better(nd, cat->best)) {
		rxlit_node_free(ps, cat->best);
		cat->best = nd;
	} else {
		rxlit_node_free(ps, nd);
	}
}

/* Appends the item nd (consumed) to the concatenation. */
static void
rxlit_cat_add(struct rxlit_parser *ps, struct rxlit_cat *cat, struct rxlit_node *nd)
{
	struct rxlit_node *t;

	/*
	 * A positive lookaround consumes nothing: what it requires is offered,
	 * and the exact strings of the items around it still join up
	 * ("abc(?=xyz)def" is exact "abcdef").
	 */
	if (nd->kind == RXLIT_NEC && nd->zw) {
		cat->zwbest = 1;
		rxlit_cat_offer(ps, cat, nd);
		return;
	}
	if (nd->kind == RXLIT_EXACT) {
		if ((t = rxlit_cross(ps, cat->cur, nd)) != NULL) {
			rxlit_node_free(ps, cat->cur);
			rxlit_node_free(ps, nd);
			cat->cur = t;
			return;
		}
		/* too large: what was gathered so far is one necessary piece */
		rxlit_cat_offer(ps, cat, cat->cur);
		cat->cur = nd;
		cat->split = 1;
		return;
	}
	rxlit_cat_offer(ps, cat, cat->cur);
	cat->cur = rxlit_node_empty(ps);
	cat->split = 1;
	if (nd->kind == RXLIT_NEC)
		rxlit_cat_offer(ps, cat, nd);
	else
		rxlit_node_free(ps, nd);
}

/* Ends the concatenation; returns what is known of it. */
static struct rxlit_node *
rxlit_cat_finish(struct rxlit_parser *ps, struct rxlit_cat *cat)
{
	struct rxlit_node *nd;
	int only_zw;

	if (!cat->split && !cat->zwbest)
		return cat->cur;
	/* Nothing but lookarounds (and other empty items): zero-width still. */
	only_zw = !cat->split && cat->cur->kind == RXLIT_EXACT && cat->cur->n == 1 &&
	          cat->cur->len[0] == 0;
	rxlit_cat_offer(ps, cat, cat->cur);
	nd = cat->best != NULL ? cat->best : rxlit_node_new(ps, RXLIT_ANY);
	nd->zw = only_zw && nd->kind == RXLIT_NEC;
	return nd;
}

/*
 * Decodes one UTF-8 character at p (before end) into *cp. Returns its
 * length, or 0 when the bytes are not valid UTF-8 (PCRE2_UTF rejects
 * such a pattern).
 */
static size_t
rxlit_utf8_decode(const unsigned char *p, const unsigned char *end, uint32_t *cp)
{
	size_t n, i;
	uint32_t c = p[0];

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		c &= 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		c &= 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		c &= 0x07;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/* Writes code point cp (valid) as UTF-8 into out, ASCII folded; returns the length. */
static size_t
rxlit_utf8_encode(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)(cp >= 'A' && cp <= 'Z' ? cp + ('a' - 'A') : cp);
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Returns 1 when cp is a code point PCRE2 accepts in UTF mode. */
static int
rxlit_valid_cp(uint32_t cp)
{
	return cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
}

/* Returns the exact set holding only the character cp. */
static struct rxlit_node *
rxlit_node_char(struct rxlit_parser *ps, uint32_t cp)
{
	struct rxlit_node *nd = rxlit_node_new(ps, RXLIT_EXACT);

	nd->len[0] = (unsigned char)rxlit_utf8_encode(cp, nd->s[0]);
	nd->n = 1;
	return nd;
}

/* Reads one literal UTF-8 character into *cp. Returns 0, or -1 (gave up). */
static int
rxlit_literal(struct rxlit_parser *ps, uint32_t *cp)
{
	size_t n = rxlit_utf8_decode(ps->p, ps->end, cp);

	if (n == 0) {
		ps->fail = 1;
		return -1;
	}
	ps->p += n;
	return 0;
}

static int
rxlit_is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
rxlit_is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/*
 * Reads digits of the given base (8 or 16) at ps->p, at most max of them
 * (0: up to a closing brace, which is consumed). Returns 0 with *cp set,
 * or -1 when the number is malformed or not a code point.
 */
static int
rxlit_number(struct rxlit_parser *ps, int base, int max, uint32_t *cp)
{
	uint32_t v = 0;
	int d, n = 0;

	while (ps->p < ps->end && (max == 0 || n < max)) {
		d = util_hex_value(*ps->p);
		if (d < 0 || d >= base)
			break;
		if (v > 0x10ffff)
			return -1;
		v = v * (uint32_t)base + (uint32_t)d;
		ps->p++;
		n++;
	}
	if (max == 0) {
		if (n == 0 || ps->p >= ps->end || *ps->p != '}')
			return -1;
		ps->p++;
	}
	if (!rxlit_valid_cp(v))
		return -1;
	*cp = v;
	return 0;
}

/*
 * Skips a name or number up to and including the closing byte close; only
 * name characters (letters, digits, '_', '+', '-', non-ASCII) may come
 * before it, and at least one. Returns 0 or -1.
 */
static int
rxlit_skip_name(struct rxlit_parser *ps, int close)
{
	const unsigned char *q = ps->p;

	while (q < ps->end && *q != close) {
		if (!(rxlit_is_alpha(*q) || rxlit_is_digit(*q) || *q == '_' || *q == '+' ||
		      *q == '-' || *q >= 0x80))
			return -1;
		q++;
	}
	if (q == ps->end || q == ps->p)
		return -1;
	ps->p = q + 1;
	return 0;
}

/* What an escape sequence stands for. */
enum rxlit_esc {
	RXLIT_ESC_FAIL,  /* malformed or not understood: give up */
	RXLIT_ESC_CHAR,  /* one literal character */
	RXLIT_ESC_CLASS, /* something of unknown content (\d, \p{..}, a back-reference) */
	RXLIT_ESC_ZW,    /* zero-width (\b, \A, \K) */
};

/*
 * Reads the escape whose backslash is just behind ps->p. In a class
 * (in_class) \b is a backspace and references are not allowed. Returns
 * what it stands for, with the character in *cp for RXLIT_ESC_CHAR.
 */
static enum rxlit_esc
rxlit_escape(struct rxlit_parser *ps, int in_class, uint32_t *cp)
{
	int c;

	if (ps->p >= ps->end)
		return RXLIT_ESC_FAIL;
	c = *ps->p;
	if (c >= 0x80)
		return rxlit_literal(ps, cp) == 0 ? RXLIT_ESC_CHAR : RXLIT_ESC_FAIL;
	ps->p++;
	if (!rxlit_is_alpha(c) && !rxlit_is_digit(c)) {
		*cp = (uint32_t)c;
		return RXLIT_ESC_CHAR;
	}
	switch (c) {
	case 'a':
		*cp = 0x07;
		return RXLIT_ESC_CHAR;
	case 'e':
		*cp = 0x1b;
		return RXLIT_ESC_CHAR;
	case 'f':
		*cp = 0x0c;
		return RXLIT_ESC_CHAR;
	case 'n':
		*cp = 0x0a;
		return RXLIT_ESC_CHAR;
	case 'r':
		*cp = 0x0d;
		return RXLIT_ESC_CHAR;
	case 't':
		*cp = 0x09;
		return RXLIT_ESC_CHAR;
	case '0':
		/* \0 and up to two more octal digits */
		return rxlit_number(ps, 8, 2, cp) == 0 ? RXLIT_ESC_CHAR : RXLIT_ESC_FAIL;
	case 'o':
		if (ps->p >= ps->end || *ps->p != '{')
			return RXLIT_ESC_FAIL;
		ps->p++;
		return rxlit_number(ps, 8, 0, cp) == 0 ? RXLIT_ESC_CHAR : RXLIT_ESC_FAIL;
	case 'x':
		if (ps->p < ps->end && *ps->p == '{') {
			ps->p++;
			return rxlit_number(ps, 16, 0, cp) == 0 ? RXLIT_ESC_CHAR : RXLIT_ESC_FAIL;
		}
		/* a bare \x (a NUL) is rare enough not to bother with */
		if (ps->p >= ps->end || util_hex_value(*ps->p) < 0)
			return RXLIT_ESC_FAIL;
		return rxlit_number(ps, 16, 2, cp) == 0 ? RXLIT_ESC_CHAR : RXLIT_ESC_FAIL;
	case 'c':
		if (ps->p >= ps->end || *ps->p < 0x20 || *ps->p > 0x7e)
			return RXLIT_ESC_FAIL;
		c = *ps->p++;
		if (c >= 'a' && c <= 'z')
			c -= 'a' - 'A';
		*cp = (uint32_t)c ^ 0x40;
		return RXLIT_ESC_CHAR;
	case 'd':
	case 'D':
	case 's':
	case 'S':
	case 'w':
	case 'W':
	case 'h':
	case 'H':
	case 'v':
	case 'V':
		return RXLIT_ESC_CLASS;
	case 'p':
	case 'P':
		if (ps->p < ps->end && *ps->p == '{') {
			const unsigned char *q = ps->p + 1;

			while (q < ps->end && *q != '}' && *q != '\\' && q - ps->p < 64)
				q++;
			if (q >= ps->end || *q != '}')
				return RXLIT_ESC_FAIL;
			ps->p = q + 1;
			return RXLIT_ESC_CLASS;
		}
		if (ps->p >= ps->end || !rxlit_is_alpha(*ps->p))
			return RXLIT_ESC_FAIL;
		ps->p++;
		return RXLIT_ESC_CLASS;
	}
	if (in_class) {
		/* \b is a backspace; octal digits and the rest are not worth it */
		if (c == 'b') {
			*cp = 0x08;
			return RXLIT_ESC_CHAR;
		}
		return RXLIT_ESC_FAIL;
	}
	switch (c) {
	case 'b':
	case 'B':
	case 'A':
	case 'z':
	case 'Z':
	case 'G':
	case 'K':
		return RXLIT_ESC_ZW;
	case 'R':
	case 'X':
	case 'C':
		return RXLIT_ESC_CLASS;
	case 'N':
		/* \N{U+hhhh} is a character, but rare */
		return ps->p < ps->end && *ps->p == '{' ? RXLIT_ESC_FAIL : RXLIT_ESC_CLASS;
	case 'g':
		/* \g{n} \g{-n} \g{name} \gn \g-n \g<name> \g'name' */
		if (ps->p >= ps->end)
			return RXLIT_ESC_FAIL;
		if (*ps->p == '{' || *ps->p == '<' || *ps->p == '\'') {
			int close = *ps->p == '{' ? '}' : *ps->p == '<' ? '>' : '\'';

			ps->p++;
			return rxlit_skip_name(ps, close) == 0 ? RXLIT_ESC_CLASS : RXLIT_ESC_FAIL;
		}
		if (*ps->p == '+' || *ps->p == '-')
			ps->p++;
		if (ps->p >= ps->end || !rxlit_is_digit(*ps->p))
			return RXLIT_ESC_FAIL;
		while (ps->p < ps->end && rxlit_is_digit(*ps->p))
			ps->p++;
		return RXLIT_ESC_CLASS;
	case 'k':
		/* \k<name> \k'name' \k{name} */
		if (ps->p < ps->end && (*ps->p == '{' || *ps->p == '<' || *ps->p == '\'')) {
			int close = *ps->p == '{' ? '}' : *ps->p == '<' ? '>' : '\'';

			ps->p++;
			return rxlit_skip_name(ps, close) == 0 ? RXLIT_ESC_CLASS : RXLIT_ESC_FAIL;
		}
		return RXLIT_ESC_FAIL;
	}
	if (c >= '1' && c <= '9') {
		/* a back-reference, or an octal character: either way unknown */
		while (ps->p < ps->end && rxlit_is_digit(*ps->p))
			ps->p++;
		return RXLIT_ESC_CLASS;
	}
	return RXLIT_ESC_FAIL;
}

/*
 * Reads a character class; ps->p is just past the '['. A class of at most
 * RXLIT_CLASS_MAX characters (after folding) gives their exact set;
 * anything larger, negated or holding \d-like escapes is "any one
 * character", i.e. ANY.
 */
static struct rxlit_node *
rxlit_class(struct rxlit_parser *ps)
{
	uint32_t set[RXLIT_CLASS_MAX], lo, hi, c;
	size_t n = 0, i;
	int big = 0, first = 1;
	struct rxlit_node *nd;
	enum rxlit_esc e;

	if (ps->p < ps->end && *ps->p == '^') {
		big = 1; /* negated: nearly anything */
		ps->p++;
	}
	for (;; first = 0) {
		if (ps->p >= ps->end)
			return rxlit_giveup(ps);
		c = *ps->p;
		if (c == ']' && !first) {
			ps->p++;
			break;
		}
		if ((ps->flags & RXLIT_FX) && (c == ' ' || c == '\t')) {
			/* literal under (?x), ignored under (?xx), a range end maybe */
			big = 1;
			ps->p++;
			continue;
		}
		if (c == '[' && ps->end - ps->p >= 2 &&
		    (ps->p[1] == ':' || ps->p[1] == '.' || ps->p[1] == '=')) {
			/* [:alpha:], [:^alpha:], [:<:]; collating elements are errors */
			const unsigned char *q = ps->p + 2;

			if (q < ps->end && *q == '^')
				q++;
			while (q < ps->end && (rxlit_is_alpha(*q) || *q == '<' || *q == '>'))
				q++;
			if (ps->p[1] != ':' || ps->end - q < 2 || q[0] != ':' || q[1] != ']')
				return rxlit_giveup(ps);
			ps->p = q + 2;
			big = 1;
			continue;
		}
		/* one character, maybe the start of a range */
		if (c == '\\') {
			ps->p++;
			if ((e = rxlit_escape(ps, 1, &lo)) == RXLIT_ESC_FAIL)
				return rxlit_giveup(ps);
			if (e != RXLIT_ESC_CHAR) {
				big = 1;
				continue;
			}
		} else if (rxlit_literal(ps, &lo) == -1) {
			return NULL;
		}
		hi = lo;
		if (ps->end - ps->p >= 2 && ps->p[0] == '-' && ps->p[1] != ']') {
			ps->p++;
			if (*ps->p == '\\') {
				ps->p++;
				if (rxlit_escape(ps, 1, &hi) != RXLIT_ESC_CHAR)
					return rxlit_giveup(ps);
			} else if (*ps->p == '[') {
				return rxlit_giveup(ps);
			} else if (rxlit_literal(ps, &hi) == -1) {
				return NULL;
			}
			if (hi < lo)
				return rxlit_giveup(ps);
		}
		if (big || hi - lo >= RXLIT_CLASS_MAX) {
			big = 1;
			continue;
		}
		for (c = lo; c <= hi && !big; c++) {
			uint32_t f = c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;

			for (i = 0; i < n && set[i] != f; i++)
				;
			if (i < n)
				continue;
			if (n == RXLIT_CLASS_MAX)
				big = 1;
			else
				set[n++] = f;
		}
	}
	if (big)
		return rxlit_node_new(ps, RXLIT_ANY);
	nd = rxlit_node_new(ps, RXLIT_EXACT);
	for (i = 0; i < n; i++) {
		nd->len[i] = (unsigned char)rxlit_utf8_encode(set[i], nd->s[i]);
		nd->n++;
	}
	return nd;
}

/*
 * Skips what PCRE2 ignores between items: \Q and \E, (?#comments) and,
 * under (?x), white space and # comments. Quantifiers see through all of
 * these, as PCRE2 does ("a(?#c)+" is "a+").
 */
static void
rxlit_skip(struct rxlit_parser *ps)
{
	const unsigned char *q;

	while (ps->p < ps->end && !ps->fail) {
		size_t left = (size_t)(ps->end - ps->p);
		unsigned char c = *ps->p;

		if (ps->quote) {
			if (left >= 2 && c == '\\' && ps->p[1] == 'E') {
				ps->quote = 0;
				ps->p += 2;
				continue;
			}
			return;
		}
		if (left >= 2 && c == '\\' && (ps->p[1] == 'Q' || ps->p[1] == 'E')) {
			ps->quote = ps->p[1] == 'Q';
			ps->p += 2;
			continue;
		}
		if (left >= 3 && c == '(' && ps->p[1] == '?' && ps->p[2] == '#') {
			for (q = ps->p + 3; q < ps->end && *q != ')'; q++)
				;
			if (q == ps->end) {
				ps->fail = 1;
				return;
			}
			ps->p = q + 1;
			continue;
		}
		if (!(ps->flags & RXLIT_FX))
			return;
		if (c == ' ' || (c >= '\t' && c <= '\r')) {
			ps->p++;
			continue;
		}
		/* the other Pattern_White_Space: U+0085, U+200E, U+200F, U+2028, U+2029 */
		if (left >= 2 && c == 0xc2 && ps->p[1] == 0x85) {
			ps->p += 2;
			continue;
		}
		if (left >= 3 && c == 0xe2 && ps->p[1] == 0x80 &&
		    (ps->p[2] == 0x8e || ps->p[2] == 0x8f || ps->p[2] == 0xa8 ||
		     ps->p[2] == 0xa9)) {
			ps->p += 3;
			continue;
		}
		if (c == '#') {
			/*
			 * A comment runs to the end of the line. Which bytes end a
			 * line depends on how PCRE2 was built and on (*CR)-style
			 * verbs; give up unless the answer is plainly "\n".
			 */
			if (ps->nlverb) {
				ps->fail = 1;
				return;
			}
			for (q = ps->p + 1; q < ps->end && *q != '\n'; q++) {
				if (*q == '\r' || *q == '\v' || *q == '\f' || *q == 0 ||
				    (*q == 0xc2 && q + 1 < ps->end && q[1] == 0x85) ||
				    (*q == 0xe2 && ps->end - q >= 3 && q[1] == 0x80 &&
				     (q[2] == 0xa8 || q[2] == 0xa9))) {
					ps->fail = 1;
					return;
				}
			}
			ps->p = q < ps->end ? q + 1 : q;
			continue;
		}
		return;
	}
}

static struct rxlit_node *rxlit_parse_alt(struct rxlit_parser *ps);
static struct rxlit_node *rxlit_atom_group(struct rxlit_parser *ps, int *repeatable);

/*
 * Reads the body of a group up to and including its ')': ps->p is at the
 * start of the body. Options set inside end with the group.
 */
static struct rxlit_node *
rxlit_group_body(struct rxlit_parser *ps)
{
	int flags = ps->flags;
	struct rxlit_node *nd;

	nd = rxlit_parse_alt(ps);
	if (ps->fail)
		goto fail;
	if (ps->p >= ps->end || *ps->p != ')')
		goto fail;
	ps->p++;
	ps->flags = flags;
	return nd;
fail:
	rxlit_node_free(ps, nd);
	return rxlit_giveup(ps);
}

/*
 * Reads a lookaround group. It matches the empty string, so a negative one
 * is exact {""}. A positive one ((?=...), (?<=...)) also needs its body to
 * match in the subject, next to where it stands: what the body requires is
 * then a necessary set of the whole match's subject, which is all the
 * prefilter asks ("the message contains one of these"). So
 * ^(?=.*\bfever\b)(?=.*\bchemo\b) runs only on messages that hold both
 * words' sets' best. It is offered as a necessary set, never as exact
 * strings, so that it never joins the strings beside it.
 */
static struct rxlit_node *
rxlit_group_zw(struct rxlit_parser *ps, int positive)
{
	struct rxlit_node *nd = rxlit_group_body(ps);

	if (nd == NULL)
		return NULL;
	if (positive) {
		rxlit_to_nec(ps, nd);
		if (nd->kind == RXLIT_NEC) {
			nd->zw = 1;
			return nd;
		}
	}
	nd->zw = 0;
	nd->kind = RXLIT_EXACT;
	nd->n = 1;
	nd->len[0] = 0;
	return nd;
}

/* Reads a group that is parsed for its syntax only (a conditional): ANY. */
static struct rxlit_node *
rxlit_group_any(struct rxlit_parser *ps)
{
	struct rxlit_node *nd = rxlit_group_body(ps);

	if (nd == NULL)
		return NULL;
	nd->kind = RXLIT_ANY;
	nd->n = 0;
	return nd;
}

/* Expects ')' at ps->p and returns ANY (a reference, a call): or gives up. */
static struct rxlit_node *
rxlit_close_any(struct rxlit_parser *ps)
{
	if (ps->p >= ps->end || *ps->p != ')')
		return rxlit_giveup(ps);
	ps->p++;
	return rxlit_node_new(ps, RXLIT_ANY);
}

/* Returns 1 when the verb name at p (len bytes) is one of the NULL-terminated names. */
static int
rxlit_name_in(const unsigned char *p, size_t len, const char *const *names)
{
	for (; *names != NULL; names++) {
		if (strlen(*names) == len && memcmp(*names, p, len) == 0)
			return 1;
	}
	return 0;
}

/* Reads a (*VERB) or (*name:...) group; ps->p is just past the '*'. */
static struct rxlit_node *
rxlit_verb(struct rxlit_parser *ps)
{
	static const char *const look[] = {"pla",   "positive_lookahead",
	                                   "nla",   "negative_lookahead",
	                                   "plb",   "positive_lookbehind",
	                                   "nlb",   "negative_lookbehind",
	                                   "napla", "non_atomic_positive_lookahead",
	                                   "naplb", "non_atomic_positive_lookbehind",
	                                   NULL};
	static const char *const group[] = {
	    "atomic", "sr", "script_run", "asr", "atomic_script_run", NULL};
	static const char *const mark[] = {"MARK",   "PRUNE", "SKIP", "THEN",
	                                   "COMMIT", "F",     "FAIL", NULL};
	static const char *const newline[] = {"CR", "LF", "CRLF", "ANYCRLF", "ANY", "NUL", NULL};
	const unsigned char *name = ps->p;
	size_t len;

	while (ps->p < ps->end && (rxlit_is_alpha(*ps->p) || *ps->p == '_'))
		ps->p++;
	len = (size_t)(ps->p - name);
	if (ps->p >= ps->end)
		return rxlit_giveup(ps);
	/* (*ACCEPT) ends the match early: what follows it is not required */
	if (len == 6 && memcmp(name, "ACCEPT", 6) == 0)
		return rxlit_giveup(ps);
	if (*ps->p == ':') {
		ps->p++;
		if (rxlit_name_in(name, len, look))
			return rxlit_group_zw(ps, !((len == 3 && name[0] == 'n') ||
			                            (len > 8 && memcmp(name, "negative", 8) == 0)));
		if (rxlit_name_in(name, len, group))
			return rxlit_group_body(ps); /* they only restrict their body */
		if (len == 0 || rxlit_name_in(name, len, mark)) {
			while (ps->p < ps->end && *ps->p != ')')
				ps->p++;
			if (ps->p >= ps->end)
				return rxlit_giveup(ps);
			ps->p++;
			return rxlit_node_empty(ps);
		}
		return rxlit_giveup(ps);
	}
	if (*ps->p == '=') {
		/* (*LIMIT_MATCH=n) and friends */
		ps->p++;
		while (ps->p < ps->end && rxlit_is_digit(*ps->p))
			ps->p++;
	}
	if (ps->p >= ps->end || *ps->p != ')' || len == 0)
		return rxlit_giveup(ps);
	ps->p++;
	if (rxlit_name_in(name, len, newline))
		ps->nlverb = 1;
	/* other verbs only make the match fail or set options: zero-width */
	return rxlit_node_empty(ps);
}

/* Reads a callout (?C...); ps->p is just past the 'C'. Returns ANY. */
static struct rxlit_node *
rxlit_callout(struct rxlit_parser *ps)
{
	int open, close;

	if (ps->p >= ps->end)
		return rxlit_giveup(ps);
	open = *ps->p;
	if (strchr("`'\"^%#${", open) != NULL && open != 0) {
		/* a string, in which a doubled delimiter stands for itself */
		close = open == '{' ? '}' : open;
		for (ps->p++;; ps->p++) {
			if (ps->p >= ps->end)
				return rxlit_giveup(ps);
			if (*ps->p == close) {
				if (ps->end - ps->p >= 2 && ps->p[1] == close) {
					ps->p++;
					continue;
				}
				ps->p++;
				break;
			}
		}
	} else {
		while (ps->p < ps->end && rxlit_is_digit(*ps->p))
			ps->p++;
	}
	return rxlit_close_any(ps);
}

/*
 * Reads a conditional group (?(condition)yes|no); ps->p is at the '(' of
 * the condition. Returns ANY.
 */
static struct rxlit_node *
rxlit_conditional(struct rxlit_parser *ps)
{
	struct rxlit_node *nd;
	const unsigned char *q;

	if (ps->end - ps->p >= 2 && (ps->p[1] == '?' || ps->p[1] == '*')) {
		/* an assertion */
		int rep;

		if (ps->p[1] == '?' &&
		    !(ps->end - ps->p >= 3 && (ps->p[2] == '=' || ps->p[2] == '!' ||
		                               (ps->p[2] == '<' && ps->end - ps->p >= 4 &&
		                                (ps->p[3] == '=' || ps->p[3] == '!')))))
			return rxlit_giveup(ps);
		nd = rxlit_atom_group(ps, &rep);
		if (nd == NULL)
			return rxlit_giveup(ps);
		rxlit_node_free(ps, nd);
	} else {
		/* (1) (+1) (<name>) ('name') (R) (R1) (R&name) (DEFINE) (VERSION>=10.4) */
		for (q = ps->p + 1; q < ps->end && *q != ')'; q++) {
			if (!(rxlit_is_alpha(*q) || rxlit_is_digit(*q) || *q >= 0x80 ||
			      strchr("_<>'&+-=.", *q) != NULL) ||
			    *q == 0)
				return rxlit_giveup(ps);
		}
		if (q >= ps->end)
			return rxlit_giveup(ps);
		ps->p = q + 1;
	}
	return rxlit_group_any(ps);
}

/*
 * Reads option letters (?imnsxJU-^) up to ')' or ':'; ps->p is at the first
 * letter. Returns the new flags, or -1 when a letter is not understood.
 */
static int
rxlit_options(struct rxlit_parser *ps)
{
	int flags = ps->flags, unset = 0;

	if (ps->p < ps->end && *ps->p == '^') {
		flags &= ~RXLIT_FX;
		ps->p++;
	}
	for (; ps->p < ps->end; ps->p++) {
		switch (*ps->p) {
		case '-':
			if (unset)
				return -1;
			unset = 1;
			break;
		case 'x':
			if (unset)
				flags &= ~RXLIT_FX;
			else
				flags |= RXLIT_FX;
			break;
		case 'i':
		case 'm':
		case 'n':
		case 's':
		case 'J':
		case 'U':
			break;
		case ')':
		case ':':
			return flags;
		default:
			return -1;
		}
	}
	return -1;
}

/*
 * Reads a group; ps->p is at its '('. Sets *repeatable to 0 for what is no
 * item at all (an option setting), in which case it returns NULL without
 * failing.
 */
static struct rxlit_node *
rxlit_atom_group(struct rxlit_parser *ps, int *repeatable)
{
	size_t left;
	int c, flags;

	*repeatable = 1;
	ps->p++;
	if (ps->p < ps->end && *ps->p == '*') {
		ps->p++;
		return rxlit_verb(ps);
	}
	if (ps->p >= ps->end || *ps->p != '?')
		return rxlit_group_body(ps);
	ps->p++;
	if (ps->p >= ps->end)
		return rxlit_giveup(ps);
	left = (size_t)(ps->end - ps->p);
	c = *ps->p;
	switch (c) {
	case ':':
	case '|':
	case '>':
		ps->p++;
		return rxlit_group_body(ps);
	case '=':
	case '!':
		ps->p++;
		return rxlit_group_zw(ps, c == '=');
	case '<':
		if (left >= 2 && (ps->p[1] == '=' || ps->p[1] == '!')) {
			int positive = ps->p[1] == '=';

			ps->p += 2;
			return rxlit_group_zw(ps, positive);
		}
		ps->p++;
		if (rxlit_skip_name(ps, '>') == -1)
			return rxlit_giveup(ps);
		return rxlit_group_body(ps);
	case '\'':
		ps->p++;
		if (rxlit_skip_name(ps, '\'') == -1)
			return rxlit_giveup(ps);
		return rxlit_group_body(ps);
	case 'P':
		if (left < 2)
			return rxlit_giveup(ps);
		ps->p += 2;
		if (ps->p[-1] == '<') {
			if (rxlit_skip_name(ps, '>') == -1)
				return rxlit_giveup(ps);
			return rxlit_group_body(ps);
		}
		if (ps->p[-1] != '=' && ps->p[-1] != '>')
			return rxlit_giveup(ps);
		/* (?P=name) back-reference, (?P>name) call */
		if (rxlit_skip_name(ps, ')') == -1)
			return rxlit_giveup(ps);
		return rxlit_node_new(ps, RXLIT_ANY);
	case '&':
		ps->p++;
		if (rxlit_skip_name(ps, ')') == -1)
			return rxlit_giveup(ps);
		return rxlit_node_new(ps, RXLIT_ANY);
	case 'R':
		ps->p++;
		return rxlit_close_any(ps);
	case '(':
		return rxlit_conditional(ps);
	case 'C':
		ps->p++;
		return rxlit_callout(ps);
	}
	if (rxlit_is_digit(c) || c == '+' || (c == '-' && left >= 2 && rxlit_is_digit(ps->p[1]))) {
		/* (?1) (?+1) (?-1): a call */
		ps->p++;
		while (ps->p < ps->end && rxlit_is_digit(*ps->p))
			ps->p++;
		return rxlit_close_any(ps);
	}
	if ((flags = rxlit_options(ps)) == -1)
		return rxlit_giveup(ps);
	if (*ps->p == ')') {
		/* (?i): options for the rest of the enclosing group */
		ps->p++;
		ps->flags = flags;
		*repeatable = 0;
		return NULL;
	}
	/* (?i:...) */
	ps->p++;
	{
		int saved = ps->flags;
		struct rxlit_node *nd;

		ps->flags = flags;
		nd = rxlit_group_body(ps);
		ps->flags = saved;
		return nd;
	}
}

/* Quantifier kinds found by rxlit_quantifier(). */
enum rxlit_quant {
	RXLIT_Q_NONE,  /* no quantifier here */
	RXLIT_Q_COUNT, /* *, +, ?, {n}, {n,}, {n,m} with an optional ? or + */
	RXLIT_Q_AMBIG, /* braces whose reading depends on the PCRE2 version */
};

/*
 * Reads a quantifier at ps->p if there is one, with its bounds in *min and
 * *max (-1: no limit). Braces that PCRE2 10.43 reads as a quantifier and
 * older versions as literal text ("{,3}", "{ 2 }") are RXLIT_Q_AMBIG. On
 * RXLIT_Q_NONE nothing is consumed. Sets ps->fail on an invalid count.
 */
static enum rxlit_quant
rxlit_quantifier(struct rxlit_parser *ps, long *min, long *max)
{
	const unsigned char *q;
	long lo = 0, hi = -1;

	if (ps->p >= ps->end)
		return RXLIT_Q_NONE;
	switch (*ps->p) {
	case '*':
		lo = 0;
		hi = -1;
		break;
	case '+':
		lo = 1;
		hi = -1;
		break;
	case '?':
		lo = 0;
		hi = 1;
		break;
	case '{':
		q = ps->p + 1;
		if (q < ps->end && rxlit_is_digit(*q)) {
			for (lo = 0; q < ps->end && rxlit_is_digit(*q); q++) {
				lo = lo * 10 + (*q - '0');
				if (lo > RXLIT_MAX_REPEAT)
					goto toobig;
			}
			hi = lo;
			if (q < ps->end && *q == ',') {
				q++;
				hi = -1;
				if (q < ps->end && rxlit_is_digit(*q)) {
					for (hi = 0; q < ps->end && rxlit_is_digit(*q); q++) {
						hi = hi * 10 + (*q - '0');
						if (hi > RXLIT_MAX_REPEAT)
							goto toobig;
					}
					if (hi < lo)
						goto toobig;
				}
			}
			if (q < ps->end && *q == '}') {
				ps->p = q;
				break;
			}
		}
		for (q = ps->p + 1;
		     q < ps->end && (rxlit_is_digit(*q) || *q == ',' || *q == ' ' || *q == '\t');
		     q++)
			;
		if (q < ps->end && *q == '}') {
			ps->p = q + 1;
			return RXLIT_Q_AMBIG;
		}
		return RXLIT_Q_NONE;
	default:
		return RXLIT_Q_NONE;
	}
	ps->p++;
	/* lazy or possessive: neither changes what can match */
	if (ps->p < ps->end && (*ps->p == '?' || *ps->p == '+'))
		ps->p++;
	*min = lo;
	*max = hi;
	return RXLIT_Q_COUNT;
toobig:
	ps->fail = 1;
	return RXLIT_Q_NONE;
}

/*
 * Reads one atom at ps->p (not at '|' or ')' outside a quote). Sets
 * *repeatable to 0 and returns NULL without failing for what is no item.
 */
static struct rxlit_node *
rxlit_atom(struct rxlit_parser *ps, int *repeatable)
{
	uint32_t cp;
	long min, max;
	const unsigned char *at;

	*repeatable = 1;
	if (ps->quote) {
		if (rxlit_literal(ps, &cp) == -1)
			return NULL;
		return rxlit_node_char(ps, cp);
	}
	switch (*ps->p) {
	case '(':
		return rxlit_atom_group(ps, repeatable);
	case '[':
		ps->p++;
		return rxlit_class(ps);
	case '.':
		ps->p++;
		return rxlit_node_new(ps, RXLIT_ANY);
	case '^':
	case '$':
		ps->p++;
		return rxlit_node_empty(ps);
	case '*':
	case '+':
	case '?':
		return rxlit_giveup(ps); /* nothing to repeat */
	case '{':
		at = ps->p;
		if (rxlit_quantifier(ps, &min, &max) != RXLIT_Q_NONE || ps->fail)
			return rxlit_giveup(ps);
		ps->p = at + 1;
		return rxlit_node_char(ps, '{');
	case '\\':
		ps->p++;
		switch (rxlit_escape(ps, 0, &cp)) {
		case RXLIT_ESC_CHAR:
			return rxlit_node_char(ps, cp);
		case RXLIT_ESC_CLASS:
			return rxlit_node_new(ps, RXLIT_ANY);
		case RXLIT_ESC_ZW:
			return rxlit_node_empty(ps);
		case RXLIT_ESC_FAIL:
			break;
		}
		return rxlit_giveup(ps);
	}
	if (rxlit_literal(ps, &cp) == -1)
		return NULL;
	return rxlit_node_char(ps, cp);
}

/*
 * Reads an atom and its quantifiers. Returns NULL without failing for
 * what is no item (an option setting).
 */
static struct rxlit_node *
rxlit_item(struct rxlit_parser *ps)
{
	struct rxlit_node *nd;
	enum rxlit_quant q;
	int repeatable, counted = 0, blob = 0;
	long min, max;

	nd = rxlit_atom(ps, &repeatable);
	if (ps->fail)
		goto fail;
	for (;;) {
		rxlit_skip(ps);
		if (ps->fail)
			goto fail;
		if (ps->quote)
			break;
		q = rxlit_quantifier(ps, &min, &max);
		if (ps->fail)
			goto fail;
		if (q == RXLIT_Q_NONE)
			break;
		if (!repeatable)
			goto fail;
		if (q == RXLIT_Q_AMBIG || blob) {
			/*
			 * Either a quantifier or literal text and then maybe
			 * quantifiers of its last brace: nothing is known.
			 */
			nd->kind = RXLIT_ANY;
			nd->n = 0;
			blob = 1;
			continue;
		}
		if (counted)
			goto fail; /* "a**", "a{2}{3}": PCRE2 rejects them */
		nd = rxlit_repeat(ps, nd, min, max);
		counted = 1;
		if (ps->fail)
			goto fail;
	}
	return nd;
fail:
	rxlit_node_free(ps, nd);
	return rxlit_giveup(ps);
}

/* Reads a concatenation up to '|', ')' or the end. */
static struct rxlit_node *
rxlit_parse_cat(struct rxlit_parser *ps)
{
	struct rxlit_cat cat;
	struct rxlit_node *nd;

	rxlit_cat_init(ps, &cat);
	for (;;) {
		rxlit_skip(ps);
		if (ps->fail || ps->p >= ps->end)
			break;
		if (!ps->quote && (*ps->p == '|' || *ps->p == ')'))
			break;
		nd = rxlit_item(ps);
		if (ps->fail || rxlit_charge(ps, 1) == -1) {
			rxlit_node_free(ps, nd);
			break;
		}
		if (nd != NULL)
			rxlit_cat_add(ps, &cat, nd);
	}
	if (ps->fail) {
		rxlit_node_free(ps, cat.cur);
		rxlit_node_free(ps, cat.best);
		return NULL;
	}
	return rxlit_cat_finish(ps, &cat);
}

/* Reads alternatives up to ')' or the end. */
static struct rxlit_node *
rxlit_parse_alt(struct rxlit_parser *ps)
{
	struct rxlit_node *nd, *r;

	if (++ps->depth > RXLIT_MAX_DEPTH)
		return rxlit_giveup(ps);
	nd = rxlit_parse_cat(ps);
	while (!ps->fail && ps->p < ps->end && *ps->p == '|') {
		ps->p++;
		r = rxlit_parse_cat(ps);
		if (ps->fail) {
			rxlit_node_free(ps, r);
			break;
		}
		nd = rxlit_alt(ps, nd, r);
	}
	ps->depth--;
	if (ps->fail) {
		rxlit_node_free(ps, nd);
		return NULL;
	}
	return nd;
}

int
rxlit_extract(const char *pattern, size_t patlen, struct rxlit *out)
{
	struct rxlit_parser ps;
	struct rxlit_node *nd, *t;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (pattern == NULL)
		return 0;
	memset(&ps, 0, sizeof(ps));
	ps.p = (const unsigned char *)pattern;
	ps.end = ps.p + patlen;
	nd = rxlit_parse_alt(&ps);
	if (!ps.fail && ps.p != ps.end)
		ps.fail = 1; /* an unmatched ')' */
	if (!ps.fail)
		rxlit_to_nec(&ps, nd);
	if (!ps.fail && nd->kind == RXLIT_NEC && nd->n > 0) {
		out->lit = xcalloc(nd->n, sizeof(*out->lit));
		out->len = xcalloc(nd->n, sizeof(*out->len));
		for (i = 0; i < nd->n; i++) {
			out->lit[i] = xmalloc((size_t)nd->len[i] + 1);
			memcpy(out->lit[i], nd->s[i], nd->len[i]);
			out->lit[i][nd->len[i]] = '\0';
			out->len[i] = nd->len[i];
		}
		out->n = nd->n;
	}
	while ((t = ps.all) != NULL) {
		ps.all = t->all;
		free(t);
	}
	return out->n > 0;
}

void
rxlit_free(struct rxlit *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n; i++)
		free(r->lit[i]);
	free(r->lit);
	free(r->len);
	memset(r, 0, sizeof(*r));
}
