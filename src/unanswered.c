/*
 * The unanswered log (see unanswered.h): redaction of obvious personal
 * data, appending one JSON line per question, and the moderators' report.
 *
 * Redaction is a set of small hand-written scanners rather than regular
 * expressions, so that each rule can look at its neighbours ("on the 3rd"
 * is a date, "the 3rd cycle" is not) and so that nothing here can be slow
 * on hostile text. Each scanner claims byte ranges that no earlier one has
 * claimed: e-mail addresses first, then dates, then phone numbers (so that
 * 2024-03-12 is a date, not a phone number), then names.
 *
 * The report reads the log once, keeps the newest UNANSWERED_KEEP entries,
 * brings every question to a set of content words (through the lexicon, so
 * that "keytruda" and "pembrolizumab" are one word), and groups the sets
 * greedily by Jaccard similarity. Candidate groups are found through an
 * index of each group leader's rarest words (prefix filtering, as in
 * Chaudhuri et al. and Bayardo et al.'s All-Pairs): two sets with
 * similarity t or more must share one of their |x| - ceil(t|x|) + 1 rarest
 * words, so no leader is missed and common words cost nothing.
 */
#include "unanswered.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "diag.h"
#include "kb.h"
#include "lexicon.h"
#include "log.h"
#include "smap.h"
#include "text.h"
#include "util.h"

/* The log's name in the state directory. */
#define UNANSWERED_FILE "unanswered.jsonl"
/* Bytes of a question that are logged; the rest is cut (at a character). */
#define UNANSWERED_MAX_QUESTION 2000
/* Bytes of a room id that are logged. */
#define UNANSWERED_MAX_ROOM 256
/* A longer line is not one we wrote: it is skipped as malformed. */
#define UNANSWERED_MAX_LINE 16384
/*
 * A log file past this size is moved aside (to unanswered.jsonl.1, replacing
 * the one before) and a new one begins: at most about twice this is kept.
 */
#define UNANSWERED_MAX_BYTES (4u << 20)
/* Entries the report keeps (the newest): bounds its memory and time. */
#define UNANSWERED_KEEP 20000
/* Bytes of each question the report keeps. */
#define UNANSWERED_KEEP_QUESTION 600
/* Jaccard similarity from which two questions are grouped. */
#define UNANSWERED_SIMILARITY 0.4
/* Examples shown under each group's representative question. */
#define UNANSWERED_EXAMPLES 2

/* --- small helpers -------------------------------------------------------- */

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_upper(unsigned char c)
{
	return c >= 'A' && c <= 'Z';
}

/* Part of a word: ASCII letters and digits, and any byte of a UTF-8 sequence. */
static int
is_wordch(unsigned char c)
{
	return is_digit(c) || is_alpha(c) || c >= 0x80;
}

static int
lower(unsigned char c)
{
	return is_upper(c) ? c + ('a' - 'A') : c;
}

/* Words left out when questions are compared, and never taken for a name. */
static const char *const stop_words[] = {
    "a",         "about",    "above",   "after",  "again",      "against",  "all",      "also",
    "am",        "an",       "and",     "any",    "anybody",    "anyone",   "anything", "are",
    "arent",     "as",       "at",      "be",     "because",    "been",     "before",   "being",
    "below",     "between",  "both",    "but",    "by",         "can",      "cant",     "could",
    "couldnt",   "did",      "didnt",   "do",     "does",       "doesnt",   "doing",    "dont",
    "down",      "during",   "each",    "else",   "ever",       "every",    "few",      "for",
    "from",      "further",  "get",     "gets",   "getting",    "got",      "had",      "hadnt",
    "has",       "hasnt",    "have",    "havent", "having",     "he",       "hed",      "hell",
    "hello",     "her",      "here",    "hers",   "herself",    "hes",      "hey",      "hi",
    "him",       "himself",  "his",     "how",    "hows",       "i",        "id",       "if",
    "ill",       "im",       "in",      "into",   "is",         "isnt",     "it",       "its",
    "itself",    "ive",      "just",    "know",   "let",        "lets",     "like",     "me",
    "might",     "more",     "most",    "much",   "must",       "my",       "myself",   "need",
    "no",        "nor",      "not",     "now",    "of",         "off",      "often",    "ok",
    "okay",      "on",       "once",    "only",   "or",         "other",    "our",      "ours",
    "ourselves", "out",      "over",    "own",    "please",     "possible", "question", "really",
    "same",      "shall",    "she",     "should", "shouldnt",   "so",       "some",     "someone",
    "something", "such",     "tell",    "than",   "thank",      "thanks",   "that",     "thats",
    "the",       "their",    "theirs",  "them",   "themselves", "then",     "there",    "theres",
    "these",     "they",     "theyre",  "this",   "those",      "through",  "to",       "too",
    "under",     "until",    "up",      "us",     "very",       "want",     "was",      "wasnt",
    "way",       "we",       "were",    "what",   "whats",      "when",     "where",    "which",
    "while",     "who",      "whom",    "whos",   "why",        "will",     "with",     "wonder",
    "wondering", "would",    "wouldnt", "yes",    "yet",        "you",      "your",     "youre",
    "yours",     "yourself",
};

/*
 * Words that follow "call me", "I'm" and the like but are not names, even
 * capitalised ("I'm Scared"). Sorted, lower case.
 */
static const char *const not_names[] = {
    "admin", "admins", "afraid", "alone", "anxious", "anytime", "asap", "asking", "awake",
    "back", "being", "confused", "crazy", "currently", "desperate", "devastated",
    "directly", "done", "exhausted", "feeling", "fine", "finished", "frightened", "glad",
    "going", "grateful", "happy", "having", "hoping", "instead", "later", "lost", "maybe",
    "moderators", "mods", "nervous", "new", "newbie", "numb", "posting", "praying",
    "privately", "ready", "recently", "right", "sad", "scared", "sick", "sometime", "soon",
    "sorry", "stage", "still", "struggling", "stuck", "sure", "terrified", "thankful",
    "tired", "today", "tomorrow", "tonight", "trying", "upset", "waiting", "whenever",
    "wondering", "worried", "writing",
};

/* People someone names beside them: "my husband John". Sorted, lower case. */
static const char *const relations[] = {
    "aunt",     "auntie",   "boyfriend", "brother",  "consultant", "dad",      "daddy",
    "daughter", "father",   "fiance",    "fiancee",  "friend",     "gp",       "gran",
    "grandad",  "granddad", "grandma",   "grandpa",  "granny",     "husband",  "mam",
    "mom",      "mommy",    "mother",    "mum",      "mummy",      "nan",      "nana",
    "nephew",   "niece",    "nurse",     "oncologist", "partner",  "sister",   "son",
    "surgeon",  "uncle",    "wife",
};

/* Titles before a name: "Dr Patel", "nurse Jane". Sorted, lower case. */
static const char *const titles[] = {
    "doctor", "dr", "miss", "mr", "mrs", "ms", "mx", "nurse", "prof", "professor", "sister",
};

/* Titles that are nothing else, so a name after them may be written small: "dr patel". */
static const char *const abbrev_titles[] = {"dr", "mr", "mrs", "ms", "mx", "prof"};

/* Words before a title that make it a role, not a name's: "the dr kept saying". */
static const char *const determiners[] = {"a",    "an",   "her",  "his", "my",
                                          "our",  "that", "the",  "their", "this",
                                          "your"};

/* Words after a title that are not a name: "the dr said". Sorted, lower case. */
static const char *const title_verbs[] = {
    "appointment", "appt", "asked", "called", "changed", "checked", "explained", "gave",
    "keeps", "kept", "mentioned", "office", "phoned", "put", "rang", "recommended", "said",
    "says", "suggested", "surgery", "thinks", "told", "visit", "wants", "wrote",
};

/* Street words after a house number: "12 Acacia Avenue". Sorted, lower case. */
static const char *const streets[] = {
    "ave",     "avenue",  "blvd", "boulevard", "close",  "court",   "crescent", "dr",
    "drive",   "gardens", "gdns", "grove",     "lane",   "ln",      "mews",     "parade",
    "place",   "rd",      "road", "row",       "square", "st",      "street",   "terrace",
    "way",
};

/* Words that name a record number: "MRN 1234567", "hospital number: K123456". */
static const char *const id_words[] = {
    "case number", "chi number", "hospital no", "hospital number", "medical record number",
    "mrn",         "nhs no",     "nhs number",  "patient id",      "patient number",
    "record number", "unit number",
};

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Is w (n bytes) in the sorted list? Compared folded to lower case, apostrophes dropped. */
static int
in_list(const char *const *list, size_t nlist, const char *w, size_t n)
{
	char key[32];
	const char *k = key;
	size_t i, k_len = 0;

	for (i = 0; i < n; i++) {
		if (w[i] == '\'')
			continue;
		if (k_len + 1 >= sizeof(key))
			return 0;
		key[k_len++] = (char)lower((unsigned char)w[i]);
	}
	key[k_len] = '\0';
	return bsearch(&k, list, nlist, sizeof(*list), cmp_str) != NULL;
}

static int
is_stop_word(const char *w, size_t n)
{
	return in_list(stop_words, NELEM(stop_words), w, n);
}

/*
 * Appends s (at most max bytes of it, cut at a character) to out as safe
 * text: invalid UTF-8 becomes U+FFFD, control characters (C0, DEL, C1)
 * become spaces, and bidirectional overrides, which can make a line read
 * differently from what it says, are dropped.
 */
static void
clean_text(const char *s, size_t max, struct buf *out)
{
	size_t n = strlen(s), i = 0, used = 0;

	while (i < n) {
		uint32_t cp;
		size_t k = text_utf8_decode((const unsigned char *)s + i, n - i, &cp);
		char enc[4];
		size_t elen;

		i += k;
		if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
			cp = ' ';
		else if ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
			continue;
		elen = text_utf8_encode(cp, enc);
		if (used + elen > max)
			break;
		buf_append(out, enc, elen);
		used += elen;
	}
	if (out->data == NULL)
		buf_puts(out, "");
}

/* --- redaction ------------------------------------------------------------ */

/* A range of the text to replace. */
struct rspan {
	size_t start;      /* first byte */
	size_t end;        /* one past the last */
	const char *label; /* what replaces it: "[phone]" */
};

struct redact {
	const char *s;        /* the text */
	size_t n;             /* its length */
	unsigned char *taken; /* 1 for each byte inside a span */
	struct rspan *v;      /* the spans found */
	size_t nv;            /* how many */
	size_t cap;           /* allocated */
};

static int
range_free(const struct redact *r, size_t a, size_t b)
{
	size_t i;

	for (i = a; i < b; i++)
		if (r->taken[i])
			return 0;
	return 1;
}

static void
claim(struct redact *r, size_t a, size_t b, const char *label)
{
	if (a >= b || !range_free(r, a, b))
		return;
	if (r->nv == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 8;
		r->v = xreallocarray(r->v, r->cap, sizeof(*r->v));
	}
	r->v[r->nv].start = a;
	r->v[r->nv].end = b;
	r->v[r->nv].label = label;
	r->nv++;
	memset(r->taken + a, 1, b - a);
}

static int
at_word_start(const struct redact *r, size_t i)
{
	return i == 0 || !is_wordch((unsigned char)r->s[i - 1]);
}

static int
at_word_end(const struct redact *r, size_t i)
{
	return i >= r->n || !is_wordch((unsigned char)r->s[i]);
}

static size_t
skip_blanks(const struct redact *r, size_t i)
{
	while (i < r->n && (r->s[i] == ' ' || r->s[i] == '\t'))
		i++;
	return i;
}

/* The end of the word (ASCII letters and digits, UTF-8) starting at i. */
static size_t
word_end(const struct redact *r, size_t i)
{
	while (i < r->n && is_wordch((unsigned char)r->s[i]))
		i++;
	return i;
}

/*
 * Matches phrase (lower case; a space matches one or more blanks) at i,
 * case-insensitively, as whole words. Returns the end, or 0.
 */
static size_t
match_phrase(const struct redact *r, size_t i, const char *phrase)
{
	size_t p = i;

	if (!at_word_start(r, i))
		return 0;
	for (; *phrase; phrase++) {
		if (*phrase == ' ') {
			if (p >= r->n || (r->s[p] != ' ' && r->s[p] != '\t'))
				return 0;
			p = skip_blanks(r, p);
			continue;
		}
		if (p >= r->n || lower((unsigned char)r->s[p]) != (unsigned char)*phrase)
			return 0;
		p++;
	}
	return at_word_end(r, p) ? p : 0;
}

/* Is the word that ends before i (blanks skipped) one of list? */
static int
prev_word_in(const struct redact *r, size_t i, const char *const *list, size_t nlist)
{
	size_t e = i, b;

	while (e > 0 && (r->s[e - 1] == ' ' || r->s[e - 1] == '\t'))
		e--;
	b = e;
	while (b > 0 && is_wordch((unsigned char)r->s[b - 1]))
		b--;
	return b < e && in_list(list, nlist, r->s + b, e - b);
}

/* E-mail addresses: local@domain.tld. */
static void
find_emails(struct redact *r)
{
	static const char local_extra[] = "._%+-";
	size_t i, a, b, dots, label, last_dot;

	for (i = 0; i < r->n; i++) {
		if (r->s[i] != '@')
			continue;
		a = i;
		while (a > 0 && (is_alpha((unsigned char)r->s[a - 1]) ||
		                 is_digit((unsigned char)r->s[a - 1]) ||
		                 strchr(local_extra, r->s[a - 1]) != NULL))
			a--;
		while (a < i && r->s[a] == '.')
			a++;
		if (a == i)
			continue;
		b = i + 1;
		dots = 0;
		label = 0;
		last_dot = 0;
		while (b < r->n) {
			unsigned char c = (unsigned char)r->s[b];

			if (is_alpha(c) || is_digit(c) || c == '-') {
				label++;
			} else if (c == '.' && label > 0 && b + 1 < r->n &&
			           (is_alpha((unsigned char)r->s[b + 1]) ||
			            is_digit((unsigned char)r->s[b + 1]))) {
				dots++;
				last_dot = b;
				label = 0;
			} else {
				break;
			}
			b++;
		}
		/* A domain with a dot and a top-level part of two letters or more. */
		if (dots == 0 || b - last_dot < 3)
			continue;
		claim(r, a, b, "[email]");
		i = b - 1;
	}
}

static const struct {
	const char *name;
	int month;
} months[] = {
    {"january", 1},   {"february", 2},  {"march", 3},  {"april", 4},     {"may", 5},
    {"june", 6},      {"july", 7},      {"august", 8}, {"september", 9}, {"october", 10},
    {"november", 11}, {"december", 12}, {"jan", 1},    {"feb", 2},       {"mar", 3},
    {"apr", 4},       {"jun", 6},       {"jul", 7},    {"aug", 8},       {"sept", 9},
    {"sep", 9},       {"oct", 10},      {"nov", 11},   {"dec", 12},
};

/*
 * A month name (or its abbreviation, with an optional '.') at i; returns
 * the end, or 0. "May" counts only capitalised unless may_lower is set
 * ("I may 5 ..." is not a date).
 */
static size_t
match_month(const struct redact *r, size_t i, int may_lower)
{
	size_t k, e;

	if (i >= r->n || !at_word_start(r, i) || !is_alpha((unsigned char)r->s[i]))
		return 0;
	e = word_end(r, i);
	for (k = 0; k < NELEM(months); k++) {
		size_t len = strlen(months[k].name);

		if (e - i != len || strncasecmp(r->s + i, months[k].name, len) != 0)
			continue;
		if (months[k].month == 5 && !may_lower && r->s[i] != 'M')
			return 0;
		if (len <= 4 && months[k].month != 5 && e < r->n && r->s[e] == '.')
			e++;
		return e;
	}
	return 0;
}

/*
 * A day of the month at i: one or two digits from 1 to 31, with an
 * optional ordinal suffix. Returns the end (0 if none); *ordinal tells
 * whether the suffix was there.
 */
static size_t
match_day(const struct redact *r, size_t i, int *ordinal)
{
	size_t p = i;
	int v = 0;

	*ordinal = 0;
	if (!at_word_start(r, i))
		return 0;
	while (p < r->n && is_digit((unsigned char)r->s[p]) && p - i < 3)
		v = v * 10 + (r->s[p++] - '0');
	if (p == i || p - i > 2 || v < 1 || v > 31)
		return 0;
	if (p + 1 < r->n) {
		char a = (char)lower((unsigned char)r->s[p]),
		     b = (char)lower((unsigned char)r->s[p + 1]);

		if ((a == 's' && b == 't') || (a == 'n' && b == 'd') || (a == 'r' && b == 'd') ||
		    (a == 't' && b == 'h')) {
			if (at_word_end(r, p + 2)) {
				*ordinal = 1;
				return p + 2;
			}
		}
	}
	return at_word_end(r, p) ? p : 0;
}

/* A four-digit year (1900-2099) at i, after an optional comma and blanks; the end or 0. */
static size_t
match_year_after(const struct redact *r, size_t i)
{
	size_t p = i;

	if (p < r->n && r->s[p] == ',')
		p++;
	if (p >= r->n || (r->s[p] != ' ' && r->s[p] != '\t'))
		return 0;
	p = skip_blanks(r, p);
	if (p + 4 > r->n || !is_digit((unsigned char)r->s[p]) ||
	    !is_digit((unsigned char)r->s[p + 1]) || !is_digit((unsigned char)r->s[p + 2]) ||
	    !is_digit((unsigned char)r->s[p + 3]))
		return 0;
	if (!((r->s[p] == '1' && r->s[p + 1] == '9') || (r->s[p] == '2' && r->s[p + 1] == '0')))
		return 0;
	return at_word_end(r, p + 4) ? p + 4 : 0;
}

/* Reads up to max digits at *p; returns the value and the count in *nd. */
static int
read_num(const struct redact *r, size_t *p, size_t max, size_t *nd)
{
	int v = 0;

	*nd = 0;
	while (*p < r->n && is_digit((unsigned char)r->s[*p]) && *nd <= max) {
		v = v * 10 + (r->s[*p] - '0');
		(*p)++;
		(*nd)++;
	}
	return v;
}

static int
valid_dm(int d, int m)
{
	return d >= 1 && d <= 31 && m >= 1 && m <= 12;
}

/* Numeric dates: 12/03/2024, 12.03.24, 2024-03-12, and "on 12/03". Returns the end or 0. */
static size_t
match_numeric_date(const struct redact *r, size_t i)
{
	static const char *const date_preps[] = {"after", "before", "by",    "dated", "due",
	                                         "from",  "on",     "since", "till",  "until"};
	size_t p = i, na, nb, nc;
	int a, b, c;
	char sep;

	if (!at_word_start(r, i) || !is_digit((unsigned char)r->s[i]))
		return 0;
	a = read_num(r, &p, 4, &na);
	if (na > 4 || p >= r->n || strchr("/.-", r->s[p]) == NULL)
		return 0;
	sep = r->s[p++];
	b = read_num(r, &p, 2, &nb);
	if (nb < 1 || nb > 2)
		return 0;
	if (p + 1 < r->n && r->s[p] == sep && is_digit((unsigned char)r->s[p + 1])) {
		p++;
		c = read_num(r, &p, 4, &nc);
		if (!at_word_end(r, p) || (p + 1 < r->n && strchr("/.-", r->s[p]) &&
		                           is_digit((unsigned char)r->s[p + 1])))
			return 0;
		if (na == 4)
			return nc <= 2 && valid_dm(c, b) ? p : 0;
		if (na > 2 || (nc != 2 && nc != 4))
			return 0;
		return valid_dm(a, b) || valid_dm(b, a) ? p : 0;
	}
	/* Two parts only with '/', after a word like "on", so that "8/10 pain" stays. */
	if (sep != '/' || na > 2 || !at_word_end(r, p) ||
	    (p + 1 < r->n && strchr("/.-", r->s[p]) && is_digit((unsigned char)r->s[p + 1])))
		return 0;
	if (!(valid_dm(a, b) || valid_dm(b, a)))
		return 0;
	return prev_word_in(r, i, date_preps, NELEM(date_preps)) ? p : 0;
}

/* "12 March", "12th of March 2024", "March 12th", "March 12, 2024", "March 2024". */
static size_t
match_text_date(const struct redact *r, size_t i)
{
	size_t p, q, e;
	int ord;

	if ((p = match_day(r, i, &ord)) != 0) {
		q = skip_blanks(r, p);
		if (q == p)
			return 0;
		if (match_phrase(r, q, "of"))
			q = skip_blanks(r, q + 2);
		if ((e = match_month(r, q, ord)) == 0)
			return 0;
		q = match_year_after(r, e);
		return q ? q : e;
	}
	if ((p = match_month(r, i, 0)) != 0) {
		if ((q = match_year_after(r, p)) != 0)
			return q;
		q = skip_blanks(r, p);
		if (q == p || (e = match_day(r, q, &ord)) == 0)
			return 0;
		q = match_year_after(r, e);
		return q ? q : e;
	}
	return 0;
}

/*
 * "the 3rd", "on the 21st of March": the ordinal (and month) is a date
 * unless a noun follows ("the 3rd cycle", "the 2nd line"). Claims from
 * the ordinal on; returns 1 when it did.
 */
static int
match_the_ordinal(struct redact *r, size_t i)
{
	size_t p, q, e, w;
	int ord;

	if ((p = match_phrase(r, i, "the")) == 0)
		return 0;
	q = skip_blanks(r, p);
	if (q == p || (e = match_day(r, q, &ord)) == 0 || !ord)
		return 0;
	w = skip_blanks(r, e);
	if (match_phrase(r, w, "of")) {
		size_t m = match_month(r, skip_blanks(r, w + 2), 1), y;

		if (m == 0)
			return 0; /* "the 3rd of my cycles" */
		y = match_year_after(r, m);
		claim(r, q, y ? y : m, "[date]");
		return 1;
	}
	if ((w < r->n && is_wordch((unsigned char)r->s[w])) && match_month(r, w, 1) == 0 &&
	    !is_stop_word(r->s + w, word_end(r, w) - w))
		return 0;
	claim(r, q, e, "[date]");
	return 1;
}

static void
find_dates(struct redact *r)
{
	size_t i, e;

	for (i = 0; i < r->n; i++) {
		if (r->taken[i] || !at_word_start(r, i))
			continue;
		if ((e = match_numeric_date(r, i)) != 0 || (e = match_text_date(r, i)) != 0) {
			if (range_free(r, i, e)) {
				claim(r, i, e, "[date]");
				i = e - 1;
			}
			continue;
		}
		match_the_ordinal(r, i);
	}
}

/* A 4-digit group that reads as a year (19xx, 20xx). */
static int
year_like(const char *g, size_t len)
{
	return len == 4 && ((g[0] == '1' && g[1] == '9') || (g[0] == '2' && g[1] == '0'));
}

/*
 * A phone number at i: groups of digits separated by single blanks, '-' or
 * '.', an optional leading '+', groups in parentheses. Returns the end or 0.
 * The rules keep quantities out: "10 mg", "4 cycles", "2019-2021", "3.14".
 */
static size_t
match_phone(const struct redact *r, size_t i)
{
	const char *s = r->s;
	size_t n = r->n, p = i, end = 0, q;
	int plus = 0, paren_any = 0, groups = 0, digits = 0, first_len = 0;
	int sep_space = 0, sep_dash = 0, sep_dot = 0, all_years = 1;
	char pending = 0;

	if (i > 0 && (is_wordch((unsigned char)s[i - 1]) || strchr("+@/.,-_", s[i - 1]) != NULL))
		return 0;
	if (s[p] == '+') {
		plus = 1;
		p++;
	}
	for (;;) {
		size_t g, len = 0;
		int paren = 0;

		if (p < n && s[p] == '(') {
			paren = 1;
			p++;
		}
		g = p;
		while (p < n && is_digit((unsigned char)s[p]) && len < 16) {
			p++;
			len++;
		}
		if (paren) {
			if (p >= n || s[p] != ')' || len < 1 || len > 5)
				break;
			p++;
		}
		if (len == 0)
			break;
		if (groups > 0 && !paren && len < 2)
			break;
		if (groups > 0 && pending == ' ' && digits >= 10 && len < 3)
			break; /* "07700900123 10 mg": the 10 is not part of it */
		if (digits + (int)len > 15 || (p < n && is_wordch((unsigned char)s[p])))
			break;
		if (groups == 0)
			first_len = (int)len;
		groups++;
		digits += (int)len;
		paren_any |= paren;
		all_years &= year_like(s + g, len);
		sep_space |= pending == ' ';
		sep_dash |= pending == '-';
		sep_dot |= pending == '.';
		end = p;
		q = p;
		if (q < n && (s[q] == ' ' || s[q] == '-' || s[q] == '.')) {
			pending = s[q++];
			if (pending == ' ' && q + 1 < n && s[q] == '-' && s[q + 1] == ' ') {
				pending = '-';
				q += 2;
			}
		} else if (paren || (q < n && s[q] == '(')) {
			pending = 0;
		} else {
			break;
		}
		if (q >= n || !(is_digit((unsigned char)s[q]) || s[q] == '('))
			break;
		p = q;
	}
	if (groups == 0 || digits < 7 || digits > 15)
		return 0;
	if (all_years && groups >= 2)
		return 0; /* "2019 2020 2021" */
	if (groups == 1 && !plus && digits < 10)
		return 0; /* a plain number */
	if (first_len == 1 && !plus && !paren_any && groups < 4)
		return 0;
	if (sep_dot && !sep_space && !sep_dash && groups < 3)
		return 0; /* a decimal number */
	if (sep_space && !sep_dash && !sep_dot && !plus && !paren_any && s[i] != '0' && digits < 10)
		return 0; /* "100 200 300" */
	return end;
}

static void
find_phones(struct redact *r)
{
	size_t i, e;

	for (i = 0; i < r->n; i++) {
		if (r->taken[i] ||
		    (r->s[i] != '+' && r->s[i] != '(' && !is_digit((unsigned char)r->s[i])))
			continue;
		if ((e = match_phone(r, i)) != 0 && range_free(r, i, e)) {
			claim(r, i, e, "[phone]");
			i = e - 1;
		}
	}
}

/*
 * A name word at i: a letter, then letters, UTF-8, inner ' or -. Returns
 * its end, or 0 when there is none or it is a common word.
 */
static size_t
match_name_word(const struct redact *r, size_t i)
{
	size_t p = i;
	unsigned char c;

	if (i >= r->n)
		return 0;
	c = (unsigned char)r->s[i];
	if (!is_alpha(c) && c < 0xc0)
		return 0;
	while (p < r->n) {
		c = (unsigned char)r->s[p];
		if (is_alpha(c) || c >= 0x80)
			p++;
		else if ((c == '\'' || c == '-') && p + 1 < r->n &&
		         (is_alpha((unsigned char)r->s[p + 1]) ||
		          (unsigned char)r->s[p + 1] >= 0x80))
			p++;
		else
			break;
	}
	if (p < r->n && is_digit((unsigned char)r->s[p]))
		return 0;
	if (is_stop_word(r->s + i, p - i) || in_list(not_names, NELEM(not_names), r->s + i, p - i))
		return 0;
	return p;
}

/* Capitalised: an upper-case ASCII letter or a non-ASCII letter first, not all capitals. */
static int
capitalised(const struct redact *r, size_t a, size_t b)
{
	size_t i, upper = 0, letters = 0;

	if (!is_upper((unsigned char)r->s[a]) && (unsigned char)r->s[a] < 0x80)
		return 0;
	for (i = a; i < b; i++) {
		if (is_alpha((unsigned char)r->s[i])) {
			letters++;
			upper += is_upper((unsigned char)r->s[i]);
		}
	}
	return letters < 2 || upper < letters;
}

/*
 * The name at i: one word, plus up to two more. After a trigger that says a
 * name follows (all_words: "my name is"), the words that follow count
 * whatever their case, up to a common word or punctuation ("my name is
 * sarah jones and ..."); otherwise only capitalised ones ("Sarah Jones").
 */
static size_t
match_name(const struct redact *r, size_t i, int need_capital, int all_words)
{
	size_t e, q, e2;
	int words = 1;

	if ((e = match_name_word(r, i)) == 0)
		return 0;
	if (need_capital && !capitalised(r, i, e))
		return 0;
	if (!capitalised(r, i, e) && !all_words)
		return e;
	while (words < 3) {
		q = e;
		if (q >= r->n || r->s[q] != ' ')
			break;
		q++;
		if (q >= r->n || (e2 = match_name_word(r, q)) == 0)
			break;
		if (!all_words && (!is_upper((unsigned char)r->s[q]) || !capitalised(r, q, e2)))
			break;
		if (in_list(relations, NELEM(relations), r->s + q, e2 - q))
			break;
		e = e2;
		words++;
	}
	return e;
}

/* The end of the word at i when it is in list (case-insensitive), else 0. */
static size_t
word_in(const struct redact *r, size_t i, const char *const *list, size_t nlist)
{
	size_t e;

	if (i >= r->n || !at_word_start(r, i) || !is_alpha((unsigned char)r->s[i]))
		return 0;
	e = word_end(r, i);
	return in_list(list, nlist, r->s + i, e - i) ? e : 0;
}

static void
find_names(struct redact *r)
{
	static const char *const triggers[] = {
	    "my name is", "my names",
	    "my name's",  "my name\xe2\x80\x99s",
	    "i'm called", "i\xe2\x80\x99m called",
	    "im called",  "i am called",
	    "call me",
	};
	static const char *const intros[] = {"i'm", "i\xe2\x80\x99m", "i am", "im"};
	static const char *const owners[] = {"her", "his", "my", "our", "their"};
	static const char *const greetings[] = {"hello", "hey", "hi", "hiya", "morning"};
	static const char *const after_intro[] = {"again", "and",      "from",
	                                          "here",  "speaking", "writing"};
	size_t i, k, p, e, start, t;

	for (i = 0; i < r->n; i++) {
		if (!at_word_start(r, i) || !is_alpha((unsigned char)r->s[i]))
			continue;
		for (k = 0; k < NELEM(triggers); k++) {
			if ((p = match_phrase(r, i, triggers[k])) == 0)
				continue;
			p = skip_blanks(r, p);
			if (p < r->n && (r->s[p] == ':' || r->s[p] == ','))
				p = skip_blanks(r, p + 1);
			if ((e = match_name(r, p, 0, k < 8)) != 0 && range_free(r, p, e))
				claim(r, p, e, "[name]");
			break;
		}
		if (k < NELEM(triggers))
			continue;
		/* "I'm Sarah Jones": a capitalised name that is no common word. */
		for (k = 0; k < NELEM(intros); k++) {
			if ((p = match_phrase(r, i, intros[k])) == 0)
				continue;
			p = skip_blanks(r, p);
			if ((e = match_name(r, p, 1, 0)) != 0 && range_free(r, p, e))
				claim(r, p, e, "[name]");
			break;
		}
		/* "my husband John", "our daughter Emily": a capitalised name after a relation. */
		if ((t = word_in(r, i, owners, NELEM(owners))) != 0) {
			p = skip_blanks(r, t);
			if (p > t && (t = word_in(r, p, relations, NELEM(relations))) != 0) {
				p = skip_blanks(r, t);
				if (p < r->n && r->s[p] == ',')
					p = skip_blanks(r, p + 1);
				/* "my oncologist Dr Okafor": the title's rule takes it. */
				if (p > t && !word_in(r, p, titles, NELEM(titles)) &&
				    (e = match_name(r, p, 1, 0)) != 0 && range_free(r, p, e))
					claim(r, p, e, "[name]");
			}
		}
		/* "Dr Patel", "dr. patel", "nurse Jane": a name after a title. */
		if ((t = word_in(r, i, titles, NELEM(titles))) != 0) {
			/* "dr patel" (but not "the dr kept ..."): small only after an abbreviation. */
			int abbrev = word_in(r, i, abbrev_titles, NELEM(abbrev_titles)) &&
			             !prev_word_in(r, i, determiners, NELEM(determiners));

			p = t;
			if (p < r->n && r->s[p] == '.' && word_in(r, i, abbrev_titles, NELEM(abbrev_titles)))
				p++;
			p = skip_blanks(r, p);
			if (p == t || p >= r->n)
				continue;
			e = word_end(r, p);
			if (in_list(title_verbs, NELEM(title_verbs), r->s + p, e - p))
				continue;
			/* "Dr Patel"; "dr patel" only after an abbreviation, which is always a title. */
			if ((e = match_name(r, p, !abbrev, 0)) != 0 && range_free(r, p, e) &&
			    (abbrev || capitalised(r, p, e)))
				claim(r, p, e, "[name]");
		}
	}
	/* "This is Sarah, ...", "Sarah Jones here": only at the start, perhaps after a greeting. */
	start = skip_blanks(r, 0);
	for (k = 0; k < NELEM(greetings); k++) {
		if ((p = match_phrase(r, start, greetings[k])) != 0) {
			while (p < r->n && strchr(" \t,!.", r->s[p]) != NULL)
				p++;
			/* "Hi all, ...", "Hi everyone, ..." */
			if ((e = match_phrase(r, p, "all")) != 0 || (e = match_phrase(r, p, "everyone")) != 0)
				for (p = e; p < r->n && strchr(" \t,!.", r->s[p]) != NULL; p++)
					;
			start = p;
			break;
		}
	}
	if ((e = match_name(r, start, 1, 0)) != 0 && !is_stop_word(r->s + start, e - start)) {
		k = skip_blanks(r, e);
		if (k > e && (t = match_phrase(r, k, "here")) != 0 &&
		    (t >= r->n || strchr(",.!;:- \t", r->s[t]) != NULL)) {
			claim(r, start, e, "[name]");
			return;
		}
	}
	if ((p = match_phrase(r, start, "this is")) == 0)
		return;
	p = skip_blanks(r, p);
	if ((e = match_name(r, p, 1, 0)) == 0)
		return;
	/* Then the end, punctuation, or a word that often follows a name. */
	k = skip_blanks(r, e);
	if (k < r->n && is_wordch((unsigned char)r->s[k]) &&
	    !in_list(after_intro, NELEM(after_intro), r->s + k, word_end(r, k) - k))
		return;
	if (k < r->n && !is_wordch((unsigned char)r->s[k]) && strchr(",.!;:-", r->s[k]) == NULL &&
	    (unsigned char)r->s[k] < 0x80)
		return;
	claim(r, p, e, "[name]");
}

/* --- where people live, and their record numbers ----------------------------- */

/* A UK postcode at i ("LS1 4AB", "sw1a1aa", "M1 1AE"): its end, or 0. */
static size_t
match_postcode(const struct redact *r, size_t i)
{
	size_t p = i, k;

	if (!at_word_start(r, i))
		return 0;
	/* The outward code: 1-2 letters, a digit, then a letter or digit perhaps. */
	for (k = 0; k < 2 && p < r->n && is_alpha((unsigned char)r->s[p]); k++)
		p++;
	if (k == 0 || p >= r->n || !is_digit((unsigned char)r->s[p]))
		return 0;
	p++;
	if (p < r->n && (is_digit((unsigned char)r->s[p]) || is_alpha((unsigned char)r->s[p])) &&
	    !(p + 2 < r->n && is_digit((unsigned char)r->s[p]) && is_alpha((unsigned char)r->s[p + 1]) &&
	      is_alpha((unsigned char)r->s[p + 2]) && at_word_end(r, p + 3)))
		p++;
	/* The inward code: a digit and two letters, after one space or none. */
	if (p < r->n && r->s[p] == ' ')
		p++;
	if (p + 3 > r->n || !is_digit((unsigned char)r->s[p]) ||
	    !is_alpha((unsigned char)r->s[p + 1]) || !is_alpha((unsigned char)r->s[p + 2]) ||
	    !at_word_end(r, p + 3))
		return 0;
	return p + 3;
}

static void
find_postcodes(struct redact *r)
{
	size_t i, e;

	for (i = 0; i < r->n; i++)
		if (!r->taken[i] && is_alpha((unsigned char)r->s[i]) &&
		    (e = match_postcode(r, i)) != 0 && range_free(r, i, e)) {
			claim(r, i, e, "[postcode]");
			i = e - 1;
		}
}

/*
 * A street address at i: a house number (with a letter perhaps: "221b"),
 * one to three words, and a street word ("Avenue", "Rd"). "way" counts only
 * capitalised, being common ("2 weeks way too long").
 */
static size_t
match_address(const struct redact *r, size_t i)
{
	size_t p = i, e, words = 0;

	if (!at_word_start(r, i))
		return 0;
	while (p < r->n && is_digit((unsigned char)r->s[p]) && p - i < 4)
		p++;
	if (p == i || (p < r->n && is_digit((unsigned char)r->s[p])))
		return 0;
	if (p < r->n && is_alpha((unsigned char)r->s[p]) && at_word_end(r, p + 1))
		p++;
	if (!at_word_end(r, p))
		return 0;
	while (words < 4) {
		size_t q = skip_blanks(r, p);

		if (q == p || q >= r->n || !is_alpha((unsigned char)r->s[q]))
			return 0;
		e = word_end(r, q);
		if (words > 0 && in_list(streets, NELEM(streets), r->s + q, e - q) &&
		    (strncasecmp(r->s + q, "way", 3) != 0 || is_upper((unsigned char)r->s[q])))
			return e;
		if (is_stop_word(r->s + q, e - q) || words == 3)
			return 0;
		p = e;
		words++;
	}
	return 0;
}

static void
find_addresses(struct redact *r)
{
	size_t i, e;

	for (i = 0; i < r->n; i++)
		if (!r->taken[i] && is_digit((unsigned char)r->s[i]) &&
		    (e = match_address(r, i)) != 0 && range_free(r, i, e)) {
			claim(r, i, e, "[address]");
			i = e - 1;
		}
}

/* An identifier at i: letters and digits (groups of digits may be spaced), 4 digits or more. */
static size_t
match_id_value(const struct redact *r, size_t i)
{
	size_t p = i, digits = 0, end = 0;

	while (p < r->n) {
		if (is_digit((unsigned char)r->s[p])) {
			digits++;
			p++;
			end = p;
		} else if (is_alpha((unsigned char)r->s[p]) && (p == i || end == p)) {
			p++;
			end = p;
		} else if ((r->s[p] == ' ' || r->s[p] == '-') && p + 1 < r->n &&
		           is_digit((unsigned char)r->s[p + 1]) && end == p && digits > 0) {
			p++;
		} else {
			break;
		}
	}
	return digits >= 4 && at_word_end(r, end) ? end : 0;
}

/*
 * Record numbers after words that name one ("MRN", "hospital number",
 * "NHS number"; then ":", "#", "is" perhaps). Before the phone numbers: an
 * NHS number has ten digits.
 */
static void
find_named_ids(struct redact *r)
{
	size_t i, k, p, e;

	for (i = 0; i < r->n; i++) {
		if (r->taken[i] || !at_word_start(r, i))
			continue;
		for (k = 0; k < NELEM(id_words); k++) {
			if ((p = match_phrase(r, i, id_words[k])) == 0)
				continue;
			p = skip_blanks(r, p);
			while (p < r->n && (r->s[p] == ':' || r->s[p] == '#' || r->s[p] == '.'))
				p = skip_blanks(r, p + 1);
			if (match_phrase(r, p, "is"))
				p = skip_blanks(r, p + 2);
			if ((e = match_id_value(r, p)) != 0 && range_free(r, p, e)) {
				claim(r, p, e, "[id]");
				i = e - 1;
			}
			break;
		}
	}
}

/*
 * Record numbers on their own: a few letters and 6 digits or more
 * ("K123456"), or 7 digits or more that are no phone number, date or
 * decimal ("3.14159265").
 */
static void
find_bare_ids(struct redact *r)
{
	size_t i, p, e, letters, digits;

	for (i = 0; i < r->n; i++) {
		if (r->taken[i] || !at_word_start(r, i) || !is_wordch((unsigned char)r->s[i]))
			continue;
		e = word_end(r, i);
		if (i > 0 && strchr("+@/.,-_#", r->s[i - 1]) != NULL) {
			i = e > i ? e - 1 : i;
			continue;
		}
		for (p = i, letters = 0; p < e && is_alpha((unsigned char)r->s[p]); p++)
			letters++;
		for (digits = 0; p < e && is_digit((unsigned char)r->s[p]); p++)
			digits++;
		if (p == e && letters <= 3 && digits >= (letters ? 6u : 7u) && digits <= 12 &&
		    range_free(r, i, e))
			claim(r, i, e, "[id]");
		i = e > i ? e - 1 : i;
	}
}

static int
cmp_span(const void *a, const void *b)
{
	const struct rspan *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

char *
unanswered_redact(const char *text)
{
	struct redact r;
	struct buf out;
	size_t i, pos = 0;

	memset(&r, 0, sizeof(r));
	r.s = text;
	r.n = strlen(text);
	r.taken = xcalloc(r.n + 1, 1);
	find_emails(&r);
	find_dates(&r);
	find_named_ids(&r);
	find_phones(&r);
	find_bare_ids(&r);
	find_postcodes(&r);
	find_addresses(&r);
	find_names(&r);
	if (r.nv > 1)
		qsort(r.v, r.nv, sizeof(*r.v), cmp_span);
	buf_init(&out);
	for (i = 0; i < r.nv; i++) {
		buf_append(&out, text + pos, r.v[i].start - pos);
		buf_puts(&out, r.v[i].label);
		pos = r.v[i].end;
	}
	buf_append(&out, text + pos, r.n - pos);
	free(r.taken);
	free(r.v);
	return buf_steal(&out);
}

/* --- the log file --------------------------------------------------------- */

/* Creates dir and its parents (mode 0700) when missing. 0, or -1 with errno. */
static int
mkdir_p(const char *dir)
{
	char *p, *s;
	int rc = 0;

	if (dir[0] == '\0') {
		errno = ENOENT;
		return -1;
	}
	p = xstrdup(dir);
	for (s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) == -1 && errno != EEXIST) {
			rc = -1;
			break;
		}
		*s = '/';
	}
	if (rc == 0 && mkdir(p, 0700) == -1 && errno != EEXIST)
		rc = -1;
	free(p);
	return rc;
}

static char *
log_path(const char *state_dir)
{
	return xasprintf("%s/%s", state_dir, UNANSWERED_FILE);
}

/* The salted hash of a sender: 16 hex digits. */
static void
sender_hash(const char *sender, uint64_t salt, char out[17])
{
	struct buf b;
	unsigned char sb[8];
	uint64_t h;
	int i;

	for (i = 0; i < 8; i++)
		sb[i] = (unsigned char)(salt >> (8 * i));
	buf_init(&b);
	buf_append(&b, sb, sizeof(sb));
	buf_puts(&b, sender);
	buf_append(&b, sb, sizeof(sb));
	h = hash_bytes(b.data, b.len);
	/* Mix once more so that the low bits depend on every input byte. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	snprintf(out, 17, "%016" PRIx64, h);
	buf_free(&b);
}

int
unanswered_append(const char *state_dir, const char *room, const char *sender, uint64_t salt,
                  const char *text, int64_t when)
{
	return unanswered_append_note(state_dir, room, sender, salt, text, when, NULL);
}

int
unanswered_append_note(const char *state_dir, const char *room, const char *sender,
                       uint64_t salt, const char *text, int64_t when, const char *note)
{
	struct buf q, rm, line;
	struct tm tm;
	struct stat st;
	time_t t = (time_t)when;
	char stamp[32], hash[17], *red, *json, *path;
	cJSON *o;
	size_t off = 0;
	ssize_t w;
	int fd, saved;

	if (mkdir_p(state_dir) == -1)
		return -1;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		errno = EINVAL;
		return -1;
	}
	buf_init(&q);
	buf_init(&rm);
	clean_text(text ? text : "", UNANSWERED_MAX_QUESTION, &q);
	sender_hash(sender ? sender : "", salt, hash);
	if (room == NULL)
		buf_printf(&rm, "private:%s", hash);
	else
		clean_text(room, UNANSWERED_MAX_ROOM, &rm);
	red = unanswered_redact(q.data);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "time", stamp);
	cJSON_AddStringToObject(o, "room", rm.data);
	cJSON_AddStringToObject(o, "sender", hash);
	cJSON_AddStringToObject(o, "question", red);
	if (note != NULL)
		cJSON_AddStringToObject(o, "note", note);
	json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	free(red);
	buf_free(&q);
	buf_free(&rm);
	if (json == NULL) {
		errno = ENOMEM;
		return -1;
	}
	buf_init(&line);
	buf_puts(&line, json);
	buf_putc(&line, '\n');
	cJSON_free(json);
	path = log_path(state_dir);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	/* Full: it becomes the previous file (the one before goes), and a new one starts. */
	if (fd != -1 && fstat(fd, &st) == 0 && (size_t)st.st_size + line.len > UNANSWERED_MAX_BYTES) {
		char *old = xasprintf("%s.1", path);

		close(fd);
		fd = -1;
		if (rename(path, old) == -1)
			log_warn("cannot move the full %s aside", path);
		free(old);
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	}
	free(path);
	if (fd == -1)
		goto fail;
	/* One write: appends from two processes do not interleave within a line. */
	while (off < line.len) {
		if ((w = write(fd, line.data + off, line.len - off)) == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		off += (size_t)w;
	}
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	buf_free(&line);
	return 0;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	buf_free(&line);
	errno = saved;
	return -1;
}

/* --- reading the log ------------------------------------------------------ */

/* One logged question. */
struct entry {
	int64_t when;    /* seconds since the epoch */
	uint64_t sender; /* the salted hash */
	char *room;      /* the room (cleaned) */
	char *question;  /* the question (cleaned, perhaps cut) */
	char *note;      /* why it is here besides no answer ("marked unhelpful"), or NULL */
};

/* The newest entries of the log. */
struct entries {
	struct entry *e;  /* a ring of cap entries, oldest at (start) */
	size_t cap;       /* most kept */
	size_t n;         /* kept */
	size_t start;     /* index of the oldest kept */
	size_t total;     /* well-formed entries read (since the cut-off) */
	size_t malformed; /* lines skipped */
	size_t older;     /* entries before the cut-off */
	size_t qmax;      /* bytes of each question kept */
	int64_t first;    /* time of the oldest entry read, or 0 */
	int64_t last;     /* time of the newest, or 0 */
};

static void
entries_free(struct entries *es)
{
	size_t i;

	for (i = 0; i < es->n; i++) {
		free(es->e[(es->start + i) % es->cap].room);
		free(es->e[(es->start + i) % es->cap].question);
		free(es->e[(es->start + i) % es->cap].note);
	}
	free(es->e);
	memset(es, 0, sizeof(*es));
}

/* The i-th kept entry, oldest first. */
static struct entry *
entry_at(const struct entries *es, size_t i)
{
	return &es->e[(es->start + i) % es->cap];
}

/* Parses "2024-03-12T10:04:05Z"; returns -1 when malformed. */
static int64_t
parse_time(const char *s)
{
	char day[11];
	long d;
	int h, m, sec;

	if (strlen(s) != 20 || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z')
		return -1;
	memcpy(day, s, 10);
	day[10] = '\0';
	if ((d = date_parse_days(day)) < 0)
		return -1;
	if (!is_digit((unsigned char)s[11]) || !is_digit((unsigned char)s[12]) ||
	    !is_digit((unsigned char)s[14]) || !is_digit((unsigned char)s[15]) ||
	    !is_digit((unsigned char)s[17]) || !is_digit((unsigned char)s[18]))
		return -1;
	h = (s[11] - '0') * 10 + (s[12] - '0');
	m = (s[14] - '0') * 10 + (s[15] - '0');
	sec = (s[17] - '0') * 10 + (s[18] - '0');
	if (h > 23 || m > 59 || sec > 60)
		return -1;
	return (int64_t)d * 86400 + h * 3600 + m * 60 + sec;
}

/* Parses one line into e (room and question allocated). 0, or -1 when malformed. */
static int
parse_entry(const char *line, size_t len, size_t qmax, struct entry *e)
{
	const cJSON *t, *rm, *snd, *q, *note;
	cJSON *o = cJSON_ParseWithLength(line, len);
	struct buf b;
	char *end;
	size_t i;

	if (o == NULL)
		return -1;
	t = cJSON_GetObjectItemCaseSensitive(o, "time");
	rm = cJSON_GetObjectItemCaseSensitive(o, "room");
	snd = cJSON_GetObjectItemCaseSensitive(o, "sender");
	q = cJSON_GetObjectItemCaseSensitive(o, "question");
	if (!cJSON_IsObject(o) || !cJSON_IsString(t) || !cJSON_IsString(rm) ||
	    !cJSON_IsString(snd) || !cJSON_IsString(q) || strlen(snd->valuestring) != 16)
		goto bad;
	for (i = 0; i < 16; i++)
		if (strchr("0123456789abcdefABCDEF", snd->valuestring[i]) == NULL)
			goto bad;
	if ((e->when = parse_time(t->valuestring)) < 0)
		goto bad;
	e->sender = strtoull(snd->valuestring, &end, 16);
	buf_init(&b);
	clean_text(q->valuestring, qmax, &b);
	e->question = buf_steal(&b);
	clean_text(rm->valuestring, UNANSWERED_MAX_ROOM, &b);
	e->room = buf_steal(&b);
	e->note = NULL;
	note = cJSON_GetObjectItemCaseSensitive(o, "note");
	if (cJSON_IsString(note)) {
		clean_text(note->valuestring, 64, &b);
		e->note = buf_steal(&b);
	}
	cJSON_Delete(o);
	return 0;
bad:
	cJSON_Delete(o);
	return -1;
}

/* Adds one line to the ring. */
static void
entries_line(struct entries *es, const char *line, size_t len, int64_t since)
{
	struct entry e, *slot;

	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len == 0)
		return;
	if (parse_entry(line, len, es->qmax, &e) == -1) {
		es->malformed++;
		return;
	}
	if (e.when < since) {
		es->older++;
		free(e.room);
		free(e.question);
		free(e.note);
		return;
	}
	if (es->first == 0 || e.when < es->first)
		es->first = e.when;
	if (e.when > es->last)
		es->last = e.when;
	es->total++;
	if (es->n < es->cap) {
		es->e[(es->start + es->n++) % es->cap] = e;
		return;
	}
	slot = &es->e[es->start];
	free(slot->room);
	free(slot->question);
	free(slot->note);
	*slot = e;
	es->start = (es->start + 1) % es->cap;
}

/* Reads one log file into es (see entries_read). 0, or -1 when it cannot be opened. */
static int
entries_read_file(const char *path, int64_t since, struct entries *es)
{
	char chunk[4096];
	struct buf line;
	int toolong = 0;
	FILE *fp;

	if ((fp = fopen(path, "re")) == NULL)
		return -1;
	buf_init(&line);
	while (fgets(chunk, sizeof(chunk), fp) != NULL) {
		size_t n = strlen(chunk);
		int eol = n > 0 && chunk[n - 1] == '\n';

		if (!toolong) {
			if (line.len + n > UNANSWERED_MAX_LINE) {
				toolong = 1;
				buf_reset(&line);
			} else {
				buf_append(&line, chunk, n);
			}
		}
		if (!eol)
			continue;
		if (toolong)
			es->malformed++;
		else
			entries_line(es, line.data, line.len, since);
		toolong = 0;
		buf_reset(&line);
	}
	/* A last line without its newline (a write cut short). */
	if (toolong)
		es->malformed++;
	else if (line.len > 0)
		entries_line(es, line.data, line.len, since);
	buf_free(&line);
	fclose(fp);
	return 0;
}

/*
 * Reads the log once (the previous file, then the current one), keeping
 * the newest keep entries at or after since. Returns 0, or -1 with errno
 * when neither file can be opened (ENOENT: no log yet).
 */
static int
entries_read(const char *state_dir, size_t keep, size_t qmax, int64_t since, struct entries *es)
{
	char *path = log_path(state_dir), *old = xasprintf("%s.1", path);
	int got, saved;

	memset(es, 0, sizeof(*es));
	es->cap = keep ? keep : 1;
	es->qmax = qmax;
	es->e = xcalloc(es->cap, sizeof(*es->e));
	got = entries_read_file(old, since, es) == 0;
	got |= entries_read_file(path, since, es) == 0;
	saved = errno;
	free(path);
	free(old);
	if (!got) {
		entries_free(es);
		errno = saved;
		return -1;
	}
	return 0;
}

/* Appends text with the characters Markdown acts on escaped. */
static void
put_md(struct buf *out, const char *s)
{
	for (; *s; s++) {
		if (strchr("\\`*_[]<>#|~", *s) != NULL)
			buf_putc(out, '\\');
		buf_putc(out, *s);
	}
}

/* Appends the UTC date of when, and its time of day when clock is set. */
static void
put_time(struct buf *out, int64_t when, int clock)
{
	time_t t = (time_t)when;
	struct tm tm;
	char s[32];
	size_t n;

	if (gmtime_r(&t, &tm) == NULL)
		return;
	if (clock)
		n = strftime(s, sizeof(s), "%Y-%m-%d %H:%M UTC", &tm);
	else
		n = strftime(s, sizeof(s), "%Y-%m-%d", &tm);
	if (n > 0)
		buf_puts(out, s);
}

void
unanswered_recent(const char *state_dir, size_t n, struct buf *out)
{
	struct entries es;
	size_t i;

	if (n > UNANSWERED_KEEP)
		n = UNANSWERED_KEEP;
	if (n == 0 || entries_read(state_dir, n, UNANSWERED_MAX_QUESTION, 0, &es) == -1)
		return;
	for (i = es.n; i-- > 0;) {
		const struct entry *e = entry_at(&es, i);
		size_t k;

		buf_printf(out, "%zu. ", es.n - i);
		put_time(out, e->when, 1);
		buf_puts(out, ", `");
		for (k = 0; e->room[k]; k++)
			buf_putc(out, e->room[k] == '`' ? '\'' : e->room[k]);
		buf_puts(out, "`: ");
		put_md(out, e->question);
		if (e->note != NULL) {
			buf_puts(out, " (");
			put_md(out, e->note);
			buf_putc(out, ')');
		}
		buf_putc(out, '\n');
	}
	entries_free(&es);
}

void
unanswered_last(const char *state_dir, size_t n, char ***texts, size_t *count)
{
	struct entries es;
	size_t i;

	*texts = NULL;
	*count = 0;
	if (n > UNANSWERED_KEEP)
		n = UNANSWERED_KEEP;
	if (n == 0 || entries_read(state_dir, n, UNANSWERED_MAX_QUESTION, 0, &es) == -1)
		return;
	*texts = xcalloc(es.n ? es.n : 1, sizeof(**texts));
	for (i = es.n; i-- > 0;)
		(*texts)[(*count)++] = xstrdup(entry_at(&es, i)->question);
	entries_free(&es);
}

/* --- grouping ------------------------------------------------------------- */

/* A distinct question: the set of its content words. */
struct item {
	size_t off;      /* its words (ranks, ascending) in rep.pool */
	uint32_t nw;     /* how many */
	uint32_t count;  /* entries with this set */
	uint32_t newest; /* its newest entry */
	uint64_t score;  /* words shared with the rest of its group */
};

/* A group of similar questions. */
struct cluster {
	uint32_t leader; /* the item that started it; after rep_measure(), the representative */
	uint32_t *items; /* its items */
	uint32_t nitems; /* how many */
	uint32_t cap;    /* allocated */
	uint32_t count;  /* entries */
	uint32_t askers; /* distinct senders */
	int64_t newest;  /* time of its newest entry */
};

struct rep {
	struct entries es;  /* the entries, oldest first */
	struct smap words;  /* content word -> id */
	uint32_t nwords;    /* ids given */
	uint32_t *pool;     /* words of every item */
	size_t npool;       /* used */
	size_t cappool;     /* allocated */
	struct smap setidx; /* word set (bytes) -> item */
	struct item *it;    /* the distinct questions */
	size_t nit;         /* how many */
	uint32_t *enext;    /* entry -> the item's previous (older) entry, or UINT32_MAX */
	struct cluster *cl; /* the groups */
	size_t ncl;         /* how many */
};

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Placeholders left by redaction say nothing about the question. */
static int
is_placeholder(const char *w, size_t n)
{
	return (n == 4 && memcmp(w, "date", 4) == 0) || (n == 4 && memcmp(w, "name", 4) == 0) ||
	       (n == 5 && memcmp(w, "phone", 5) == 0) || (n == 5 && memcmp(w, "email", 5) == 0);
}

/* Interns one word (a crude plural folded: "scans" -> "scan"); returns its id. */
static uint32_t
word_id(struct rep *rp, const char *w, size_t n)
{
	uint32_t *v;
	int added;

	if (n >= 4 && w[n - 1] == 's' && w[n - 2] != 's' && w[n - 2] != 'u' && w[n - 2] != 'i')
		n--;
	v = smap_put(&rp->words, w, n, rp->nwords, &added);
	if (added)
		rp->nwords++;
	return *v;
}

/*
 * The content words of a normalised question as sorted unique ids into
 * *ids (grown as needed). Stop words are left out, unless nothing else is
 * left. Returns how many.
 */
static size_t
question_words(struct rep *rp, const char *norm, uint32_t **ids, size_t *cap)
{
	size_t n = 0, pass, k, out;
	const char *p, *e;

	for (pass = 0; pass < 2 && n == 0; pass++) {
		for (p = norm; *p; p = *e ? e + 1 : e) {
			e = strchr(p, ' ');
			if (e == NULL)
				e = p + strlen(p);
			if (e == p || (e - p == 1 && *p == '?'))
				continue;
			if (pass == 0 && (is_stop_word(p, (size_t)(e - p)) ||
			                  is_placeholder(p, (size_t)(e - p)) ||
			                  (e - p == 1 && !is_digit((unsigned char)*p))))
				continue;
			if (n == *cap) {
				*cap = *cap ? *cap * 2 : 32;
				*ids = xreallocarray(*ids, *cap, sizeof(**ids));
			}
			(*ids)[n++] = word_id(rp, p, (size_t)(e - p));
		}
	}
	qsort(*ids, n, sizeof(**ids), cmp_u32);
	for (k = 0, out = 0; k < n; k++)
		if (out == 0 || (*ids)[out - 1] != (*ids)[k])
			(*ids)[out++] = (*ids)[k];
	return out;
}

/* Builds the items: one per distinct word set, entries chained to them. */
static void
rep_items(struct rep *rp, const struct kb *kb)
{
	uint32_t *ids = NULL, *v;
	size_t cap = 0, i, n;
	int added;

	rp->enext = xcalloc(rp->es.n + 1, sizeof(*rp->enext));
	for (i = 0; i < rp->es.n; i++) {
		const struct entry *e = entry_at(&rp->es, i);
		char *norm = lexicon_normalise(kb ? kb->lx : NULL, e->question);
		struct item *it;

		n = question_words(rp, norm, &ids, &cap);
		free(norm);
		v = smap_put(&rp->setidx, (const char *)ids, n * sizeof(*ids), (uint32_t)rp->nit,
		             &added);
		if (added) {
			rp->it = xreallocarray(rp->it, rp->nit + 1, sizeof(*rp->it));
			it = &rp->it[rp->nit++];
			memset(it, 0, sizeof(*it));
			if (rp->npool + n > rp->cappool) {
				while (rp->npool + n > rp->cappool)
					rp->cappool = rp->cappool ? rp->cappool * 2 : 4096;
				rp->pool = xreallocarray(rp->pool, rp->cappool, sizeof(*rp->pool));
			}
			if (n > 0)
				memcpy(rp->pool + rp->npool, ids, n * sizeof(*ids));
			it->off = rp->npool;
			it->nw = (uint32_t)n;
			rp->npool += n;
			rp->enext[i] = UINT32_MAX;
		} else {
			it = &rp->it[*v];
			rp->enext[i] = it->newest;
		}
		it->count++;
		it->newest = (uint32_t)i;
	}
	free(ids);
}

/* Document frequency, then word id -> rank (rarest first); items rewritten in ranks. */
static void
rep_rank(struct rep *rp)
{
	uint32_t *df = xcalloc(rp->nwords + 1, sizeof(*df));
	uint32_t *rank = xcalloc(rp->nwords + 1, sizeof(*rank));
	uint64_t *key = xcalloc(rp->nwords + 1, sizeof(*key));
	size_t i, k;

	for (i = 0; i < rp->nit; i++)
		for (k = 0; k < rp->it[i].nw; k++)
			df[rp->pool[rp->it[i].off + k]]++;
	for (i = 0; i < rp->nwords; i++)
		key[i] = (uint64_t)df[i] << 32 | (uint64_t)i;
	qsort(key, rp->nwords, sizeof(*key), cmp_u64);
	for (i = 0; i < rp->nwords; i++)
		rank[(uint32_t)key[i]] = (uint32_t)i;
	for (i = 0; i < rp->nit; i++) {
		uint32_t *w = rp->pool + rp->it[i].off;

		for (k = 0; k < rp->it[i].nw; k++)
			w[k] = rank[w[k]];
		qsort(w, rp->it[i].nw, sizeof(*w), cmp_u32);
	}
	free(df);
	free(rank);
	free(key);
}

/* Words two sorted sets share. */
static uint32_t
overlap(const uint32_t *a, uint32_t na, const uint32_t *b, uint32_t nb)
{
	return (uint32_t)util_sorted_common(a, na, b, nb);
}

/* Words of a set of n that a similar set must share one of: |x| - ceil(t|x|) + 1. */
static uint32_t
prefix_len(uint32_t n)
{
	uint32_t need = (uint32_t)ceil(UNANSWERED_SIMILARITY * n - 1e-9);

	return n == 0 ? 0 : n - need + 1;
}

/* A growable list of cluster numbers, per word rank. */
struct posting {
	uint32_t *v; /* clusters whose leader has the word in its prefix */
	uint32_t n;  /* how many */
	uint32_t cap;
};

static void
cluster_add(struct cluster *c, uint32_t item)
{
	if (c->nitems == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 4;
		c->items = xreallocarray(c->items, c->cap, sizeof(*c->items));
	}
	c->items[c->nitems++] = item;
}

/* The report being sorted, for the qsort() comparators (one thread, no reentry). */
static const struct rep *sort_rep;

/* Sorts items by entries (most first), then newest. */
static int
cmp_item_order(const void *a, const void *b)
{
	const struct item *x = &sort_rep->it[*(const uint32_t *)a];
	const struct item *y = &sort_rep->it[*(const uint32_t *)b];

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	if (x->newest != y->newest)
		return x->newest > y->newest ? -1 : 1;
	return 0;
}

/* Greedy grouping: each item joins the most similar leader, or leads a new group. */
static void
rep_cluster(struct rep *rp)
{
	struct posting *post = xcalloc(rp->nwords + 1, sizeof(*post));
	uint32_t *order = xcalloc(rp->nit + 1, sizeof(*order));
	uint32_t *seen = xcalloc(rp->nit + 1, sizeof(*seen)); /* cluster -> item + 1 that saw it */
	size_t capcl = 0, i, k;

	for (i = 0; i < rp->nit; i++)
		order[i] = (uint32_t)i;
	sort_rep = rp;
	qsort(order, rp->nit, sizeof(*order), cmp_item_order);
	sort_rep = NULL;
	for (i = 0; i < rp->nit; i++) {
		uint32_t id = order[i], best = UINT32_MAX, p;
		struct item *it = &rp->it[id];
		const uint32_t *w = rp->pool + it->off;
		double bestj = 0;

		p = prefix_len(it->nw);
		for (k = 0; k < p; k++) {
			const struct posting *po = &post[w[k]];
			uint32_t j;

			for (j = 0; j < po->n; j++) {
				uint32_t c = po->v[j];
				const struct item *l = &rp->it[rp->cl[c].leader];
				uint32_t o;
				double jac;

				if (seen[c] == id + 1)
					continue;
				seen[c] = id + 1;
				o = overlap(w, it->nw, rp->pool + l->off, l->nw);
				jac = (double)o / (double)(it->nw + l->nw - o);
				if (jac >= UNANSWERED_SIMILARITY - 1e-9 &&
				    (jac > bestj || (jac == bestj && c < best))) {
					bestj = jac;
					best = c;
				}
			}
		}
		if (best == UINT32_MAX) {
			if (rp->ncl == capcl) {
				capcl = capcl ? capcl * 2 : 64;
				rp->cl = xreallocarray(rp->cl, capcl, sizeof(*rp->cl));
			}
			best = (uint32_t)rp->ncl++;
			memset(&rp->cl[best], 0, sizeof(rp->cl[best]));
			rp->cl[best].leader = id;
			for (k = 0; k < p; k++) {
				struct posting *po = &post[w[k]];

				if (po->n == po->cap) {
					po->cap = po->cap ? po->cap * 2 : 4;
					po->v = xreallocarray(po->v, po->cap, sizeof(*po->v));
				}
				po->v[po->n++] = best;
			}
		}
		cluster_add(&rp->cl[best], id);
	}
	for (i = 0; i < rp->nwords; i++)
		free(post[i].v);
	free(post);
	free(order);
	free(seen);
}

/* Counts, distinct askers and the representative of every group. */
static void
rep_measure(struct rep *rp)
{
	uint32_t *cf = xcalloc(rp->nwords + 1, sizeof(*cf));
	uint64_t *who = xcalloc(rp->es.n + 1, sizeof(*who));
	size_t c, k, j, nwho;

	for (c = 0; c < rp->ncl; c++) {
		struct cluster *cl = &rp->cl[c];
		uint32_t best = cl->items[0];

		nwho = 0;
		cl->count = 0;
		for (k = 0; k < cl->nitems; k++) {
			const struct item *it = &rp->it[cl->items[k]];
			uint32_t e;

			cl->count += it->count;
			for (j = 0; j < it->nw; j++)
				cf[rp->pool[it->off + j]] += it->count;
			for (e = it->newest; e != UINT32_MAX; e = rp->enext[e]) {
				const struct entry *en = entry_at(&rp->es, e);

				who[nwho++] = en->sender;
				if (en->when > cl->newest)
					cl->newest = en->when;
			}
		}
		qsort(who, nwho, sizeof(*who), cmp_u64);
		cl->askers = 0;
		for (k = 0; k < nwho; k++)
			if (k == 0 || who[k] != who[k - 1])
				cl->askers++;
		/* Words an item shares with every other entry of the group: sum of cf - own. */
		for (k = 0; k < cl->nitems; k++) {
			struct item *it = &rp->it[cl->items[k]];
			const struct item *b = &rp->it[best];

			it->score = 0;
			for (j = 0; j < it->nw; j++)
				it->score += cf[rp->pool[it->off + j]] - 1;
			if (it->score > b->score ||
			    (it->score == b->score && it->count > b->count) ||
			    (it->score == b->score && it->count == b->count &&
			     it->newest > b->newest))
				best = cl->items[k];
		}
		cl->leader = best; /* from now on: the representative */
		for (k = 0; k < cl->nitems; k++) {
			const struct item *it = &rp->it[cl->items[k]];

			for (j = 0; j < it->nw; j++)
				cf[rp->pool[it->off + j]] = 0;
		}
	}
	free(cf);
	free(who);
}

static int
cmp_cluster_rank(const void *a, const void *b)
{
	const struct cluster *x = &sort_rep->cl[*(const uint32_t *)a];
	const struct cluster *y = &sort_rep->cl[*(const uint32_t *)b];

	if (x->askers != y->askers)
		return x->askers > y->askers ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	if (x->newest != y->newest)
		return x->newest > y->newest ? -1 : 1;
	return cmp_u32(a, b);
}

static void
rep_free(struct rep *rp)
{
	size_t i;

	for (i = 0; i < rp->ncl; i++)
		free(rp->cl[i].items);
	free(rp->cl);
	free(rp->it);
	free(rp->pool);
	free(rp->enext);
	smap_free(&rp->words);
	smap_free(&rp->setidx);
	entries_free(&rp->es);
}

/* Appends one group: its counts, representative question and examples. */
static void
rep_print_group(const struct rep *rp, size_t rankno, const struct cluster *cl, struct buf *out)
{
	const char *shown[1 + UNANSWERED_EXAMPLES];
	const struct item *rep = &rp->it[cl->leader];
	size_t nshown = 0, k, j;
	uint32_t *order = xcalloc(cl->nitems + 1, sizeof(*order));

	shown[nshown++] = entry_at(&rp->es, rep->newest)->question;
	buf_printf(out, "%zu. %u time%s, by %u %s: \"%s\"\n", rankno, cl->count,
	           cl->count == 1 ? "" : "s", cl->askers, cl->askers == 1 ? "person" : "people",
	           shown[0]);
	/* Examples: other phrasings first (most asked), then other wordings of the same. */
	memcpy(order, cl->items, cl->nitems * sizeof(*order));
	sort_rep = rp;
	qsort(order, cl->nitems, sizeof(*order), cmp_item_order);
	sort_rep = NULL;
	for (k = 0; k < cl->nitems && nshown < 1 + UNANSWERED_EXAMPLES; k++) {
		const char *q;

		if (order[k] == cl->leader)
			continue;
		q = entry_at(&rp->es, rp->it[order[k]].newest)->question;
		for (j = 0; j < nshown; j++)
			if (strcasecmp(shown[j], q) == 0)
				break;
		if (j < nshown)
			continue;
		shown[nshown++] = q;
		buf_printf(out, "   - \"%s\"\n", q);
	}
	for (k = rp->enext[rep->newest]; k != UINT32_MAX && nshown < 1 + UNANSWERED_EXAMPLES;
	     k = rp->enext[k]) {
		const char *q = entry_at(&rp->es, k)->question;

		for (j = 0; j < nshown; j++)
			if (strcasecmp(shown[j], q) == 0)
				break;
		if (j < nshown)
			continue;
		shown[nshown++] = q;
		buf_printf(out, "   - \"%s\"\n", q);
	}
	free(order);
}

void
unanswered_report(const char *state_dir, const struct kb *kb, size_t top, int64_t since,
                  struct buf *out)
{
	struct rep rp;
	uint32_t *rank;
	size_t i, n;

	memset(&rp, 0, sizeof(rp));
	smap_init(&rp.words);
	smap_init(&rp.setidx);
	if (entries_read(state_dir, UNANSWERED_KEEP, UNANSWERED_KEEP_QUESTION, since, &rp.es) ==
	    -1) {
		if (errno == ENOENT)
			buf_printf(out, "No unanswered questions logged yet (%s/%s).\n", state_dir,
			           UNANSWERED_FILE);
		else
			buf_printf(out, "Cannot read %s/%s: %s\n", state_dir, UNANSWERED_FILE,
			           strerror(errno));
		return;
	}
	rep_items(&rp, kb);
	rep_rank(&rp);
	rep_cluster(&rp);
	rep_measure(&rp);

	buf_printf(out, "# Unanswered questions\n\n%zu question%s", rp.es.total,
	           rp.es.total == 1 ? "" : "s");
	if (rp.es.total > 0) {
		buf_puts(out, " from ");
		put_time(out, rp.es.first, 0);
		buf_puts(out, " to ");
		put_time(out, rp.es.last, 0);
	}
	buf_printf(out, ", in %zu group%s", rp.ncl, rp.ncl == 1 ? "" : "s");
	if (rp.es.total > rp.es.n)
		buf_printf(out, " (the newest %zu grouped)", rp.es.n);
	buf_puts(out, ".\n");
	if (rp.es.older > 0)
		buf_printf(out, "%zu older question%s not counted.\n", rp.es.older,
		           rp.es.older == 1 ? "" : "s");
	if (rp.es.malformed > 0)
		buf_printf(out, "%zu malformed line%s skipped.\n", rp.es.malformed,
		           rp.es.malformed == 1 ? "" : "s");

	rank = xcalloc(rp.ncl + 1, sizeof(*rank));
	for (i = 0; i < rp.ncl; i++)
		rank[i] = (uint32_t)i;
	sort_rep = &rp;
	qsort(rank, rp.ncl, sizeof(*rank), cmp_cluster_rank);
	sort_rep = NULL;
	n = top == 0 || top > rp.ncl ? rp.ncl : top;
	if (n > 0)
		buf_putc(out, '\n');
	for (i = 0; i < n; i++)
		rep_print_group(&rp, i + 1, &rp.cl[rank[i]], out);
	free(rank);
	rep_free(&rp);
}

/* --- faqbot unanswered ---------------------------------------------------- */

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: faqbot unanswered [-c CONFIG] [--state DIR] [--top N] [--since DAYS]\n"
	            "                         [--recent N]\n\n"
	            "Groups the questions that got no answer and ranks the groups by how many\n"
	            "people asked, so that moderators see which intents to write next. They are\n"
	            "read from unanswered.jsonl and unanswered.jsonl.1 (the log is moved there\n"
	            "past 4 MiB), with personal data already blanked out.\n\n"
	            "  -c, --config FILE  configuration (for the state directory and intents)\n"
	            "      --state DIR    state directory (default: the config's, else\n"
	            "                     $STATE_DIRECTORY, else ./state)\n"
	            "      --top N        show the N largest groups (default 10)\n"
	            "      --since DAYS   only questions from the last DAYS days\n"
	            "      --recent N     list the last N (up to 1000) questions instead, newest\n"
	            "                     first\n"
	            "  -h, --help         this help\n");
}

/* Parses a whole number from 1 to max; -1 when it is not one. */
static long
parse_count(const char *s, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < 1 || v > max)
		return -1;
	return v;
}

enum {
	OPT_STATE = 256,
	OPT_TOP,
	OPT_SINCE,
	OPT_RECENT,
};

int
unanswered_main(int argc, char **argv)
{
	static const struct option lo[] = {{"config", required_argument, NULL, 'c'},
	                                   {"state", required_argument, NULL, OPT_STATE},
	                                   {"top", required_argument, NULL, OPT_TOP},
	                                   {"since", required_argument, NULL, OPT_SINCE},
	                                   {"recent", required_argument, NULL, OPT_RECENT},
	                                   {"help", no_argument, NULL, 'h'},
	                                   {NULL, 0, NULL, 0}};
	const char *config = NULL, *state = NULL;
	long top = 10, days = 0, recent = 0;
	struct config cfg;
	struct diag_list d;
	struct kb *kb = NULL;
	struct buf out;
	char *dir, *path;
	int ch, fd, rc = 0;

	optind = 0; /* glibc: start afresh (this can run more than once in tests) */
	while ((ch = getopt_long(argc, argv, "c:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case OPT_STATE:
			state = optarg;
			break;
		case OPT_TOP:
			if ((top = parse_count(optarg, 100000)) == -1) {
				fprintf(stderr, "faqbot unanswered: --top wants a number from 1\n");
				return 2;
			}
			break;
		case OPT_SINCE:
			if ((days = parse_count(optarg, 36500)) == -1) {
				fprintf(
				    stderr,
				    "faqbot unanswered: --since wants a number of days from 1\n");
				return 2;
			}
			break;
		case OPT_RECENT:
			if ((recent = parse_count(optarg, 1000)) == -1) {
				fprintf(
				    stderr,
				    "faqbot unanswered: --recent wants a number from 1 to 1000\n");
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "faqbot unanswered: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	config_defaults(&cfg);
	diag_list_init(&d);
	if (config != NULL && config_load(&cfg, config, &d) == -1) {
		diag_print(&d, stderr, DIAG_WARNING);
		diag_list_free(&d);
		config_free(&cfg);
		return 1;
	}
	diag_print(&d, stderr, DIAG_WARNING);
	diag_list_free(&d);
	log_init((enum log_level)cfg.log_level, 0);
	dir = state ? xstrdup(state) : config_state_dir(&cfg);

	/* Tell a missing log (nothing asked yet) from one that cannot be read. */
	path = log_path(dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT) {
			printf("No unanswered questions logged yet (%s).\n", path);
		} else {
			fprintf(stderr, "faqbot unanswered: %s: %s\n", path, strerror(errno));
			rc = 1;
		}
		goto out;
	}
	close(fd);

	buf_init(&out);
	if (recent > 0) {
		unanswered_recent(dir, (size_t)recent, &out);
		if (out.len == 0)
			buf_puts(&out, "No unanswered questions logged.\n");
	} else {
		const char *ip[1] = {cfg.intents_dir}, *rsp[1] = {cfg.responses_dir};
		/* Only its lexicon is used here: a set without safety intents will do. */
		struct kb_source src = {.intent_paths = ip,
		                        .nintent = cfg.intents_dir[0] ? 1 : 0,
		                        .response_paths = rsp,
		                        .nresponse = cfg.responses_dir[0] ? 1 : 0,
		                        .partial = 1,
		                        .no_model = 1};

		diag_list_init(&d);
		if ((kb = kb_load(&src, &d)) == NULL) {
			diag_print(&d, stderr, DIAG_WARNING);
			fprintf(stderr, "faqbot unanswered: the intents did not load; grouping "
			                "without the lexicon\n");
		}
		diag_list_free(&d);
		unanswered_report(dir, kb, (size_t)top,
		                  days > 0 ? (int64_t)now_wall() - (int64_t)days * 86400 : 0, &out);
	}
	if (fwrite(out.data ? out.data : "", 1, out.len, stdout) != out.len ||
	    fflush(stdout) != 0) {
		fprintf(stderr, "faqbot unanswered: cannot write the report: %s\n",
		        strerror(errno));
		rc = 1;
	}
	buf_free(&out);
out:
	kb_free(kb);
	free(path);
	free(dir);
	config_free(&cfg);
	return rc;
}
