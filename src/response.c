/*
 * Response files: header parsing, review rules and rendering with cmark.
 */
#include "response.h"

#include <stdlib.h>
#include <string.h>

#include <cmark.h>

#include "text.h"
#include "util.h"

#define RESPONSE_MAX_BODY   4000 /* bytes; a chat answer is much shorter */
#define RESPONSE_WARN_WORDS 180  /* words; longer does not fit a chat window */
#define NAME_MAX_BYTES      64   /* a display name longer than this is cut */

static const char *const header_keys[] = {"id",          "type",      "status",  "reviewed_by",
                                          "reviewed_on", "review_by", "sources", "locale",
                                          "comment",     NULL};

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

static char *
trim(const char *s, size_t n)
{
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
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

/* Checks the placeholders of the body; returns the number of errors. */
static int
check_placeholders(const char *file, const char *text, size_t body_off, const char *body,
                   struct diag_list *diags)
{
	static const char *const known[] = {"name",
	                                    "contacts.emergency",
	                                    "contacts.oncology",
	                                    "contacts.crisis",
	                                    "contacts.moderators",
	                                    NULL};
	const char *p = body, *close;
	const char *const *k;
	size_t n;
	int errors = 0;

	while ((p = strstr(p, "{{")) != NULL) {
		close = strstr(p + 2, "}}");
		if (close == NULL || memchr(p + 2, '\n', (size_t)(close - p - 2)) != NULL) {
			diag_add_at(diags, DIAG_ERROR, file, text, body_off + (size_t)(p - body),
			            "\"{{\" without a closing \"}}\" on the same line");
			errors++;
			p += 2;
			continue;
		}
		n = (size_t)(close - p - 2);
		for (k = known; *k; k++)
			if (strlen(*k) == n && memcmp(*k, p + 2, n) == 0)
				break;
		if (*k == NULL && !(n > 8 && memcmp(p + 2, "capture.", 8) == 0)) {
			diag_add_at(
			    diags, DIAG_ERROR, file, text, body_off + (size_t)(p - body),
			    "unknown placeholder {{%.*s}} (known: {{name}}, "
			    "{{contacts.emergency}}, "
			    "{{contacts.oncology}}, {{contacts.crisis}}, {{contacts.moderators}}, "
			    "{{capture.NAME}})",
			    (int)(n > 40 ? 40 : n), p + 2);
			errors++;
		}
		p = close + 2;
	}
	return errors;
}

int
response_parse(const char *file, const char *text, size_t len, struct response *out,
               struct diag_list *diags)
{
	const char *p, *eol, *colon, *last_key = NULL;
	size_t off, body_off;
	int line = 1, errors = 0, closed = 0, seen_sources = 0, key_line = 0;
	char *key, *val;
	const char *const *k;
	long d;

	memset(out, 0, sizeof(*out));
	out->reviewed_on = out->review_by = -1;
	out->file = xstrdup(file);
	if (!text_utf8_valid(text, len) || memchr(text, '\0', len) != NULL) {
		diag_add(diags, DIAG_ERROR, file, 1, 1, "not valid UTF-8 text");
		response_clear(out);
		return -1;
	}
	if (len < 4 || strncmp(text, "---", 3) != 0 || (text[3] != '\n' && text[3] != '\r')) {
		diag_add(
		    diags, DIAG_ERROR, file, 1, 1,
		    "a response starts with a \"---\" line, then its header (id, type, status, "
		    "reviewed_by, reviewed_on, review_by, sources, locale), then \"---\"");
		response_clear(out);
		return -1;
	}
	p = strchr(text, '\n') + 1;
	line = 2;
	while (p < text + len) {
		eol = memchr(p, '\n', (size_t)(text + len - p));
		if (eol == NULL)
			eol = text + len;
		off = (size_t)(p - text);
		{
			char *t = trim(p, (size_t)(eol - p));
			int is_end = strcmp(t, "---") == 0;
			int blank = t[0] == '\0' || t[0] == '#';
			int item = t[0] == '-' && t[1] == ' ';

			if (is_end) {
				free(t);
				closed = 1;
				p = eol < text + len ? eol + 1 : eol;
				line++;
				break;
			}
			if (blank) {
				free(t);
			} else if (item) {
				if (last_key == NULL || strcmp(last_key, "sources") != 0) {
					diag_add_at(
					    diags, DIAG_ERROR, file, text, off,
					    "a \"- \" list item belongs under \"sources:\"");
					errors++;
				} else {
					char *s = trim(t + 2, strlen(t + 2));

					out->sources = xreallocarray(
					    out->sources, out->nsources + 1, sizeof(*out->sources));
					out->sources[out->nsources++] = s;
				}
				free(t);
			} else if ((colon = strchr(t, ':')) == NULL) {
				diag_add_at(diags, DIAG_ERROR, file, text, off,
				            "expected \"key: value\" in the header");
				errors++;
				free(t);
			} else {
				key = trim(t, (size_t)(colon - t));
				val = trim(colon + 1, strlen(colon + 1));
				key_line = line;
				for (k = header_keys; *k; k++)
					if (strcmp(*k, key) == 0)
						break;
				last_key = *k;
				if (*k == NULL) {
					diag_add_at(
					    diags, DIAG_ERROR, file, text, off,
					    "unknown header key \"%s\" (known: id, type, status, "
					    "reviewed_by, reviewed_on, review_by, sources, locale)",
					    key);
					errors++;
				} else if (strcmp(key, "id") == 0) {
					if (!valid_id(val)) {
						diag_add_at(
						    diags, DIAG_ERROR, file, text, off,
						    "id must be a-z, 0-9, '.', '_' and '-'");
						errors++;
					}
					free(out->id);
					out->id = xstrdup(val);
				} else if (strcmp(key, "type") == 0) {
					if (strcmp(val, "faq") == 0)
						out->type = RESPONSE_FAQ;
					else if (strcmp(val, "safety") == 0)
						out->type = RESPONSE_SAFETY;
					else if (strcmp(val, "info") == 0)
						out->type = RESPONSE_INFO;
					else {
						diag_add_at(
						    diags, DIAG_ERROR, file, text, off,
						    "type must be faq, safety or info, not \"%s\"",
						    val);
						errors++;
					}
				} else if (strcmp(key, "status") == 0) {
					if (strcmp(val, "draft") == 0)
						out->status = RESPONSE_DRAFT;
					else if (strcmp(val, "approved") == 0)
						out->status = RESPONSE_APPROVED;
					else {
						diag_add_at(
						    diags, DIAG_ERROR, file, text, off,
						    "status must be draft or approved, not \"%s\"",
						    val);
						errors++;
					}
				} else if (strcmp(key, "reviewed_by") == 0) {
					free(out->reviewed_by);
					out->reviewed_by = xstrdup(val);
				} else if (strcmp(key, "reviewed_on") == 0 ||
				           strcmp(key, "review_by") == 0) {
					d = val[0] ? date_parse_days(val) : -1;
					if (val[0] && d < 0) {
						diag_add_at(diags, DIAG_ERROR, file, text, off,
						            "%s must be a date written YYYY-MM-DD, "
						            "not \"%s\"",
						            key, val);
						errors++;
					}
					if (key[7] == 'o')
						out->reviewed_on = d;
					else
						out->review_by = d;
				} else if (strcmp(key, "sources") == 0) {
					seen_sources = 1;
					if (val[0]) {
						out->sources =
						    xreallocarray(out->sources, out->nsources + 1,
						                  sizeof(*out->sources));
						out->sources[out->nsources++] = xstrdup(val);
					}
				} else if (strcmp(key, "locale") == 0) {
					free(out->locale);
					out->locale = xstrdup(val);
				}
				free(key);
				free(val);
				free(t);
			}
		}
		p = eol < text + len ? eol + 1 : eol;
		line++;
	}
	(void)key_line;
	if (!closed) {
		diag_add(diags, DIAG_ERROR, file, 1, 1,
		         "the header is not closed by a \"---\" line");
		response_clear(out);
		return -1;
	}
	body_off = (size_t)(p - text);
	out->body_line = line;
	if (out->id == NULL) {
		diag_add(diags, DIAG_ERROR, file, 1, 1, "the header has no id");
		errors++;
	}
	if (out->locale == NULL)
		out->locale = xstrdup("en");
	if (out->reviewed_by == NULL)
		out->reviewed_by = xstrdup("");
	if (out->status == RESPONSE_APPROVED) {
		if (out->reviewed_by[0] == '\0' || out->reviewed_on < 0 || out->review_by < 0) {
			diag_add(
			    diags, DIAG_ERROR, file, 1, 1,
			    "an approved response needs reviewed_by, reviewed_on and review_by");
			errors++;
		} else if (out->review_by <= out->reviewed_on) {
			diag_add(diags, DIAG_ERROR, file, 1, 1,
			         "review_by must come after reviewed_on");
			errors++;
		}
	}
	if (out->type == RESPONSE_FAQ && out->nsources == 0) {
		diag_add(diags, DIAG_ERROR, file, 1, 1,
		         "a medical (faq) answer must name its sources");
		errors++;
	}
	(void)seen_sources;
	{
		char *body = trim(p, (size_t)(text + len - p));
		size_t bl = strlen(body);

		while (bl > 0 && (body[bl - 1] == '\n' || body[bl - 1] == '\r'))
			body[--bl] = '\0';
		while (body[0] == '\n' || body[0] == '\r')
			memmove(body, body + 1, bl--);
		out->body = body;
	}
	if (out->body[0] == '\0') {
		diag_add(diags, DIAG_ERROR, file, line, 1, "the response has no text");
		errors++;
	} else if (strlen(out->body) > RESPONSE_MAX_BODY) {
		diag_add(diags, DIAG_ERROR, file, line, 1,
		         "the text is %zu bytes; at most %d fit in a chat answer",
		         strlen(out->body), RESPONSE_MAX_BODY);
		errors++;
	}
	errors += check_placeholders(file, text, body_off, p, diags);
	if (errors) {
		response_clear(out);
		return -1;
	}
	return 0;
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

void
response_md_escape(const char *s, size_t max, char **out)
{
	struct buf b;
	size_t i, n = s ? strlen(s) : 0;
	unsigned char c;

	buf_init(&b);
	for (i = 0; i < n && b.len < max; i++) {
		c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f) {
			buf_putc(&b, ' ');
		} else if (strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c) != NULL) {
			buf_putc(&b, '\\');
			buf_putc(&b, (char)c);
		} else {
			buf_putc(&b, (char)c);
		}
	}
	/* Never cut a UTF-8 character in half. */
	while (b.len > 0 && ((unsigned char)b.data[b.len - 1] & 0xc0) == 0x80 && i < n) {
		size_t k = b.len;

		while (k > 0 && ((unsigned char)b.data[k - 1] & 0xc0) == 0x80)
			k--;
		if (k > 0)
			k--;
		b.len = k;
		b.data[k] = '\0';
		break;
	}
	if (!text_utf8_valid(b.data ? b.data : "", b.len)) {
		/* A name with invalid bytes: keep only what is valid. */
		char *f = text_fold(b.data, b.len, NULL);

		buf_free(&b);
		*out = f;
		return;
	}
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

/* Fills the placeholders of md into out. */
static void
fill(const char *md, const struct render_vars *v, struct buf *out)
{
	const char *p = md, *open, *close, *val;
	char *esc;
	int escape;

	while ((open = strstr(p, "{{")) != NULL && (close = strstr(open + 2, "}}")) != NULL) {
		buf_append(out, p, (size_t)(open - p));
		val = placeholder_value(open + 2, (size_t)(close - open - 2), v, &escape);
		p = close + 2;
		if (val == NULL || val[0] == '\0') {
			/* "{{name}}, I am sorry" without a name reads "I am sorry". */
			if (p[0] == ',' && p[1] == ' ') {
				p += 2;
				if (*p >= 'a' && *p <= 'z' &&
				    (out->len == 0 || out->data[out->len - 1] == '\n' ||
				     out->data[out->len - 1] == ' ')) {
					buf_putc(out, (char)(*p - 32));
					p++;
				}
			}
			continue;
		}
		if (escape) {
			response_md_escape(val, NAME_MAX_BYTES * 2, &esc);
			buf_puts(out, esc);
			free(esc);
		} else {
			buf_puts(out, val);
		}
	}
	buf_puts(out, p);
}

/* Plain text from the cmark tree. */
static void
plain_node(cmark_node *node, struct buf *out, int list_depth)
{
	cmark_node *c;
	const char *lit, *url;
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
		for (c = cmark_node_first_child(node); c; c = cmark_node_next(c))
			plain_node(c, out, list_depth);
		url = cmark_node_get_url(node);
		if (url && *url)
			buf_printf(out, " (%s)", url);
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
		if (today >= r->review_by)
			diag_add(
			    diags, DIAG_WARNING, r->file, 1, 1,
			    "review expired: review_by has passed, so this response is not sent "
			    "until it is reviewed again");
		else if (r->review_by - today <= 30)
			diag_add(diags, DIAG_NOTE, r->file, 1, 1, "review expires in %ld days",
			         r->review_by - today);
	}
	/* Grade the text as a reader sees it, placeholders as plain words. */
	v.name = "Sam";
	v.contacts.emergency = "the number";
	v.contacts.oncology = "the number";
	v.contacts.crisis = "the number";
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
