/*
 * Unit tests for the parts of the IRC transport that need no connection
 * (transport/irc_internal.h): a table of lines for the parser (tags, no
 * prefix, trailing parameters with colons, malformed lines), the framer
 * (CR LF, lines split over reads, too long, with a NUL), the splitter (the
 * limit, word boundaries, multibyte characters, a 1 MB word, empty lines),
 * the SASL PLAIN payload and its 400-byte chunks, the token bucket, and the
 * case mapping behind "nick: question".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "transport/irc_internal.h"
#include "util.h"

/* --- the parser --------------------------------------------------------- */

struct parse_case {
	const char *line;
	int ok;             /* 0 parsed, -1 malformed */
	const char *prefix; /* or NULL */
	const char *command;
	int nparams;
	const char *params[IRC_MAX_PARAMS];
};

/* clang-format off */
static const struct parse_case parse_cases[] = {
    {"PING :irc.example.org", 0, NULL, "PING", 1, {"irc.example.org"}},
    {"PING irc.example.org", 0, NULL, "PING", 1, {"irc.example.org"}},
    {":nick!user@host PRIVMSG #chan :hello there", 0, "nick!user@host", "PRIVMSG", 2,
     {"#chan", "hello there"}},
    {":nick!user@host PRIVMSG #chan :faqbot: what is: this?", 0, "nick!user@host", "PRIVMSG", 2,
     {"#chan", "faqbot: what is: this?"}},
    {":nick!user@host PRIVMSG #chan ::-) smile", 0, "nick!user@host", "PRIVMSG", 2,
     {"#chan", ":-) smile"}},
    {":nick!user@host PRIVMSG #chan :", 0, "nick!user@host", "PRIVMSG", 2, {"#chan", ""}},
    {"@time=2024-01-01T00:00:00.000Z;msgid=abc :n!u@h PRIVMSG #c :tagged", 0, "n!u@h", "PRIVMSG",
     2, {"#c", "tagged"}},
    {"@a=b;c PING :x", 0, NULL, "PING", 1, {"x"}},
    {":irc.example.org 001 faqbot :Welcome to the network", 0, "irc.example.org", "001", 2,
     {"faqbot", "Welcome to the network"}},
    {":srv 005 me CASEMAPPING=rfc1459 PREFIX=(ov)@+ :are supported", 0, "srv", "005", 4,
     {"me", "CASEMAPPING=rfc1459", "PREFIX=(ov)@+", "are supported"}},
    {":srv 353 me = #chan :@op +voice plain", 0, "srv", "353", 4,
     {"me", "=", "#chan", "@op +voice plain"}},
    {":n!u@h MODE #chan +ov a b", 0, "n!u@h", "MODE", 4, {"#chan", "+ov", "a", "b"}},
    {"privmsg #chan :lower case command", 0, NULL, "PRIVMSG", 2, {"#chan", "lower case command"}},
    {":n!u@h   PRIVMSG   #chan   :extra  spaces ", 0, "n!u@h", "PRIVMSG", 2,
     {"#chan", "extra  spaces "}},
    {"CAP * LS * :multi-prefix sasl=PLAIN,EXTERNAL", 0, NULL, "CAP", 4,
     {"*", "LS", "*", "multi-prefix sasl=PLAIN,EXTERNAL"}},
    {":n!u@h PRIVMSG #c :caf\xc3\xa9 \xff\xfe invalid", 0, "n!u@h", "PRIVMSG", 2,
     {"#c", "caf\xc3\xa9 \xff\xfe invalid"}},
    {"QUIT", 0, NULL, "QUIT", 0, {NULL}},
    {"CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16", 0, NULL, "CMD", 15,
     {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15 16"}},
    /* malformed */
    {"", -1, NULL, NULL, 0, {NULL}},
    {"   ", -1, NULL, NULL, 0, {NULL}},
    {":prefix-only", -1, NULL, NULL, 0, {NULL}},
    {":prefix ", -1, NULL, NULL, 0, {NULL}},
    {": PRIVMSG #c :x", -1, NULL, NULL, 0, {NULL}},
    {"@tags-only", -1, NULL, NULL, 0, {NULL}},
    {"@tags :prefix", -1, NULL, NULL, 0, {NULL}},
    {":n!u@h PRIV-MSG #c :x", -1, NULL, NULL, 0, {NULL}},
    {":srv 01 me :two digits", -1, NULL, NULL, 0, {NULL}},
    {":srv 0001 me :four digits", -1, NULL, NULL, 0, {NULL}},
    {":srv 1a1 me :mixed", -1, NULL, NULL, 0, {NULL}},
};
/* clang-format on */

static int
streq_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static void
test_parse_table(void **state)
{
	size_t i;
	int j;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(parse_cases); i++) {
		const struct parse_case *pc = &parse_cases[i];
		char *copy = strdup(pc->line);
		struct irc_msg m;
		int rc = irc_parse(copy, &m);

		if (!CHECK(rc == pc->ok, "\"%s\": returned %d, want %d", pc->line, rc, pc->ok) ||
		    rc == -1) {
			free(copy);
			continue;
		}
		CHECK(streq_null(m.prefix, pc->prefix), "\"%s\": prefix \"%s\", want \"%s\"",
		      pc->line, m.prefix ? m.prefix : "(null)", pc->prefix ? pc->prefix : "(null)");
		CHECK(streq_null(m.command, pc->command), "\"%s\": command \"%s\", want \"%s\"",
		      pc->line, m.command, pc->command);
		if (CHECK(m.nparams == pc->nparams, "\"%s\": %d params, want %d", pc->line,
		          m.nparams, pc->nparams)) {
			for (j = 0; j < m.nparams; j++)
				CHECK(strcmp(m.params[j], pc->params[j]) == 0,
				      "\"%s\": param %d \"%s\", want \"%s\"", pc->line, j,
				      m.params[j], pc->params[j]);
		}
		free(copy);
	}
	assert_int_equal(check_failures, 0);
}

static void
test_prefix_nick(void **state)
{
	char out[16];

	(void)state;
	assert_string_equal(irc_prefix_nick("nick!user@host", out, sizeof(out)), "nick");
	assert_string_equal(irc_prefix_nick("nick@host", out, sizeof(out)), "nick");
	assert_string_equal(irc_prefix_nick("irc.example.org", out, sizeof(out)),
	                    "irc.example.org");
	assert_string_equal(irc_prefix_nick(NULL, out, sizeof(out)), "");
	assert_string_equal(irc_prefix_nick("averyveryverylongnick!u@h", out, sizeof(out)),
	                    "averyveryverylo");
}

/* --- the framer --------------------------------------------------------- */

struct lines {
	char *v[16];
	size_t n;
	int stop_after; /* stop feeding after this many lines (0: never) */
};

static int
keep_line(void *arg, char *line, size_t len)
{
	struct lines *l = arg;

	assert_int_equal(strlen(line), len);
	if (l->n < NELEM(l->v))
		l->v[l->n++] = strdup(line);
	return l->stop_after && (int)l->n >= l->stop_after ? -1 : 0;
}

static void
lines_free(struct lines *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

static void
test_framer(void **state)
{
	struct irc_rbuf *rb = calloc(1, sizeof(*rb));
	struct lines l = {0};
	char *big;
	const char *in = "PING :a\r\nPING :b\nPI";

	(void)state;
	/* CR LF and LF, and a line split over two reads. */
	assert_int_equal(irc_rbuf_feed(rb, in, strlen(in), keep_line, &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0], "PING :a");
	assert_string_equal(l.v[1], "PING :b");
	assert_int_equal(irc_rbuf_feed(rb, "NG :c\r\n\r\n", 9, keep_line, &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.v[2], "PING :c"); /* the empty line is skipped */
	lines_free(&l);

	/* A line with a NUL is dropped; the next one is not. */
	assert_int_equal(irc_rbuf_feed(rb, "PRIVMSG #c :a\0b\r\nPING :d\r\n", 26, keep_line, &l),
	                 0);
	assert_int_equal(rb->dropped_nul, 1);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0], "PING :d");
	lines_free(&l);

	/* Exactly the limit passes; one byte more is dropped, fed in pieces. */
	big = malloc(IRC_MAX_LINE + 3);
	memset(big, 'x', IRC_MAX_LINE + 1);
	memcpy(big, "PING :", 6);
	big[IRC_MAX_LINE] = '\r';
	big[IRC_MAX_LINE + 1] = '\n';
	assert_int_equal(irc_rbuf_feed(rb, big, IRC_MAX_LINE + 2, keep_line, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(strlen(l.v[0]), IRC_MAX_LINE);
	lines_free(&l);
	memset(big, 'y', IRC_MAX_LINE + 1);
	big[IRC_MAX_LINE + 1] = '\n';
	assert_int_equal(irc_rbuf_feed(rb, big, 100, keep_line, &l), 0);
	assert_int_equal(irc_rbuf_feed(rb, big + 100, IRC_MAX_LINE + 2 - 100, keep_line, &l), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(rb->dropped_long, 1);
	/* A much longer line is dropped too, and the framer recovers after it. */
	{
		size_t n = 100000, i;
		char *huge = malloc(n);

		memset(huge, 'z', n);
		for (i = 0; i < n; i += 1000)
			assert_int_equal(irc_rbuf_feed(rb, huge + i, 1000, keep_line, &l), 0);
		free(huge);
	}
	assert_int_equal(irc_rbuf_feed(rb, "\nPING :e\r\n", 10, keep_line, &l), 0);
	assert_int_equal(rb->dropped_long, 2);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0], "PING :e");
	lines_free(&l);

	/* A handler that stops the feed. */
	l.stop_after = 1;
	assert_int_equal(irc_rbuf_feed(rb, "A\r\nB\r\n", 6, keep_line, &l), -1);
	assert_int_equal(l.n, 1);
	lines_free(&l);
	free(big);
	free(rb);
}

/* --- the splitter ------------------------------------------------------- */

struct pieces {
	char **v;
	size_t n;
	size_t cap;
};

static void
keep_piece(void *arg, const char *p, size_t len)
{
	struct pieces *ps = arg;

	if (ps->n == ps->cap) {
		ps->cap = ps->cap ? ps->cap * 2 : 16;
		ps->v = realloc(ps->v, ps->cap * sizeof(*ps->v));
	}
	ps->v[ps->n] = malloc(len + 1);
	memcpy(ps->v[ps->n], p, len);
	ps->v[ps->n][len] = '\0';
	ps->n++;
}

static void
pieces_free(struct pieces *ps)
{
	size_t i;

	for (i = 0; i < ps->n; i++)
		free(ps->v[i]);
	free(ps->v);
	memset(ps, 0, sizeof(*ps));
}

/* Is s valid UTF-8 (well-formed sequences only)? */
static int
utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int n = *p < 0x80             ? 0
		        : (*p & 0xe0) == 0xc0 ? 1
		        : (*p & 0xf0) == 0xe0 ? 2
		        : (*p & 0xf8) == 0xf0 ? 3
		                              : -1;

		if (n < 0)
			return 0;
		p++;
		while (n-- > 0) {
			if ((*p & 0xc0) != 0x80)
				return 0;
			p++;
		}
	}
	return 1;
}

/* The text without any whitespace: what a split must keep. */
static char *
squeeze(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;

	for (; *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			*o++ = *s;
	*o = '\0';
	return out;
}

static char *
joined(const struct pieces *ps)
{
	size_t i, len = 1;
	char *out;

	for (i = 0; i < ps->n; i++)
		len += strlen(ps->v[i]) + 1;
	out = malloc(len);
	len = 0;
	for (i = 0; i < ps->n; i++) {
		size_t n = strlen(ps->v[i]);

		if (i)
			out[len++] = ' ';
		memcpy(out + len, ps->v[i], n);
		len += n;
	}
	out[len] = '\0';
	return out;
}

/* Every piece fits, is UTF-8, has no newline, and together they keep the text. */
static void
check_split(const char *text, size_t max, struct pieces *ps)
{
	char *a, *b, *j;
	size_t i, n;

	n = irc_split(text, max, keep_piece, ps);
	assert_int_equal(n, ps->n);
	for (i = 0; i < ps->n; i++) {
		assert_true(strlen(ps->v[i]) > 0);
		assert_true(strlen(ps->v[i]) <= max);
		assert_null(strpbrk(ps->v[i], "\r\n"));
		assert_true(utf8_ok(ps->v[i]));
		assert_false(ps->v[i][strlen(ps->v[i]) - 1] == ' ');
	}
	j = joined(ps);
	a = squeeze(text);
	b = squeeze(j);
	assert_string_equal(a, b);
	free(a);
	free(b);
	free(j);
}

static void
test_split_words(void **state)
{
	struct pieces ps = {0};
	const char *text = "Palliative care is care that focuses on comfort, easing symptoms such "
	                   "as pain, and helping you live as well as you can.";
	size_t i;

	(void)state;
	check_begin();
	/* Short text: one piece, as is. */
	check_split("hello world", 400, &ps);
	assert_int_equal(ps.n, 1);
	assert_string_equal(ps.v[0], "hello world");
	pieces_free(&ps);

	/* Long text: cut at spaces only, every word whole. */
	check_split(text, 30, &ps);
	assert_true(ps.n > 3);
	for (i = 0; i < ps.n; i++) {
		char *w, *save = NULL, *copy = strdup(ps.v[i]), padded[256];

		snprintf(padded, sizeof(padded), " %s ", text);
		for (w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
			char needle[64];

			snprintf(needle, sizeof(needle), " %s ", w);
			CHECK(strstr(padded, needle) != NULL, "\"%s\" is not a whole word", w);
		}
		free(copy);
	}
	assert_int_equal(check_failures, 0);
	/* Re-joined with single spaces, the text is exactly back. */
	{
		char *j = joined(&ps);

		assert_string_equal(j, text);
		free(j);
	}
	pieces_free(&ps);

	/* Exactly at the limit: no cut. */
	check_split("abcd efgh", 9, &ps);
	assert_int_equal(ps.n, 1);
	pieces_free(&ps);
	check_split("abcd efghi", 9, &ps);
	assert_int_equal(ps.n, 2);
	assert_string_equal(ps.v[0], "abcd");
	assert_string_equal(ps.v[1], "efghi");
	pieces_free(&ps);
	/* Several spaces at a cut are all dropped. */
	check_split("abcd     efghi", 9, &ps);
	assert_int_equal(ps.n, 2);
	assert_string_equal(ps.v[1], "efghi");
	pieces_free(&ps);
}

static void
test_split_lines(void **state)
{
	struct pieces ps = {0};

	(void)state;
	/* Newlines (LF, CR LF, lone CR) make lines; empty and blank lines go. */
	check_split("one\ntwo\r\n\r\n   \nthree\rfour\n\n", 400, &ps);
	assert_int_equal(ps.n, 4);
	assert_string_equal(ps.v[0], "one");
	assert_string_equal(ps.v[1], "two");
	assert_string_equal(ps.v[2], "three");
	assert_string_equal(ps.v[3], "four");
	pieces_free(&ps);
	/* Indentation at the start of a line stays; trailing spaces go. */
	check_split("  - item   \n", 400, &ps);
	assert_int_equal(ps.n, 1);
	assert_string_equal(ps.v[0], "  - item");
	pieces_free(&ps);
	/* Nothing at all. */
	assert_int_equal(irc_split("", 400, keep_piece, &ps), 0);
	assert_int_equal(irc_split("\n\n \r\n", 400, keep_piece, &ps), 0);
	pieces_free(&ps);
}

static void
test_split_multibyte(void **state)
{
	struct pieces ps = {0};
	char text[4096];
	size_t max, i;

	(void)state;
	/* Words of 2-, 3- and 4-byte characters, at every limit from 4 to 40. */
	snprintf(text, sizeof(text), "%s",
	         "caf\xc3\xa9 r\xc3\xa9sum\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae"
	         "\xe6\x96\x87\xe7\xab\xa0\xe3\x81\xa7\xe3\x81\x99 \xf0\x9f\x98\x80\xf0\x9f\x98\x80"
	         "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80 na\xc3\xafve \xe2\x80\x94 done");
	for (max = 4; max <= 40; max++) {
		check_split(text, max, &ps);
		pieces_free(&ps);
	}
	/* A word of 2-byte characters longer than the limit: cut between characters. */
	text[0] = '\0';
	for (i = 0; i < 300; i++)
		strcat(text, "\xc3\xbc");
	check_split(text, 401, &ps);
	assert_int_equal(ps.n, 2);
	assert_int_equal(strlen(ps.v[0]), 400);
	pieces_free(&ps);
	/* Invalid UTF-8 (a lone continuation run) still splits within the limit. */
	memset(text, 0x80, 100);
	text[100] = '\0';
	{
		size_t n = irc_split(text, 10, keep_piece, &ps);

		assert_int_equal(n, 10);
		for (i = 0; i < ps.n; i++)
			assert_int_equal(strlen(ps.v[i]), 10);
	}
	pieces_free(&ps);
}

static void
test_split_megabyte_word(void **state)
{
	struct pieces ps = {0};
	size_t n = 1 << 20, i, total = 0;
	char *word = malloc(n + 1);

	(void)state;
	/* 1 MB of 3-byte characters with no space at all. */
	for (i = 0; i + 3 <= n; i += 3)
		memcpy(word + i, "\xe6\x97\xa5", 3);
	word[i] = '\0';
	check_split(word, 397, &ps);
	assert_true(ps.n > 2600);
	for (i = 0; i < ps.n; i++) {
		/* Every piece but the last as full as whole characters allow. */
		assert_true(i + 1 == ps.n || strlen(ps.v[i]) == 396);
		total += strlen(ps.v[i]);
	}
	assert_int_equal(total, strlen(word));
	pieces_free(&ps);
	free(word);
}

/* --- SASL --------------------------------------------------------------- */

static void
test_sasl_payload(void **state)
{
	char *p;

	(void)state;
	p = irc_sasl_plain("faqbot", "secret");
	assert_string_equal(p, "AGZhcWJvdABzZWNyZXQ="); /* base64 of "\0faqbot\0secret" */
	free(p);
	p = irc_sasl_plain("jilles", "sesame");
	assert_string_equal(p, "AGppbGxlcwBzZXNhbWU=");
	free(p);
	p = irc_sasl_plain("", "");
	assert_string_equal(p, "AAA="); /* two NULs */
	free(p);
}

static void
test_sasl_chunks(void **state)
{
	static const struct {
		size_t len;      /* payload length */
		size_t chunks;   /* AUTHENTICATE lines */
		size_t last_len; /* length of the last one ("+" is 1) */
		int plus;        /* the last is "+" */
	} cases[] = {
	    {0, 1, 1, 1},   {1, 1, 1, 0},   {399, 1, 399, 0},  {400, 2, 1, 1},
	    {401, 2, 1, 0}, {800, 3, 1, 1}, {1000, 3, 200, 0},
	};
	size_t i, j;
	char *b64;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(cases); i++) {
		struct pieces ps = {0};
		size_t n;

		b64 = malloc(cases[i].len + 1);
		memset(b64, 'Q', cases[i].len);
		b64[cases[i].len] = '\0';
		n = irc_sasl_chunks(b64, keep_piece, &ps);
		CHECK(n == cases[i].chunks && ps.n == n, "len %zu: %zu chunks, want %zu",
		      cases[i].len, n, cases[i].chunks);
		if (ps.n) {
			const char *last = ps.v[ps.n - 1];

			CHECK(strlen(last) == cases[i].last_len, "len %zu: last chunk %zu bytes",
			      cases[i].len, strlen(last));
			CHECK((strcmp(last, "+") == 0) == cases[i].plus, "len %zu: last is \"%s\"",
			      cases[i].len, last);
			for (j = 0; j + 1 < ps.n; j++)
				CHECK(strlen(ps.v[j]) == 400, "len %zu: chunk %zu is %zu bytes",
				      cases[i].len, j, strlen(ps.v[j]));
		}
		pieces_free(&ps);
		free(b64);
	}
	assert_int_equal(check_failures, 0);
}

/* --- the bucket ---------------------------------------------------------- */

static void
test_bucket(void **state)
{
	struct irc_bucket b;
	uint64_t t = 1000000;
	int i;

	(void)state;
	irc_bucket_init(&b, 4, 1000, t);
	/* A burst of 4, then nothing. */
	for (i = 0; i < 4; i++)
		assert_int_equal(irc_bucket_take(&b, t), 0);
	assert_int_equal(irc_bucket_take(&b, t), -1);
	assert_int_equal(irc_bucket_wait(&b, t), 1000);
	assert_int_equal(irc_bucket_wait(&b, t + 400), 600);
	assert_int_equal(irc_bucket_take(&b, t + 999), -1);
	/* Then one per rate. */
	assert_int_equal(irc_bucket_take(&b, t + 1000), 0);
	assert_int_equal(irc_bucket_take(&b, t + 1000), -1);
	assert_int_equal(irc_bucket_take(&b, t + 1999), -1);
	assert_int_equal(irc_bucket_take(&b, t + 2000), 0);
	/* Time left over counts: at 3500, one came at 3000, the next at 4000. */
	assert_int_equal(irc_bucket_take(&b, t + 3500), 0);
	assert_int_equal(irc_bucket_wait(&b, t + 3500), 500);
	/* A long pause refills up to the burst, never beyond. */
	t += 100000;
	for (i = 0; i < 4; i++)
		assert_int_equal(irc_bucket_take(&b, t), 0);
	assert_int_equal(irc_bucket_take(&b, t), -1);
	/* Over a minute at most burst + 60 lines leave. */
	{
		struct irc_bucket c;
		uint64_t s = 5000, ms;
		int sent = 0;

		irc_bucket_init(&c, 3, 1000, s);
		for (ms = 0; ms < 60000; ms += 7)
			while (irc_bucket_take(&c, s + ms) == 0)
				sent++;
		assert_true(sent <= 3 + 60);
		assert_true(sent >= 3 + 59);
	}
	/* Nonsense settings are made sane. */
	irc_bucket_init(&b, 0, 0, t);
	assert_int_equal(irc_bucket_take(&b, t), 0);
	assert_int_equal(irc_bucket_take(&b, t), -1);
	assert_int_equal(irc_bucket_take(&b, t + 1), 0);
}

/* --- case mapping and addressing ---------------------------------------- */

static void
test_casemap_and_addressed(void **state)
{
	const char *rest = NULL;

	(void)state;
	assert_int_equal(irc_casecmp("FaqBot", "faqbot", IRC_CASEMAP_ASCII), 0);
	assert_int_equal(irc_casecmp("#Support", "#support", IRC_CASEMAP_RFC1459), 0);
	assert_int_equal(irc_casecmp("bot[1]", "BOT{1}", IRC_CASEMAP_RFC1459), 0);
	assert_int_equal(irc_casecmp("a~b\\", "A^B|", IRC_CASEMAP_RFC1459), 0);
	assert_int_not_equal(irc_casecmp("a~b", "A^B", IRC_CASEMAP_STRICT), 0);
	assert_int_equal(irc_casecmp("a[b", "A{B", IRC_CASEMAP_STRICT), 0);
	assert_int_not_equal(irc_casecmp("bot[1]", "bot{1}", IRC_CASEMAP_ASCII), 0);
	assert_int_not_equal(irc_casecmp("faqbot", "faqbot_", IRC_CASEMAP_ASCII), 0);

	assert_int_equal(irc_addressed("faqbot: what is NED?", "faqbot", 0, &rest), 1);
	assert_string_equal(rest, "what is NED?");
	assert_int_equal(irc_addressed("FAQBOT,   hi", "faqbot", 0, &rest), 1);
	assert_string_equal(rest, "hi");
	assert_int_equal(irc_addressed("faqbot_: hi", "faqbot_", 0, &rest), 1);
	assert_int_equal(irc_addressed("faqbot:", "faqbot", 0, &rest), 1);
	assert_string_equal(rest, "");
	assert_int_equal(irc_addressed("faqbot_: hi", "faqbot", 0, &rest), 0);
	assert_int_equal(irc_addressed("faqbot hi", "faqbot", 0, &rest), 0);
	assert_int_equal(irc_addressed("faqbo", "faqbot", 0, &rest), 0);
	assert_int_equal(irc_addressed("hi faqbot: x", "faqbot", 0, &rest), 0);
	assert_int_equal(irc_addressed("", "faqbot", 0, &rest), 0);
}

/* The nicks tried, cut to the server's limit before the suffix goes on. */
static void
test_nick_tries(void **state)
{
	static const struct {
		const char *want;
		int tries;
		size_t limit;
		const char *got;
	} cases[] = {
	    {"faqbot", 0, 0, "faqbot"},
	    {"faqbot", 1, 0, "faqbot_"},
	    {"faqbot", 2, 0, "faqbot1"},
	    {"faqbot", 11, 0, "faqbot10"},
	    {"faqbot-support", 0, 9, "faqbot-su"},
	    {"faqbot-support", 1, 9, "faqbot-s_"},
	    {"faqbot-support", 2, 9, "faqbot-s1"},
	    {"faqbot-support", 11, 9, "faqbot-10"},
	    {"faqbot", 1, 9, "faqbot_"},
	    {"abcdefghi", 1, 9, "abcdefgh_"},
	    {"ab", 5, 2, "a4"},
	    {"a", 12, 1, "a11"}, /* nothing to cut: the server decides */
	};
	size_t i;
	char *got;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(cases); i++) {
		got = irc_nick_try(cases[i].want, cases[i].tries, cases[i].limit);
		CHECK(strcmp(got, cases[i].got) == 0, "%s, try %d, limit %zu: got %s, want %s",
		      cases[i].want, cases[i].tries, cases[i].limit, got, cases[i].got);
		free(got);
	}
	CHECK_END();
}

/*
 * When to join again: delays double; a stay of a minute starts them over,
 * but only once (refusals after it go on doubling); a ban stops at once,
 * and so do five kicks in a row.
 */
static void
test_rejoin_delays(void **state)
{
	struct irc_rejoin r = {0};
	uint64_t t = 1000;
	int i;

	(void)state;
	/* In the channel for 70 s, then kicked: the first delay. */
	irc_rejoin_joined(&r, t);
	t += 70000;
	assert_int_equal(irc_rejoin_next(&r, IRC_REJOIN_KICKED, t), 5000);
	/* The JOINs after it are refused (full): the delays grow, the old stay does not reset them. */
	t += 5000;
	assert_int_equal(irc_rejoin_next(&r, IRC_REJOIN_REFUSED, t), 10000);
	t += 10000;
	assert_int_equal(irc_rejoin_next(&r, IRC_REJOIN_REFUSED, t), 20000);
	for (i = 0; i < 10; i++)
		t += irc_rejoin_next(&r, IRC_REJOIN_REFUSED, t);
	assert_int_equal(irc_rejoin_next(&r, IRC_REJOIN_REFUSED, t), IRC_REJOIN_MAX_MS);
	/* Back in for a minute: over again. */
	irc_rejoin_joined(&r, t);
	t += 60000;
	assert_int_equal(irc_rejoin_next(&r, IRC_REJOIN_LEFT, t), 5000);
	/* A ban after a stay: no more tries. */
	irc_rejoin_joined(&r, t);
	t += 120000;
	assert_int_equal(irc_rejoin_next(&r, IRC_REJOIN_KICKED, t), 5000);
	assert_int_equal(irc_rejoin_next(&r, IRC_REJOIN_BANNED, t + 5000), 0);

	/* Kicked each time it comes back: five in a row, and it stays away. */
	memset(&r, 0, sizeof(r));
	t = 1000;
	for (i = 1; i < IRC_MAX_KICKS; i++) {
		irc_rejoin_joined(&r, t);
		t += 2000;
		assert_true(irc_rejoin_next(&r, IRC_REJOIN_KICKED, t) > 0);
	}
	irc_rejoin_joined(&r, t);
	assert_int_equal(irc_rejoin_next(&r, IRC_REJOIN_KICKED, t + 2000), 0);
	/* Kicks far apart are not "in a row". */
	memset(&r, 0, sizeof(r));
	for (i = 0; i < 3 * IRC_MAX_KICKS; i++) {
		irc_rejoin_joined(&r, t);
		t += IRC_STABLE_MS + 1;
		assert_int_equal(irc_rejoin_next(&r, IRC_REJOIN_KICKED, t), 5000);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_table),
	    cmocka_unit_test(test_prefix_nick),
	    cmocka_unit_test(test_framer),
	    cmocka_unit_test(test_split_words),
	    cmocka_unit_test(test_split_lines),
	    cmocka_unit_test(test_split_multibyte),
	    cmocka_unit_test(test_split_megabyte_word),
	    cmocka_unit_test(test_sasl_payload),
	    cmocka_unit_test(test_sasl_chunks),
	    cmocka_unit_test(test_bucket),
	    cmocka_unit_test(test_casemap_and_addressed),
	    cmocka_unit_test(test_nick_tries),
	    cmocka_unit_test(test_rejoin_delays),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
