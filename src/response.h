/*
 * Responses: the vetted answers, one Markdown file each under responses/,
 * with a small header (id, type, status, reviewed_by, reviewed_on,
 * review_by, sources, locale). Only an approved response whose review has
 * not expired is ever sent, unless the admin allows drafts for a demo.
 *
 * Rendering fills a few placeholders ({{name}}, {{contacts.*}},
 * {{capture.NAME}}) and sections ({{#NAME}}...{{/NAME}}: shown only when
 * NAME has a value; {{^NAME}}: only when it has none), escaping everything
 * a user supplied, and produces
 * plain text and HTML (with cmark, in its safe mode), with the disclaimer
 * appended to medical answers by the engine.
 */
#ifndef FAQBOT_RESPONSE_H
#define FAQBOT_RESPONSE_H

#include <stddef.h>

#include "diag.h"

enum response_type {
	RESPONSE_FAQ,    /* a medical answer: gets the disclaimer */
	RESPONSE_SAFETY, /* emergency or crisis: fixed text and contacts */
	RESPONSE_INFO,   /* about the bot or where to ask: no disclaimer */
};

enum response_status {
	RESPONSE_DRAFT,    /* awaiting clinical review */
	RESPONSE_APPROVED, /* reviewed; sendable until review_by */
};

struct response {
	char *id;     /* e.g. "palliative.care" */
	char *locale; /* e.g. "en" */
	enum response_type type;
	enum response_status status;
	char *reviewed_by; /* who approved it; "" for drafts */
	long reviewed_on;  /* days since 1970, or -1 */
	long review_by;    /* the review expires that day, or -1 */
	int review_line;   /* the line of review_by in the file, or 0 */
	char **sources;    /* where its facts come from */
	size_t nsources;
	char *body;    /* Markdown */
	char *file;    /* where it was read from */
	int body_line; /* the body's first line in the file */
};

struct response_set {
	struct response *r; /* the responses */
	size_t n;           /* how many */
};

/* Why a response may not be sent. */
enum response_use {
	RESPONSE_USABLE,
	RESPONSE_NOT_REVIEWED, /* a draft, and drafts are not allowed */
	RESPONSE_EXPIRED,      /* approved, but review_by has passed */
};

/* Contacts filled into {{contacts.*}}; Markdown written by the admin. */
struct response_contacts {
	const char *emergency;   /* the local emergency number */
	const char *oncology;    /* the oncology team's urgent line */
	const char *crisis;      /* a crisis line */
	const char *crisis_text; /* a crisis text line, or NULL/"" when there is none */
	const char *moderators;  /* how to reach the moderators */
};

struct render_vars {
	const char *name;            /* the asker's display name, or NULL */
	const char *const *cap_name; /* named captures of the winning pattern */
	const char *const *cap_value;
	size_t ncap;
	struct response_contacts contacts;
	const char *disclaimer; /* appended to RESPONSE_FAQ answers, or NULL */
	const char *footer;     /* appended to any answer (Markdown), or NULL */
};

struct rendered {
	char *plain;    /* plain text */
	char *html;     /* HTML fragment */
	char *markdown; /* the Markdown that both came from */
};

/*
 * Parses one response file (text, len bytes) into *out. Returns 0, or -1
 * after adding diagnostics; out is then cleared. Warnings (reading grade,
 * length) are added by response_check(), not here.
 */
int response_parse(const char *file, const char *text, size_t len, struct response *out,
                   struct diag_list *diags);
void response_clear(struct response *r);

/*
 * Checks what lint reports about a parsed response beyond its syntax:
 * expired or soon-expiring review, reading grade above max_grade, length,
 * a file name that does not match the id.
 */
void response_check(const struct response *r, double max_grade, long today,
                    struct diag_list *diags);

/* Whether r may be sent today. */
enum response_use response_usable(const struct response *r, int allow_drafts, long today);

/* Finds id in locale, falling back to "en" and then to any locale. */
const struct response *response_find(const struct response_set *set, const char *id,
                                     const char *locale);

void response_set_free(struct response_set *set);

/*
 * Renders r with v into out (free with rendered_free). User-supplied values
 * are escaped so they read literally in both outputs. Never fails.
 */
void response_render(const struct response *r, const struct render_vars *v, struct rendered *out);

/* Renders standalone Markdown (for fallbacks and notices) the same way. */
void response_render_markdown(const char *md, struct rendered *out);

void rendered_free(struct rendered *out);

/*
 * Escapes s (a display name or captured words: anything a stranger
 * controls) for literal use inside Markdown into *out (caller frees):
 * backslashes before ASCII punctuation, controls and newlines to spaces,
 * blanks at either end dropped, each invalid UTF-8 byte replaced by U+FFFD
 * (the rest kept as written), bidi embeddings, overrides and isolates
 * (U+202A-202E, U+2066-2069) dropped so they cannot reorder the answer
 * around them. At most max bytes, never cut inside a character or an
 * escape. s may be NULL (gives ""). Never fails.
 */
void response_md_escape(const char *s, size_t max, char **out);

#endif
