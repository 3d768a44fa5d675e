/*
 * Text normalisation and the small text utilities around it (UTF-8, case
 * folding, reading grade). See text.h for the steps and the contract.
 */
#include "text.h"

#include <ctype.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wctype.h>

#include <unicode/uchar.h>
#include <unicode/uspoof.h>
#include <utf8proc.h>

#include "lexicon.h"
#include "log.h"
#include "smap.h"

/* The C.UTF-8 locale gives Unicode case mapping and classes without
 * touching the process's global locale. */
static locale_t utf8_locale;
static int utf8_locale_tried;

static locale_t
text_locale(void)
{
	if (!utf8_locale_tried) {
		utf8_locale_tried = 1;
		utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	}
	return utf8_locale;
}

char *
text_display_safe(const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p), i = 0, k;
	struct buf b;
	uint32_t cp;
	char enc[4];

	buf_init(&b);
	while (i < n) {
		k = text_utf8_decode(p + i, n - i, &cp);
		i += k;
		if ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
			continue;
		if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
			cp = ' ';
		k = text_utf8_encode(cp, enc);
		if (b.len + k > max)
			break;
		buf_append(&b, enc, k);
	}
	return buf_steal(&b);
}

size_t
text_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t len, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xe0) == 0xc0) {
		len = 2;
		c &= 0x1f;
		min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3;
		c &= 0x0f;
		min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4;
		c &= 0x07;
		min = 0x10000;
	} else {
		*cp = 0xfffd;
		return 1;
	}
	if (n < len) {
		*cp = 0xfffd;
		return 1;
	}
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			*cp = 0xfffd;
			return 1;
		}
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
		*cp = 0xfffd;
		return 1;
	}
	*cp = c;
	return len;
}

size_t
text_utf8_encode(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
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

int
text_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;
	uint32_t cp;

	while (i < n) {
		k = text_utf8_decode(p + i, n - i, &cp);
		if (cp == 0xfffd &&
		    !(k == 3 && p[i] == 0xef && p[i + 1] == 0xbf && p[i + 2] == 0xbd))
			return 0;
		i += k;
	}
	return 1;
}

static uint32_t
cp_fold(uint32_t cp)
{
	locale_t loc;

	if (cp < 0x80)
		return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
	/* Simple case folding beyond lower-casing, as caseless PCRE2 matches. */
	switch (cp) {
	case 0x017f: /* long s */
		return 's';
	case 0x212a: /* Kelvin sign */
		return 'k';
	case 0x03c2: /* final sigma */
		return 0x03c3;
	case 0x00b5: /* micro sign */
		return 0x03bc;
	case 0x212b: /* Angstrom sign */
		return 0x00e5;
	case 0x1e9e: /* capital sharp s */
		return 0x00df;
	}
	if ((loc = text_locale()) == (locale_t)0)
		return cp;
	return (uint32_t)towlower_l((wint_t)cp, loc);
}

static int
cp_is_upper(uint32_t cp)
{
	locale_t loc;

	if (cp < 0x80)
		return cp >= 'A' && cp <= 'Z';
	if ((loc = text_locale()) == (locale_t)0)
		return 0;
	return iswupper_l((wint_t)cp, loc) != 0;
}

static int
cp_is_alpha(uint32_t cp)
{
	locale_t loc;

	if (cp < 0x80)
		return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
	if ((loc = text_locale()) == (locale_t)0)
		return 0;
	return iswalpha_l((wint_t)cp, loc) != 0;
}

/* Marks that carry nothing for matching and must not split a word:
 * combining marks, variation selectors, zero-width and bidi controls. */
static int
cp_is_dropped(uint32_t cp)
{
	return (cp >= 0x0300 && cp <= 0x036f) || (cp >= 0x0483 && cp <= 0x0489) ||
	       (cp >= 0x1ab0 && cp <= 0x1aff) || (cp >= 0x1dc0 && cp <= 0x1dff) ||
	       (cp >= 0x20d0 && cp <= 0x20ff) || (cp >= 0xfe00 && cp <= 0xfe0f) ||
	       (cp >= 0xfe20 && cp <= 0xfe2f) || (cp >= 0x200b && cp <= 0x200f) ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x206f) || cp == 0x00ad ||
	       cp == 0x180e || cp == 0xfeff || (cp >= 0xe0000 && cp <= 0xe007f);
}

static int
cp_is_word(uint32_t cp)
{
	locale_t loc;

	if (cp < 0x80)
		return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
		       (cp >= '0' && cp <= '9');
	if (cp == 0xfffd)
		return 0;
	if ((loc = text_locale()) == (locale_t)0)
		return 0;
	return iswalnum_l((wint_t)cp, loc) != 0;
}

static int
cp_is_apostrophe(uint32_t cp)
{
	return cp == '\'' || cp == 0x2019 || cp == 0x2018 || cp == 0x02bc || cp == '`';
}

static int
cp_is_qmark(uint32_t cp)
{
	return cp == '?' || cp == 0xff1f || cp == 0x00bf || cp == 0x2048 || cp == 0x2049;
}

/* Ends a clause, so the next word may open a question. */
static int
cp_is_clause_break(uint32_t cp)
{
	return cp == '.' || cp == ',' || cp == ';' || cp == ':' || cp == '!' || cp == '\n' ||
	       cp == '\r' || cp == 0x2014 || cp == 0x2013 || cp == 0x2026 || cp == 0x3002 ||
	       cp == 0xff01 || cp == 0xff0c ||
	       /* an emoji ends what came before it: "PD again 😞 whats next" */
	       (cp >= 0x1f300 && cp <= 0x1faff) || (cp >= 0x2600 && cp <= 0x27bf);
}

/*
 * Compatibility mapping (NFKC, by utf8proc) of one character, cached: most
 * messages are ASCII, and the others use few characters again and again.
 * The cache is direct-mapped and small; a mapping longer than it holds is
 * worked out each time.
 */
#define COMPAT_CACHE 1024
#define COMPAT_CACHED 4

struct compat_entry {
	uint32_t cp;                   /* the character, or 0: empty */
	uint8_t n;                     /* characters in its mapping */
	uint32_t out[COMPAT_CACHED];   /* its mapping */
};

static struct compat_entry compat_cache[COMPAT_CACHE];

static size_t
cp_compat(uint32_t cp, uint32_t out[TEXT_COMPAT_MAX])
{
	struct compat_entry *ce = &compat_cache[cp % COMPAT_CACHE];
	utf8proc_uint8_t *mapped = NULL;
	utf8proc_uint8_t enc[4];
	utf8proc_ssize_t m;
	size_t n = 0, i;

	if (cp < 0x80 || cp == 0xfffd) {
		out[0] = cp;
		return 1;
	}
	if (ce->cp == cp) {
		memcpy(out, ce->out, ce->n * sizeof(*out));
		return ce->n;
	}
	m = utf8proc_encode_char((utf8proc_int32_t)cp, enc);
	if (m > 0 && utf8proc_map(enc, m, &mapped,
	                          UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT) > 0) {
		for (i = 0; mapped[i] && n < TEXT_COMPAT_MAX;)
			i += text_utf8_decode(mapped + i, strlen((char *)mapped + i), &out[n++]);
	}
	free(mapped);
	if (n == 0) {
		/* Unassigned, or a mapping to nothing: the character as it is. */
		out[0] = cp;
		n = 1;
	}
	if (n <= COMPAT_CACHED) {
		ce->cp = cp;
		ce->n = (uint8_t)n;
		memcpy(ce->out, out, n * sizeof(*out));
	}
	return n;
}

char *
text_fold(const char *s, size_t n, size_t *outlen)
{
	const unsigned char *p = (const unsigned char *)s;
	struct buf b;
	char enc[4];
	uint32_t cp;
	size_t i = 0;

	buf_init(&b);
	buf_reserve(&b, n);
	while (i < n) {
		i += text_utf8_decode(p + i, n - i, &cp);
		buf_append(&b, enc, text_utf8_encode(cp_fold(cp), enc));
	}
	if (outlen)
		*outlen = b.len;
	return buf_steal(&b);
}

void
text_norm_init(struct text_norm *n)
{
	memset(n, 0, sizeof(*n));
	buf_init(&n->text);
	buf_init(&n->raw);
	buf_init(&n->fix);
}

void
text_norm_free(struct text_norm *n)
{
	buf_free(&n->text);
	buf_free(&n->raw);
	buf_free(&n->fix);
	free(n->tok);
	free(n->rawtok);
	free(n->fixtok);
	text_norm_init(n);
}

static struct text_token *
push_token(struct text_token **arr, size_t *count, size_t *cap)
{
	if (*count == *cap) {
		*cap = *cap ? *cap * 2 : 32;
		*arr = xreallocarray(*arr, *cap, sizeof(**arr));
	}
	memset(&(*arr)[*count], 0, sizeof(**arr));
	return &(*arr)[(*count)++];
}

/*
 * Where to cut a message of len bytes (len > cap) so that at most cap bytes
 * are kept and no valid character is split: a sequence that starts before
 * the cap and ends after it is dropped whole, or its first bytes would read
 * as invalid UTF-8 in a message that had none. Invalid bytes at the cap are
 * cut where they fall; they are invalid either way.
 */
static size_t
cut_at_char(const unsigned char *p, size_t len, size_t cap)
{
	size_t start = cap, k;
	uint32_t cp;

	while (start > 0 && cap - start < 3 && (p[start] & 0xc0) == 0x80)
		start--;
	if (start == cap)
		return cap;
	k = text_utf8_decode(p + start, len - start, &cp);
	if (start + k > cap)
		return start;
	return cap;
}

/* Where split_words() is, between one character and the next. */
struct split {
	struct text_norm *n;
	const unsigned char *p; /* the message */
	size_t len;             /* the bytes looked at */
	size_t i, k;            /* the source character being read: its offset and length */
	struct text_token *w;   /* the word being built, or NULL */
	int clause;             /* the next word opens a clause */
	int upper, lower, first_upper, letters; /* letter case of the word */
	int lastq;              /* the last token was a "?" */
	int truncated;          /* TEXT_MAX_TOKENS reached */
};

static void
split_end_word(struct split *sp)
{
	struct text_token *w = sp->w;

	if (w == NULL)
		return;
	w->len = (uint32_t)(sp->n->raw.len - w->off);
	if (sp->letters >= 2 && sp->first_upper && sp->upper == 1 && sp->lower > 0)
		w->flags |= TOK_CAPITALISED;
	if (sp->letters >= 2 && sp->upper == sp->letters)
		w->flags |= TOK_ALLCAPS;
	if (sp->letters > 0)
		w->flags |= TOK_HAS_ALPHA;
	buf_putc(&sp->n->raw, '\0');
	sp->w = NULL;
}

/* The first character (after compatibility mapping) of the source character after this one. */
static uint32_t
split_next(const struct split *sp)
{
	uint32_t next, exp[TEXT_COMPAT_MAX];

	if (sp->i + sp->k >= sp->len)
		return 0;
	text_utf8_decode(sp->p + sp->i + sp->k, sp->len - sp->i - sp->k, &next);
	return cp_compat(next, exp) > 0 ? exp[0] : next;
}

/* Reads one character (of the source character's mapping); -1 when the word cap is hit. */
static int
split_cp(struct split *sp, uint32_t cp)
{
	struct text_norm *n = sp->n;
	const unsigned char *p = sp->p;
	size_t i = sp->i;
	struct text_token *w;
	char enc[4];

	if (cp_is_dropped(cp))
		return 0;
	if (cp_is_word(cp)) {
		if (sp->w == NULL) {
			if (n->nraw >= TEXT_MAX_TOKENS)
				return -1;
			w = sp->w = push_token(&n->rawtok, &n->nraw, &n->capraw);
			w->off = (uint32_t)n->raw.len;
			w->src_off = (uint32_t)i;
			w->flags = sp->clause ? TOK_CLAUSE_START : 0;
			/* "@Mark", but not the "example" of "jo@example.org". */
			if (i > 0 && p[i - 1] == '@' &&
			    (i == 1 || !(isalnum(p[i - 2]) || p[i - 2] == '.' || p[i - 2] == '_')))
				w->flags |= TOK_AT;
			sp->clause = 0;
			sp->upper = sp->lower = sp->letters = sp->first_upper = 0;
			sp->lastq = 0;
		}
		if (cp_is_alpha(cp)) {
			if (cp_is_upper(cp)) {
				if (sp->letters == 0)
					sp->first_upper = 1;
				sp->upper++;
			} else {
				sp->lower++;
			}
			sp->letters++;
		}
		buf_append(&n->raw, enc, text_utf8_encode(cp_fold(cp), enc));
		sp->w->src_len = (uint32_t)(i + sp->k - sp->w->src_off);
		return 0;
	}
	/* "what's" -> "whats" */
	if (sp->w != NULL && cp_is_apostrophe(cp) && cp_is_word(split_next(sp)))
		return 0;
	split_end_word(sp);
	if (cp_is_qmark(cp)) {
		if (!sp->lastq) {
			if (n->nraw >= TEXT_MAX_TOKENS)
				return -1;
			w = push_token(&n->rawtok, &n->nraw, &n->capraw);
			w->off = (uint32_t)n->raw.len;
			w->src_off = (uint32_t)i;
			w->src_len = (uint32_t)sp->k;
			w->flags = TOK_QMARK;
			buf_putc(&n->raw, '?');
			w->len = 1;
			buf_putc(&n->raw, '\0');
			sp->lastq = 1;
		}
		sp->clause = 1;
	} else if (cp_is_clause_break(cp)) {
		sp->clause = 1;
	} else if (cp == '-' && i > 0 && (p[i - 1] == ' ' || p[i - 1] == '\t')) {
		sp->clause = 1; /* "targeted therapy - what does it target" */
	}
	return 0;
}

/*
 * Step 1-3: split the message into folded words in n->raw / n->rawtok.
 * Each word remembers its span in the message and its letter case. Each
 * character is read as its compatibility mapping (NFKC: "ｋ" as "k", "ﬁ"
 * as "fi"); a symbol that maps to letters ("™" to "TM") is a word of its
 * own, so that it never sticks to the word before it.
 */
static void
split_words(struct text_norm *n, int *invalid, int *truncated)
{
	struct split sp;
	uint32_t cp, exp[TEXT_COMPAT_MAX];
	size_t nexp, e;
	int own_word;

	memset(&sp, 0, sizeof(sp));
	sp.n = n;
	sp.p = (const unsigned char *)n->src;
	sp.len = n->srclen;
	sp.clause = 1;
	if (sp.len > TEXT_MAX_INPUT) {
		sp.len = cut_at_char(sp.p, sp.len, TEXT_MAX_INPUT);
		*truncated = 1;
	}
	buf_reset(&n->raw);
	n->nraw = 0;
	while (sp.i < sp.len && !sp.truncated) {
		sp.k = text_utf8_decode(sp.p + sp.i, sp.len - sp.i, &cp);
		if (cp == 0xfffd && sp.k == 1)
			*invalid = 1;
		nexp = cp_compat(cp, exp);
		own_word = !cp_is_word(cp) && !cp_is_dropped(cp) && nexp > 0 && cp_is_word(exp[0]);
		if (own_word)
			split_end_word(&sp);
		for (e = 0; e < nexp && !sp.truncated; e++)
			sp.truncated = split_cp(&sp, exp[e]) == -1;
		if (own_word)
			split_end_word(&sp);
		sp.i += sp.k;
	}
	split_end_word(&sp);
	if (sp.truncated)
		*truncated = 1;
}

/* --- step 3b: words as people disguise or stretch them ------------------- */

/*
 * Latin letters that look like cp, by Unicode's confusables (UTS #39) as
 * ICU's spoof checker has them: the lower-case ASCII letters whose
 * skeleton is cp's, or its upper case's ("к" looks like "k" only as "К").
 * Up to 2 in *out (NUL-terminated); returns how many (0: none). Cached.
 */
#define LOOK_CACHE 512

struct look_entry {
	uint32_t cp;    /* the character, or 0: empty */
	char letters[3]; /* its Latin lookalikes */
};

static struct look_entry look_cache[LOOK_CACHE];
static USpoofChecker *spoof;
static int spoof_tried;
static char ascii_skel[52][8]; /* skeletons of a-z, then A-Z */

/* The skeleton of cp into out (NUL-terminated); its length, or -1. */
static int
skeleton(uint32_t cp, char *out, size_t cap)
{
	char enc[4];
	UErrorCode st = U_ZERO_ERROR;
	int32_t n;

	n = uspoof_getSkeletonUTF8(spoof, 0, enc, (int32_t)text_utf8_encode(cp, enc), out,
	                           (int32_t)cap - 1, &st);
	if (U_FAILURE(st) || n < 0 || (size_t)n >= cap)
		return -1;
	out[n] = '\0';
	return n;
}

static size_t
cp_lookalike(uint32_t cp, char out[3])
{
	struct look_entry *le = &look_cache[cp % LOOK_CACHE];
	char sk[32];
	size_t n = 0, i, pass;
	uint32_t c;

	out[0] = '\0';
	if (cp < 0x80 || !cp_is_alpha(cp))
		return 0;
	if (le->cp == cp) {
		memcpy(out, le->letters, sizeof(le->letters));
		return strlen(out);
	}
	if (!spoof_tried) {
		UErrorCode st = U_ZERO_ERROR;

		spoof_tried = 1;
		spoof = uspoof_open(&st);
		if (U_FAILURE(st)) {
			uspoof_close(spoof);
			spoof = NULL;
			log_warnx("ICU's spoof checker cannot be opened (%s): letters of other "
			          "scripts that look Latin are read as they are",
			          u_errorName(st));
		}
		for (i = 0; spoof && i < 52; i++)
			if (skeleton(i < 26 ? 'a' + i : 'A' + i - 26, ascii_skel[i],
			             sizeof(ascii_skel[i])) < 0)
				ascii_skel[i][0] = '\0';
	}
	/* cp itself, then its upper case: a lower-case letter may look Latin only as a capital. */
	for (pass = 0; spoof && pass < 2 && n == 0; pass++) {
		c = pass == 0 ? cp : (uint32_t)u_toupper((UChar32)cp);
		if ((pass == 1 && c == cp) || skeleton(c, sk, sizeof(sk)) <= 0)
			continue;
		for (i = 0; i < 52 && n < 2; i++) {
			char l = (char)(i < 26 ? 'a' + i : 'a' + i - 26);

			if (ascii_skel[i][0] && strcmp(sk, ascii_skel[i]) == 0 &&
			    memchr(out, l, n) == NULL)
				out[n++] = l;
		}
	}
	out[n] = '\0';
	le->cp = cp;
	memcpy(le->letters, out, sizeof(le->letters));
	return n;
}

/* Readings of one character (or letter run) of a word: at most 2, "" if none. */
struct fix_slot {
	char opt[2][8]; /* each a short string of letters */
	int nopt;       /* how many */
};

#define FIX_MAX_SLOTS  40 /* longer words are not read through */
#define FIX_MAX_COMBOS 64 /* readings of a word tried at most */

/* What a word holds that step 3b reads (see build_slots). */
struct fix_info {
	int run;       /* an ASCII letter three times or more */
	int digit;     /* a digit read as a letter */
	int symbol;    /* a symbol read as a letter */
	int foreign;   /* a letter of another script with a Latin lookalike */
	int latin;     /* an ASCII letter */
	int unmapped;  /* a character read as itself only (a digit, an accented letter) */
};

static void
slot_set(struct fix_slot *sl, const char *a, const char *b)
{
	snprintf(sl->opt[0], sizeof(sl->opt[0]), "%s", a);
	sl->nopt = 1;
	if (b != NULL) {
		snprintf(sl->opt[1], sizeof(sl->opt[1]), "%s", b);
		sl->nopt = 2;
	}
}

/*
 * Cuts w (n bytes: folded letters, digits, and the symbols ! | $ @ between
 * words joined) into slots; returns how many, or -1 when it is too long.
 */
static int
build_slots(const char *w, size_t n, int read_digits, struct fix_slot *sl, struct fix_info *fi)
{
	static const char *const digit_as[10][2] = {
	    {"o", NULL}, {"i", "l"}, {NULL, NULL}, {"e", NULL}, {"a", NULL},
	    {"s", NULL}, {NULL, NULL}, {"t", NULL}, {NULL, NULL}, {NULL, NULL}};
	size_t i = 0, r, k;
	int ns = 0;
	uint32_t cp;
	char look[3], one[8];

	memset(fi, 0, sizeof(*fi));
	while (i < n) {
		unsigned char c = (unsigned char)w[i];

		if (ns == FIX_MAX_SLOTS)
			return -1;
		if (c >= 'a' && c <= 'z') {
			for (r = 1; i + r < n && w[i + r] == (char)c; r++)
				;
			fi->latin = 1;
			if (r >= 3) {
				char two[3] = {(char)c, (char)c, '\0'};

				one[0] = (char)c;
				one[1] = '\0';
				slot_set(&sl[ns++], two, one);
				fi->run = 1;
			} else {
				for (k = 0; k < r; k++)
					one[k] = (char)c;
				one[r] = '\0';
				slot_set(&sl[ns++], one, NULL);
			}
			i += r;
		} else if (c >= '0' && c <= '9') {
			one[0] = (char)c;
			one[1] = '\0';
			if (read_digits && digit_as[c - '0'][0]) {
				slot_set(&sl[ns++], digit_as[c - '0'][0], digit_as[c - '0'][1]);
				fi->digit = 1;
			} else {
				slot_set(&sl[ns++], one, NULL);
				fi->unmapped = 1;
			}
			i++;
		} else if (c == '!' || c == '|' || c == '$' || c == '@') {
			if (c == '!')
				slot_set(&sl[ns++], "i", "l");
			else if (c == '|')
				slot_set(&sl[ns++], "l", "i");
			else
				slot_set(&sl[ns++], c == '$' ? "s" : "a", NULL);
			fi->symbol = 1;
			i++;
		} else {
			k = text_utf8_decode((const unsigned char *)w + i, n - i, &cp);
			if (cp_lookalike(cp, look) > 0) {
				char a[2] = {look[0], '\0'}, b[2] = {look[1], '\0'};

				slot_set(&sl[ns++], a, look[1] ? b : NULL);
				fi->foreign = 1;
			} else {
				if (k >= sizeof(one))
					return -1;
				memcpy(one, w + i, k);
				one[k] = '\0';
				slot_set(&sl[ns++], one, NULL);
				fi->unmapped = 1;
			}
			i += k;
		}
	}
	return ns;
}

/* The reading that choice (a number in mixed radix, slot by slot) picks, into out. */
static void
slots_reading(const struct fix_slot *sl, int ns, unsigned choice, struct buf *out)
{
	int i;

	buf_reset(out);
	for (i = 0; i < ns; i++) {
		buf_puts(out, sl[i].opt[sl[i].nopt > 1 ? choice % 2 : 0]);
		if (sl[i].nopt > 1)
			choice /= 2;
	}
}

/* The first reading (runs as two letters first) that the lexicon knows, into out; 1 if any. */
static int
slots_known(const struct lexicon *lx, const struct fix_slot *sl, int ns, struct buf *out)
{
	unsigned combos = 1, c;
	int i;

	for (i = 0; i < ns && combos < FIX_MAX_COMBOS; i++)
		if (sl[i].nopt > 1)
			combos *= 2;
	if (combos > FIX_MAX_COMBOS)
		combos = FIX_MAX_COMBOS;
	for (c = 0; c < combos; c++) {
		slots_reading(sl, ns, c, out);
		if (out->len > 0 && (lexicon_has_word(lx, out->data, out->len) ||
		                     lexicon_is_known(lx, out->data, out->len)))
			return 1;
	}
	return 0;
}

/*
 * When nothing known comes of a word: a word that mixes Latin letters and
 * lookalikes from another script is read as Latin all the same ("кillers"),
 * and letters typed three times are cut to one ("hmmm", "aaargh").
 * Digits and anything else stay as written. Returns 1 when out differs.
 */
static int
slots_fallback(const struct fix_slot *sl, int ns, const struct fix_info *fi, struct buf *out)
{
	int i;

	if (!fi->run && !(fi->foreign && fi->latin))
		return 0;
	buf_reset(out);
	for (i = 0; i < ns; i++) {
		const char *o = sl[i].opt[0];

		/* A run reads as one letter; a digit or symbol as itself. */
		if (sl[i].nopt == 2 && strlen(sl[i].opt[0]) == 2 && sl[i].opt[0][0] == sl[i].opt[0][1])
			o = sl[i].opt[1];
		buf_puts(out, o);
	}
	return 1;
}

/* Roman numerals ("iii", "iv", "iiib"), which a run must never shorten. */
static int
is_roman(const char *w, size_t n)
{
	size_t i;

	if (n > 1 && strchr("abc", w[n - 1]) != NULL)
		n--;
	for (i = 0; i < n; i++)
		if (strchr("ivxlcdm", w[i]) == NULL)
			return 0;
	return n > 0;
}

/* Appends a word to n->fix / n->fixtok, as read from raw tokens a..b. */
static void
fix_push(struct text_norm *n, const char *w, size_t len, size_t a, size_t b, uint32_t extra)
{
	struct text_token *t = push_token(&n->fixtok, &n->nfix, &n->capfix);
	const struct text_token *first = &n->rawtok[a], *last = &n->rawtok[b];

	t->off = (uint32_t)n->fix.len;
	t->len = (uint32_t)len;
	t->src_off = first->src_off;
	t->src_len = last->src_off + last->src_len - first->src_off;
	t->flags = (a == b ? first->flags : (first->flags & ~(TOK_CAPITALISED | TOK_ALLCAPS))) | extra;
	buf_append(&n->fix, w, len);
	buf_putc(&n->fix, '\0');
}

/* Raw token j follows token i across one symbol ("k!ll", "w@nt"); returns the symbol or 0. */
static char
joined_by_symbol(const struct text_norm *n, size_t i, size_t j)
{
	const struct text_token *a = &n->rawtok[i], *b = &n->rawtok[j];
	const unsigned char *s = (const unsigned char *)n->src;
	size_t end = a->src_off + a->src_len;
	char c;

	if ((a->flags | b->flags) & TOK_QMARK || b->src_off != end + 1 || end == 0)
		return 0;
	c = (char)s[end];
	if (strchr("!|$@", c) == NULL || c == '\0')
		return 0;
	/* Letters on both sides, as written. */
	if (!isalpha(s[end - 1]) || !isalpha(s[b->src_off]))
		return 0;
	return c;
}

/* "want2die", "looking4help": two known words around a 2 or a 4. */
static int
split_at_number_word(const struct lexicon *lx, struct text_norm *n, size_t i, const char *w,
                     size_t len)
{
	size_t k, d = len;

	for (k = 0; k < len; k++) {
		if (w[k] >= 'a' && w[k] <= 'z')
			continue;
		if ((w[k] != '2' && w[k] != '4') || d != len)
			return 0;
		d = k;
	}
	if (d == len || d < 2 || len - d - 1 < 2 || !lexicon_has_word(lx, w, d) ||
	    !lexicon_has_word(lx, w + d + 1, len - d - 1))
		return 0;
	fix_push(n, w, d, i, i, TOK_DEOBFUSCATED);
	fix_push(n, w[d] == '2' ? "to" : "for", w[d] == '2' ? 2 : 3, i, i, TOK_DEOBFUSCATED);
	n->fixtok[n->nfix - 1].flags &= ~(uint32_t)(TOK_CLAUSE_START | TOK_CAPITALISED | TOK_ALLCAPS);
	fix_push(n, w + d + 1, len - d - 1, i, i, TOK_DEOBFUSCATED);
	n->fixtok[n->nfix - 1].flags &= ~(uint32_t)(TOK_CLAUSE_START | TOK_CAPITALISED | TOK_ALLCAPS);
	return 1;
}

/*
 * Step 3b (see text.h): from n->raw / n->rawtok into n->fix / n->fixtok,
 * which then take their places.
 */
static void
deobfuscate(const struct lexicon *lx, struct text_norm *n)
{
	struct fix_slot sl[FIX_MAX_SLOTS];
	struct fix_info fi;
	struct buf src, out;
	size_t i, j, k, changed = 0;
	int ns, letters, digits, digit_run, maxdrun;

	buf_init(&src);
	buf_init(&out);
	buf_reset(&n->fix);
	n->nfix = 0;
	for (i = 0; i < n->nraw; i = j + 1) {
		const struct text_token *t = &n->rawtok[i];
		const char *w = n->raw.data + t->off;
		char sym;

		j = i;
		if (t->flags & TOK_QMARK) {
			fix_push(n, w, t->len, i, i, 0);
			continue;
		}
		/* Words joined by symbols, as "k!ll" or "$u!c!de" was cut: read as one. */
		buf_reset(&src);
		buf_append(&src, w, t->len);
		for (k = i; k + 1 < n->nraw && k - i < 3 && (sym = joined_by_symbol(n, k, k + 1));
		     k++) {
			buf_putc(&src, sym);
			buf_append(&src, n->raw.data + n->rawtok[k + 1].off, n->rawtok[k + 1].len);
		}
		if (t->src_off > 0 && n->src[t->src_off - 1] == '$' && isalpha((unsigned char)w[0]) &&
		    (t->src_off == 1 || !isalnum((unsigned char)n->src[t->src_off - 2]))) {
			buf_reset(&out);
			buf_putc(&out, '$');
			buf_append(&out, src.data, src.len);
			buf_reset(&src);
			buf_append(&src, out.data, out.len);
		}
		if (k > i || src.data[0] == '$') {
			if ((ns = build_slots(src.data, src.len, 1, sl, &fi)) > 0 &&
			    slots_known(lx, sl, ns, &out)) {
				fix_push(n, out.data, out.len, i, k, TOK_DEOBFUSCATED);
				j = k;
				changed++;
				continue;
			}
		}
		/* One word. */
		if (t->len > 2 * FIX_MAX_SLOTS || lexicon_is_known(lx, w, t->len) ||
		    lexicon_has_word(lx, w, t->len) || is_roman(w, t->len)) {
			fix_push(n, w, t->len, i, i, 0);
			continue;
		}
		if (split_at_number_word(lx, n, i, w, t->len)) {
			changed++;
			continue;
		}
		/* Digits are read as letters in a word of 3 letters or more ("4th", "b17" stay). */
		letters = digits = digit_run = maxdrun = 0;
		for (k = 0; k < t->len; k++) {
			if (w[k] >= '0' && w[k] <= '9') {
				digits++;
				digit_run++;
				maxdrun = digit_run > maxdrun ? digit_run : maxdrun;
			} else {
				digit_run = 0;
				letters += ((unsigned char)w[k] & 0xc0) != 0x80;
			}
		}
		ns = build_slots(w, t->len, digits > 0 && letters >= 3 && maxdrun <= 2, sl, &fi);
		if (ns <= 0 || !(fi.run || fi.digit || fi.foreign)) {
			fix_push(n, w, t->len, i, i, 0);
			continue;
		}
		if (slots_known(lx, sl, ns, &out) || slots_fallback(sl, ns, &fi, &out)) {
			fix_push(n, out.data, out.len, i, i, TOK_DEOBFUSCATED);
			changed++;
		} else {
			fix_push(n, w, t->len, i, i, 0);
		}
	}
	buf_free(&src);
	buf_free(&out);
	if (changed) {
		struct buf tb = n->raw;
		struct text_token *tt = n->rawtok;
		size_t tn = n->nraw, tc = n->capraw;

		n->raw = n->fix;
		n->rawtok = n->fixtok;
		n->nraw = n->nfix;
		n->capraw = n->capfix;
		n->fix = tb;
		n->fixtok = tt;
		n->nfix = tn;
		n->capfix = tc;
	}
}

static void
emit(struct text_norm *n, const char *s, size_t len, const struct text_token *from,
     uint32_t src_end, uint32_t extra)
{
	struct text_token *t = push_token(&n->tok, &n->ntok, &n->captok);

	if (n->text.len > 0)
		buf_putc(&n->text, ' ');
	t->off = (uint32_t)n->text.len;
	t->len = (uint32_t)len;
	t->src_off = from->src_off;
	t->src_len = src_end - from->src_off;
	t->flags = (from->flags & ~(TOK_REWRITTEN | TOK_CORRECTED)) | extra;
	buf_append(&n->text, s, len);
}

/* Step 4: synonyms and spelling, from n->rawtok into n->text / n->tok. */
static void
apply_lexicon(const struct lexicon *lx, struct text_norm *n)
{
	const char *words[LEXICON_MAX_PHRASE];
	uint32_t lens[LEXICON_MAX_PHRASE];
	size_t i = 0, j, avail, used;
	const char *canon, *fix, *p, *q;

	while (i < n->nraw) {
		struct text_token *rt = &n->rawtok[i];
		const char *word = n->raw.data + rt->off;

		if (lx != NULL && !(rt->flags & TOK_QMARK)) {
			for (avail = 0; avail < LEXICON_MAX_PHRASE && i + avail < n->nraw;
			     avail++) {
				struct text_token *x = &n->rawtok[i + avail];

				if (x->flags & TOK_QMARK)
					break;
				words[avail] = n->raw.data + x->off;
				lens[avail] = x->len;
			}
			canon = lexicon_rewrite(lx, words, lens, avail, &used);
			if (canon != NULL) {
				struct text_token *last = &n->rawtok[i + used - 1];
				uint32_t end = last->src_off + last->src_len;
				uint32_t keep = 0;

				/* Case flags only mean something for a word kept as one. */
				for (j = 0; j < used; j++)
					keep |= n->rawtok[i + j].flags & TOK_CLAUSE_START;
				for (p = canon; *p; p = *q ? q + 1 : q) {
					struct text_token from = *rt;

					q = strchr(p, ' ');
					if (q == NULL)
						q = p + strlen(p);
					from.flags = (p == canon ? keep : 0) | TOK_HAS_ALPHA;
					if (used == 1 && p == canon)
						from.flags |=
						    rt->flags & (TOK_CAPITALISED | TOK_ALLCAPS);
					emit(n, p, (size_t)(q - p), &from, end, TOK_REWRITTEN);
				}
				i += used;
				continue;
			}
			fix = lexicon_correct(lx, word, rt->len);
			if (fix != NULL) {
				emit(n, fix, strlen(fix), rt, rt->src_off + rt->src_len,
				     TOK_CORRECTED);
				i++;
				continue;
			}
		}
		emit(n, word, rt->len, rt, rt->src_off + rt->src_len, 0);
		i++;
	}
}

/* Word categories for step 5. */
enum {
	W_WH = 1 << 0,             /* what, how, why ... */
	W_AUX = 1 << 1,            /* is, can, does ... opening a yes/no question */
	W_STATEMENT = 1 << 2,      /* after an opening aux, a subject-less statement */
	W_AFTER_WH = 1 << 3,       /* after a wh-word mid-sentence, still a question */
	W_YOU = 1 << 4,            /* second person */
	W_FUNCTION = 1 << 5,       /* never a person's name */
	W_REQUEST = 1 << 6,        /* explain, wondering ... */
	W_SUBJECT = 1 << 7,        /* a pronoun that follows an inverted aux: "can it" */
	W_NO_INVERSION = 1 << 8,   /* before "is it", no question: "this is it" */
	W_CONJ = 1 << 9,           /* and, or, but: a new clause may start after it */
	W_NARRATIVE = 1 << 10,     /* a person, a day, a greeting: the message tells, not asks */
	W_GREETING = 1 << 11,      /* hi, thanks ...: a name right after it is spoken to */
	W_GOVERNS = 1 << 12,       /* about, the, my ...: a name right after it is spoken of */
	W_PARTICLE_VERB = 1 << 13, /* get, hold ...: the "on" after it is no preposition */
	W_DAYTIME = 1 << 14,       /* morning ...: a greeting only as "(good) morning" */
	W_RELATIVE = 1 << 15,      /* which, who ...: mid-sentence, maybe a relative pronoun */
	W_QUESTION = 1 << 16,      /* question, q: "genuine q" */
	W_QUESTION_KIND = 1 << 17, /* quick, honest ...: the word before "question" */
	W_TO_ROOM = 1 << 18,       /* anyone, btw, usually ...: turns to the whole room */
};

static struct smap wordcat;
static int wordcat_ready;

static void
wordcat_add(const char *list, uint32_t cat)
{
	const char *p = list, *q;
	uint32_t *v;
	int added;

	while (*p) {
		q = strchr(p, ' ');
		if (q == NULL)
			q = p + strlen(p);
		v = smap_put(&wordcat, p, (size_t)(q - p), cat, &added);
		if (!added)
			*v |= cat;
		p = *q ? q + 1 : q;
	}
}

static uint32_t
wordcat_get(const char *w, size_t len)
{
	uint32_t *v;

	if (!wordcat_ready) {
		smap_init(&wordcat);
		wordcat_add("what whats how hows why when where which who whos whose whom",
		            W_WH | W_FUNCTION);
		wordcat_add("is are am was were can could does do did should would will shall "
		            "has have may might must isnt arent doesnt",
		            W_AUX | W_FUNCTION);
		wordcat_add("been told just so really very not never always still gonna going "
		            "got getting done great good nice lovely finally also too glad "
		            "happy back off barely hardly only",
		            W_STATEMENT);
		wordcat_add("is are was were does do did can could should would will has have "
		            "if about kind type types long much many else happens happened "
		            "means mean causes exactly to bother comes come next now then",
		            W_AFTER_WH);
		wordcat_add("and or but so then", W_CONJ);
		wordcat_add(
		    "i im ive id ill me my mine we were weve our us he hes his him she shes "
		    "her they theyre their them you your today tonight yesterday tomorrow "
		    "lol haha thanks thank welcome congrats congratulations hello hi hey "
		    "morning evening night bye monday tuesday wednesday thursday friday "
		    "saturday sunday week weekend month nervous scared excited worried "
		    "anxious luck crossed back going went gone had having felt finished "
		    "home sleep slept exhausted heading headed feel feels",
		    W_NARRATIVE);
		wordcat_add("you your u ur yours youre yourself ya yall", W_YOU | W_FUNCTION);
		wordcat_add("i im ive id ill me my mine we our us they their them he his him "
		            "she her it its this that these those the a an and or but so if "
		            "then hi hey hello thanks thank thx ty welcome morning evening "
		            "night good bye ok okay yes no please pls lol omg dear sorry "
		            "oh ah well also hope love xx god jesus dr doctor mum mom dad "
		            "there here today tomorrow yesterday not",
		            W_FUNCTION);
		wordcat_add("explain explained explaining wondering wonder curious", W_REQUEST);
		wordcat_add("i you it he she we they there this that these those people patients "
		            "doctors anyone someone somebody everyone most many",
		            W_SUBJECT);
		wordcat_add("this that thats it its here there which who what where how when "
		            "whatever whoever so as",
		            W_NO_INVERSION);
		wordcat_add("hi hey hello hiya heya howdy thanks thank thx ty cheers welcome "
		            "congrats congratulations dear bye sorry hugs",
		            W_GREETING);
		wordcat_add("morning afternoon evening night", W_DAYTIME);
		wordcat_add("which who whose whom", W_RELATIVE);
		wordcat_add("question q qn", W_QUESTION);
		wordcat_add("quick genuine honest serious random dumb stupid silly general newbie",
		            W_QUESTION_KIND);
		wordcat_add("anyone anybody everyone everybody btw usually generally general",
		            W_TO_ROOM);
		/*
		 * Prepositions, determiners, conjunctions and the verbs of taking or
		 * asking about a treatment want an object, and a title comes before
		 * the name of someone talked about: "tell me about Lutathera", "have
		 * you tried Xofigo", "can you explain Pluvicto", "Dr Patel", "St
		 * Marys". Not "like" ("what was it like Sarah?"), "this" and "that"
		 * ("thanks for that Sarah") or "her", which also end a clause.
		 */
		wordcat_add("about of on with for from to in into at by regarding re than via "
		            "after before without vs versus called named the a an any some my "
		            "your our their his every each and or nor take takes taking took "
		            "taken try tried trying start started starting using prescribed "
		            "explain describe compare recommend recommended suggest mention "
		            "mentioned dr doctor prof professor st saint",
		            W_GOVERNS);
		wordcat_add("get gets getting got go goes going went come coming carry carrying "
		            "hold holding keep keeping hang hanging",
		            W_PARTICLE_VERB);
		wordcat_ready = 1;
	}
	v = smap_get(&wordcat, w, len);
	return v ? *v : 0;
}

static int
tok_is(const struct text_norm *n, size_t i, const char *w)
{
	size_t l = strlen(w);

	return i < n->ntok && n->tok[i].len == l && memcmp(n->text.data + n->tok[i].off, w, l) == 0;
}

static uint32_t
tok_cat(const struct text_norm *n, size_t i)
{
	if (i >= n->ntok)
		return 0;
	return wordcat_get(n->text.data + n->tok[i].off, n->tok[i].len);
}

static int
is_bot_name(const struct text_norm *n, size_t i, const char *const *bot_names)
{
	for (; bot_names && *bot_names; bot_names++)
		if (tok_is(n, i, *bot_names))
			return 1;
	return 0;
}

/* Token i says hello or thanks: "thanks", "hi", "good morning", "Morning". */
static int
is_greeting(const struct text_norm *n, size_t i)
{
	uint32_t cat = tok_cat(n, i);

	if (cat & W_GREETING)
		return 1;
	/* "last night Mike said ..." is no greeting. */
	return (cat & W_DAYTIME) &&
	       ((n->tok[i].flags & TOK_CLAUSE_START) || (i > 0 && tok_is(n, i - 1, "good")));
}

/*
 * Token i is the object of the word before it, so it names what is spoken
 * of: "tell me about Lutathera", "have you tried Xofigo", "the Mayo". "on"
 * after "getting", "hold" ... is a particle: "how are you getting on Sue?".
 */
static int
is_governed(const struct text_norm *n, size_t i)
{
	if (i == 0 || (n->tok[i].flags & TOK_CLAUSE_START) || !(tok_cat(n, i - 1) & W_GOVERNS))
		return 0;
	if (tok_is(n, i - 1, "on") && i >= 2 && (tok_cat(n, i - 2) & W_PARTICLE_VERB))
		return 0;
	return 1;
}

/* Token i is the last word of its clause: a break, a "?" or the end follows. */
static int
ends_clause(const struct text_norm *n, size_t i)
{
	return i + 1 >= n->ntok || (n->tok[i + 1].flags & (TOK_QMARK | TOK_CLAUSE_START));
}

/*
 * The clause holding token i opens with a greeting ("Thanks so much ...",
 * "oh hi ...") or, if asks is set, with a question word ("how did ...",
 * "are you ..."). Token i itself opening the clause does not count.
 */
static int
clause_opens(const struct text_norm *n, size_t i, int asks)
{
	size_t s = i;

	while (s > 0 && !(n->tok[s].flags & TOK_CLAUSE_START))
		s--;
	if (s == i)
		return 0;
	if (is_greeting(n, s) || (s + 1 < i && is_greeting(n, s + 1)))
		return 1;
	return asks && (tok_cat(n, s) & (W_WH | W_AUX));
}

/*
 * Token i (a capitalised word that is no known word) stands where a name
 * is spoken to:
 *  - opening a clause before a question word or "you": "Tom how are you";
 *  - right after a greeting ("Thanks Sarah, how are you?"), or, in a
 *    clause that opens with one, after "you" or closing the clause
 *    ("thank you Sarah how are you", "thank you so much Sarah, ...");
 *  - closing a clause that asks, or the message, or a question: "how did
 *    your scan go Mike?", "how are you Sue, hope it went well".
 * A word that is the object of the word before it is spoken of, not to:
 * "could you tell me about Lutathera?" (is_governed).
 * last_word is the index of the last token that is not "?".
 */
static int
is_vocative(const struct text_norm *n, size_t i, size_t last_word)
{
	const struct text_token *t = &n->tok[i];

	if ((t->flags & TOK_CLAUSE_START) && (tok_cat(n, i + 1) & (W_WH | W_AUX | W_YOU)))
		return 1;
	if (i == 0 || is_governed(n, i))
		return 0;
	if (is_greeting(n, i - 1))
		return 1;
	if ((tok_cat(n, i - 1) & W_YOU) && clause_opens(n, i, 0))
		return 1;
	if (ends_clause(n, i) && clause_opens(n, i, 1))
		return 1;
	return i == last_word || (i + 1 < n->ntok && (n->tok[i + 1].flags & TOK_QMARK));
}

/*
 * Where the message proper starts, after an opening that only calls the bot
 * or the room: "faqbot is it curable", "bot what is PD-L1", "hi all quick
 * question does ...", "hey bot, ...". Those words are a vocative or a
 * greeting, so the word after them opens the question as if it came
 * first. Returns the index of that word (0 when there is no such opening).
 */
static size_t
opening_end(const struct text_norm *n, const char *const *bot_names)
{
	size_t i = 0;

	while (i < n->ntok && i < 6) {
		if (n->tok[i].flags & TOK_QMARK)
			break;
		if (is_bot_name(n, i, bot_names) || tok_is(n, i, "bot") ||
		    (tok_cat(n, i) & W_GREETING) || tok_is(n, i, "all") ||
		    tok_is(n, i, "everyone") || tok_is(n, i, "folks") || tok_is(n, i, "guys") ||
		    tok_is(n, i, "ok") || tok_is(n, i, "okay") || tok_is(n, i, "um") ||
		    tok_is(n, i, "please") || tok_is(n, i, "pls") ||
		    (tok_is(n, i, "quick") && tok_is(n, i + 1, "question")) ||
		    (tok_is(n, i, "question") && i > 0 && tok_is(n, i - 1, "quick")) ||
		    (tok_is(n, i, "good") && (tok_cat(n, i + 1) & W_DAYTIME)) ||
		    ((tok_cat(n, i) & W_DAYTIME) && i > 0 && tok_is(n, i - 1, "good"))) {
			i++;
			continue;
		}
		break;
	}
	/* Only an opening when something follows it. */
	return i < n->ntok ? i : 0;
}

/*
 * Token i is "were" written "we're" (or "we’re"): a subject and a verb,
 * not the "were" that opens a question ("were you told ...?").
 */
static int
is_we_are(const struct text_norm *n, size_t i)
{
	const struct text_token *t = &n->tok[i];

	/* Four letters came from more bytes: the apostrophe was dropped. */
	return tok_is(n, i, "were") && t->src_len > 4 &&
	       !(t->flags & (TOK_REWRITTEN | TOK_CORRECTED));
}

/* Token i opens a clause: after a break, or right after the opening. */
static int
opens_clause(const struct text_norm *n, size_t i, size_t start)
{
	return (n->tok[i].flags & TOK_CLAUSE_START) || (start > 0 && i == start);
}

/*
 * After the mention at token at, a clause turns to the whole room ("does
 * anyone know", "can I ask", "btw", "do X usually ...") and no "you"
 * follows it.
 */
static int
asks_the_room(const struct text_norm *n, size_t at)
{
	size_t i, s;

	for (i = at + 1; i < n->ntok; i++) {
		if (!((tok_cat(n, i) & W_TO_ROOM) ||
		      (tok_is(n, i, "ask") && tok_is(n, i - 1, "i") &&
		       (tok_is(n, i - 2, "can") || tok_is(n, i - 2, "could") ||
		        tok_is(n, i - 2, "may")))))
			continue;
		/* The clause holding the marker must not be the mention's own. */
		for (s = i; s > at && !(n->tok[s].flags & TOK_CLAUSE_START); s--)
			;
		if (s == at)
			continue;
		for (s = i; s < n->ntok; s++)
			if (tok_cat(n, s) & W_YOU)
				return 0;
		return 1;
	}
	return 0;
}

/* Step 5: does the message ask something, and of whom. */
static void
compute_features(const struct lexicon *lx, const char *const *bot_names, struct text_norm *n)
{
	size_t i, last_word = (size_t)-1, start = opening_end(n, bot_names);
	int second_person = 0;

	for (i = 0; i < n->ntok; i++) {
		const struct text_token *t = &n->tok[i];
		uint32_t cat = tok_cat(n, i);

		if (is_we_are(n, i))
			cat = (cat & ~(uint32_t)W_AUX) | W_NARRATIVE;
		if (t->flags & TOK_QMARK) {
			n->flags |= TEXT_QUESTION;
			continue;
		}
		last_word = i;
		if (cat & W_YOU)
			second_person = 1;
		if (is_bot_name(n, i, bot_names))
			n->flags |= TEXT_TO_BOT;
		if (opens_clause(n, i, start) && (cat & W_WH))
			n->flags |= TEXT_QUESTION;
		if ((opens_clause(n, i, start) || (i > 0 && (tok_cat(n, i - 1) & W_CONJ))) &&
		    (cat & W_AUX) && i + 1 < n->ntok && !(tok_cat(n, i + 1) & W_STATEMENT) &&
		    !(n->tok[i + 1].flags & TOK_QMARK))
			n->flags |= TEXT_QUESTION;
		/* "curable yes or no", "... or not": asks. */
		if (tok_is(n, i, "or") && (tok_is(n, i + 1, "not") || tok_is(n, i + 1, "no")) &&
		    (i + 2 >= n->ntok || (n->tok[i + 2].flags & TOK_QMARK)))
			n->flags |= TEXT_QUESTION;
		/* ... but not a relative pronoun: "which is annoying", "my friend who is a nurse". */
		if ((cat & W_WH) && (tok_cat(n, i + 1) & W_AFTER_WH) &&
		    (!(cat & W_RELATIVE) || opens_clause(n, i, start)))
			n->flags |= TEXT_QUESTION;
		/* "... but why only there", "and how long": a wh-word after a conjunction asks. */
		if ((cat & W_WH) && i > 0 && (tok_cat(n, i - 1) & W_CONJ) && i + 1 < n->ntok &&
		    !(n->tok[i + 1].flags & TOK_QMARK))
			n->flags |= TEXT_QUESTION;
		/* "genuine q", "honest question", "dumb question": the writer says it asks. */
		if ((cat & W_QUESTION) && i > 0 && (tok_cat(n, i - 1) & W_QUESTION_KIND))
			n->flags |= TEXT_QUESTION;
		/* Inversion anywhere: "... can it still be cured", "... is there a cure". */
		if ((cat & W_AUX) && !opens_clause(n, i, start) &&
		    (tok_cat(n, i + 1) & W_SUBJECT) && !(tok_cat(n, i - 1) & W_NO_INVERSION))
			n->flags |= TEXT_QUESTION;
		if (cat & W_REQUEST)
			n->flags |= TEXT_QUESTION;
		if ((tok_is(n, i, "tell") || tok_is(n, i, "show")) &&
		    (tok_is(n, i + 1, "me") || tok_is(n, i + 1, "us")))
			n->flags |= TEXT_QUESTION;
		if (tok_is(n, i, "know") && i >= 2 && tok_is(n, i - 1, "to") &&
		    (tok_is(n, i - 2, "want") || tok_is(n, i - 2, "like") ||
		     tok_is(n, i - 2, "need") || tok_is(n, i - 2, "love")))
			n->flags |= TEXT_QUESTION;
		/* "if it works does the cancer ...": an inverted question mid-sentence. */
		if (!opens_clause(n, i, start) && i > 0 &&
		    (tok_is(n, i, "does") || tok_is(n, i, "do") || tok_is(n, i, "did") ||
		     tok_is(n, i, "can") || tok_is(n, i, "could") || tok_is(n, i, "will") ||
		     tok_is(n, i, "would") || tok_is(n, i, "should")) &&
		    (tok_is(n, i + 1, "the") || tok_is(n, i + 1, "my") || tok_is(n, i + 1, "his") ||
		     tok_is(n, i + 1, "her") || tok_is(n, i + 1, "your") || tok_is(n, i + 1, "a")) &&
		    !(tok_cat(n, i - 1) & (W_SUBJECT | W_NO_INVERSION | W_YOU)))
			n->flags |= TEXT_QUESTION;
		/* "list of ...", "explain ..." opening the message proper: a request. */
		if (i == start && (tok_is(n, i, "list") || tok_is(n, i, "define") ||
		                   tok_is(n, i, "describe")))
			n->flags |= TEXT_QUESTION;
		/* "any truth to it", "any (general) tips for ...": asks. */
		if (tok_is(n, i, "any") && (tok_is(n, i + 1, "truth") || tok_is(n, i + 1, "evidence") ||
		                            tok_is(n, i + 1, "proof") || tok_is(n, i + 1, "tips") ||
		                            tok_is(n, i + 2, "tips") || tok_is(n, i + 1, "advice") ||
		                            tok_is(n, i + 1, "suggestions") || tok_is(n, i + 1, "ideas")))
			n->flags |= TEXT_QUESTION;
		if ((tok_is(n, i, "info") || tok_is(n, i, "information")) &&
		    (tok_is(n, i + 1, "on") || tok_is(n, i + 1, "about") ||
		     tok_is(n, i + 1, "regarding")))
			n->flags |= TEXT_QUESTION;
	}
	/*
	 * A few words with no person, day or greeting in them read as a search
	 * ("life expectancy stage 4 colon cancer"): a question.
	 */
	{
		size_t words = 0, k;
		int narrative = 0;

		/* The opening ("hey bot", "faqbot") is no part of the search. */
		for (k = start; k < n->ntok; k++) {
			if (n->tok[k].flags & TOK_QMARK)
				continue;
			words++;
			/* A verb or a person makes it a statement: "results are back". */
			if ((tok_cat(n, k) & (W_NARRATIVE | W_AUX)) || is_we_are(n, k))
				narrative = 1;
		}
		if (memchr(n->src, '!', n->srclen) != NULL)
			narrative = 1;
		if (words >= 2 && words <= 8 && !narrative)
			n->flags |= TEXT_QUESTION;
	}
	/* "help" opening the message, or right after its opening ("faqbot help"), asks for help. */
	if (n->ntok > 0 && (tok_is(n, 0, "help") || tok_is(n, start, "help")))
		n->flags |= TEXT_QUESTION;

	/*
	 * Put to another member, in a message that says "you": a capitalised
	 * word that is not a known word, where a name is spoken to rather than
	 * spoken of (see is_vocative).
	 */
	/*
	 * "@Mark did the onc agree?": a mention of someone who is not the bot,
	 * unless a later clause turns to the room with no "you" after it:
	 * "@Bev so sorry hun. btw does anyone know what X means".
	 */
	for (i = 0; i < n->ntok; i++) {
		if ((n->tok[i].flags & TOK_AT) && !is_bot_name(n, i, bot_names)) {
			if (!asks_the_room(n, i))
				n->flags |= TEXT_TO_MEMBER;
			return;
		}
	}
	if (!second_person)
		return;
	for (i = 0; i < n->ntok; i++) {
		const struct text_token *t = &n->tok[i];
		const char *w = n->text.data + t->off;

		if (!(t->flags & TOK_CAPITALISED) || (t->flags & (TOK_REWRITTEN | TOK_CORRECTED)))
			continue;
		if (tok_cat(n, i) & (W_FUNCTION | W_GOVERNS))
			continue;
		if (lx != NULL && lexicon_is_known(lx, w, t->len))
			continue;
		if (is_bot_name(n, i, bot_names))
			continue;
		if (is_vocative(n, i, last_word)) {
			n->flags |= TEXT_TO_MEMBER;
			return;
		}
	}
}

void
text_normalise(const struct lexicon *lx, const char *const *bot_names, const char *msg, size_t len,
               struct text_norm *out)
{
	int invalid = 0, truncated = 0;

	buf_reset(&out->text);
	buf_reserve(&out->text, 64);
	out->ntok = 0;
	out->flags = 0;
	out->src = msg ? msg : "";
	out->srclen = msg ? len : 0;
	split_words(out, &invalid, &truncated);
	if (lx != NULL)
		deobfuscate(lx, out);
	apply_lexicon(lx, out);
	if (invalid)
		out->flags |= TEXT_INVALID_UTF8;
	if (truncated)
		out->flags |= TEXT_TRUNCATED;
	compute_features(lx, bot_names, out);
}

void
text_words(const char *s, size_t n, struct buf *out)
{
	struct text_norm tn;
	size_t i;

	text_norm_init(&tn);
	tn.src = s;
	tn.srclen = n;
	{
		int invalid = 0, truncated = 0;

		split_words(&tn, &invalid, &truncated);
	}
	for (i = 0; i < tn.nraw; i++) {
		if (out->len > 0)
			buf_putc(out, ' ');
		buf_append(out, tn.raw.data + tn.rawtok[i].off, tn.rawtok[i].len);
	}
	if (out->data == NULL)
		buf_puts(out, "");
	text_norm_free(&tn);
}

/* Tags that start a new line where a client shows them. */
static int
html_block_tag(const char *name, size_t n)
{
	static const char *const block[] = {"p",  "br", "div", "li", "ul", "ol", "h1", "h2",
	                                    "h3", "h4", "h5",  "h6", "tr", "td", "th", "blockquote",
	                                    "pre", "hr", "table", "details", "summary", NULL};
	size_t i;

	for (i = 0; block[i]; i++)
		if (strlen(block[i]) == n && strncasecmp(block[i], name, n) == 0)
			return 1;
	return 0;
}

/* Decodes the character reference at s (after '&'); returns its length and *cp, or 0. */
static size_t
html_entity(const char *s, size_t n, uint32_t *cp)
{
	static const struct {
		const char *name;
		uint32_t cp;
	} named[] = {{"amp;", '&'},   {"lt;", '<'},     {"gt;", '>'},       {"quot;", '"'},
	             {"apos;", '\''}, {"nbsp;", 0xa0}, {"shy;", 0xad}, {NULL, 0}};
	size_t i, k;
	uint32_t v = 0;

	for (i = 0; named[i].name; i++) {
		k = strlen(named[i].name);
		if (n >= k && strncmp(s, named[i].name, k) == 0) {
			*cp = named[i].cp;
			return k;
		}
	}
	if (n < 3 || s[0] != '#')
		return 0;
	if (s[1] == 'x' || s[1] == 'X') {
		for (k = 2; k < n && k < 10 && isxdigit((unsigned char)s[k]); k++)
			v = v * 16 + (uint32_t)(isdigit((unsigned char)s[k]) ? s[k] - '0'
			                                                   : (s[k] | 32) - 'a' + 10);
		if (k == 2)
			return 0;
	} else {
		for (k = 1; k < n && k < 9 && isdigit((unsigned char)s[k]); k++)
			v = v * 10 + (uint32_t)(s[k] - '0');
		if (k == 1)
			return 0;
	}
	if (k >= n || s[k] != ';')
		return 0;
	*cp = v == 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff) ? (v == 0 ? ' ' : 0xfffd) : v;
	return k + 1;
}

char *
text_html_plain(const char *html, size_t len)
{
	struct buf out;
	size_t i = 0, k, nl;
	int reply = 0; /* inside <mx-reply> */
	uint32_t cp;
	char enc[4];

	buf_init(&out);
	buf_reserve(&out, len);
	while (i < len) {
		char c = html[i];

		if (c == '<') {
			const char *name = html + i + 1;
			int closing = 0;

			if (len - i >= 4 && strncmp(html + i, "<!--", 4) == 0) {
				for (k = i + 4; k + 3 <= len && strncmp(html + k, "-->", 3) != 0; k++)
					;
				i = k + 3 <= len ? k + 3 : len;
				continue;
			}
			if (*name == '/') {
				closing = 1;
				name++;
			}
			for (nl = 0; i + 1 + closing + nl < len &&
			             (isalnum((unsigned char)name[nl]) || name[nl] == '-');
			     nl++)
				;
			/* To the end of the tag; '>' in a quoted attribute does not end it. */
			for (k = i + 1; k < len && html[k] != '>'; k++) {
				if (html[k] == '"' || html[k] == '\'') {
					const char *q = memchr(html + k + 1, html[k], len - k - 1);

					if (q == NULL)
						break;
					k = (size_t)(q - html);
				}
			}
			if (nl == 8 && strncasecmp(name, "mx-reply", 8) == 0)
				reply = !closing;
			else if (!reply && html_block_tag(name, nl))
				buf_putc(&out, '\n');
			i = k < len ? k + 1 : len;
			continue;
		}
		if (reply) {
			i++;
			continue;
		}
		if (c == '&' && (k = html_entity(html + i + 1, len - i - 1, &cp)) > 0) {
			buf_append(&out, enc, text_utf8_encode(cp, enc));
			i += k + 1;
			continue;
		}
		buf_putc(&out, c == '\0' ? ' ' : c);
		i++;
	}
	if (out.data == NULL)
		buf_puts(&out, "");
	return buf_steal(&out);
}

int
text_says_more(const char *a, size_t alen, const char *b, size_t blen)
{
	struct buf wa, wb;
	struct smap seen;
	const char *p, *q;
	int more = 0;

	buf_init(&wa);
	buf_init(&wb);
	text_words(a, alen, &wa);
	text_words(b, blen, &wb);
	smap_init(&seen);
	/* What text_words() did not reach of b cannot be compared: take it as more. */
	for (p = wb.data, more = 0; *p; p++)
		more += *p == ' ';
	more = more + 1 >= TEXT_MAX_TOKENS || blen > TEXT_MAX_INPUT;
	for (p = wa.data; *p; p = *q ? q + 1 : q) {
		q = strchr(p, ' ');
		if (q == NULL)
			q = p + strlen(p);
		if (q > p)
			smap_put(&seen, p, (size_t)(q - p), 1, NULL);
	}
	for (p = wb.data; *p && !more; p = *q ? q + 1 : q) {
		q = strchr(p, ' ');
		if (q == NULL)
			q = p + strlen(p);
		more = q > p && smap_get(&seen, p, (size_t)(q - p)) == NULL;
	}
	smap_free(&seen);
	buf_free(&wa);
	buf_free(&wb);
	return more;
}

/* Syllables of one lower-case word, by vowel groups (see text.h). */
static int
syllables(const char *w, size_t n)
{
	int count = 0, prev = 0, v;
	size_t i;
	char c1, c2;

	if (n == 0)
		return 0;
	if (w[0] >= '0' && w[0] <= '9')
		return 1;
	for (i = 0; i < n; i++) {
		v = strchr("aeiouy", w[i]) != NULL;
		if (v && !prev)
			count++;
		prev = v;
	}
	if (n >= 2 && w[n - 1] == 'e' && count > 1) {
		c1 = w[n - 2];
		if (!(c1 == 'l' && n >= 3 && strchr("aeiouy", w[n - 3]) == NULL))
			count--;
	}
	if (n >= 3 && count > 1 && w[n - 2] == 'e' && (w[n - 1] == 's' || w[n - 1] == 'd')) {
		c2 = w[n - 3];
		if (strchr("aeiouy", c2) == NULL) {
			if (w[n - 1] == 'd' && c2 != 't' && c2 != 'd')
				count--;
			else if (w[n - 1] == 's' && !strchr("sxz", c2) &&
			         !(n >= 4 && (w[n - 4] == 'c' || w[n - 4] == 's') && c2 == 'h'))
				count--;
		}
	}
	return count < 1 ? 1 : count;
}

double
text_reading_grade(const char *s, size_t n)
{
	size_t i = 0, words = 0, sentences = 0, syl = 0, wl;
	char w[64];
	int pending = 0, line_start = 1;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];

		if (line_start) {
			size_t j = i;

			while (j < n && (s[j] == ' ' || s[j] == '\t'))
				j++;
			if (j + 1 < n && (s[j] == '-' || s[j] == '*' || s[j] == '+') &&
			    s[j + 1] == ' ') {
				if (pending)
					sentences++;
				pending = 0;
				i = j + 2;
				line_start = 0;
				continue;
			}
			line_start = 0;
		}
		if (c == '\n') {
			line_start = 1;
			i++;
			continue;
		}
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			wl = 0;
			while (i < n) {
				c = (unsigned char)s[i];
				if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				    (c >= '0' && c <= '9')) {
					if (wl < sizeof(w))
						w[wl++] =
						    (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
					i++;
				} else if (c == '\'' && i + 1 < n &&
				           ((s[i + 1] | 32) >= 'a' && (s[i + 1] | 32) <= 'z') &&
				           wl > 0) {
					i++;
				} else {
					break;
				}
			}
			words++;
			syl += (size_t)syllables(w, wl);
			pending = 1;
			continue;
		}
		if (c == '.' || c == '!' || c == '?') {
			while (i < n && (s[i] == '.' || s[i] == '!' || s[i] == '?'))
				i++;
			if (pending)
				sentences++;
			pending = 0;
			continue;
		}
		i++;
	}
	if (pending)
		sentences++;
	if (words == 0)
		return 0;
	if (sentences == 0)
		sentences = 1;
	return 0.39 * (double)words / (double)sentences + 11.8 * (double)syl / (double)words -
	       15.59;
}
