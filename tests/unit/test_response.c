/*
 * Unit tests for response.c: the header of a response file (every key,
 * lists of sources, the review rules), whether a response may be sent
 * (drafts, expired reviews), locale fallback, lint's extra checks, and
 * rendering: placeholders, the disappearing "{{name}}, ", the disclaimer
 * and footer, cmark's plain text, and above all escaping: whatever a user
 * controls (display name, captured words) must read literally in plain
 * text and be inert in HTML, and raw HTML in a body never passes through.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "diag.h"
#include "helpers.h"
#include "response.h"
#include "text.h"
#include "util.h"

/* --- parsing -------------------------------------------------------------- */

static void
test_parse_every_key(void **state)
{
	static const char text[] = "---\n"
	                           "id: palliative.care\n"
	                           "type: faq\n"
	                           "status: approved\n"
	                           "# a comment line\n"
	                           "\n"
	                           "reviewed_by: Dr A. Example, palliative care consultant\n"
	                           "reviewed_on: 2026-11-02\n"
	                           "review_by:   2027-11-02  \n"
	                           "sources:\n"
	                           "  - seeds/002_59de166c40cd9ecd.txt\n"
	                           "  - https://www.nhs.uk/conditions/palliative-care/\n"
	                           "locale: de\n"
	                           "comment: checked against the 2026 guideline\n"
	                           "---\n"
	                           "\n"
	                           "Palliative care is care that focuses on comfort.\n"
	                           "\n"
	                           "It can start at any time.\n"
	                           "\n\n";
	struct response r;
	struct diag_list d;
	int rc;

	(void)state;
	check_begin();
	diag_list_init(&d);
	rc = response_parse("responses/palliative.care.de.md", text, sizeof(text) - 1, &r, &d);
	if (!CHECK(rc == 0 && d.n == 0, "a complete approved response is refused: %s",
	           d.n ? d.d[0].msg : "")) {
		diag_list_free(&d);
		CHECK_END();
		return;
	}
	CHECK_STR(r.id, "palliative.care", "id");
	CHECK(r.type == RESPONSE_FAQ, "type");
	CHECK(r.status == RESPONSE_APPROVED, "status");
	CHECK_STR(r.reviewed_by, "Dr A. Example, palliative care consultant", "reviewed_by");
	CHECK(r.reviewed_on == date_parse_days("2026-11-02"), "reviewed_on %ld", r.reviewed_on);
	CHECK(r.review_by == date_parse_days("2027-11-02"), "review_by %ld", r.review_by);
	CHECK(r.nsources == 2, "%zu sources", r.nsources);
	if (r.nsources == 2) {
		CHECK_STR(r.sources[0], "seeds/002_59de166c40cd9ecd.txt", "first source");
		CHECK_STR(r.sources[1], "https://www.nhs.uk/conditions/palliative-care/",
		          "second source");
	}
	CHECK_STR(r.locale, "de", "locale");
	CHECK_STR(r.file, "responses/palliative.care.de.md", "file");
	/* the body without the blank lines around it, and where it starts */
	CHECK_STR(r.body,
	          "Palliative care is care that focuses on comfort.\n\nIt can start at any time.",
	          "body");
	CHECK(r.body_line == 16 || r.body_line == 17, "body_line %d", r.body_line);
	response_clear(&r);
	diag_list_free(&d);
	CHECK_END();
}

struct parse_case {
	const char *name;
	const char *text;
	int ok;
	/* checks on success */
	int type;
	int status;
	size_t nsources;
	const char *locale;
	const char *body;
	/* on failure: a piece of the first error */
	const char *err;
};

static const struct parse_case parse_cases[] = {
    {"defaults: draft, locale en", "---\nid: a\ntype: info\n---\nHello.\n", 1, RESPONSE_INFO,
     RESPONSE_DRAFT, 0, "en", "Hello.", NULL},
    {"a source on the key's line", "---\nid: a\nsources: seeds/x.txt\n---\nHello.\n", 1,
     RESPONSE_FAQ, RESPONSE_DRAFT, 1, "en", "Hello.", NULL},
    {"CRLF line endings", "---\r\nid: a\r\ntype: safety\r\nstatus: draft\r\n---\r\nCall now.\r\n",
     1, RESPONSE_SAFETY, RESPONSE_DRAFT, 0, "en", "Call now.", NULL},
    {"approved with everything",
     "---\nid: a\ntype: info\nstatus: approved\nreviewed_by: Dr B\nreviewed_on: 2024-02-29\n"
     "review_by: 2025-02-28\n---\nHi.\n",
     1, RESPONSE_INFO, RESPONSE_APPROVED, 0, "en", "Hi.", NULL},
    {"empty review keys in a draft",
     "---\nid: a\ntype: info\nstatus: draft\nreviewed_by:\nreviewed_on:\nreview_by:\n---\nHi.\n", 1,
     RESPONSE_INFO, RESPONSE_DRAFT, 0, "en", "Hi.", NULL},
    {"approved without a reviewer",
     "---\nid: a\ntype: info\nstatus: approved\nreviewed_on: 2026-01-01\nreview_by: "
     "2027-01-01\n---\nHi.\n",
     0, 0, 0, 0, NULL, NULL, "needs reviewed_by, reviewed_on and review_by"},
    {"approved without dates",
     "---\nid: a\ntype: info\nstatus: approved\nreviewed_by: Dr B\n---\nHi.\n", 0, 0, 0, 0, NULL,
     NULL, "needs reviewed_by, reviewed_on and review_by"},
    {"review_by on the review day",
     "---\nid: a\ntype: info\nstatus: approved\nreviewed_by: Dr B\nreviewed_on: 2026-01-01\n"
     "review_by: 2026-01-01\n---\nHi.\n",
     0, 0, 0, 0, NULL, NULL, "review_by must come after reviewed_on"},
    {"review_by before the review",
     "---\nid: a\ntype: info\nstatus: approved\nreviewed_by: Dr B\nreviewed_on: 2026-01-01\n"
     "review_by: 2025-01-01\n---\nHi.\n",
     0, 0, 0, 0, NULL, NULL, "review_by must come after reviewed_on"},
    {"29 February of a common year", "---\nid: a\ntype: info\nreviewed_on: 2025-02-29\n---\nHi.\n",
     0, 0, 0, 0, NULL, NULL, "reviewed_on must be a date written YYYY-MM-DD, not \"2025-02-29\""},
    {"faq without sources", "---\nid: a\ntype: faq\n---\nHi.\n", 0, 0, 0, 0, NULL, NULL,
     "must name its sources"},
    {"no id", "---\ntype: info\n---\nHi.\n", 0, 0, 0, 0, NULL, NULL, "the header has no id"},
    {"placeholder for a capture", "---\nid: a\ntype: info\n---\nAbout {{capture.drug}}.\n", 1,
     RESPONSE_INFO, RESPONSE_DRAFT, 0, "en", "About {{capture.drug}}.", NULL},
    {"a list item outside sources", "---\nid: a\ntype: info\n- x\n---\nHi.\n", 0, 0, 0, 0, NULL,
     NULL, "belongs under \"sources:\""},
    {"a header line without a colon", "---\nid: a\ntype info\n---\nHi.\n", 0, 0, 0, 0, NULL, NULL,
     "expected \"key: value\""},
    {"a NUL byte", "---\nid: a\ntype: info\n---\nHi\0there\n", 0, 0, 0, 0, NULL, NULL,
     "not valid UTF-8 text"},
};

static void
test_parse_table(void **state)
{
	struct response r;
	struct diag_list d;
	size_t i, len;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		int rc;

		len = strlen(c->text);
		if (strcmp(c->name, "a NUL byte") == 0)
			len = strlen(c->text) + 1 + strlen(c->text + strlen(c->text) + 1);
		diag_list_init(&d);
		rc = response_parse("responses/a.md", c->text, len, &r, &d);
		if (c->ok) {
			if (CHECK(rc == 0 && d.errors == 0, "%s: refused (%s)", c->name,
			          d.n ? d.d[0].msg : "no message")) {
				CHECK(r.type == (enum response_type)c->type, "%s: type %d", c->name,
				      r.type);
				CHECK(r.status == (enum response_status)c->status, "%s: status %d",
				      c->name, r.status);
				CHECK(r.nsources == c->nsources, "%s: %zu sources", c->name,
				      r.nsources);
				CHECK_STR(r.locale, c->locale, c->name);
				CHECK_STR(r.body, c->body, c->name);
			}
		} else {
			CHECK(rc == -1 && d.errors > 0, "%s: accepted", c->name);
			CHECK(d.n > 0 && has(d.d[0].msg, c->err), "%s: first message is \"%s\"",
			      c->name, d.n ? d.d[0].msg : "");
			CHECK(r.id == NULL && r.body == NULL, "%s: not cleared after an error",
			      c->name);
		}
		response_clear(&r);
		diag_list_free(&d);
	}
	CHECK_END();
}

/* --- may it be sent? ---------------------------------------------------- */

static void
test_usable(void **state)
{
	struct response r = {0};
	long today = date_parse_days("2026-06-15");

	(void)state;
	r.status = RESPONSE_DRAFT;
	r.reviewed_on = r.review_by = -1;
	assert_int_equal(response_usable(&r, 0, today), RESPONSE_NOT_REVIEWED);
	assert_int_equal(response_usable(&r, 1, today), RESPONSE_USABLE);
	r.status = RESPONSE_APPROVED;
	r.reviewed_on = date_parse_days("2025-06-15");
	r.review_by = date_parse_days("2026-06-16");
	assert_int_equal(response_usable(&r, 0, today), RESPONSE_USABLE);
	r.review_by = today; /* "the review expires that day" */
	assert_int_equal(response_usable(&r, 0, today), RESPONSE_EXPIRED);
	assert_int_equal(response_usable(&r, 1, today), RESPONSE_EXPIRED);
	r.review_by = date_parse_days("2026-01-01");
	assert_int_equal(response_usable(&r, 0, today), RESPONSE_EXPIRED);
}

static void
test_find_locale(void **state)
{
	struct response rs[4] = {0};
	struct response_set set = {rs, 4};

	(void)state;
	rs[0].id = "a";
	rs[0].locale = "de";
	rs[1].id = "a";
	rs[1].locale = "en";
	rs[2].id = "a";
	rs[2].locale = "fr";
	rs[3].id = "b";
	rs[3].locale = "de";
	assert_ptr_equal(response_find(&set, "a", "fr"), &rs[2]);
	assert_ptr_equal(response_find(&set, "a", "de"), &rs[0]);
	assert_ptr_equal(response_find(&set, "a", "it"), &rs[1]); /* falls back to en */
	assert_ptr_equal(response_find(&set, "a", NULL), &rs[1]);
	assert_ptr_equal(response_find(&set, "b", "it"), &rs[3]); /* then to any */
	assert_null(response_find(&set, "c", "en"));
}

/* What lint adds about a parsed response. */
static void
test_check(void **state)
{
	static const struct {
		const char *file;
		const char *text;
		const char *today;
		const char *want; /* a piece of a warning or note, or NULL for none */
	} cases[] = {
	    {"responses/a.md",
	     "---\nid: a\ntype: info\nstatus: approved\nreviewed_by: B\nreviewed_on: 2025-01-01\n"
	     "review_by: 2026-01-01\n---\nWe are here.\n",
	     "2026-01-01", "review expired"},
	    {"responses/a.md",
	     "---\nid: a\ntype: info\nstatus: approved\nreviewed_by: B\nreviewed_on: 2025-01-01\n"
	     "review_by: 2026-01-31\n---\nWe are here.\n",
	     "2026-01-11", "review expires in 20 days"},
	    {"responses/a.md",
	     "---\nid: a\ntype: info\nstatus: approved\nreviewed_by: B\nreviewed_on: 2025-01-01\n"
	     "review_by: 2027-01-31\n---\nWe are here.\n",
	     "2026-01-11", NULL},
	    {"responses/b.md", "---\nid: a\ntype: info\n---\nWe are here.\n", "2026-01-11",
	     "file name should be a.md (or a.en.md)"},
	    {"responses/a.en.md", "---\nid: a\ntype: info\n---\nWe are here.\n", "2026-01-11",
	     NULL},
	    {"responses/a.md",
	     "---\nid: a\ntype: info\n---\nImmunotherapeutic interventions necessitate "
	     "comprehensive "
	     "multidisciplinary evaluation, incorporating radiological, histopathological and "
	     "biochemical characterisation prior to administration.\n",
	     "2026-01-11", "reading grade"},
	};
	struct response r;
	struct diag_list d;
	size_t i, k;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(cases); i++) {
		int found = 0, rc;

		diag_list_init(&d);
		rc = response_parse(cases[i].file, cases[i].text, strlen(cases[i].text), &r, &d);
		if (!CHECK(rc == 0, "case %zu does not parse: %s", i, d.n ? d.d[0].msg : "")) {
			diag_list_free(&d);
			continue;
		}
		response_check(&r, 8, date_parse_days(cases[i].today), &d);
		for (k = 0; k < d.n; k++)
			found |= cases[i].want && has(d.d[k].msg, cases[i].want);
		if (cases[i].want)
			CHECK(found, "case %zu: no message with \"%s\"", i, cases[i].want);
		else
			CHECK(d.n == 0, "case %zu: unexpected \"%s\"", i, d.n ? d.d[0].msg : "");
		response_clear(&r);
		diag_list_free(&d);
	}
	CHECK_END();
}

/* --- rendering ------------------------------------------------------------- */

struct render_case {
	const char *name;
	const char *body;
	enum response_type type;
	const char *user;       /* display name, or NULL */
	const char *disclaimer; /* or NULL */
	const char *footer;     /* or NULL */
	const char *plain;      /* exact plain text */
	const char *html;       /* exact HTML, or NULL to skip */
};

static const struct render_case render_cases[] = {
    {"name filled", "{{name}}, you are not alone.", RESPONSE_INFO, "Sam", NULL, NULL,
     "Sam, you are not alone.", "<p>Sam, you are not alone.</p>"},
    {"no name: \"{{name}}, \" vanishes and the sentence starts with a capital",
     "{{name}}, you are not alone.", RESPONSE_INFO, NULL, NULL, NULL, "You are not alone.",
     "<p>You are not alone.</p>"},
    {"empty name counts as none", "{{name}}, you are not alone.", RESPONSE_INFO, "", NULL, NULL,
     "You are not alone.", NULL},
    {"no name at the start of a later sentence", "I hear you. {{name}}, it is hard.", RESPONSE_INFO,
     NULL, NULL, NULL, "I hear you. It is hard.", NULL},
    {"no name mid-sentence: nothing is capitalised", "Hi {{name}}, thanks for asking.",
     RESPONSE_INFO, NULL, NULL, NULL, "Hi thanks for asking.", NULL},
    {"no name before a full stop", "Thank you {{name}}.", RESPONSE_INFO, NULL, NULL, NULL,
     "Thank you.", NULL},
    {"contacts are the admin's Markdown", "Call {{contacts.emergency}} now.", RESPONSE_SAFETY, NULL,
     NULL, NULL, "Call 112 now.", "<p>Call <strong>112</strong> now.</p>"},
    {"disclaimer on a faq answer", "Body.", RESPONSE_FAQ, NULL, "Not medical advice.", NULL,
     "Body.\n\nNot medical advice.", "<p>Body.</p>\n<p><em>Not medical advice.</em></p>"},
    {"no disclaimer on info", "Body.", RESPONSE_INFO, NULL, "Not medical advice.", NULL, "Body.",
     "<p>Body.</p>"},
    {"no disclaimer on safety", "Body.", RESPONSE_SAFETY, NULL, "Not medical advice.", NULL,
     "Body.", "<p>Body.</p>"},
    {"footer on any answer, after the disclaimer", "Body.", RESPONSE_FAQ, NULL, "Not advice.",
     "_Draft._", "Body.\n\nNot advice.\n\nDraft.",
     "<p>Body.</p>\n<p><em>Not advice.</em></p>\n<p><em>Draft.</em></p>"},
    {"footer on info", "Body.", RESPONSE_INFO, NULL, NULL, "Footer", "Body.\n\nFooter",
     "<p>Body.</p>\n<p>Footer</p>"},
    {"lists in plain text", "- one\n- two\n  - nested\n\n1. first\n2. second", RESPONSE_INFO, NULL,
     NULL, NULL, "- one\n- two\n  - nested\n\n1. first\n2. second", NULL},
    {"an ordered list keeps its start", "3. third\n4. fourth", RESPONSE_INFO, NULL, NULL, NULL,
     "3. third\n4. fourth", "<ol start=\"3\">\n<li>third</li>\n<li>fourth</li>\n</ol>"},
    {"links in plain text show their address", "See [the NHS](https://www.nhs.uk).", RESPONSE_INFO,
     NULL, NULL, NULL, "See the NHS (https://www.nhs.uk).",
     "<p>See <a href=\"https://www.nhs.uk\">the NHS</a>.</p>"},
    {"an autolink shows its address once", "See <https://www.nhs.uk>.", RESPONSE_INFO, NULL, NULL,
     NULL, "See https://www.nhs.uk.", NULL},
    {"emphasis and code lose their marks in plain text", "It is *not* `your` **fault**.",
     RESPONSE_INFO, NULL, NULL, NULL, "It is not your fault.",
     "<p>It is <em>not</em> <code>your</code> <strong>fault</strong>.</p>"},
    {"soft breaks become spaces", "One line\nand the next.", RESPONSE_INFO, NULL, NULL, NULL,
     "One line and the next.", NULL},
};

static void
test_render_table(void **state)
{
	struct response r;
	struct render_vars v;
	struct rendered out;
	size_t i;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(render_cases); i++) {
		const struct render_case *c = &render_cases[i];

		memset(&r, 0, sizeof(r));
		memset(&v, 0, sizeof(v));
		r.body = (char *)c->body;
		r.type = c->type;
		v.name = c->user;
		v.disclaimer = c->disclaimer;
		v.footer = c->footer;
		v.contacts.emergency = "**112**";
		response_render(&r, &v, &out);
		CHECK_STR(out.plain, c->plain, c->name);
		if (c->html)
			CHECK_STR(out.html, c->html, c->name);
		rendered_free(&out);
	}
	CHECK_END();
}

/* Sections: text shown only when a placeholder has a value, or has none. */
struct section_case {
	const char *name;
	const char *body;
	const char *user;        /* {{name}} */
	const char *crisis_text; /* {{contacts.crisis_text}} */
	const char *markdown;    /* what the body must fill to */
};

static const struct section_case section_cases[] = {
    {"inline, with a value",
     "Call 1.{{#contacts.crisis_text}} Or text {{contacts.crisis_text}}."
     "{{/contacts.crisis_text}} Bye.",
     NULL, "SHOUT to 85258", "Call 1. Or text SHOUT to 85258. Bye."},
    {"inline, without a value",
     "Call 1.{{#contacts.crisis_text}} Or text "
     "{{contacts.crisis_text}}.{{/contacts.crisis_text}} Bye.",
     NULL, NULL, "Call 1. Bye."},
    {"an empty value is none", "A{{#contacts.crisis_text}}B{{/contacts.crisis_text}}C", NULL, "",
     "AC"},
    {"inverted, without a value", "A{{^contacts.crisis_text}}B{{/contacts.crisis_text}}C", NULL,
     NULL, "ABC"},
    {"inverted, with a value", "A{{^contacts.crisis_text}}B{{/contacts.crisis_text}}C", NULL, "x",
     "AC"},
    {"tags alone on their lines take their lines",
     "Call 1.\n{{#contacts.crisis_text}}\n"
     "Text {{contacts.crisis_text}}.\n{{/contacts.crisis_text}}\nBye.",
     NULL, "9", "Call 1.\nText 9.\nBye."},
    {"and so does a section that is left out",
     "Call 1.\n  {{#contacts.crisis_text}}  \n"
     "Text {{contacts.crisis_text}}.\n{{/contacts.crisis_text}}\n\nBye.",
     NULL, NULL, "Call 1.\n\nBye."},
    {"a tag with words on its line keeps the line", "Hi {{#name}}{{name}}{{/name}}\nBye.", "Sam",
     NULL, "Hi Sam\nBye."},
    {"a name of blanks is no name", "{{#name}}Dear {{name}}, {{/name}}hello.", "   ", NULL,
     "hello."},
    {"nested sections",
     "{{#name}}A{{#contacts.crisis_text}}B{{/contacts.crisis_text}}C"
     "{{/name}}D",
     "Sam", NULL, "ACD"},
    {"the same name nested", "{{^name}}A{{^name}}B{{/name}}C{{/name}}D", NULL, NULL, "ABCD"},
    {"the same name nested, left out", "{{#name}}A{{#name}}B{{/name}}C{{/name}}D", NULL, NULL, "D"},
    {"an escaped value decides", "{{#name}}x{{/name}}y", "**", NULL, "xy"},
};

static void
test_sections(void **state)
{
	struct response r;
	struct render_vars v;
	struct rendered out;
	size_t i;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(section_cases); i++) {
		const struct section_case *c = &section_cases[i];

		memset(&r, 0, sizeof(r));
		memset(&v, 0, sizeof(v));
		r.body = (char *)c->body;
		r.type = RESPONSE_SAFETY;
		v.name = c->user;
		v.contacts.crisis_text = c->crisis_text;
		response_render(&r, &v, &out);
		CHECK_STR(out.markdown, c->markdown, c->name);
		rendered_free(&out);
	}
	CHECK_END();
}

/*
 * Renders the shipped response id with the default contacts (the locale
 * has a crisis text line, or has none) into out; returns 0, or -1 when the
 * file does not load.
 */
static int
render_shipped(const char *id, int with_text, struct rendered *out)
{
	struct config cfg;
	const struct cfg_contacts *c;
	struct response r;
	struct render_vars v;
	struct diag_list d;
	char path[1024], *text;
	size_t len;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/responses/%s.md", SOURCE_DIR, id);
	if ((text = file_read(path, 1 << 20, &len)) == NULL)
		return -1;
	config_defaults(&cfg);
	c = config_contacts(&cfg, "en");
	diag_list_init(&d);
	if (response_parse(path, text, len, &r, &d) == 0) {
		memset(&v, 0, sizeof(v));
		v.contacts.emergency = c->emergency;
		v.contacts.oncology = c->oncology;
		v.contacts.crisis = c->crisis;
		v.contacts.crisis_text = with_text ? c->crisis_text : NULL;
		v.contacts.moderators = c->moderators;
		response_render(&r, &v, out);
		response_clear(&r);
		rc = 0;
	}
	diag_list_free(&d);
	config_free(&cfg);
	free(text);
	return rc;
}

/*
 * The safety answers read well with the default contacts, which are
 * phrases ("your oncology team's urgent or 24-hour line"): no contact is
 * announced twice, no placeholder is left, and the crisis answer leaves
 * its text line out, sentence and all, for a locale without one.
 */
static void
test_shipped_safety(void **state)
{
	static const char *const ids[] = {"safety.emergency", "safety.crisis",
	                                  "treatment.warning_signs", "immunotherapy.side_effects"};
	struct rendered out;
	size_t i;
	int k;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(ids); i++) {
		for (k = 0; k < 2; k++) {
			const char *p;

			if (!CHECK(render_shipped(ids[i], k, &out) == 0, "%s does not load",
			           ids[i]))
				continue;
			p = out.plain ? out.plain : "";
			CHECK(!has(p, "{{") && !has(p, "}}"), "%s: a placeholder is left: %s",
			      ids[i], p);
			CHECK(!has(p, "line: your oncology team") &&
			          !has(p, "number: your local emergency number"),
			      "%s announces a contact twice: %s", ids[i], p);
			CHECK(!has(p, "  ") && !has(p, " .") && !has(p, " ,") && !has(p, "\n\n\n"),
			      "%s: a gap where text was left out: %s", ids[i], p);
			if (strcmp(ids[i], "safety.crisis") == 0) {
				CHECK(has(p, "85258") == k, "crisis, text line %s: %s",
				      k ? "given" : "absent", p);
				CHECK(k || !has(p, "you can text"), "the text sentence is left: %s",
				      p);
				CHECK(has(p, "(call or text)"), "988 takes texts: %s", p);
				CHECK(has(p, "worried about someone else"),
				      "no line for carers: %s", p);
			}
			rendered_free(&out);
		}
	}
	CHECK_END();
}

/* A hostile value (display name or captured words) and what it must look like. */
struct escape_case {
	const char *name;
	const char *value;
	const char *plain_has; /* the plain text must contain this, literally */
	const char *html_has;  /* the HTML must contain this */
};

static const struct escape_case escape_cases[] = {
    {"Markdown emphasis", "**x**", "Hello **x**!", "Hello **x**!"},
    {"a javascript link", "[a](javascript:alert(1))", "Hello [a](javascript:alert(1))!",
     "Hello [a](javascript:alert(1))!"},
    {"a script tag", "<script>alert(1)</script>", "Hello <script>alert(1)</script>!",
     "Hello &lt;script&gt;alert(1)&lt;/script&gt;!"},
    {"an img with onerror", "<img src=x onerror=alert(1)>", "Hello <img src=x onerror=alert(1)>!",
     "&lt;img src=x onerror=alert(1)&gt;"},
    {"an autolink", "<javascript:alert(1)>", "Hello <javascript:alert(1)>!",
     "&lt;javascript:alert(1)&gt;"},
    {"an HTML entity", "&lt;b&gt; &amp;", "Hello &lt;b&gt; &amp;!", "&amp;lt;b&amp;gt; &amp;amp;"},
    {"code and strike", "`x` ~~y~~ _z_", "Hello `x` ~~y~~ _z_!", "`x` ~~y~~ _z_"},
    {"a heading and a list after newlines", "Anne\n# Admin\n- item", "Anne", "Anne"},
    {"a placeholder in the name", "{{contacts.crisis}}", "Hello {{contacts.crisis}}!",
     "{{contacts.crisis}}"},
    {"a backslash", "a\\*b\\", "Hello a\\*b\\!", "a\\*b\\!"},
    {"an image", "![x](https://evil.example/t.png)", "Hello ![x](https://evil.example/t.png)!",
     "![x](https://evil.example/t.png)"},
};

static void
check_inert_html(const char *what, const char *html)
{
	static const char *const bad[] = {
	    "<script", "<img", "href=\"javascript:", "<h1", "<li", "<strong", "<em>", "<code>",
	    "<a ",     "<del"};
	size_t k;

	for (k = 0; k < NELEM(bad); k++)
		CHECK(!has(html, bad[k]), "%s: HTML contains %s:\n    %s", what, bad[k], html);
}

static void
test_escaping(void **state)
{
	static const char *const cap_name[] = {"drug"};
	struct response r;
	struct render_vars v;
	struct rendered out;
	const char *cap_value[1];
	size_t i;

	(void)state;
	check_begin();
	memset(&r, 0, sizeof(r));
	r.type = RESPONSE_INFO;
	for (i = 0; i < NELEM(escape_cases); i++) {
		const struct escape_case *c = &escape_cases[i];
		char what[128];

		/* as a display name */
		memset(&v, 0, sizeof(v));
		v.name = c->value;
		r.body = "Hello {{name}}!";
		response_render(&r, &v, &out);
		snprintf(what, sizeof(what), "name: %s", c->name);
		CHECK(has(out.plain, c->plain_has), "%s: plain text is \"%s\"", what, out.plain);
		CHECK(has(out.html, c->html_has), "%s: HTML is \"%s\"", what, out.html);
		CHECK(strchr(out.plain, '\n') == NULL, "%s: a newline got into the answer", what);
		check_inert_html(what, out.html);
		rendered_free(&out);

		/* as a captured word */
		memset(&v, 0, sizeof(v));
		cap_value[0] = c->value;
		v.cap_name = cap_name;
		v.cap_value = cap_value;
		v.ncap = 1;
		r.body = "Hello {{capture.drug}}!";
		response_render(&r, &v, &out);
		snprintf(what, sizeof(what), "capture: %s", c->name);
		CHECK(has(out.plain, c->plain_has), "%s: plain text is \"%s\"", what, out.plain);
		check_inert_html(what, out.html);
		rendered_free(&out);
	}
	CHECK_END();
}

/* Names that are not clean text: invalid UTF-8, bidi controls, very long. */
static void
test_escaping_bytes(void **state)
{
	struct response r;
	struct render_vars v;
	struct rendered out;
	char longname[400];
	size_t i;

	(void)state;
	check_begin();
	memset(&r, 0, sizeof(r));
	memset(&v, 0, sizeof(v));
	r.type = RESPONSE_INFO;
	r.body = "Hello {{name}}!";

	/* invalid UTF-8: the answer stays valid UTF-8 and the name keeps its letters */
	v.name = "ANNE\xff\xfe Smith";
	response_render(&r, &v, &out);
	CHECK(text_utf8_valid(out.plain, strlen(out.plain)), "plain text is not valid UTF-8");
	CHECK(text_utf8_valid(out.html, strlen(out.html)), "HTML is not valid UTF-8");
	CHECK(has(out.plain, "ANNE") && has(out.plain, "Smith"),
	      "a name with an invalid byte is changed beyond the byte: \"%s\"", out.plain);
	rendered_free(&out);

	/* a right-to-left override in a name must not turn the rest of the answer around */
	v.name = "evil\xe2\x80\xae"
	         "gnp.exe";
	response_render(&r, &v, &out);
	CHECK(!has(out.plain, "\xe2\x80\xae") && !has(out.html, "\xe2\x80\xae"),
	      "a bidi override from the display name reaches the answer");
	rendered_free(&out);

	/* a very long name is cut, never in the middle of a character */
	for (i = 0; i + 2 < sizeof(longname); i += 2)
		memcpy(longname + i, "\xc3\xa9", 2);
	longname[i] = '\0';
	v.name = longname;
	response_render(&r, &v, &out);
	CHECK(text_utf8_valid(out.plain, strlen(out.plain)), "a long name was cut mid-character");
	CHECK(strlen(out.plain) < 200, "a %zu-byte name was not cut (%zu bytes)", strlen(longname),
	      strlen(out.plain));
	CHECK(has(out.plain, "Hello \xc3\xa9\xc3\xa9") && has(out.plain, "!"),
	      "the long name or the text after it is lost: \"%s\"", out.plain);
	rendered_free(&out);

	/* a long run of punctuation is cut after escaping, still literal */
	memset(longname, '*', 300);
	longname[300] = '\0';
	response_render(&r, &v, &out);
	CHECK(!has(out.html, "<em>") && !has(out.html, "<strong>"),
	      "a cut run of * became emphasis: %s", out.html);
	rendered_free(&out);

	/* the escape function itself: nothing but literal characters */
	{
		char *e;

		response_md_escape("a*b\nc", 100, &e);
		CHECK_STR(e, "a\\*b c", "response_md_escape");
		free(e);
		response_md_escape(NULL, 100, &e);
		CHECK_STR(e, "", "response_md_escape(NULL)");
		free(e);
	}
	CHECK_END();
}

/* Raw HTML written in a response body is never passed through. */
static void
test_body_html_not_passed(void **state)
{
	static const char *const bodies[] = {
	    "<script>alert(1)</script>\n\nText.",
	    "Text <b>bold</b> and <img src=x onerror=alert(1)>.",
	    "A [link](javascript:alert(1)) here.",
	    "<div onclick=\"x()\">\n\nblock\n\n</div>",
	    "<!-- comment --> text",
	};
	struct response r;
	struct render_vars v;
	struct rendered out;
	size_t i;

	(void)state;
	check_begin();
	memset(&r, 0, sizeof(r));
	memset(&v, 0, sizeof(v));
	r.type = RESPONSE_INFO;
	for (i = 0; i < NELEM(bodies); i++) {
		r.body = (char *)bodies[i];
		response_render(&r, &v, &out);
		CHECK(!has(out.html, "<script") && !has(out.html, "<b>") &&
		          !has(out.html, "<img") && !has(out.html, "<div") &&
		          !has(out.html, "javascript:") && !has(out.html, "onerror") &&
		          !has(out.html, "onclick"),
		      "body %zu: raw HTML passed through: %s", i, out.html);
		CHECK(!has(out.plain, "<script") && !has(out.plain, "<b>") &&
		          !has(out.plain, "<img") && !has(out.plain, "<div"),
		      "body %zu: HTML tags in the plain text: %s", i, out.plain);
		rendered_free(&out);
	}
	/* the words between harmless tags are kept */
	r.body = "Text <b>bold</b>.";
	response_render(&r, &v, &out);
	CHECK(has(out.plain, "Text bold."), "words inside tags lost: \"%s\"", out.plain);
	rendered_free(&out);
	CHECK_END();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_every_key),
	    cmocka_unit_test(test_parse_table),
	    cmocka_unit_test(test_usable),
	    cmocka_unit_test(test_find_locale),
	    cmocka_unit_test(test_check),
	    cmocka_unit_test(test_render_table),
	    cmocka_unit_test(test_sections),
	    cmocka_unit_test(test_shipped_safety),
	    cmocka_unit_test(test_escaping),
	    cmocka_unit_test(test_escaping_bytes),
	    cmocka_unit_test(test_body_html_not_passed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
