/*
 * Aho-Corasick automaton over bytes (see acm.h).
 *
 * While strings are added, the trie is a plain tree of nodes with a first
 * child and a next sibling, siblings kept sorted by byte. acm_build()
 * renumbers the nodes in breadth-first order, which makes the children of
 * every node consecutive: node s owns the children first[s] .. first[s+1]-1,
 * and the byte on the edge into node c is label[c]. A node then costs 16
 * bytes (first, fail, dict, out) plus one byte of label, with no edge
 * array at all. The root alone gets a dense 256-entry table, since nearly
 * every byte of a text passes through it.
 *
 * The scan follows goto edges and failure links (amortised linear: every
 * failure step shortens the current match by at least one byte, and each
 * byte lengthens it by at most one). Outputs are not copied down the
 * failure chain: each node keeps its own strings only, and a dictionary
 * suffix link to the nearest node on its failure chain that has some, so
 * reporting costs O(1) per hit.
 */
#include "acm.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Children at most this many are searched linearly, more by bisection. */
#define ACM_LINEAR 8

/* A trie node while strings are added (before acm_build). */
struct acm_tnode {
	uint32_t child;   /* first child, 0 when none (the root is never a child) */
	uint32_t sibling; /* next sibling with a larger byte, 0 when none */
	uint8_t label;    /* the byte on the edge from the parent */
};

/* One added string as it waits for acm_build. */
struct acm_pending {
	uint32_t node; /* the trie node where the string ends */
	uint32_t id;   /* the caller's id */
	uint32_t len;  /* the string's length */
};

/* A node of the built automaton, numbered in breadth-first order. */
struct acm_node {
	uint32_t first; /* first child; children run to the next node's first */
	uint32_t fail;  /* longest proper suffix that is a trie node */
	uint32_t dict;  /* nearest node on the fail chain with outputs, 0 none */
	uint32_t out;   /* first output; outputs run to the next node's out */
};

/* One output: a string that ends at a node. */
struct acm_out {
	uint32_t id;  /* the caller's id */
	uint32_t len; /* the string's length, which is the node's depth */
};

struct acm {
	int built; /* acm_build() has run */

	/* Before acm_build. */
	struct acm_tnode *tnode;  /* the trie; tnode[0] is the root */
	size_t ntnode;            /* nodes in use */
	size_t captnode;          /* nodes allocated */
	struct acm_pending *pend; /* the added strings, in order */
	size_t npend;             /* strings added */
	size_t cappend;           /* allocated */

	/* After acm_build. */
	struct acm_node *node; /* nnode + 1 entries, the last a sentinel */
	uint8_t *label;        /* label[c]: byte on the edge into node c */
	size_t nnode;          /* trie nodes, the root included */
	struct acm_out *out;   /* outputs grouped by node */
	size_t nout;           /* how many */
	uint32_t root[256];    /* the root's goto function, 0 where it has none */
};

struct acm *
acm_new(void)
{
	struct acm *a = xcalloc(1, sizeof(*a));

	a->captnode = 64;
	a->tnode = xcalloc(a->captnode, sizeof(*a->tnode));
	a->ntnode = 1;
	return a;
}

void
acm_free(struct acm *a)
{
	if (a == NULL)
		return;
	free(a->tnode);
	free(a->pend);
	free(a->node);
	free(a->label);
	free(a->out);
	free(a);
}

/*
 * Returns the child of trie node n on byte b, creating it in its sorted
 * place when missing, or 0 when the node count would overflow 32 bits.
 */
static uint32_t
acm_tchild(struct acm *a, uint32_t n, uint8_t b)
{
	uint32_t *link = &a->tnode[n].child;
	uint32_t c;

	while (*link != 0 && a->tnode[*link].label < b)
		link = &a->tnode[*link].sibling;
	if (*link != 0 && a->tnode[*link].label == b)
		return *link;
	if (a->ntnode >= UINT32_MAX - 1)
		return 0;
	if (a->ntnode == a->captnode) {
		/* link points into the array that is about to move */
		size_t at = (size_t)((char *)link - (char *)a->tnode);

		a->captnode *= 2;
		a->tnode = xreallocarray(a->tnode, a->captnode, sizeof(*a->tnode));
		link = (uint32_t *)(void *)((char *)a->tnode + at);
	}
	c = (uint32_t)a->ntnode++;
	a->tnode[c].child = 0;
	a->tnode[c].sibling = *link;
	a->tnode[c].label = b;
	*link = c;
	return c;
}

int
acm_add(struct acm *a, const void *s, size_t len, uint32_t id)
{
	const uint8_t *p = s;
	uint32_t n = 0;
	size_t i;

	if (a->built || len == 0 || (uint64_t)len > UINT32_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		if ((n = acm_tchild(a, n, p[i])) == 0)
			return -1;
	}
	if (a->npend == a->cappend) {
		a->cappend = a->cappend ? 2 * a->cappend : 16;
		a->pend = xreallocarray(a->pend, a->cappend, sizeof(*a->pend));
	}
	a->pend[a->npend].node = n;
	a->pend[a->npend].id = id;
	a->pend[a->npend].len = (uint32_t)len;
	a->npend++;
	return 0;
}

/*
 * Returns the child of built node s on byte b, or 0 when it has none. The
 * labels of s's children are sorted, so small fans are scanned and large
 * ones bisected.
 */
static inline uint32_t
acm_goto(const struct acm *a, uint32_t s, uint8_t b)
{
	uint32_t lo = a->node[s].first, hi = a->node[s + 1].first;

	if (s == 0)
		return a->root[b];
	if (hi - lo <= ACM_LINEAR) {
		for (; lo < hi; lo++) {
			if (a->label[lo] >= b)
				return a->label[lo] == b ? lo : 0;
		}
		return 0;
	}
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (a->label[mid] < b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < a->node[s + 1].first && a->label[lo] == b ? lo : 0;
}

/*
 * Builds the automaton in four passes: breadth-first renumbering, outputs
 * grouped by node, then failure and dictionary links (see the top of the
 * file). The adding-time trie is freed.
 */
int
acm_build(struct acm *a)
{
	uint32_t *order = NULL, *newid = NULL;
	size_t n, head, tail, i;
	uint32_t s, c, t;

	if (a->built)
		return -1;
	n = a->ntnode;

	/* Breadth-first renumbering: order[new] = old, newid[old] = new. */
	order = xcalloc(n, sizeof(*order));
	newid = xcalloc(n, sizeof(*newid));
	a->node = xcalloc(n + 1, sizeof(*a->node));
	a->label = xcalloc(n, sizeof(*a->label));
	order[0] = 0;
	newid[0] = 0;
	tail = 1;
	for (head = 0; head < n; head++) {
		a->node[head].first = (uint32_t)tail;
		for (c = a->tnode[order[head]].child; c != 0; c = a->tnode[c].sibling) {
			newid[c] = (uint32_t)tail;
			a->label[tail] = a->tnode[c].label;
			order[tail++] = c;
		}
	}
	a->node[n].first = (uint32_t)n;
	a->nnode = n;
	for (c = a->node[0].first; c < a->node[1].first; c++)
		a->root[a->label[c]] = c;

	/* Outputs grouped by node, in the order they were added (a counting sort). */
	a->out = xcalloc(a->npend, sizeof(*a->out));
	a->nout = a->npend;
	for (i = 0; i < a->npend; i++)
		a->node[newid[a->pend[i].node] + 1].out++;
	for (i = 1; i <= n; i++)
		a->node[i].out += a->node[i - 1].out;
	/* Use dict as the fill cursor for now; it is set for real below. */
	for (i = 0; i < n; i++)
		a->node[i].dict = a->node[i].out;
	for (i = 0; i < a->npend; i++) {
		struct acm_node *nd = &a->node[newid[a->pend[i].node]];

		a->out[nd->dict].id = a->pend[i].id;
		a->out[nd->dict].len = a->pend[i].len;
		nd->dict++;
	}
	a->node[0].dict = 0;

	/*
	 * Failure and dictionary links in breadth-first order: a node's fail
	 * target is shallower, so its links are already known.
	 */
	for (s = 0; s < n; s++) {
		for (c = a->node[s].first; c < a->node[s + 1].first; c++) {
			uint8_t b = a->label[c];

			if (s == 0) {
				t = 0;
			} else {
				t = a->node[s].fail;
				while (t != 0 && acm_goto(a, t, b) == 0)
					t = a->node[t].fail;
				t = acm_goto(a, t, b);
			}
			a->node[c].fail = t;
			a->node[c].dict = a->node[t + 1].out > a->node[t].out ? t : a->node[t].dict;
		}
	}

	free(order);
	free(newid);
	free(a->tnode);
	free(a->pend);
	a->tnode = NULL;
	a->pend = NULL;
	a->ntnode = a->captnode = a->npend = a->cappend = 0;
	a->built = 1;
	return 0;
}

/*
 * The contract is in acm.h; in addition, hit may be NULL to only count the
 * occurrences.
 */
long
acm_scan(const struct acm *a, const void *text, size_t len, acm_hit_fn hit, void *arg)
{
	const uint8_t *p = text;
	const struct acm_node *node;
	long hits = 0;
	uint32_t s = 0, t, o;
	size_t i;

	if (!a->built)
		return -1;
	node = a->node;
	for (i = 0; i < len; i++) {
		uint8_t b = p[i];

		while ((t = acm_goto(a, s, b)) == 0 && s != 0)
			s = node[s].fail;
		s = t;
		t = node[s + 1].out > node[s].out ? s : node[s].dict;
		for (; t != 0; t = node[t].dict) {
			for (o = node[t].out; o < node[t + 1].out; o++) {
				hits++;
				if (hit != NULL &&
				    hit(arg, a->out[o].id, i + 1, a->out[o].len) != 0)
					return hits;
			}
		}
	}
	return hits;
}

size_t
acm_nodes(const struct acm *a)
{
	return a->built ? a->nnode : a->ntnode;
}

size_t
acm_memory(const struct acm *a)
{
	size_t m = sizeof(*a);

	if (a->built) {
		m += (a->nnode + 1) * sizeof(*a->node);
		m += a->nnode * sizeof(*a->label);
		m += a->nout * sizeof(*a->out);
	} else {
		m += a->captnode * sizeof(*a->tnode);
		m += a->cappend * sizeof(*a->pend);
	}
	return m;
}
