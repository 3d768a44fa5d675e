/*
 * Response files: header parsing, review rules and rendering with cmark.
 */
#include "response.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmark.h>

#include "text.h"
#include "util.h"

#define RESPONSE_MAX_BODY   4000 /* bytes; a chat answer is much shorter */
#define RESPONSE_WARN_WORDS 180  /* words; longer does not fit a chat window */
#define NAME_MAX_BYTES      64   /* a display name longer than this is cut */
#define SECTION_MAX_DEPTH   8    /* {{#NAME}} sections inside sections */

/* The header keys, in the order the docs list them. */
enum header_key {
	HK_ID,
	HK_TYPE,
	HK_STATUS,
	HK_REVIEWED_BY,
	HK_REVIEWED_ON,
	HK_REVIEW_BY,
	HK_SOURCES,
	HK_LOCALE,
	HK_COMMENT, /* free text for the reviewers; may repeat */
	HK_COUNT,
};

static const char *const header_keys[HK_COUNT] = {
    "id",        "type",    "status", "reviewed_by", "reviewed_on",
    "review_by", "sources", "locale", "comment",
};

/* What the header parser keeps while it reads one file. */
struct header {
	const char *file;        /* for diagnostics */
	const char *text;        /* the whole file, for offsets */
	struct response *out;    /* being filled */
	struct diag_list *diags; /* where errors go */
	size_t at[HK_COUNT];     /* offset of each key's line, if seen */
	int seen[HK_COUNT];      /* the key was given */
	int bad[HK_COUNT];       /* its value was refused (already reported) */
	int last;                /* the last key read, -1 before any, HK_COUNT if unknown */
	int errors;              /* how many errors were added */
};

void
response_clear(struct response *r)
{
	size_t i;

	if (r == NULL)
		return;
	free(r->id);
	free(r->locale);
	free(r->reviewed_by);
	for (i = 0; i < r->nsources; i++)
		free(r->sources[i]);
	free(r->sources);
	free(r->body);
	free(r->file);
	memset(r, 0, sizeof(*r));
}

void
response_set_free(struct response_set *set)
{
	size_t i;

	if (set == NULL)
		return;
	for (i = 0; i < set->n; i++)
		response_clear(&set->r[i]);
	free(set->r);
	set->r = NULL;
	set->n = 0;
}

static int
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* A copy of s (n bytes) without blanks (and a CR) at either end; caller frees. */
static char *
trim(const char *s, size_t n)
{
	while (n > 0 && is_blank(*s)) {
		s++;
		n--;
	}
	while (n > 0 && is_blank(s[n - 1]))
		n--;
	return xstrndup(s, n);
}

static int
valid_id(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '.' || *s == '-'))
			return 0;
	return 1;
}

/* Is the n bytes at name a placeholder a response may use? */
static int
known_placeholder(const char *name, size_t n)
{
	static const char *const known[] = {"name",
	                                    "contacts.emergency",
	                                    "contacts.oncology",
	                                    "contacts.crisis",
	                                    "contacts.crisis_text",
	                                    "contacts.moderators",
	                                    NULL};
	const char *const *k;

	for (k = known; *k; k++)
		if (strlen(*k) == n && memcmp(*k, name, n) == 0)
			return 1;
	return n > 8 && memcmp(name, "capture.", 8) == 0;
}

/*
 * Checks the placeholders and sections of the body; returns the number of
 * errors. A section ({{#NAME}}...{{/NAME}}, or {{^NAME}} for its opposite)
 * must name a known placeholder and be closed, in order, at most
 * SECTION_MAX_DEPTH deep.
 */
static int
check_placeholders(const char *file, const char *text, size_t body_off, const char *body,
                   struct diag_list *diags)
{
	struct {
		const char *name; /* in body */
		size_t n;
		const char *at; /* the opening tag */
	} open[SECTION_MAX_DEPTH];
	const char *p = body, *close, *name;
	size_t n, depth = 0, i;
	int errors = 0, line, col;
	char sigil;

	while ((p = strstr(p, "{{")) != NULL) {
		size_t at = body_off + (size_t)(p - body);

		close = strstr(p + 2, "}}");
		if (close == NULL || memchr(p + 2, '\n', (size_t)(close - p - 2)) != NULL) {
			diag_add_at(diags, DIAG_ERROR, file, text, at,
			            "\"{{\" without a closing \"}}\" on the same line");
			errors++;
			p += 2;
			continue;
		}
		name = p + 2;
		n = (size_t)(close - name);
		sigil = n > 0 && strchr("#^/", name[0]) != NULL ? name[0] : '\0';
		if (sigil) {
			name++;
			n--;
		}
		if (!known_placeholder(name, n)) {
			diag_add_at(
			    diags, DIAG_ERROR, file, text, at,
			    "unknown placeholder {{%.*s}} (known: {{name}}, "
			    "{{contacts.emergency}}, {{contacts.oncology}}, {{contacts.crisis}}, "
			    "{{contacts.crisis_text}}, {{contacts.moderators}}, "
			    "{{capture.NAME}}; {{#NAME}}...{{/NAME}} shows text only when NAME "
			    "has a value, {{^NAME}}...{{/NAME}} only when it has none)",
			    (int)(close - p - 2 > 40 ? 40 : close - p - 2), p + 2);
			errors++;
		} else if (sigil == '#' || sigil == '^') {
			if (depth == SECTION_MAX_DEPTH) {
				diag_add_at(diags, DIAG_ERROR, file, text, at,
				            "sections nested more than %d deep", SECTION_MAX_DEPTH);
				errors++;
			} else {
				open[depth].name = name;
				open[depth].n = n;
				open[depth].at = p;
				depth++;
			}
		} else if (sigil == '/') {
			if (depth == 0) {
				diag_add_at(diags, DIAG_ERROR, file, text, at,
				            "{{/%.*s}} closes no section", (int)(n > 40 ? 40 : n),
				            name);
				errors++;
			} else {
				depth--;
				if (open[depth].n != n || memcmp(open[depth].name, name, n) != 0) {
					diag_offset_to_linecol(
					    text, body_off + (size_t)(open[depth].at - body), &line,
					    &col);
					diag_add_at(
					    diags, DIAG_ERROR, file, text, at,
					    "{{/%.*s}} closes the section {{%c%.*s}} opened on "
					    "line %d",
					    (int)(n > 40 ? 40 : n), name, open[depth].at[2],
					    (int)(open[depth].n > 40 ? 40 : open[depth].n),
					    open[depth].name, line);
					errors++;
				}
			}
		}
		p = close + 2;
	}
	for (i = 0; i < depth; i++) {
		diag_add_at(diags, DIAG_ERROR, file, text, body_off + (size_t)(open[i].at - body),
		            "{{%c%.*s}} is not closed (add {{/%.*s}})", open[i].at[2],
		            (int)(open[i].n > 40 ? 40 : open[i].n), open[i].name,
		            (int)(open[i].n > 40 ? 40 : open[i].n), open[i].name);
		errors++;
	}
	return errors;
}

/*
 * Reports the first NUL byte or invalid UTF-8 sequence of text (len bytes)
 * at its place. Returns 0 when there is none, else -1.
 */
static int
check_utf8(const char *file, const char *text, size_t len, struct diag_list *diags)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t i = 0, k;
	uint32_t cp;

	while (i < len) {
		if (p[i] == '\0') {
			diag_add_at(diags, DIAG_ERROR, file, text, i,
			            "not valid UTF-8 text: a NUL byte");
			return -1;
		}
		k = text_utf8_decode(p + i, len - i, &cp);
		/* An invalid byte decodes to U+FFFD in 1 byte, a real U+FFFD in 3. */
		if (cp == 0xfffd && k == 1) {
			diag_add_at(diags, DIAG_ERROR, file, text, i,
			            "not valid UTF-8 text: byte 0x%02x (save the file as UTF-8)",
			            p[i]);
			return -1;
		}
		i += k;
	}
	return 0;
}

static void
add_source(struct response *r, const char *s)
{
	r->sources = xreallocarray(r->sources, r->nsources + 1, sizeof(*r->sources));
	r->sources[r->nsources++] = xstrdup(s);
}

/* Line number of a byte offset, for "first on line N". */
static int
line_of(const char *text, size_t off)
{
	int line, col;

	diag_offset_to_linecol(text, off, &line, &col);
	return line;
}

/* Stores the value of key k (found on the line at off) into h->out. */
static void
header_value(struct header *h, enum header_key k, size_t off, const char *val)
{
	struct response *r = h->out;
	long d;

	switch (k) {
	case HK_ID:
		if (!valid_id(val)) {
			diag_add_at(h->diags, DIAG_ERROR, h->file, h->text, off,
			            "id must be a-z, 0-9, '.', '_' and '-'");
			h->errors++;
		}
		free(r->id);
		r->id = xstrdup(val);
		break;
	case HK_TYPE:
		if (strcmp(val, "faq") == 0)
			r->type = RESPONSE_FAQ;
		else if (strcmp(val, "safety") == 0)
			r->type = RESPONSE_SAFETY;
		else if (strcmp(val, "info") == 0)
			r->type = RESPONSE_INFO;
		else {
			diag_add_at(h->diags, DIAG_ERROR, h->file, h->text, off,
			            "type must be faq, safety or info, not \"%s\"", val);
			h->bad[k] = 1;
			h->errors++;
		}
		break;
	case HK_STATUS:
		if (strcmp(val, "draft") == 0)
			r->status = RESPONSE_DRAFT;
		else if (strcmp(val, "approved") == 0)
			r->status = RESPONSE_APPROVED;
		else {
			diag_add_at(h->diags, DIAG_ERROR, h->file, h->text, off,
			            "status must be draft or approved, not \"%s\"", val);
			h->bad[k] = 1;
			h->errors++;
		}
		break;
	case HK_REVIEWED_BY:
		free(r->reviewed_by);
		r->reviewed_by = xstrdup(val);
		break;
	case HK_REVIEWED_ON:
	case HK_REVIEW_BY:
		/* Empty in a draft: not reviewed yet. */
		d = val[0] ? date_parse_days(val) : -1;
		if (val[0] && d < 0) {
			diag_add_at(h->diags, DIAG_ERROR, h->file, h->text, off,
			            "%s must be a date written YYYY-MM-DD, not \"%s\"",
			            header_keys[k], val);
			h->bad[k] = 1;
			h->errors++;
		}
		if (k == HK_REVIEWED_ON)
			r->reviewed_on = d;
		else {
			r->review_by = d;
			r->review_line = line_of(h->text, off);
		}
		break;
	case HK_SOURCES:
		/* The first source may share the key's line; more follow as "- " items. */
		if (val[0])
			add_source(r, val);
		break;
	case HK_LOCALE:
		free(r->locale);
		r->locale = xstrdup(val);
		break;
	case HK_COMMENT:
	case HK_COUNT:
		break;
	}
}

/*
 * Reads one header line t (trimmed, not empty, not a comment) that starts
 * at off in the file.
 */
static void
header_line(struct header *h, const char *t, size_t off)
{
	const char *colon;
	char *key, *val;
	int k;

	if (t[0] == '-' && (t[1] == ' ' || t[1] == '\t')) {
		if (h->last == HK_COUNT)
			return; /* under an unknown key, already reported */
		if (h->last != HK_SOURCES) {
			diag_add_at(h->diags, DIAG_ERROR, h->file, h->text, off,
			            "a \"- \" list item belongs under \"sources:\"");
			h->errors++;
			return;
		}
		val = trim(t + 2, strlen(t + 2));
		if (val[0])
			add_source(h->out, val);
		free(val);
		return;
	}
	if ((colon = strchr(t, ':')) == NULL) {
		diag_add_at(h->diags, DIAG_ERROR, h->file, h->text, off,
		            "expected \"key: value\" in the header");
		h->errors++;
		return;
	}
	key = trim(t, (size_t)(colon - t));
	val = trim(colon + 1, strlen(colon + 1));
	for (k = 0; k < HK_COUNT; k++)
		if (strcmp(header_keys[k], key) == 0)
			break;
	h->last = k;
	if (k == HK_COUNT) {
		diag_add_at(h->diags, DIAG_ERROR, h->file, h->text, off,
		            "unknown header key \"%s\" (known: id, type, status, reviewed_by, "
		            "reviewed_on, review_by, sources, locale)",
		            key);
		h->errors++;
	} else if (h->seen[k] && k != HK_COMMENT) {
		/* The second one would silently win; say so instead. */
		diag_add_at(h->diags, DIAG_ERROR, h->file, h->text, off,
		            "header key \"%s\" is given twice (first on line %d)", key,
		            line_of(h->text, h->at[k]));
		h->errors++;
	} else {
		h->seen[k] = 1;
		h->at[k] = off;
		header_value(h, (enum header_key)k, off, val);
	}
	free(key);
	free(val);
}

/*
 * The rules across keys, each reported at the line of the key it is about
 * (or at the top when that key is missing), and never as a consequence of
 * a value already refused.
 */
static void
header_rules(struct header *h)
{
	struct response *r = h->out;
	size_t off;

	if (r->id == NULL) {
		diag_add(h->diags, DIAG_ERROR, h->file, 1, 1, "the header has no id");
		h->errors++;
	}
	if (r->status == RESPONSE_APPROVED) {
		int no_by = r->reviewed_by == NULL || r->reviewed_by[0] == '\0';
		int no_on = r->reviewed_on < 0 && !h->bad[HK_REVIEWED_ON];
		int no_until = r->review_by < 0 && !h->bad[HK_REVIEW_BY];

		if (no_by || no_on || no_until) {
			diag_add_at(h->diags, DIAG_ERROR, h->file, h->text, h->at[HK_STATUS],
			            "an approved response needs reviewed_by, reviewed_on and "
			            "review_by (missing:%s%s%s)",
			            no_by ? " reviewed_by" : "", no_on ? " reviewed_on" : "",
			            no_until ? " review_by" : "");
			h->errors++;
		} else if (r->reviewed_on >= 0 && r->review_by >= 0 &&
		           r->review_by <= r->reviewed_on) {
			diag_add_at(h->diags, DIAG_ERROR, h->file, h->text, h->at[HK_REVIEW_BY],
			            "review_by must come after reviewed_on");
			h->errors++;
		}
	}
	if (r->type == RESPONSE_FAQ && !h->bad[HK_TYPE] && r->nsources == 0) {
		/* Without a type line the default (faq) is what asks for sources. */
		off = h->seen[HK_TYPE] ? h->at[HK_TYPE] : 0;
		diag_add_at(h->diags, DIAG_ERROR, h->file, h->text, off,
		            "a medical (faq) answer must name its sources");
		h->errors++;
	}
}

/*
 * The body starts at off (just after the closing "---", on line line):
 * blank lines before it and blanks after it are not part of it.
 */
static void
parse_body(struct header *h, size_t off, size_t len, int line)
{
	const char *text = h->text, *end = text + len, *p = text + off, *q;
	struct response *r = h->out;
	char *rest;
	int first = line;

	/* Skip whole lines of blanks, so that body_line is where the text starts. */
	for (;;) {
		for (q = p; q < end && is_blank(*q); q++)
			;
		if (q >= end || *q != '\n')
			break;
		p = q + 1;
		line++;
	}
	if (q >= end) {
		r->body = xstrdup("");
		r->body_line = first;
		diag_add(h->diags, DIAG_ERROR, h->file, first, 1, "the response has no text");
		h->errors++;
		return;
	}
	/* q is past the blanks that would make the first line a code block. */
	r->body_line = line;
	while (end > q && (is_blank(end[-1]) || end[-1] == '\n'))
		end--;
	r->body = xstrndup(q, (size_t)(end - q));
	if (strlen(r->body) > RESPONSE_MAX_BODY) {
		diag_add_at(h->diags, DIAG_ERROR, h->file, text, (size_t)(p - text),
		            "the text is %zu bytes; at most %d fit in a chat answer",
		            strlen(r->body), RESPONSE_MAX_BODY);
		h->errors++;
	}
	rest = xstrndup(q, (size_t)(text + len - q));
	h->errors += check_placeholders(h->file, text, (size_t)(q - text), rest, h->diags);
	free(rest);
}

int
response_parse(const char *file, const char *text, size_t len, struct response *out,
               struct diag_list *diags)
{
	struct header h;
	const char *p, *eol, *end = text + len;
	char *t;
	int line, closed = 0;

	memset(out, 0, sizeof(*out));
	memset(&h, 0, sizeof(h));
	h.file = file;
	h.text = text;
	h.out = out;
	h.diags = diags;
	h.last = -1;
	out->reviewed_on = out->review_by = -1;
	out->file = xstrdup(file);
	if (check_utf8(file, text, len, diags) == -1)
		goto fail;
	/* text need not end with a NUL, and may have no line break at all. */
	eol = memchr(text, '\n', len);
	if (eol == NULL)
		eol = end;
	t = trim(text, (size_t)(eol - text));
	closed = strcmp(t, "---") == 0;
	free(t);
	if (!closed) {
		diag_add(
		    diags, DIAG_ERROR, file, 1, 1,
		    "a response starts with a \"---\" line, then its header (id, type, status, "
		    "reviewed_by, reviewed_on, review_by, sources, locale), then \"---\"");
		goto fail;
	}
	closed = 0;
	p = eol < end ? eol + 1 : end;
	for (line = 2; p < end; line++) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		t = trim(p, (size_t)(eol - p));
		if (strcmp(t, "---") == 0)
			closed = 1;
		else if (t[0] != '\0' && t[0] != '#') /* blank lines and # comments */
			header_line(&h, t, (size_t)(p - text));
		free(t);
		p = eol < end ? eol + 1 : end;
		if (closed) {
			line++;
			break;
		}
	}
	if (!closed) {
		diag_add(diags, DIAG_ERROR, file, 1, 1,
		         "the header is not closed by a \"---\" line");
		goto fail;
	}
	if (out->locale == NULL)
		out->locale = xstrdup("en");
	if (out->reviewed_by == NULL)
		out->reviewed_by = xstrdup("");
	header_rules(&h);
	parse_body(&h, (size_t)(p - text), len, line);
	if (h.errors)
		goto fail;
	return 0;
fail:
	response_clear(out);
	return -1;
}

enum response_use
response_usable(const struct response *r, int allow_drafts, long today)
{
	if (r->status == RESPONSE_DRAFT)
		return allow_drafts ? RESPONSE_USABLE : RESPONSE_NOT_REVIEWED;
	if (r->review_by >= 0 && today >= r->review_by)
		return RESPONSE_EXPIRED;
	return RESPONSE_USABLE;
}

const struct response *
response_find(const struct response_set *set, const char *id, const char *locale)
{
	const struct response *any = NULL, *en = NULL;
	size_t i;

	for (i = 0; i < set->n; i++) {
		const struct response *r = &set->r[i];

		if (strcmp(r->id, id) != 0)
			continue;
		if (locale && strcmp(r->locale, locale) == 0)
			return r;
		if (strcmp(r->locale, "en") == 0)
			en = r;
		if (any == NULL)
			any = r;
	}
	return en ? en : any;
}

/* --- rendering ---------------------------------------------------------- */

/* Bidi embeddings, overrides and isolates: they reorder the text after them. */
static int
is_bidi_control(uint32_t cp)
{
	return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

void
response_md_escape(const char *s, size_t max, char **out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n = s ? strlen(s) : 0, k, ul;
	struct buf b;
	uint32_t cp;
	char u[4];

	buf_init(&b);
	/* One character at a time, so that the cut at max never splits one. */
	while (i < n) {
		k = text_utf8_decode(p + i, n - i, &cp);
		i += k;
		if (is_bidi_control(cp))
			continue;
		if (cp < 0x20 || cp == 0x7f)
			cp = ' '; /* newlines too: a name stays on its line */
		if (cp == ' ' && b.len == 0)
			continue; /* four leading spaces would make a code block */
		if (cp < 0x80 && strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", (int)cp) != NULL) {
			u[0] = '\\';
			u[1] = (char)cp;
			ul = 2;
		} else {
			/* An invalid byte decoded as U+FFFD: only that byte is replaced. */
			ul = text_utf8_encode(cp, u);
		}
		if (b.len + ul > max)
			break;
		buf_append(&b, u, ul);
	}
	/* Nor trailing ones: two before a newline would make a line break. */
	while (b.len > 0 && b.data[b.len - 1] == ' ')
		b.data[--b.len] = '\0';
	*out = buf_steal(&b);
}

static const char *
placeholder_value(const char *name, size_t n, const struct render_vars *v, int *escape)
{
	size_t i;

	*escape = 0;
	if (n == 4 && memcmp(name, "name", 4) == 0) {
		*escape = 1;
		return v->name;
	}
	if (n > 9 && memcmp(name, "contacts.", 9) == 0) {
		name += 9;
		n -= 9;
		if (n == 9 && memcmp(name, "emergency", 9) == 0)
			return v->contacts.emergency;
		if (n == 8 && memcmp(name, "oncology", 8) == 0)
			return v->contacts.oncology;
		if (n == 6 && memcmp(name, "crisis", 6) == 0)
			return v->contacts.crisis;
		if (n == 11 && memcmp(name, "crisis_text", 11) == 0)
			return v->contacts.crisis_text;
		if (n == 10 && memcmp(name, "moderators", 10) == 0)
			return v->contacts.moderators;
		return NULL;
	}
	if (n > 8 && memcmp(name, "capture.", 8) == 0) {
		*escape = 1;
		for (i = 0; i < v->ncap; i++)
			if (strlen(v->cap_name[i]) == n - 8 &&
			    memcmp(v->cap_name[i], name + 8, n - 8) == 0)
				return v->cap_value[i];
	}
	return NULL;
}

/*
 * Whether text appended to out starts a sentence: at the start, on a new
 * line (after any list or quote marker), or after . ! or ?.
 */
static int
sentence_start(const struct buf *out)
{
	size_t i = out->len;

	while (i > 0 && out->data[i - 1] == ' ')
		i--;
	if (i == 0 || out->data[i - 1] == '\n')
		return 1;
	if (strchr(".!?", out->data[i - 1]) != NULL)
		return 1; /* also "1. " */
	while (i > 0 && out->data[i - 1] != '\n') {
		if (strchr("-*+># \t", out->data[i - 1]) == NULL)
			return 0;
		i--;
	}
	return 1;
}

/*
 * A placeholder with no value leaves no trace: "{{name}}, it is hard"
 * reads "It is hard" at the start of a sentence and "Hi thanks" inside
 * one; "Thank you {{name}}." reads "Thank you.". p is just after the
 * placeholder; returns where to go on.
 */
static const char *
vanish(struct buf *out, const char *p)
{
	if (p[0] == ',' && p[1] == ' ') {
		p += 2;
		if (*p >= 'a' && *p <= 'z' && sentence_start(out)) {
			buf_putc(out, (char)(*p - 'a' + 'A'));
			p++;
		}
		return p;
	}
	if (p[0] == '\0' || strchr(" \t\r\n.,;:!?)", p[0]) != NULL)
		while (out->len > 0 && out->data[out->len - 1] == ' ')
			out->data[--out->len] = '\0';
	return p;
}

/*
 * Whether placeholder name (n bytes) has a value to show: set, and not
 * empty once escaped (a display name of blanks is none).
 */
static int
placeholder_present(const char *name, size_t n, const struct render_vars *v)
{
	const char *val;
	char *esc;
	int escape, present;

	val = placeholder_value(name, n, v, &escape);
	if (val == NULL || val[0] == '\0')
		return 0;
	if (!escape)
		return 1;
	response_md_escape(val, NAME_MAX_BYTES * 2, &esc);
	present = esc[0] != '\0';
	free(esc);
	return present;
}

/*
 * Whether the tag from open to end (just past its "}}") stands alone on
 * its line of md: only blanks before it on the line and after it up to the
 * line's end. Then *next is the start of the following line (or the end).
 */
static int
standalone(const char *md, const char *open, const char *end, const char **next)
{
	const char *p;

	for (p = open; p > md && (p[-1] == ' ' || p[-1] == '\t'); p--)
		;
	if (p > md && p[-1] != '\n')
		return 0;
	for (p = end; *p == ' ' || *p == '\t' || *p == '\r'; p++)
		;
	if (*p == '\n')
		p++;
	else if (*p != '\0')
		return 0;
	*next = p;
	return 1;
}

/*
 * p is just past the tag that opened the section name (n bytes) in md;
 * returns where the text goes on after the tag that closes it (and after
 * that tag's line when it stands alone), or the end of md when nothing
 * closes it.
 */
static const char *
skip_section(const char *md, const char *p, const char *name, size_t n)
{
	const char *open, *close, *next;
	size_t depth = 0;

	while ((open = strstr(p, "{{")) != NULL && (close = strstr(open + 2, "}}")) != NULL) {
		p = close + 2;
		if ((size_t)(close - open - 3) != n || memcmp(open + 3, name, n) != 0)
			continue;
		if (open[2] == '#' || open[2] == '^') {
			depth++;
		} else if (open[2] == '/') {
			if (depth-- > 0)
				continue;
			return standalone(md, open, p, &next) ? next : p;
		}
	}
	return md + strlen(md);
}

/* Drops the blanks that out ends with (those of a line that only held a tag). */
static void
drop_blank_tail(struct buf *out)
{
	while (out->len > 0 && (out->data[out->len - 1] == ' ' || out->data[out->len - 1] == '\t'))
		out->data[--out->len] = '\0';
}

/*
 * Fills the placeholders and sections of md into out. A section shows its
 * text when its placeholder has a value ({{#NAME}}) or has none ({{^NAME}});
 * a tag alone on its line takes the line with it.
 */
static void
fill(const char *md, const struct render_vars *v, struct buf *out)
{
	const char *p = md, *open, *close, *val, *name, *next;
	char *esc;
	int escape;
	size_t n;

	while ((open = strstr(p, "{{")) != NULL && (close = strstr(open + 2, "}}")) != NULL) {
		buf_append(out, p, (size_t)(open - p));
		name = open + 2;
		n = (size_t)(close - name);
		p = close + 2;
		if (n > 0 && strchr("#^/", name[0]) != NULL) {
			if (standalone(md, open, p, &next)) {
				drop_blank_tail(out);
				p = next;
			}
			if (name[0] != '/' &&
			    placeholder_present(name + 1, n - 1, v) != (name[0] == '#'))
				p = skip_section(md, p, name + 1, n - 1);
			continue;
		}
		val = placeholder_value(name, n, v, &escape);
		esc = NULL;
		if (val != NULL && escape) {
			/* What is left after escaping decides: a name of blanks is none. */
			response_md_escape(val, NAME_MAX_BYTES * 2, &esc);
			val = esc;
		}
		if (val == NULL || val[0] == '\0')
			p = vanish(out, p);
		else
			buf_puts(out, val);
		free(esc);
	}
	buf_puts(out, p);
}

static void plain_node(cmark_node *node, struct buf *out, int list_depth);

/*
 * A link reads "the NHS (https://www.nhs.uk)"; an autolink, whose text is
 * its address (without "mailto:"), shows the address once.
 */
static void
link_plain(cmark_node *node, struct buf *out, int list_depth)
{
	const char *url = cmark_node_get_url(node), *text;
	struct buf t;
	cmark_node *c;

	buf_init(&t);
	for (c = cmark_node_first_child(node); c; c = cmark_node_next(c))
		plain_node(c, &t, list_depth);
	text = t.data ? t.data : "";
	buf_puts(out, text);
	if (url != NULL && url[0] != '\0' && strcmp(text, url) != 0 &&
	    !(strncmp(url, "mailto:", 7) == 0 && strcmp(text, url + 7) == 0)) {
		if (text[0] != '\0')
			buf_printf(out, " (%s)", url);
		else
			buf_puts(out, url);
	}
	buf_free(&t);
}

/* Plain text from the cmark tree. */
static void
plain_node(cmark_node *node, struct buf *out, int list_depth)
{
	cmark_node *c;
	const char *lit;
	int n, ordered;

	switch (cmark_node_get_type(node)) {
	case CMARK_NODE_TEXT:
	case CMARK_NODE_CODE:
		lit = cmark_node_get_literal(node);
		if (lit)
			buf_puts(out, lit);
		return;
	case CMARK_NODE_SOFTBREAK:
		buf_putc(out, ' ');
		return;
	case CMARK_NODE_LINEBREAK:
		buf_putc(out, '\n');
		return;
	case CMARK_NODE_HTML_INLINE:
	case CMARK_NODE_HTML_BLOCK:
		return; /* never passed through */
	case CMARK_NODE_CODE_BLOCK:
		lit = cmark_node_get_literal(node);
		if (lit)
			buf_puts(out, lit);
		return;
	case CMARK_NODE_THEMATIC_BREAK:
		buf_puts(out, "---");
		return;
	case CMARK_NODE_LIST:
		ordered = cmark_node_get_list_type(node) == CMARK_ORDERED_LIST;
		n = cmark_node_get_list_start(node);
		for (c = cmark_node_first_child(node); c; c = cmark_node_next(c)) {
			int k;

			for (k = 0; k < list_depth; k++)
				buf_puts(out, "  ");
			if (ordered)
				buf_printf(out, "%d. ", n++);
			else
				buf_puts(out, "- ");
			plain_node(c, out, list_depth + 1);
			if (cmark_node_next(c))
				buf_putc(out, '\n');
		}
		return;
	case CMARK_NODE_ITEM:
		for (c = cmark_node_first_child(node); c; c = cmark_node_next(c)) {
			if (c != cmark_node_first_child(node))
				buf_putc(out, '\n');
			plain_node(c, out, list_depth);
		}
		return;
	case CMARK_NODE_LINK:
		link_plain(node, out, list_depth);
		return;
	case CMARK_NODE_DOCUMENT:
		for (c = cmark_node_first_child(node); c; c = cmark_node_next(c)) {
			if (c != cmark_node_first_child(node))
				buf_puts(out, "\n\n");
			plain_node(c, out, 0);
		}
		return;
	case CMARK_NODE_BLOCK_QUOTE:
		buf_puts(out, "> ");
		/* FALLTHROUGH */
	default:
		for (c = cmark_node_first_child(node); c; c = cmark_node_next(c))
			plain_node(c, out, list_depth);
		return;
	}
}

void
response_render_markdown(const char *md, struct rendered *out)
{
	cmark_node *doc;
	struct buf plain;
	char *html;

	memset(out, 0, sizeof(*out));
	out->markdown = xstrdup(md);
	doc = cmark_parse_document(md, strlen(md), CMARK_OPT_DEFAULT);
	if (doc == NULL) {
		out->plain = xstrdup(md);
		out->html = xstrdup("");
		return;
	}
	buf_init(&plain);
	plain_node(doc, &plain, 0);
	out->plain = buf_steal(&plain);
	/* CMARK_OPT_DEFAULT is safe: raw HTML and javascript: links are dropped. */
	html = cmark_render_html(doc, CMARK_OPT_DEFAULT);
	out->html = xstrdup(html ? html : "");
	free(html);
	cmark_node_free(doc);
	{
		size_t n = strlen(out->html);

		while (n > 0 && out->html[n - 1] == '\n')
			out->html[--n] = '\0';
	}
}

void
response_render(const struct response *r, const struct render_vars *v, struct rendered *out)
{
	struct buf md;

	buf_init(&md);
	fill(r->body, v, &md);
	if (r->type == RESPONSE_FAQ && v->disclaimer && v->disclaimer[0]) {
		buf_puts(&md, "\n\n");
		buf_puts(&md, "_");
		buf_puts(&md, v->disclaimer);
		buf_puts(&md, "_");
	}
	if (v->footer && v->footer[0]) {
		buf_puts(&md, "\n\n");
		buf_puts(&md, v->footer);
	}
	response_render_markdown(md.data ? md.data : "", out);
	buf_free(&md);
}

void
rendered_free(struct rendered *out)
{
	if (out == NULL)
		return;
	free(out->plain);
	free(out->html);
	free(out->markdown);
	memset(out, 0, sizeof(*out));
}

void
response_check(const struct response *r, double max_grade, long today, struct diag_list *diags)
{
	struct render_vars v = {0};
	struct rendered out;
	const char *base;
	char *want;
	double grade;
	size_t words = 0;
	const char *p;
	int inword = 0;

	base = strrchr(r->file, '/');
	base = base ? base + 1 : r->file;
	want = xasprintf("%s.md", r->id);
	if (strcmp(base, want) != 0) {
		char *want2 = xasprintf("%s.%s.md", r->id, r->locale);

		if (strcmp(base, want2) != 0)
			diag_add(diags, DIAG_WARNING, r->file, 1, 1,
			         "file name should be %s (or %s) to match its id", want, want2);
		free(want2);
	}
	free(want);
	if (r->status == RESPONSE_APPROVED && r->review_by >= 0) {
		/* At review_by: that is the line to change after the next review. */
		int at = r->review_line > 0 ? r->review_line : 1;

		if (today >= r->review_by)
			diag_add(
			    diags, DIAG_WARNING, r->file, at, 1,
			    "review expired: review_by has passed, so this response is not sent "
			    "until it is reviewed again");
		else if (r->review_by - today <= 30)
			diag_add(diags, DIAG_NOTE, r->file, at, 1, "review expires in %ld days",
			         r->review_by - today);
	}
	/* Grade the text as a reader sees it, placeholders as plain words. */
	v.name = "Sam";
	v.contacts.emergency = "the number";
	v.contacts.oncology = "the number";
	v.contacts.crisis = "the number";
	v.contacts.crisis_text = "the number";
	v.contacts.moderators = "the moderators";
	response_render(r, &v, &out);
	grade = text_reading_grade(out.plain, strlen(out.plain));
	for (p = out.plain; *p; p++) {
		int w = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		        (*p >= '0' && *p <= '9');

		if (w && !inword)
			words++;
		inword = w || (inword && *p == '\'');
	}
	if (max_grade > 0 && grade > max_grade)
		diag_add(
		    diags, DIAG_WARNING, r->file, r->body_line, 1,
		    "reading grade %.1f is above %.1f: use shorter sentences and plainer words",
		    grade, max_grade);
	if (words > RESPONSE_WARN_WORDS)
		diag_add(diags, DIAG_WARNING, r->file, r->body_line, 1,
		         "%zu words is long for a chat window (keep it under %d)", words,
		         RESPONSE_WARN_WORDS);
	rendered_free(&out);
}
