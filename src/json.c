/*
 * Hand-edited JSON: validation with places, then cJSON. See json.h.
 */
#include "json.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "util.h"

struct json_pos {
	const cJSON *item; /* the node; NULL for an empty slot */
	size_t value;      /* offset of its value */
	size_t key;        /* offset of its key, or of its value when it has none */
};

/* The validating scanner. */
struct scan {
	const char *s;    /* the text */
	size_t n;         /* its length */
	size_t i;         /* where we are */
	const char *err;  /* the first error, or NULL */
	size_t erroff;    /* where it is */
	const char *file; /* for duplicate-key warnings */
	struct diag_list *diags;
};

static void
scan_fail(struct scan *sc, size_t off, const char *msg)
{
	if (sc->err == NULL) {
		sc->err = msg;
		sc->erroff = off;
	}
}

/*
 * Skips whitespace. A comment (// or a slash-star block) is where people put one in
 * hand-written JSON, and cJSON would refuse it without saying where: it is
 * reported at its first character, wherever whitespace may stand.
 */
static void
scan_ws(struct scan *sc)
{
	while (sc->i < sc->n && (sc->s[sc->i] == ' ' || sc->s[sc->i] == '\t' ||
	                         sc->s[sc->i] == '\n' || sc->s[sc->i] == '\r'))
		sc->i++;
	if (sc->i + 1 < sc->n && sc->s[sc->i] == '/' &&
	    (sc->s[sc->i + 1] == '/' || sc->s[sc->i + 1] == '*'))
		scan_fail(sc, sc->i, "JSON has no comments (use a \"comment\" key instead)");
}

static int
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The code unit of the \uXXXX escape at s (already checked: four hex digits). */
static unsigned
u_escape(const char *s)
{
	unsigned v = 0;
	int k;

	for (k = 2; k < 6; k++) {
		char c = s[k];

		v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return v;
}

/* Is there a complete \uXXXX escape at s[i] (n bytes in all)? */
static int
has_u_escape(const char *s, size_t n, size_t i)
{
	int k;

	if (i + 6 > n || s[i] != '\\' || s[i + 1] != 'u')
		return 0;
	for (k = 2; k < 6; k++)
		if (!is_hex(s[i + (size_t)k]))
			return 0;
	return 1;
}

/*
 * Checks the \u escape at sc->i (four hex digits present) and steps over
 * it, or over the pair it starts. cJSON refuses half a surrogate pair and
 * cuts a string at \u0000 without a word, so both are reported here.
 */
static void
scan_u_escape(struct scan *sc)
{
	unsigned u = u_escape(sc->s + sc->i);

	if (u == 0) {
		scan_fail(sc, sc->i, "\\u0000 (a NUL character) is not allowed in a string");
		return;
	}
	if (u >= 0xdc00 && u <= 0xdfff) {
		scan_fail(sc, sc->i,
		          "\\u escape of a lone low surrogate (U+DC00 to U+DFFF): it must "
		          "follow a high surrogate \\ud800 to \\udbff, or write the character "
		          "itself");
		return;
	}
	if (u >= 0xd800 && u <= 0xdbff) {
		if (!has_u_escape(sc->s, sc->n, sc->i + 6) ||
		    u_escape(sc->s + sc->i + 6) < 0xdc00 || u_escape(sc->s + sc->i + 6) > 0xdfff) {
			scan_fail(sc, sc->i,
			          "\\u escape of a lone high surrogate (U+D800 to U+DBFF): it "
			          "must be followed by a low surrogate \\udc00 to \\udfff, or "
			          "write the character itself");
			return;
		}
		sc->i += 12;
		return;
	}
	sc->i += 6;
}

/* A string starting at the current '"'; its raw span goes to *start, *len. */
static void
scan_string(struct scan *sc, size_t *start, size_t *len)
{
	size_t open = sc->i;

	sc->i++;
	*start = sc->i;
	while (sc->i < sc->n) {
		unsigned char c = (unsigned char)sc->s[sc->i];

		if (c == '"') {
			*len = sc->i - *start;
			sc->i++;
			return;
		}
		if (c == '\\') {
			char e = sc->i + 1 < sc->n ? sc->s[sc->i + 1] : '\0';

			if (e == 'u') {
				int k;

				for (k = 2; k < 6; k++) {
					if (sc->i + (size_t)k >= sc->n ||
					    !is_hex(sc->s[sc->i + (size_t)k])) {
						scan_fail(
						    sc, sc->i,
						    "\\u must be followed by four hex digits");
						return;
					}
				}
				scan_u_escape(sc);
				if (sc->err)
					return;
				continue;
			}
			if (e == '\0' || strchr("\"\\/bfnrt", e) == NULL) {
				scan_fail(
				    sc, sc->i,
				    "invalid escape in string (in a regex, write \\\\ for one "
				    "backslash)");
				return;
			}
			sc->i += 2;
			continue;
		}
		if (c < 0x20) {
			scan_fail(sc, sc->i,
			          c == '\n' ? "string is not closed before the end of "
			                      "the line"
			                    : "control character in string");
			return;
		}
		sc->i++;
	}
	scan_fail(sc, open, "string is never closed");
}

static void scan_value(struct scan *sc, int depth);

static void
scan_object(struct scan *sc, int depth)
{
	size_t keys[64][2], nkeys = 0, ks, kl, k, comma = 0;

	sc->i++;
	scan_ws(sc);
	if (sc->i < sc->n && sc->s[sc->i] == '}') {
		sc->i++;
		return;
	}
	for (;;) {
		scan_ws(sc);
		if (sc->i >= sc->n) {
			scan_fail(sc, sc->i, "unexpected end of file: '}' missing");
			return;
		}
		if (sc->s[sc->i] == '}') {
			/* at the comma: the '}' may be lines further down */
			scan_fail(sc, comma, "trailing comma before '}'");
			return;
		}
		if (sc->s[sc->i] != '"') {
			scan_fail(sc, sc->i, "expected a key in double quotes");
			return;
		}
		scan_string(sc, &ks, &kl);
		if (sc->err)
			return;
		for (k = 0; k < nkeys; k++) {
			if (keys[k][1] == kl && memcmp(sc->s + keys[k][0], sc->s + ks, kl) == 0) {
				diag_add_at(
				    sc->diags, DIAG_WARNING, sc->file, sc->s, ks - 1,
				    "key \"%.*s\" appears twice in this object; only the first "
				    "is used",
				    (int)(kl > 60 ? 60 : kl), sc->s + ks);
				break;
			}
		}
		if (nkeys < 64) {
			keys[nkeys][0] = ks;
			keys[nkeys][1] = kl;
			nkeys++;
		}
		scan_ws(sc);
		if (sc->i >= sc->n || sc->s[sc->i] != ':') {
			scan_fail(sc, sc->i, "expected ':' after the key");
			return;
		}
		sc->i++;
		scan_value(sc, depth + 1);
		if (sc->err)
			return;
		scan_ws(sc);
		if (sc->i < sc->n && sc->s[sc->i] == ',') {
			comma = sc->i++;
			continue;
		}
		if (sc->i < sc->n && sc->s[sc->i] == '}') {
			sc->i++;
			return;
		}
		scan_fail(
		    sc, sc->i,
		    sc->i < sc->n && sc->s[sc->i] == '"'
		        ? "expected ',' between members (is a comma missing at the end of the "
		          "line before?)"
		        : "expected ',' or '}' after a member");
		return;
	}
}

static void
scan_array(struct scan *sc, int depth)
{
	size_t comma = 0;

	sc->i++;
	scan_ws(sc);
	if (sc->i < sc->n && sc->s[sc->i] == ']') {
		sc->i++;
		return;
	}
	for (;;) {
		scan_ws(sc);
		if (sc->i < sc->n && sc->s[sc->i] == ']') {
			scan_fail(sc, comma, "trailing comma before ']'");
			return;
		}
		scan_value(sc, depth + 1);
		if (sc->err)
			return;
		scan_ws(sc);
		if (sc->i < sc->n && sc->s[sc->i] == ',') {
			comma = sc->i++;
			continue;
		}
		if (sc->i < sc->n && sc->s[sc->i] == ']') {
			sc->i++;
			return;
		}
		scan_fail(sc, sc->i,
		          sc->i >= sc->n ? "unexpected end of file: ']' missing"
		                         : (sc->s[sc->i] == '"'
		                                ? "expected ',' between array elements"
		                                : "expected ',' or ']' after an array element"));
		return;
	}
}

static void
scan_number(struct scan *sc)
{
	size_t st = sc->i;

	if (sc->s[sc->i] == '-')
		sc->i++;
	if (sc->i < sc->n && sc->s[sc->i] == '0') {
		sc->i++;
	} else if (sc->i < sc->n && sc->s[sc->i] >= '1' && sc->s[sc->i] <= '9') {
		while (sc->i < sc->n && sc->s[sc->i] >= '0' && sc->s[sc->i] <= '9')
			sc->i++;
	} else {
		scan_fail(sc, st, "invalid number");
		return;
	}
	if (sc->i < sc->n && sc->s[sc->i] == '.') {
		sc->i++;
		if (sc->i >= sc->n || sc->s[sc->i] < '0' || sc->s[sc->i] > '9') {
			scan_fail(sc, st, "invalid number");
			return;
		}
		while (sc->i < sc->n && sc->s[sc->i] >= '0' && sc->s[sc->i] <= '9')
			sc->i++;
	}
	if (sc->i < sc->n && (sc->s[sc->i] == 'e' || sc->s[sc->i] == 'E')) {
		sc->i++;
		if (sc->i < sc->n && (sc->s[sc->i] == '+' || sc->s[sc->i] == '-'))
			sc->i++;
		if (sc->i >= sc->n || sc->s[sc->i] < '0' || sc->s[sc->i] > '9') {
			scan_fail(sc, st, "invalid number");
			return;
		}
		while (sc->i < sc->n && sc->s[sc->i] >= '0' && sc->s[sc->i] <= '9')
			sc->i++;
	}
}

static void
scan_value(struct scan *sc, int depth)
{
	size_t a, b;

	scan_ws(sc);
	if (depth > JSON_MAX_DEPTH) {
		scan_fail(sc, sc->i, "nested too deeply");
		return;
	}
	if (sc->i >= sc->n) {
		scan_fail(sc, sc->i, "unexpected end of file: a value is missing");
		return;
	}
	switch (sc->s[sc->i]) {
	case '{':
		scan_object(sc, depth);
		return;
	case '[':
		scan_array(sc, depth);
		return;
	case '"':
		scan_string(sc, &a, &b);
		return;
	case 't':
		if (sc->n - sc->i >= 4 && memcmp(sc->s + sc->i, "true", 4) == 0) {
			sc->i += 4;
			return;
		}
		break;
	case 'f':
		if (sc->n - sc->i >= 5 && memcmp(sc->s + sc->i, "false", 5) == 0) {
			sc->i += 5;
			return;
		}
		break;
	case 'n':
		if (sc->n - sc->i >= 4 && memcmp(sc->s + sc->i, "null", 4) == 0) {
			sc->i += 4;
			return;
		}
		break;
	case '\'':
		scan_fail(sc, sc->i, "strings take double quotes, not single quotes");
		return;
	default:
		if (sc->s[sc->i] == '-' || (sc->s[sc->i] >= '0' && sc->s[sc->i] <= '9')) {
			scan_number(sc);
			return;
		}
		break;
	}
	if (sc->s[sc->i] == '/' && sc->i + 1 < sc->n &&
	    (sc->s[sc->i + 1] == '/' || sc->s[sc->i + 1] == '*'))
		scan_fail(sc, sc->i, "JSON has no comments (use a \"comment\" key instead)");
	else
		scan_fail(sc, sc->i,
		          "expected a value (string, number, object, array, true, "
		          "false or null)");
}

/* --- positions of the parsed nodes ------------------------------------ */

static size_t
pos_hash(const cJSON *item, size_t mask)
{
	uintptr_t p = (uintptr_t)item;

	return (size_t)((p >> 4) * 0x9e3779b97f4a7c15u) & mask;
}

static void
pos_put(struct json_doc *doc, const cJSON *item, size_t value, size_t key)
{
	size_t i;

	for (i = pos_hash(item, doc->mask); doc->pos[i].item != NULL; i = (i + 1) & doc->mask)
		;
	doc->pos[i].item = item;
	doc->pos[i].value = value;
	doc->pos[i].key = key;
	doc->npos++;
}

static const struct json_pos *
pos_get(const struct json_doc *doc, const cJSON *item)
{
	size_t i;

	if (doc->pos == NULL || item == NULL)
		return NULL;
	for (i = pos_hash(item, doc->mask); doc->pos[i].item != NULL; i = (i + 1) & doc->mask)
		if (doc->pos[i].item == item)
			return &doc->pos[i];
	return NULL;
}

static size_t
count_nodes(const cJSON *item)
{
	size_t n = 1;
	const cJSON *c;

	for (c = item->child; c; c = c->next)
		n += count_nodes(c);
	return n;
}

/* Walks the (valid) text and the tree together, recording offsets. */
static void
map_value(struct json_doc *doc, struct scan *sc, const cJSON *item, size_t keyoff)
{
	const cJSON *c;
	size_t a, b;

	scan_ws(sc);
	pos_put(doc, item, sc->i, keyoff);
	if (sc->s[sc->i] == '{') {
		sc->i++;
		for (c = item->child; c; c = c->next) {
			scan_ws(sc);
			if (sc->s[sc->i] == ',') {
				sc->i++;
				scan_ws(sc);
			}
			keyoff = sc->i;
			scan_string(sc, &a, &b);
			scan_ws(sc);
			sc->i++; /* ':' */
			map_value(doc, sc, c, keyoff);
		}
		scan_ws(sc);
		sc->i++; /* '}' */
	} else if (sc->s[sc->i] == '[') {
		sc->i++;
		for (c = item->child; c; c = c->next) {
			scan_ws(sc);
			if (sc->s[sc->i] == ',') {
				sc->i++;
				scan_ws(sc);
			}
			map_value(doc, sc, c, (size_t)-1);
		}
		scan_ws(sc);
		sc->i++; /* ']' */
	} else {
		struct scan skip = *sc;

		skip.diags = NULL;
		scan_value(&skip, 0);
		sc->i = skip.i;
	}
}

int
json_doc_parse(struct json_doc *doc, const char *file, const char *text, size_t len,
               struct diag_list *diags)
{
	struct scan sc = {0};
	size_t i, nodes;
	uint32_t cp;

	memset(doc, 0, sizeof(*doc));
	doc->file = file;
	doc->text = text;
	for (i = 0; i < len;) {
		size_t k = text_utf8_decode((const unsigned char *)text + i, len - i, &cp);

		if (cp == 0xfffd && k == 1) {
			diag_add_at(diags, DIAG_ERROR, file, text, i,
			            "invalid UTF-8 (save the file as UTF-8)");
			return -1;
		}
		if (cp == 0) {
			diag_add_at(diags, DIAG_ERROR, file, text, i, "NUL byte in file");
			return -1;
		}
		i += k;
	}
	sc.s = text;
	sc.n = len;
	sc.file = file;
	sc.diags = diags;
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		sc.i = 3;
	scan_ws(&sc);
	if (sc.i >= sc.n) {
		diag_add(diags, DIAG_ERROR, file, 1, 1, "file is empty");
		return -1;
	}
	scan_value(&sc, 0);
	if (sc.err == NULL) {
		scan_ws(&sc);
		if (sc.i < sc.n)
			scan_fail(&sc, sc.i, "unexpected text after the end of the JSON value");
	}
	if (sc.err != NULL) {
		diag_add_at(diags, DIAG_ERROR, file, text, sc.erroff, "%s", sc.err);
		return -1;
	}
	doc->root = cJSON_ParseWithLength(text, len);
	if (doc->root == NULL) {
		diag_add(diags, DIAG_ERROR, file, 1, 1, "cannot be parsed as JSON");
		return -1;
	}
	nodes = count_nodes(doc->root);
	for (doc->mask = 15; doc->mask < nodes * 2; doc->mask = doc->mask * 2 + 1)
		;
	doc->pos = xcalloc(doc->mask + 1, sizeof(*doc->pos));
	sc.i = (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) ? 3 : 0;
	sc.diags = NULL;
	map_value(doc, &sc, doc->root, (size_t)-1);
	return 0;
}

void
json_doc_free(struct json_doc *doc)
{
	if (doc == NULL)
		return;
	cJSON_Delete(doc->root);
	free(doc->pos);
	memset(doc, 0, sizeof(*doc));
}

void
json_doc_linecol(const struct json_doc *doc, size_t off, int *line, int *col)
{
	struct json_doc *d = (struct json_doc *)doc; /* only the cache changes */
	size_t i;

	if (d->lc_line == 0 || off < d->lc_off) {
		d->lc_off = 0;
		d->lc_line = d->lc_col = 1;
	}
	for (i = d->lc_off; i < off && d->text[i] != '\0'; i++) {
		if (d->text[i] == '\n') {
			d->lc_line++;
			d->lc_col = 1;
		} else if (((unsigned char)d->text[i] & 0xc0) != 0x80) {
			d->lc_col++;
		}
	}
	d->lc_off = i;
	*line = d->lc_line;
	*col = d->lc_col;
}

size_t
json_doc_offset(const struct json_doc *doc, const cJSON *item)
{
	const struct json_pos *p = pos_get(doc, item);

	return p ? p->value : 0;
}

size_t
json_doc_key_offset(const struct json_doc *doc, const cJSON *item)
{
	const struct json_pos *p = pos_get(doc, item);

	if (p == NULL)
		return 0;
	return p->key != (size_t)-1 ? p->key : p->value;
}

__attribute__((format(printf, 5, 0))) static void
json_vdiag(const struct json_doc *doc, struct diag_list *diags, enum diag_severity sev, size_t off,
           const char *fmt, va_list ap)
{
	struct buf b;

	buf_init(&b);
	buf_vprintf(&b, fmt, ap);
	diag_add_at(diags, sev, doc->file, doc->text, off, "%s", b.data);
	buf_free(&b);
}

void
json_diag(const struct json_doc *doc, struct diag_list *diags, enum diag_severity sev,
          const cJSON *item, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	json_vdiag(doc, diags, sev, json_doc_offset(doc, item), fmt, ap);
	va_end(ap);
}

void
json_diag_key(const struct json_doc *doc, struct diag_list *diags, enum diag_severity sev,
              const cJSON *item, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	json_vdiag(doc, diags, sev, json_doc_key_offset(doc, item), fmt, ap);
	va_end(ap);
}

const char *
json_type_name(const cJSON *item)
{
	if (item == NULL)
		return "nothing";
	if (cJSON_IsString(item))
		return "a string";
	if (cJSON_IsNumber(item))
		return "a number";
	if (cJSON_IsBool(item))
		return "true/false";
	if (cJSON_IsNull(item))
		return "null";
	if (cJSON_IsArray(item))
		return "an array";
	if (cJSON_IsObject(item))
		return "an object";
	return "an unknown value";
}

int
json_check_keys(const struct json_doc *doc, struct diag_list *diags, const cJSON *obj,
                const char *what, const char *const *allowed)
{
	const cJSON *c;
	const char *const *a;
	const char *best;
	size_t d, bestd;
	int bad = 0;

	for (c = obj->child; c; c = c->next) {
		for (a = allowed; *a; a++)
			if (strcmp(c->string, *a) == 0)
				break;
		if (*a)
			continue;
		best = NULL;
		bestd = 3;
		for (a = allowed; *a; a++) {
			d = util_edit_distance(c->string, *a);
			if (d < bestd) {
				bestd = d;
				best = *a;
			}
		}
		if (best)
			json_diag_key(doc, diags, DIAG_ERROR, c,
			              "unknown key \"%s\" in %s (did you mean \"%s\"?)", c->string,
			              what, best);
		else
			json_diag_key(doc, diags, DIAG_ERROR, c, "unknown key \"%s\" in %s",
			              c->string, what);
		bad++;
	}
	return bad;
}

void
json_defuse_nul(char *text, size_t len)
{
	size_t i;
	int in_string = 0;

	for (i = 0; i < len; i++) {
		if (text[i] == '\0') {
			text[i] = ' ';
		} else if (text[i] == '"') {
			in_string = !in_string;
		} else if (in_string && text[i] == '\\' && i + 1 < len) {
			if (text[i + 1] == 'u' && i + 5 < len && memcmp(text + i + 2, "0000", 4) == 0)
				memcpy(text + i + 2, "FFFD", 4);
			i++; /* the escaped character, whatever it is */
		}
	}
}
