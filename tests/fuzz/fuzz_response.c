/*
 * Fuzz target: a response file (header and Markdown body) and a hostile
 * display name. The input is the display name, a NUL byte, then the file;
 * without a NUL, the whole input is the file and there is no name. The
 * file goes through response_parse, response_check and response_render
 * with the name in {{name}} and in every {{capture.*}}, the contacts,
 * disclaimer and draft notice of the default configuration.
 *
 * Oracles beyond "no crash, hang or leak":
 *  - the HTML never holds a tag cmark's safe mode would not write (raw
 *    HTML in a body or a name comes out as a comment or as text);
 *  - the escaped name, rendered on its own, reads exactly as the name
 *    (for a short, valid UTF-8 name with no control characters and no
 *    space at either end), less its bidi embeddings, overrides and
 *    isolates, which never survive escaping: what someone calls
 *    themselves is shown literally, never interpreted as Markdown.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "diag.h"
#include "log.h"
#include "response.h"
#include "text.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_NAME 4096

static struct config cfg;

static void
cleanup(void)
{
	config_free(&cfg);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init(LOG_LEVEL_ERROR, 0);
	config_defaults(&cfg);
	atexit(cleanup);
	return 0;
}

/* Does s contain needle, ignoring ASCII case? */
static int
has_nocase(const char *s, const char *needle)
{
	size_t n = strlen(needle);

	for (; *s; s++)
		if (strncasecmp(s, needle, n) == 0)
			return 1;
	return 0;
}

/* Is every tag in html one that cmark writes in its safe mode? */
static int
tags_safe(const char *html)
{
	static const char *const ok[] = {
	    "p",  "em", "strong", "a",  "code", "pre", "ul", "ol", "li", "blockquote",
	    "h1", "h2", "h3",     "h4", "h5",   "h6",  "hr", "br", "img", NULL};
	const char *p = html, *name;
	size_t n, i;

	while ((p = strchr(p, '<')) != NULL) {
		p++;
		if (strncmp(p, "!-- raw HTML omitted -->", 24) == 0)
			continue;
		if (*p == '/')
			p++;
		name = p;
		while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
			p++;
		n = (size_t)(p - name);
		if (*p != '>' && *p != ' ' && *p != '/')
			return 0;
		for (i = 0; ok[i]; i++)
			if (strlen(ok[i]) == n && strncmp(ok[i], name, n) == 0)
				break;
		if (ok[i] == NULL)
			return 0;
	}
	/* A link's target never runs script, whoever wrote it. */
	return !has_nocase(html, "href=\"javascript:") && !has_nocase(html, "src=\"javascript:");
}

/* The name as it must read once rendered, or NULL when that is not simple to say. */
static int
name_checkable(const char *name, size_t n)
{
	size_t i;

	if (n == 0 || n > 60 || !text_utf8_valid(name, n))
		return 0;
	if (name[0] == ' ' || name[n - 1] == ' ')
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return 0;
	return 1;
}

/* Is there a bidi embedding, override or isolate (U+202A-202E, U+2066-2069) at s? */
static int
bidi_at(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	return p[0] == 0xe2 && ((p[1] == 0x80 && p[2] >= 0xaa && p[2] <= 0xae) ||
	                        (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9));
}

static void
check_name(const char *name, size_t n)
{
	struct rendered out;
	char *esc, *want;
	size_t i, k = 0;

	response_md_escape(name, 128, &esc);
	if (!text_utf8_valid(esc, strlen(esc)))
		abort();
	/* Bidi controls would reorder the answer around the name: they are dropped. */
	want = xmalloc(n + 1);
	for (i = 0; i < n; i++) {
		if (i + 2 < n && bidi_at(name + i)) {
			i += 2;
			continue;
		}
		want[k++] = name[i];
	}
	want[k] = '\0';
	for (i = 0; esc[i]; i++)
		if (bidi_at(esc + i))
			abort();
	response_render_markdown(esc, &out);
	if (!tags_safe(out.html))
		abort();
	/*
	 * Only for a name that was valid UTF-8: dropping bidi controls from
	 * invalid bytes here could join the bytes around them into a new one
	 * ("\xe2\x80" + U+202C + "\xac"), where the escape first replaces the
	 * invalid bytes and so keeps no bidi control at all.
	 */
	if (text_utf8_valid(name, n) && name_checkable(want, k) && strcmp(out.plain, want) != 0)
		abort(); /* the name was read as Markdown */
	rendered_free(&out);
	free(want);
	free(esc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const cap_name[] = {"cancer", "drug", "organ", "x"};
	const char *cap_value[4];
	const char *text = (const char *)data, *nul;
	const struct cfg_contacts *c = config_contacts(&cfg, "en");
	struct render_vars v;
	struct response r;
	struct rendered out;
	struct diag_list d;
	char *name = NULL;
	size_t i, len = size;

	nul = memchr(data, '\0', size);
	if (nul != NULL && (size_t)(nul - text) <= MAX_NAME) {
		name = xstrndup(text, (size_t)(nul - text));
		len = size - (size_t)(nul - text) - 1;
		text = nul + 1;
		check_name(name, strlen(name));
	}
	diag_list_init(&d);
	if (response_parse("responses/fuzz.md", text, len, &r, &d) == 0) {
		response_check(&r, 8, 20000, &d);
		(void)response_usable(&r, 0, 20000);
		memset(&v, 0, sizeof(v));
		for (i = 0; i < 4; i++)
			cap_value[i] = name;
		v.name = name;
		v.cap_name = cap_name;
		v.cap_value = cap_value;
		v.ncap = name ? 4 : 0;
		v.contacts.emergency = c->emergency;
		v.contacts.oncology = c->oncology;
		v.contacts.crisis = c->crisis;
		/* Both ways a locale can be: with a text line and without. */
		v.contacts.crisis_text = (len & 1) ? c->crisis_text : NULL;
		v.contacts.moderators = c->moderators;
		v.disclaimer = cfg.disclaimer;
		v.footer = r.status == RESPONSE_DRAFT ? cfg.draft_notice : NULL;
		response_render(&r, &v, &out);
		if (!tags_safe(out.html))
			abort();
		rendered_free(&out);
		response_clear(&r);
	} else if (d.errors == 0) {
		abort(); /* a rejected file always says why */
	}
	for (i = 0; i < d.n; i++)
		free(diag_format(&d.d[i]));
	diag_list_free(&d);
	free(name);
	return 0;
}
