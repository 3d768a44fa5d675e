/*
 * What a stranger can throw at the bot, table by table: invalid UTF-8,
 * NUL bytes, a 1 MB message, 10,000 combining characters, right-to-left
 * overrides; HTML and Markdown in display names and in quoted text;
 * intent patterns written to backtrack catastrophically; JSON nested
 * 10,000 deep (intent file, configuration, /sync body); numbers and other
 * wrong types wherever a /sync body or a configuration holds a string;
 * and a 50 MB /sync body, both fed to mx_feed_sync() and sent by a server
 * through the HTTP layer. Each gets a clear error or is ignored: none may
 * crash, hang or leak (the sanitizer build reports leaks at exit).
 *
 * Nothing here asserts a timing: the backtracking cases print how long a
 * match took and assert only that the match limit stopped it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "bot.h"
#include "config.h"
#include "diag.h"
#include "helpers.h"
#include "http.h"
#include "kb.h"
#include "lint.h"
#include "log.h"
#include "loop.h"
#include "match.h"
#include "response.h"
#include "text.h"
#include "transport/matrix.h"
#include "util.h"

#define MB (1024 * 1024)

/* --- making hostile text ------------------------------------------------ */

/* Appends s n times. */
static void
put_n(struct buf *b, const char *s, size_t n)
{
	while (n-- > 0)
		buf_puts(b, s);
}

/* The shipped set, loaded once for the whole program. */
static struct kb *shipped;

static int
setup_shipped(void **state)
{
	struct diag_list d;

	(void)state;
	log_init(LOG_LEVEL_ERROR, 0);
	diag_list_init(&d);
	shipped = kb_load_embedded(&d);
	diag_list_free(&d);
	return shipped == NULL ? -1 : 0;
}

static int
teardown_shipped(void **state)
{
	(void)state;
	kb_free(shipped);
	shipped = NULL;
	return 0;
}

/* --- messages ----------------------------------------------------------- */

enum build {
	BUILD_LITERAL,     /* text as written (len bytes if given) */
	BUILD_MEGABYTE,    /* the question, then words up to 1 MB */
	BUILD_ONE_WORD,    /* the question, then one 1 MB word */
	BUILD_COMBINING,   /* the question, then a letter with 10,000 combining marks */
	BUILD_ZALGO,       /* 10,000 combining marks spread over the question's letters */
	BUILD_NULS,        /* 1 MB of NUL bytes */
	BUILD_INVALID_ALL, /* 64 KB of bytes that are never valid UTF-8 */
};

struct message_case {
	const char *name;
	enum build build;
	const char *text; /* the text, or the question the builder starts with */
	size_t len;       /* BUILD_LITERAL: 0 for strlen(text) */
	const char *want; /* the intent it must reach; "" none; NULL: any */
	uint32_t flags;   /* enum text_flag bits that must be set */
};

static const struct message_case message_cases[] = {
    /* invalid UTF-8: replaced, and the words around it still count */
    {"stray invalid bytes", BUILD_LITERAL, "what is \xff\xfe palliative care\xc3?", 0,
     "palliative.care", TEXT_INVALID_UTF8},
    {"overlong, surrogate and out-of-range encodings", BUILD_LITERAL,
     "what is \xc0\xaf \xe0\x80\xaf \xed\xa0\x80 \xf4\x90\x80\x80 palliative care?", 0,
     "palliative.care", TEXT_INVALID_UTF8},
    {"a sequence cut at the end", BUILD_LITERAL, "what is palliative care? \xf0\x9f\x98", 0,
     "palliative.care", TEXT_INVALID_UTF8},
    {"64 KB of invalid bytes", BUILD_INVALID_ALL, NULL, 0, "",
     TEXT_INVALID_UTF8 | TEXT_TRUNCATED},
    /* NUL bytes: separators, never the end of the message */
    {"NUL bytes between the words", BUILD_LITERAL, "what\0is\0palliative\0care?", 25,
     "palliative.care", 0},
    {"a NUL byte first", BUILD_LITERAL, "\0what is palliative care?", 25, "palliative.care", 0},
    {"1 MB of NUL bytes", BUILD_NULS, NULL, 0, "", TEXT_TRUNCATED},
    /* size */
    {"a 1 MB message of words", BUILD_MEGABYTE, "what is palliative care? ", 0, NULL,
     TEXT_TRUNCATED},
    {"a 1 MB word", BUILD_ONE_WORD, "what is palliative care? ", 0, NULL, TEXT_TRUNCATED},
    /* combining characters */
    {"10,000 combining marks after the question", BUILD_COMBINING, "what is palliative care? ",
     0, "palliative.care", TEXT_TRUNCATED},
    {"10,000 combining marks over every letter", BUILD_ZALGO, "what is palliative care?", 0,
     NULL, TEXT_TRUNCATED},
    {"combining marks inside the words", BUILD_LITERAL,
     "wha\xcc\x81t is palli\xcc\x88\xcc\x88\xcc\x88\xcc\x88""ative ca\xcc\xa7re?", 0,
     "palliative.care", 0},
    /* right-to-left overrides and other invisible characters */
    {"an RLO ... PDF around the question", BUILD_LITERAL,
     "\xe2\x80\xaewhat is palliative care?\xe2\x80\xac", 0, "palliative.care", 0},
    {"an RLO left open", BUILD_LITERAL, "what is \xe2\x80\xae palliative care?", 0,
     "palliative.care", 0},
    {"isolates and marks inside words", BUILD_LITERAL,
     "what is pal\xe2\x81\xa7li\xe2\x80\x8f""ative\xe2\x81\xa9 care?", 0, "palliative.care", 0},
    {"zero-width characters inside words", BUILD_LITERAL,
     "what is pal\xe2\x80\x8bli\xe2\x80\x8d""ati\xef\xbb\xbfve care?", 0, "palliative.care",
     0},
    {"a reversed question under RLO is not read backwards", BUILD_LITERAL,
     "\xe2\x80\xae?erac evitaillap si tahw", 0, "", 0},
    /* nothing but noise */
    {"terminal escapes and controls", BUILD_LITERAL, "\x1b[31m\x1b]0;pwned\x07\x01\x02\x7f", 0,
     "", 0},
    {"only emoji and question marks", BUILD_LITERAL,
     "\xf0\x9f\x98\x80\xf0\x9f\xa7\x91\xe2\x80\x8d\xf0\x9f\xa6\xb0???", 0, "", 0},
    {"an empty message", BUILD_LITERAL, "", 0, "", 0},
};

/* Builds the message of c into b. */
static void
build_message(const struct message_case *c, struct buf *b)
{
	size_t i;
	const char *p;

	buf_reset(b);
	switch (c->build) {
	case BUILD_LITERAL:
		buf_append(b, c->text, c->len ? c->len : strlen(c->text));
		break;
	case BUILD_MEGABYTE:
		buf_puts(b, c->text);
		while (b->len < MB)
			buf_puts(b, "lorem ipsum dolor ");
		break;
	case BUILD_ONE_WORD:
		buf_puts(b, c->text);
		while (b->len < MB)
			buf_putc(b, 'a');
		break;
	case BUILD_COMBINING:
		buf_puts(b, c->text);
		buf_putc(b, 'e');
		put_n(b, "\xcc\x81", 10000); /* U+0301 */
		break;
	case BUILD_ZALGO: {
		size_t letters = 0, each;

		for (p = c->text; *p; p++)
			letters += (*p >= 'a' && *p <= 'z');
		each = 10000 / letters + 1;
		for (p = c->text; *p; p++) {
			buf_putc(b, *p);
			if (*p >= 'a' && *p <= 'z')
				for (i = 0; i < each; i++)
					buf_puts(b, i % 2 ? "\xcd\x8a" : "\xcc\xb4");
		}
		break;
	}
	case BUILD_NULS:
		buf_reserve(b, MB);
		memset(b->data, 0, MB);
		b->len = MB;
		break;
	case BUILD_INVALID_ALL:
		for (i = 0; i < 65536; i++)
			buf_putc(b, (char)(0xf8 + i % 8)); /* 0xf8-0xff: never in UTF-8 */
		break;
	}
}

static void
test_messages(void **state)
{
	struct match_ctx *ctx = match_ctx_new();
	struct match_opts o;
	struct match_result r;
	struct buf msg, explain;
	const char *norm;
	size_t i;
	double t0;

	(void)state;
	check_begin();
	buf_init(&msg);
	buf_init(&explain);
	match_opts_default(&o);
	for (i = 0; i < NELEM(message_cases); i++) {
		const struct message_case *c = &message_cases[i];

		build_message(c, &msg);
		t0 = seconds_now();
		buf_reset(&explain);
		match_run(ctx, shipped, &o, msg.data ? msg.data : "", msg.len, &r, &explain);
		print_message("    %-55s %8zu bytes  %.3f s\n", c->name, msg.len, seconds_now() - t0);
		norm = match_normalised(ctx);
		CHECK(text_utf8_valid(norm, strlen(norm)), "%s: the normalised text is not UTF-8",
		      c->name);
		CHECK(strlen(norm) <= 4 * TEXT_MAX_INPUT, "%s: the normalised text is %zu bytes",
		      c->name, strlen(norm));
		CHECK(strlen(norm) == 0 || strstr(explain.data, norm) != NULL,
		      "%s: the explanation does not show the normalised text", c->name);
		CHECK((r.text_flags & c->flags) == c->flags, "%s: flags 0x%x, want 0x%x set",
		      c->name, r.text_flags, c->flags);
		if (c->want != NULL && c->want[0] == '\0')
			CHECK(r.intent == NULL, "%s: answered with %s", c->name,
			      r.intent ? r.intent->id : "");
		else if (c->want != NULL)
			CHECK(r.intent != NULL && strcmp(r.intent->id, c->want) == 0,
			      "%s: got %s, want %s", c->name, r.intent ? r.intent->id : "(none)",
			      c->want);
	}
	buf_free(&msg);
	buf_free(&explain);
	match_ctx_free(ctx);
	CHECK_END();
}

/* --- display names and quoted text in replies -------------------------- */

struct name_case {
	const char *name;          /* the display name */
	const char *html_never[4]; /* must not be in the HTML */
	const char *html_has;      /* must be in the HTML (escaped), or NULL */
	const char *plain_has;     /* must be in the plain text, or NULL for the name */
};

static const struct name_case name_cases[] = {
    {"<script>alert(1)</script>", {"<script", "</script"},
     "&lt;script&gt;alert(1)&lt;/script&gt;", NULL},
    {"<img src=x onerror=alert(1)>", {"<img", "onerror=alert(1)>"},
     "&lt;img src=x onerror=alert(1)&gt;", NULL},
    {"<a href=\"https://evil.example\">nurse</a>", {"<a href=\"https://evil"},
     "&lt;a href=&quot;https://evil.example&quot;&gt;nurse&lt;/a&gt;", NULL},
    {"**Dr Bold** _em_", {"<strong>", "<em>em"}, "**Dr Bold** _em_", NULL},
    {"[call me](javascript:alert(1))", {"<a ", "href"}, "[call me](javascript:alert(1))", NULL},
    {"[site](https://evil.example)", {"<a ", "href"}, NULL, NULL},
    {"![x](https://evil.example/t.png)", {"<img"}, NULL, NULL},
    {"`rm -rf /`", {"<code>"}, "`rm -rf /`", NULL},
    {"# Heading", {"<h1>"}, NULL, NULL},
    {"> quoted", {"<blockquote>"}, "&gt; quoted", NULL},
    {"1. listed", {"<ol"}, NULL, NULL},
    {"- item", {"<ul>"}, NULL, NULL},
    {"---", {"<hr"}, NULL, NULL},
    {"&amp; &lt;b&gt;", {"<b>"}, "&amp;amp; &amp;lt;b&amp;gt;", NULL},
    {"a\\*b\\\\", {"<em>"}, NULL, NULL},
    {"{{contacts.crisis}} {{name}}", {NULL}, "{{contacts.crisis}} {{name}}", NULL},
    {"line\nbreak\r\n<b>x</b>", {"<b>", "<br"}, NULL, "line break  <b>x</b>"},
    {"https://evil.example/x", {"<a "}, NULL, NULL},
    {"    four spaces first", {"<pre>", "<code>"}, NULL, "four spaces first"},
    {"\t\ttabs first", {"<pre>", "<code>"}, NULL, "tabs first"},
    {"name  \nwith a hard break", {"<br"}, NULL, "name   with a hard break"},
    {"=====", {"<h1>", "<h2>"}, NULL, NULL},
    {"<!-- comment -->", {"<!--"}, "&lt;!-- comment --&gt;", NULL},
    /* bidi override and pop dropped: they would reorder the answer around the name */
    {"\xe2\x80\xae""evil\xe2\x80\xac", {"\xe2\x80\xae", "\xe2\x80\xac"}, NULL,
     "evil, that is a question"},
    {"\xff\xfe invalid \xc3", {NULL}, NULL, "invalid"},
};

/* The intent whose response is id (the first one). */
static const struct intent *
intent_answering(const char *id)
{
	size_t i;

	for (i = 0; i < shipped->nin; i++)
		if (strcmp(shipped->in[i].response, id) == 0)
			return &shipped->in[i];
	return NULL;
}

static void
test_names_in_replies(void **state)
{
	const struct intent *in = intent_answering("personal.advice");
	struct config cfg;
	struct bot_reply rep;
	const char *end;
	char *head;
	size_t i, k;

	(void)state;
	check_begin();
	assert_non_null(in);
	config_defaults(&cfg);
	cfg.allow_drafts = 1;
	for (i = 0; i < NELEM(name_cases); i++) {
		const struct name_case *c = &name_cases[i];
		const char *plain = c->plain_has ? c->plain_has : c->name;

		bot_compose_intent(shipped, &cfg, in, NULL, c->name, NULL, 0, &rep);
		CHECK(rep.kind == BOT_ANSWER, "%s: no answer composed", c->name);
		if (rep.text.html == NULL || rep.text.plain == NULL) {
			CHECK(0, "%s: nothing rendered", c->name);
			bot_reply_free(&rep);
			continue;
		}
		/* The response starts "{{name}}, that is a question ...": look up to there. */
		end = strstr(rep.text.html, ", that is a question");
		CHECK(end != NULL, "%s: the name broke the first sentence:\n%s", c->name,
		      rep.text.html);
		head = xstrndup(rep.text.html, end ? (size_t)(end - rep.text.html) : 0);
		for (k = 0; k < NELEM(c->html_never) && c->html_never[k]; k++)
			CHECK(!has(head, c->html_never[k]), "%s: the HTML holds \"%s\":\n%s",
			      c->name, c->html_never[k], head);
		if (c->html_has)
			CHECK(has(head, c->html_has), "%s: the HTML lacks \"%s\":\n%s", c->name,
			      c->html_has, head);
		CHECK(strncmp(head, "<p>", 3) == 0, "%s: the name's paragraph is not a paragraph:\n%s",
		      c->name, head);
		free(head);
		CHECK(has(rep.text.plain, plain), "%s: the plain text does not read \"%s\":\n%s",
		      c->name, plain, rep.text.plain);
		bot_reply_free(&rep);
	}
	config_free(&cfg);
	CHECK_END();
}

/* A set loaded from memory: the lexicon and responses shipped, intents given. */
static struct kb *
load_set(const char *intents_json, const char *responses_md[], size_t nresp,
         struct diag_list *d)
{
	struct kb_mem_file in = {"intents/test.json", intents_json, strlen(intents_json)};
	struct kb_mem_file r[8];
	size_t i;

	for (i = 0; i < nresp && i < NELEM(r); i++) {
		r[i].name = responses_md[2 * i];
		r[i].text = responses_md[2 * i + 1];
		r[i].len = strlen(responses_md[2 * i + 1]);
	}
	return kb_load_mem(&in, 1, r, nresp, d);
}

/*
 * Quoted text: a named capture of the message, put back into the reply.
 * Whatever the message held, the reply carries it as text.
 */
static void
test_captures_in_replies(void **state)
{
	static const char intents[] =
	    "{\"intents\": [{\"id\": \"drug.what\", \"response\": \"drug.what\","
	    " \"patterns\": [\"\\\\bwhat is (?<drug>.+?) for\\\\b\"]}]}";
	static const char *responses[] = {
	    "responses/drug.what.md",
	    "---\nid: drug.what\ntype: info\nstatus: draft\n---\nYou asked about "
	    "{{capture.drug}}. Ask your team about {{capture.drug}}.\n"};
	static const char *const messages[] = {
	    "what is <script>alert(1)</script> for?",
	    "what is **keytruda** [x](javascript:alert(1)) for?",
	    "what is `code` <img src=x onerror=y> for?",
	    "what is \xe2\x80\xae""evil\xe2\x80\xac for?",
	};
	struct diag_list d;
	struct kb *kb;
	struct match_ctx *ctx = match_ctx_new();
	struct match_opts o;
	struct match_result r;
	struct config cfg;
	struct bot_reply rep;
	size_t i;

	(void)state;
	check_begin();
	diag_list_init(&d);
	kb = load_set(intents, responses, 1, &d);
	if (kb == NULL)
		diag_print(&d, stderr, DIAG_NOTE);
	assert_non_null(kb);
	config_defaults(&cfg);
	cfg.allow_drafts = 1;
	match_opts_default(&o);
	for (i = 0; i < NELEM(messages); i++) {
		match_run(ctx, kb, &o, messages[i], strlen(messages[i]), &r, NULL);
		CHECK(r.intent != NULL && r.ncap == 1, "%s: not matched with its capture",
		      messages[i]);
		if (r.intent == NULL)
			continue;
		bot_compose(kb, &cfg, &r, NULL, "<b>Sam</b>", 1, 0, &rep);
		CHECK(rep.text.html != NULL && !has(rep.text.html, "<script") &&
		          !has(rep.text.html, "<img") && !has(rep.text.html, "<strong") &&
		          !has(rep.text.html, "<a ") && !has(rep.text.html, "<code") &&
		          !has(rep.text.html, "<b>"),
		      "%s: markup got through:\n%s", messages[i],
		      rep.text.html ? rep.text.html : "(null)");
		CHECK(rep.text.plain != NULL && has(rep.text.plain, "You asked about"),
		      "%s: the reply is not the response", messages[i]);
		bot_reply_free(&rep);
	}
	config_free(&cfg);
	match_ctx_free(ctx);
	kb_free(kb);
	diag_list_free(&d);
	CHECK_END();
}

/* --- patterns that backtrack ----------------------------------------------- */

struct backtrack_case {
	const char *name;
	const char *pattern; /* JSON-escaped */
	const char *message;
};

/*
 * (Not runs of one letter: the normaliser cuts "aaaa..." short, see text.h,
 * step 3b. "abab..." backtracks the same way.)
 */
static const struct backtrack_case backtrack_cases[] = {
    {"nested quantifiers ([ab]+)+", "^([ab]+)+c",
     "abababababababababababababababababababab hospice c"},
    {"nested groups of words", "^(\\\\w+\\\\s?)+\\\\bb$",
     "what is hospice and why does everyone keep talking about it so much in here b c"},
    {"alternation that overlaps", "^(ab|a|b)+c",
     "abababababababababababababababababababababababababababababab hospice c"},
    {"a dot star repeated", "(.*a){25}x",
     "abababababababababababababababababababababababababababababab hospice b x"},
};

/*
 * A pattern written to backtrack forever, next to an ordinary intent: the
 * match limit stops it, the count says so, and the ordinary intent still
 * answers. lint warns about the pattern too.
 */
static void
test_catastrophic_backtracking(void **state)
{
	static const char *responses[] = {
	    "responses/r.evil.md", "---\nid: r.evil\ntype: info\nstatus: draft\n---\nEvil.\n",
	    "responses/r.good.md", "---\nid: r.good\ntype: info\nstatus: draft\n---\nGood.\n"};
	struct match_ctx *ctx = match_ctx_new();
	struct match_opts o;
	struct match_result r;
	struct lint_opts lo;
	struct diag_list d;
	char *json;
	struct kb *kb;
	size_t i, k;
	double t0, took;
	int warned;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(backtrack_cases); i++) {
		const struct backtrack_case *c = &backtrack_cases[i];

		json = xasprintf(
		    "{\"intents\": [{\"id\": \"evil\", \"response\": \"r.evil\", \"needs_question\": "
		    "false, \"patterns\": [\"%s\"], \"examples\": [\"%s\"]},"
		    " {\"id\": \"good\", \"response\": \"r.good\", \"needs_question\": false,"
		    " \"patterns\": [\"\\\\bhospice\\\\b\"]}]}",
		    c->pattern, c->message);
		diag_list_init(&d);
		kb = load_set(json, responses, 2, &d);
		CHECK(kb != NULL, "%s: the set does not load", c->name);
		if (kb == NULL) {
			diag_print(&d, stderr, DIAG_NOTE);
			goto next;
		}
		match_opts_default(&o);
		t0 = seconds_now();
		match_run(ctx, kb, &o, c->message, strlen(c->message), &r, NULL);
		took = seconds_now() - t0;
		print_message("    %-35s match limit %ld: %u limit hit(s), %.4f s\n", c->name,
		              o.match_limit, r.limit_hits, took);
		CHECK(r.limit_hits > 0, "%s: the match limit was never hit", c->name);
		CHECK(r.intent != NULL && strcmp(r.intent->id, "good") == 0,
		      "%s: got %s, want the ordinary intent", c->name,
		      r.intent ? r.intent->id : "(none)");
		/* The moderator is told by lint. */
		memset(&lo, 0, sizeof(lo));
		lo.match = o;
		lo.today = 20000;
		lint_kb(kb, &lo, &d);
		for (k = 0, warned = 0; k < d.n; k++)
			warned |= has(d.d[k].msg, "hits the match limit");
		CHECK(warned, "%s: lint does not warn about the pattern", c->name);
		kb_free(kb);
	next:
		diag_list_free(&d);
		free(json);
	}
	match_ctx_free(ctx);
	CHECK_END();
}

/*
 * An intent with more patterns than the index can number: refused with its
 * place, before any is compiled (past 32,767 the extra patterns silently
 * never counted, past 65,535 the wrong pattern ran).
 */
static void
test_too_many_patterns(void **state)
{
	static const char *responses[] = {
	    "responses/r.many.md", "---\nid: r.many\ntype: info\nstatus: draft\n---\nMany.\n"};
	struct diag_list d;
	struct buf b;
	struct kb *kb;
	size_t i, k;
	int said;

	(void)state;
	check_begin();
	for (k = 0; k < 2; k++) {
		buf_init(&b);
		buf_printf(&b, "{\"intents\": [{\"id\": \"many\", \"response\": \"r.many\", "
		               "\"%s\": [",
		           k ? "not_patterns" : "patterns");
		for (i = 0; i <= INTENT_MAX_PATTERNS; i++)
			buf_printf(&b, "%s\"\\\\bw%zu\\\\b\"", i ? ", " : "", i);
		buf_puts(&b, "]}]}");
		diag_list_init(&d);
		kb = load_set(b.data, responses, 1, &d);
		for (i = 0, said = 0; i < d.n; i++)
			said |= has(d.d[i].msg, "more than") && d.d[i].line > 0;
		CHECK(kb == NULL && said, "%d %s in one intent: loaded, or no error with a place",
		      INTENT_MAX_PATTERNS + 1, k ? "not_patterns" : "patterns");
		kb_free(kb);
		diag_list_free(&d);
		buf_free(&b);
	}
	CHECK_END();
}

/* --- deeply nested JSON ------------------------------------------------- */

/* JSON nested depth deep: [[[...]]] or {"a":{"a":...}} inside prefix ... suffix. */
static char *
deep_json(const char *prefix, int objects, size_t depth, const char *suffix)
{
	struct buf b;

	buf_init(&b);
	buf_puts(&b, prefix);
	put_n(&b, objects ? "{\"a\":" : "[", depth);
	buf_puts(&b, "1");
	put_n(&b, objects ? "}" : "]", depth);
	buf_puts(&b, suffix);
	return buf_steal(&b);
}

/* The matrix transport of a bot over a scratch state directory. */
struct mxbed {
	char dir[64];
	struct config cfg;
	struct loop *loop;
	struct bot *bot;
	struct mx *mx;
};

static void
mxbed_open(struct mxbed *t)
{
	struct diag_list d;
	struct kb *kb;

	tmp_dir(t->dir);
	config_defaults(&t->cfg);
	free(t->cfg.mx_homeserver);
	t->cfg.mx_homeserver = xstrdup("http://127.0.0.1:9");
	free(t->cfg.mx_user_id);
	t->cfg.mx_user_id = xstrdup("@faqbot:localhost");
	t->cfg.allow_drafts = 1;
	t->cfg.cooldown_s = 0;
	t->cfg.user_rate_per_min = 600;
	t->cfg.room_rate_per_min = 600;
	diag_list_init(&d);
	kb = kb_load_embedded(&d);
	diag_list_free(&d);
	assert_non_null(kb);
	assert_non_null(t->loop = loop_new());
	assert_non_null(t->bot = bot_new(&t->cfg, kb, t->dir));
	t->mx = mx_new(t->loop, &t->cfg, t->bot, t->dir);
	bot_add_transport(t->bot, mx_transport(t->mx));
}

static void
mxbed_close(struct mxbed *t)
{
	mx_free(t->mx);
	bot_free(t->bot);
	loop_free(t->loop);
	config_free(&t->cfg);
	tmp_remove(t->dir);
}

static size_t
mxbed_pending(struct mxbed *t)
{
	unsigned long ev, sent;
	size_t pend;

	mx_counts(t->mx, &ev, &sent, &pend);
	return pend;
}

struct deep_case {
	const char *name;
	const char *prefix, *suffix;
	int objects;
};

static const struct deep_case deep_cases[] = {
    {"arrays in an intent file", "{\"intents\": ", "}", 0},
    {"objects in an intent file", "{\"intents\": [{\"id\": \"x\", \"keywords\": ", "}]}", 1},
    {"arrays as the whole file", "", "", 0},
    {"objects in a lexicon section", "{\"synonyms\": ", "}", 1},
};

static void
test_deep_json(void **state)
{
	struct diag_list d;
	struct config cfg;
	struct mxbed t;
	struct kb *kb;
	size_t i;
	char *text;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(deep_cases); i++) {
		const struct deep_case *c = &deep_cases[i];
		struct kb_mem_file f;

		text = deep_json(c->prefix, c->objects, 10000, c->suffix);
		f.name = "intents/deep.json";
		f.text = text;
		f.len = strlen(text);
		diag_list_init(&d);
		kb = kb_load_mem(&f, 1, NULL, 0, &d);
		CHECK(kb == NULL && d.errors > 0, "intent file, %s: loaded", c->name);
		CHECK(d.n > 0 && d.d[0].file && strcmp(d.d[0].file, "intents/deep.json") == 0 &&
		          d.d[0].line > 0,
		      "intent file, %s: the error has no place", c->name);
		kb_free(kb);
		diag_list_free(&d);
		free(text);
	}
	/* The configuration. */
	for (i = 0; i < 2; i++) {
		text = deep_json("{\"matrix\": ", (int)i, 10000, "}");
		config_defaults(&cfg);
		diag_list_init(&d);
		CHECK(config_load_string(&cfg, "deep.json", text, &d) == -1 && d.errors > 0,
		      "a configuration nested 10,000 deep is accepted");
		diag_list_free(&d);
		config_free(&cfg);
		free(text);
	}
	/* A /sync body, in every place a nesting can hide. */
	mxbed_open(&t);
	{
		static const char *const where[][2] = {
		    {"{\"next_batch\": \"s1\", \"rooms\": ", "}"},
		    {"{\"next_batch\": \"s1\", \"rooms\": {\"join\": {\"!r:x\": {\"timeline\": "
		     "{\"events\": [{\"type\": \"m.room.message\", \"sender\": \"@p:x\", "
		     "\"event_id\": \"$1\", \"content\": ",
		     "}]}}}}}"},
		    {"", ""},
		};

		for (i = 0; i < NELEM(where) * 2; i++) {
			text = deep_json(where[i / 2][0], (int)(i % 2), 10000, where[i / 2][1]);
			CHECK(mx_feed_sync(t.mx, text, strlen(text)) == -1,
			      "a /sync body nested 10,000 deep (case %zu) is accepted", i);
			free(text);
		}
		CHECK(mxbed_pending(&t) == 0, "a deep /sync body queued a reply");
	}
	mxbed_close(&t);
	CHECK_END();
}

/* --- messages read for safety, however they hide it ------------------------ */

/* A /sync body with one m.text message whose content is the JSON object members content. */
static char *
sync_with_message(int n, const char *content)
{
	return xasprintf("{\"next_batch\": \"s%d\", \"rooms\": {\"join\": {\"!r%d:localhost\": "
	                 "{\"timeline\": {\"events\": [{\"type\": \"m.room.message\", "
	                 "\"sender\": \"@patient:localhost\", \"event_id\": \"$m%d\", "
	                 "\"content\": {\"msgtype\": \"m.text\", %s}}]}}}}}",
	                 n, n, n, content);
}

/*
 * A crisis hidden after a NUL (\u0000 in the JSON: cJSON's string would end
 * there), only in the formatted_body people see, or at the end of a message
 * over matrix.max_message_bytes: each gets the safety answer.
 */
static void
test_sync_messages_read_for_safety(void **state)
{
	static const char *const contents[] = {
	    "\"body\": \"hello everyone\\u0000 I want to kill myself\"",
	    "\"body\": \"hello everyone\", \"format\": \"org.matrix.custom.html\", "
	    "\"formatted_body\": \"hello everyone <span data-mx-spoiler>I want to kill "
	    "myself</span>\"",
	    "\"body\": \"see below\", \"format\": \"org.matrix.custom.html\", "
	    "\"formatted_body\": \"<p>I want to k&#105;<b>ll</b> myself</p>\"",
	    NULL, /* the long one, built below */
	};
	char path[256], *body, *content, *pend;
	struct buf longbody;
	struct mxbed t;
	size_t i, len;

	(void)state;
	check_begin();
	buf_init(&longbody);
	buf_puts(&longbody, "\"body\": \"");
	while (longbody.len < 4700)
		buf_puts(&longbody, "Today was a long day at the clinic and parking was awful. ");
	buf_puts(&longbody, "I want to kill myself\"");
	mxbed_open(&t);
	snprintf(path, sizeof(path), "%s/pending.jsonl", t.dir);
	for (i = 0; i < NELEM(contents); i++) {
		content = contents[i] ? (char *)contents[i] : longbody.data;
		body = sync_with_message((int)i, content);
		CHECK(mx_feed_sync(t.mx, body, strlen(body)) == 0, "case %zu: the body is refused", i);
		free(body);
		pend = file_read(path, MB, &len);
		CHECK(pend != NULL && has(pend, "!r") && has(pend, "Samaritans") &&
		          mxbed_pending(&t) == i + 1,
		      "case %zu (%.60s...): no safety answer queued", i, content);
		free(pend);
	}
	mxbed_close(&t);
	buf_free(&longbody);
	CHECK_END();
}

/* --- wrong types everywhere ---------------------------------------------- */

/* A value of a JSON tree and the object or array that holds it. */
struct slot {
	cJSON *parent;
	cJSON *item;
};

/* Collects every value under j (not j itself), depth first, into *v. */
static void
collect_values(cJSON *j, struct slot **v, size_t *n)
{
	cJSON *c;

	for (c = j->child; c; c = c->next) {
		*v = xreallocarray(*v, *n + 1, sizeof(**v));
		(*v)[*n].parent = j;
		(*v)[*n].item = c;
		(*n)++;
		collect_values(c, v, n);
	}
}

/* Replaces s's value by one parsed from json, under the same key. */
static void
replace_value(struct slot *s, const char *json)
{
	cJSON *r = cJSON_Parse(json);

	assert_non_null(r);
	if (s->item->string)
		r->string = xstrdup(s->item->string);
	cJSON_ReplaceItemViaPointer(s->parent, s->item, r); /* frees the old value */
	s->item = r;
}

/* What a string (or any value) is replaced with. */
static const char *const wrong[] = {"12345", "-1e308", "[]", "{}", "null", "true",
                                    "[\"x\", 1]", "\"\""};

/* text with its i-th value (in collect_values order) replaced by wrong[k]; caller frees. */
static char *
with_wrong_value(const char *text, size_t i, size_t k, int *is_next_batch)
{
	cJSON *root = cJSON_Parse(text);
	struct slot *v = NULL;
	size_t n = 0;
	char *out;

	assert_non_null(root);
	collect_values(root, &v, &n);
	assert_true(i < n);
	*is_next_batch = v[i].parent == root && v[i].item->string &&
	                 strcmp(v[i].item->string, "next_batch") == 0;
	replace_value(&v[i], wrong[k]);
	out = cJSON_PrintUnformatted(root);
	free(v);
	cJSON_Delete(root);
	return out;
}

/*
 * A real /sync body (captured from tests/homeserver, in the fuzz corpus),
 * with each value in turn replaced by a number, an array, an object, null,
 * a boolean and an empty string: never a crash; a body without a string
 * next_batch is refused, and so is one with every string a number.
 */
static void
test_sync_wrong_types(void **state)
{
	char path[1024], *text, *body;
	size_t len, n = 0, i, k, fed = 0, refused = 0;
	struct slot *vals = NULL;
	cJSON *root;
	struct mxbed t;
	int nb, rc;

	(void)state;
	check_begin();
	snprintf(path, sizeof(path),
	         "%s/fuzz/corpus/sync/05_thread_chatter_emergency_displayname.json", TEST_DATA);
	body = file_read(path, MB, &len);
	assert_non_null(body);
	root = cJSON_Parse(body);
	assert_non_null(root);
	collect_values(root, &vals, &n);
	mxbed_open(&t);
	CHECK(mx_feed_sync(t.mx, body, len) == 0, "the captured body is refused");
	for (i = 0; i < n; i++) {
		for (k = 0; k < NELEM(wrong); k++) {
			text = with_wrong_value(body, i, k, &nb);
			rc = mx_feed_sync(t.mx, text, strlen(text));
			fed++;
			refused += rc == -1;
			if (nb && k != NELEM(wrong) - 1)
				CHECK(rc == -1, "next_batch as %s is accepted", wrong[k]);
			free(text);
		}
	}
	/* Every string a number, all at once. */
	for (i = 0; i < n; i++)
		if (cJSON_IsString(vals[i].item))
			replace_value(&vals[i], "7");
	text = cJSON_PrintUnformatted(root);
	CHECK(mx_feed_sync(t.mx, text, strlen(text)) == -1,
	      "a body with every string a number is accepted");
	free(text);
	print_message("    %zu values x %zu wrong values: %zu bodies fed, %zu refused\n", n,
	              NELEM(wrong), fed, refused);
	mxbed_close(&t);
	free(vals);
	cJSON_Delete(root);
	free(body);
	CHECK_END();
}

/*
 * The example configuration with each option that holds a string (or a
 * list of strings) given a number instead: refused, with the option's place.
 */
static void
test_config_wrong_types(void **state)
{
	char path[1024], *body, *text, *base;
	size_t len, n = 0, i, tried = 0;
	struct slot *vals = NULL;
	struct diag_list d;
	struct config cfg;
	cJSON *root;
	int rc, nb;

	(void)state;
	check_begin();
	snprintf(path, sizeof(path), "%s/deploy/faqbot.example.json", SOURCE_DIR);
	body = file_read(path, MB, &len);
	assert_non_null(body);
	root = cJSON_Parse(body);
	assert_non_null(root);
	/* No secret file: the example names one that exists only under systemd. */
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(root, "matrix"), "password_file",
	                          cJSON_CreateString(""));
	base = cJSON_Print(root);
	config_defaults(&cfg);
	diag_list_init(&d);
	rc = config_load_string(&cfg, "faqbot.json", base, &d);
	if (rc != 0)
		diag_print(&d, stderr, DIAG_NOTE);
	CHECK(rc == 0, "the example configuration does not load");
	diag_list_free(&d);
	config_free(&cfg);
	collect_values(root, &vals, &n);
	for (i = 0; i < n; i++) {
		const char *key = vals[i].item->string;

		if (!cJSON_IsString(vals[i].item))
			continue;
		if (key && (key[0] == '_' || strcmp(key, "comment") == 0))
			continue; /* notes for people: any type will do */
		text = with_wrong_value(base, i, 0, &nb);
		config_defaults(&cfg);
		diag_list_init(&d);
		rc = config_load_string(&cfg, "faqbot.json", text, &d);
		CHECK(rc == -1 && d.errors > 0 && d.d[0].line > 0,
		      "\"%s\": a number where a string belongs is accepted (or has no place)",
		      key ? key : "(an element of a list)");
		diag_list_free(&d);
		config_free(&cfg);
		free(text);
		tried++;
	}
	print_message("    %zu string options given a number\n", tried);
	CHECK(tried > 20, "only %zu options tried", tried);
	free(vals);
	free(base);
	cJSON_Delete(root);
	free(body);
	CHECK_END();
}

/* --- huge bodies --------------------------------------------------------- */

/* Peak resident memory of this process, in MB. */
static long
peak_rss_mb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss / 1024;
}

/*
 * A 50 MB /sync body handed to mx_feed_sync(): over matrix.max_body_bytes,
 * it is refused before it is parsed. And one just under a small cap is
 * handled (its huge message ignored, as over matrix.max_message_bytes).
 */
static void
test_sync_50mb_fed(void **state)
{
	struct mxbed t;
	struct buf b;
	long before;

	(void)state;
	check_begin();
	mxbed_open(&t);
	buf_init(&b);
	buf_puts(&b, "{\"next_batch\": \"s2\", \"rooms\": {\"join\": {\"!r:localhost\": {\"timeline\": "
	             "{\"events\": [{\"type\": \"m.room.message\", \"sender\": "
	             "\"@patient:localhost\", \"event_id\": \"$big\", \"content\": {\"msgtype\": "
	             "\"m.text\", \"body\": \"what is palliative care? ");
	while (b.len < 50 * MB)
		buf_puts(&b, "lorem ipsum dolor sit amet ");
	buf_puts(&b, "\"}}]}}}}}");
	before = peak_rss_mb();
	CHECK(mx_feed_sync(t.mx, b.data, b.len) == -1, "a 50 MB /sync body is accepted");
	print_message("    50 MB body: peak RSS %ld MB before, %ld MB after\n", before,
	              peak_rss_mb());
	CHECK(mxbed_pending(&t) == 0, "a 50 MB /sync body queued a reply");
	/* Under the cap, the message itself is over max_message_bytes: ignored. */
	t.cfg.mx_max_body_bytes = 64 * MB;
	CHECK(mx_feed_sync(t.mx, b.data, b.len) == 0, "a valid body under the cap is refused");
	CHECK(mxbed_pending(&t) == 0, "a 50 MB message got a reply");
	buf_free(&b);
	mxbed_close(&t);
	CHECK_END();
}

/* A server on 127.0.0.1 that answers one request with a body of `size` bytes. */
struct big_server {
	int fd;           /* the listening socket */
	int port;         /* its port */
	size_t size;      /* the Content-Length announced and sent */
	size_t written;   /* how much of the body the client took */
	pthread_t thread; /* serving */
};

static void *
big_serve(void *arg)
{
	struct big_server *s = arg;
	char req[4096], *chunk = xmalloc(65536), head[256];
	int c = accept(s->fd, NULL, NULL);
	ssize_t n;

	memset(chunk, ' ', 65536);
	chunk[0] = '[';
	if (c >= 0) {
		/* The request head (small; read until a blank line or 4 KB). */
		size_t got = 0;

		while (got < sizeof(req) - 1 && (n = read(c, req + got, sizeof(req) - 1 - got)) > 0) {
			got += (size_t)n;
			req[got] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		snprintf(head, sizeof(head),
		         "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		         s->size);
		if (write(c, head, strlen(head)) > 0) {
			while (s->written < s->size) {
				size_t k = s->size - s->written < 65536 ? s->size - s->written : 65536;

				if ((n = send(c, chunk, k, MSG_NOSIGNAL)) <= 0)
					break; /* the client hung up: what it should do */
				s->written += (size_t)n;
				chunk[0] = ' ';
			}
		}
		close(c);
	}
	free(chunk);
	return NULL;
}

struct http_result {
	int done;
	int too_big;
	long status;
	size_t len;
};

static void
on_big(void *arg, const struct http_resp *r)
{
	struct http_result *res = arg;

	res->done = 1;
	res->too_big = r->too_big;
	res->status = r->status;
	res->len = r->len;
}

/*
 * The same 50 MB from a server, through the HTTP layer the transport uses
 * (http_start with matrix.max_body_bytes as the cap): dropped as too big,
 * with an empty body, once the cap is passed, not after 50 MB.
 */
static void
test_sync_50mb_http(void **state)
{
	struct big_server s = {0};
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	struct http_result res = {0};
	struct config cfg;
	struct loop *l;
	char url[128];
	double t0;

	(void)state;
	check_begin();
	config_defaults(&cfg);
	s.size = 50 * MB;
	s.fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s.fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s.fd, 1), 0);
	assert_int_equal(getsockname(s.fd, (struct sockaddr *)&sa, &sl), 0);
	s.port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&s.thread, NULL, big_serve, &s), 0);

	assert_non_null(l = loop_new());
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/_matrix/client/v3/sync", s.port);
	t0 = seconds_now();
	assert_non_null(http_start(l, "GET", url, "token", NULL, 60000,
	                           (size_t)cfg.mx_max_body_bytes, on_big, &res));
	while (!res.done && seconds_now() - t0 < 60)
		loop_once(l, 100);
	CHECK(res.done, "the request never ended");
	CHECK(res.too_big, "a 50 MB reply was not dropped as too big");
	CHECK(res.len == 0, "the dropped reply still has a %zu-byte body", res.len);
	pthread_join(s.thread, NULL);
	print_message("    50 MB from the server: cap %ld, %zu bytes sent before the client hung up, "
	              "%.2f s\n",
	              cfg.mx_max_body_bytes, s.written, seconds_now() - t0);
	CHECK(s.written < s.size, "the client read the whole 50 MB");
	close(s.fd);
	loop_free(l);
	config_free(&cfg);
	CHECK_END();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_messages),
	    cmocka_unit_test(test_names_in_replies),
	    cmocka_unit_test(test_captures_in_replies),
	    cmocka_unit_test(test_catastrophic_backtracking),
	    cmocka_unit_test(test_too_many_patterns),
	    cmocka_unit_test(test_deep_json),
	    cmocka_unit_test(test_sync_wrong_types),
	    cmocka_unit_test(test_sync_messages_read_for_safety),
	    cmocka_unit_test(test_config_wrong_types),
	    cmocka_unit_test(test_sync_50mb_fed),
	    cmocka_unit_test(test_sync_50mb_http),
	};

	return cmocka_run_group_tests(tests, setup_shipped, teardown_shipped);
}
