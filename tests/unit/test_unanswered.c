/*
 * Unit tests for unanswered.c: a redaction table (what must go, and the
 * medical words and quantities that must stay), hostile input, the log
 * line format and file mode, the recent list, and the report: synonyms
 * grouped through the lexicon, unrelated questions kept apart, ranking by
 * askers then entries, the representative question, malformed lines, the
 * cut-off, a 100,000-line log, and the command line's exit statuses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "diag.h"
#include "helpers.h"
#include "kb.h"
#include "unanswered.h"
#include "util.h"

/* The embedded knowledge base, loaded once for the grouping tests. */
static struct kb *test_kb;

static int
setup(void **state)
{
	struct diag_list d;

	(void)state;
	diag_list_init(&d);
	test_kb = kb_load_embedded(&d);
	if (test_kb == NULL)
		diag_print(&d, stderr, DIAG_ERROR);
	diag_list_free(&d);
	return test_kb == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	kb_free(test_kb);
	return 0;
}

/* --- redaction ------------------------------------------------------------ */

struct redact_case {
	const char *in;
	const char *want;
};

static const struct redact_case redact_cases[] = {
    /* phone numbers */
    {"call me on +44 7700 900123 please", "call me on [phone] please"},
    {"my number is (555) 123-4567", "my number is [phone]"},
    {"text 07700900123 or 07700 900 123", "text [phone] or [phone]"},
    {"555-123-4567 is the clinic", "[phone] is the clinic"},
    {"ring 0161 496 0000", "ring [phone]"},
    {"+1 (555) 123-4567 ext", "[phone] ext"},
    {"555.123.4567", "[phone]"},
    {"+447700900123.", "[phone]."},
    /* e-mail addresses */
    {"email me at jane.doe+x@example.co.uk ok", "email me at [email] ok"},
    {"Bob@Mail.COM?", "[email]?"},
    /* dates */
    {"scan on 12/03/2024 and 2024-03-12", "scan on [date] and [date]"},
    {"next dose 12 March, then March 12th", "next dose [date], then [date]"},
    {"3rd of April 2024 was bad", "[date] was bad"},
    {"I start on the 3rd", "I start on the [date]"},
    {"what is 12.03.24", "what is [date]"},
    {"scan was on 12/03", "scan was on [date]"},
    {"May 5th", "[date]"},
    {"born in March 1975", "born in [date]"},
    {"on the 21st of March I have a scan", "on the [date] I have a scan"},
    /* names */
    {"My name is Sarah Jones and I have stage 4", "My name is [name] and I have stage 4"},
    {"my name is sarah and i have mets", "my name is [name] and i have mets"},
    {"I'm called Bob, is keytruda ok?", "I'm called [name], is keytruda ok?"},
    {"I\xe2\x80\x99m called Bob", "I\xe2\x80\x99m called [name]"},
    {"im called dave", "im called [name]"},
    {"i am called Zo\xc3\xab", "i am called [name]"},
    {"call me Ishmael", "call me [name]"},
    {"This is Sarah, my husband has RCC", "This is [name], my husband has RCC"},
    {"Hi, this is Mike here", "Hi, this is [name] here"},
    {"my name's Ann. Is immunotherapy a cure?", "my name's [name]. Is immunotherapy a cure?"},
    /* a name after "my name is" is every word of it */
    {"my name is sarah jones", "my name is [name]"},
    {"my name is sarah jones and i have mets", "my name is [name] and i have mets"},
    /* introductions without "my name is" */
    {"I'm Sarah Jones, my husband has stage 4", "I'm [name], my husband has stage 4"},
    {"Hi all, I am Sarah and I am new", "Hi all, I am [name] and I am new"},
    {"Sarah Jones here, quick question", "[name] here, quick question"},
    {"Hi everyone, Mike here", "Hi everyone, [name] here"},
    /* people named around the writer */
    {"my husband John Smith has RCC", "my husband [name] has RCC"},
    {"My mum Ann's scan is tomorrow", "My mum [name] scan is tomorrow"},
    {"our daughter Emily is 6", "our daughter [name] is 6"},
    {"Dr Patel said it has spread", "Dr [name] said it has spread"},
    {"dr. patel said it has spread", "dr. [name] said it has spread"},
    {"saw Prof Anne Marie Smith today", "saw Prof [name] today"},
    {"my oncologist Dr Okafor and nurse Jane", "my oncologist Dr [name] and nurse [name]"},
    /* where they live */
    {"we live at LS1 4AB near the hospital", "we live at [postcode] near the hospital"},
    {"postcode sw1a1aa", "postcode [postcode]"},
    {"I'm at 12 Acacia Avenue, Leeds", "I'm at [address], Leeds"},
    {"flat 3, 221b Baker Street", "flat 3, [address]"},
    {"22 high st", "[address]"},
    /* record numbers */
    {"my MRN 12345678 is on the letter", "my MRN [id] is on the letter"},
    {"hospital number: K123456", "hospital number: [id]"},
    {"NHS number 485 777 3456", "NHS number [id]"},
    {"ref K1234567 on the card", "ref [id] on the card"},
    {"patient id is 0012345", "patient id is [id]"},
    {"the number 98765432 on my wristband", "the number [id] on my wristband"},
    /* several at once */
    {"I'm called Ann, ann@x.org, 07700 900123, 1 May 2024",
     "I'm called [name], [email], [phone], [date]"},
    /* what must stay */
    {"stage 4 kidney cancer", "stage 4 kidney cancer"},
    {"4 cycles of pembrolizumab 200 mg every 3 weeks",
     "4 cycles of pembrolizumab 200 mg every 3 weeks"},
    {"10 mg daily", "10 mg daily"},
    {"day 8 of cycle 2", "day 8 of cycle 2"},
    {"Keytruda and Opdivo, nivolumab 480mg", "Keytruda and Opdivo, nivolumab 480mg"},
    {"on the 3rd cycle I felt sick", "on the 3rd cycle I felt sick"},
    {"the 2nd line treatment", "the 2nd line treatment"},
    {"the 1st dose", "the 1st dose"},
    {"pain is 8/10 today", "pain is 8/10 today"},
    {"from 2019-2021 on keytruda", "from 2019-2021 on keytruda"},
    {"I had 1000 scans", "I had 1000 scans"},
    {"pi is 3.14159265", "pi is 3.14159265"},
    {"CA 15-3 was 45", "CA 15-3 was 45"},
    {"I may 5 times", "I may 5 times"},
    {"call me back please", "call me back please"},
    {"can you call me later", "can you call me later"},
    {"This is a question about keytruda", "This is a question about keytruda"},
    {"This is Keytruda related?", "This is Keytruda related?"},
    {"stage iv since 2019, ECOG 1", "stage iv since 2019, ECOG 1"},
    {"PSA 0.04, eGFR 45, 10-12 weeks", "PSA 0.04, eGFR 45, 10-12 weeks"},
    {"user@localhost", "user@localhost"},
    {"I'm scared and I'm tired", "I'm scared and I'm tired"},
    {"I'm Stage 4 since May", "I'm Stage 4 since May"},
    {"I'm Not sure, I'm So tired", "I'm Not sure, I'm So tired"},
    {"my husband has stage 4", "my husband has stage 4"},
    {"the dr said it has spread", "the dr said it has spread"},
    {"Dr appointment tomorrow", "Dr appointment tomorrow"},
    {"2 weeks way too long", "2 weeks way too long"},
    {"3 cycles then a break", "3 cycles then a break"},
    {"took 2 tablets at 10 pm", "took 2 tablets at 10 pm"},
    {"B12 and vitamin D3, CA125 and BRCA1", "B12 and vitamin D3, CA125 and BRCA1"},
    {"PD-L1 over 50, HER2 3+", "PD-L1 over 50, HER2 3+"},
    {"keytruda 200mg q3w", "keytruda 200mg q3w"},
    {"All good here", "All good here"},
    {"", ""},
};

static void
test_redact_table(void **state)
{
	size_t i;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(redact_cases); i++) {
		char *got = unanswered_redact(redact_cases[i].in);

		CHECK_STR(got, redact_cases[i].want, redact_cases[i].in);
		free(got);
	}
	CHECK_END();
}

/* Random bytes and long runs of digits and separators: no crash, quick, NUL-terminated. */
static void
test_redact_hostile(void **state)
{
	static const char alphabet[] = "0123456789 +-.()/@abcMay:th'";
	char buf[4097];
	double t0 = seconds_now();
	uint32_t seed = 12345;
	size_t i, k;

	(void)state;
	for (i = 0; i < 2000; i++) {
		size_t n = 1 + (i * 37) % 4096;

		for (k = 0; k < n; k++) {
			seed = seed * 1103515245u + 12345u;
			buf[k] = i % 2 ? (char)(seed >> 16)
			               : alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
			if (buf[k] == '\0')
				buf[k] = 'x';
		}
		buf[n] = '\0';
		free(unanswered_redact(buf));
	}
	/* A long digit run is one number, not a phone number, and not slow. */
	{
		struct buf b;
		char *r;

		buf_init(&b);
		for (i = 0; i < 200000; i++)
			buf_putc(&b, i % 3 == 2 ? ' ' : (char)('0' + i % 10));
		r = unanswered_redact(b.data);
		assert_non_null(r);
		free(r);
		buf_free(&b);
	}
	assert_true(seconds_now() - t0 < 30.0);
}

/* --- the log -------------------------------------------------------------- */

/* Reads dir/unanswered.jsonl into a new string (caller frees). */
static char *
read_log(const char *dir)
{
	char path[512];
	size_t len;
	char *s;

	snprintf(path, sizeof(path), "%s/unanswered.jsonl", dir);
	s = file_read(path, 64 << 20, &len);
	assert_non_null(s);
	return s;
}

/*
 * The log does not grow for ever: past 4 MiB it moves to unanswered.jsonl.1
 * (replacing the one before) and starts again. The moderators' lists read
 * both; what is older than the previous file is gone.
 */
static void
test_append_rotates(void **state)
{
	char dir[64], path[200], old[256], *text;
	struct stat st;
	struct buf b, out;
	size_t len, i;

	(void)state;
	check_begin();
	tmp_dir(dir);
	snprintf(path, sizeof(path), "%s/unanswered.jsonl", dir);
	snprintf(old, sizeof(old), "%s.1", path);
	/* A full log, of well-formed entries. */
	buf_init(&b);
	for (i = 0; b.len < (4u << 20); i++)
		buf_printf(&b,
		           "{\"time\":\"2026-01-01T00:00:00Z\",\"room\":\"#a\",\"sender\":"
		           "\"0123456789abcdef\",\"question\":\"old question %zu\"}\n",
		           i);
	tmp_write_len(dir, "unanswered.jsonl", b.data, b.len);
	buf_free(&b);
	CHECK(unanswered_append(dir, "#a", "@p:x", 1, "the newest question", 1800000000) == 0,
	      "append failed: %s", strerror(errno));
	CHECK(stat(old, &st) == 0 && st.st_size >= (4 << 20), "the full log was not moved aside");
	text = file_read(path, 1 << 20, &len);
	CHECK(text != NULL && has(text, "the newest question") && !has(text, "old question"),
	      "the new log does not start afresh");
	free(text);
	/* The list of recent questions reads across both. */
	buf_init(&out);
	unanswered_recent(dir, 3, &out);
	CHECK(has(out.data, "the newest question") && has(out.data, "old question"),
	      "the recent list misses a file:\n%s", out.data ? out.data : "");
	buf_free(&out);
	/* Full again: the older file goes, the previous one takes its place. */
	tmp_write_len(dir, "unanswered.jsonl", "", 0);
	CHECK(truncate(path, 4 << 20) == 0, "truncate: %s", strerror(errno));
	CHECK(unanswered_append(dir, "#a", "@p:x", 1, "newer still", 1800000001) == 0,
	      "second append failed");
	text = file_read(old, 8 << 20, &len);
	CHECK(text != NULL && !has(text, "old question"), "the oldest file is kept");
	free(text);
	tmp_remove(dir);
	CHECK_END();
}

static void
test_append_format(void **state)
{
	char dir[64], sub[128], path[256], *text, *nl, *line2;
	const cJSON *t, *r, *s, *q;
	struct stat st;
	cJSON *o, *o2;

	(void)state;
	tmp_dir(dir);
	/* The state directory does not exist yet: it is created. */
	snprintf(sub, sizeof(sub), "%s/state/deeper", dir);
	assert_int_equal(
	    unanswered_append(sub, "!room:example.org", "@alice:example.org", 42,
	                      "My name is Alice, call 07700 900123 about \x1b[31mkeytruda\n?",
	                      1710237845),
	    0);
	assert_int_equal(
	    unanswered_append(sub, "#irc", "@alice:example.org", 42, "second \xff question", 0), 0);
	snprintf(path, sizeof(path), "%s/unanswered.jsonl", sub);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	text = read_log(sub);
	nl = strchr(text, '\n');
	assert_non_null(nl);
	*nl = '\0';
	line2 = nl + 1;
	o = cJSON_Parse(text);
	assert_non_null(o);
	t = cJSON_GetObjectItemCaseSensitive(o, "time");
	r = cJSON_GetObjectItemCaseSensitive(o, "room");
	s = cJSON_GetObjectItemCaseSensitive(o, "sender");
	q = cJSON_GetObjectItemCaseSensitive(o, "question");
	assert_true(cJSON_IsString(t) && cJSON_IsString(r) && cJSON_IsString(s) &&
	            cJSON_IsString(q));
	assert_string_equal(t->valuestring, "2024-03-12T10:04:05Z");
	assert_string_equal(r->valuestring, "!room:example.org");
	assert_int_equal(strlen(s->valuestring), 16);
	assert_int_equal(strspn(s->valuestring, "0123456789abcdef"), 16);
	assert_null(strstr(text, "alice"));
	/* Redacted, and the escape and newline are gone. */
	assert_string_equal(q->valuestring,
	                    "My name is [name], call [phone] about  [31mkeytruda ?");
	assert_null(strchr(q->valuestring, '\x1b'));

	/* Same sender and salt: same hash; the second line is valid UTF-8 JSON. */
	nl = strchr(line2, '\n');
	assert_non_null(nl);
	assert_string_equal(nl + 1, "");
	*nl = '\0';
	o2 = cJSON_Parse(line2);
	assert_non_null(o2);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(o2, "sender")->valuestring,
	                    s->valuestring);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(o2, "time")->valuestring,
	                    "1970-01-01T00:00:00Z");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(o2, "question")->valuestring,
	                    "second \xef\xbf\xbd question");
	cJSON_Delete(o);
	cJSON_Delete(o2);
	free(text);
	tmp_remove(dir);
}

/* The hash depends on the salt and the sender, and hides both. */
static void
test_append_salt(void **state)
{
	char dir[64], *text, *a, *b, *c;

	(void)state;
	tmp_dir(dir);
	assert_int_equal(unanswered_append(dir, "r", "@bob:x", 1, "q", 100), 0);
	assert_int_equal(unanswered_append(dir, "r", "@bob:x", 2, "q", 100), 0);
	assert_int_equal(unanswered_append(dir, "r", "@bob:y", 1, "q", 100), 0);
	text = read_log(dir);
	a = strstr(text, "\"sender\":\"");
	b = a ? strstr(a + 1, "\"sender\":\"") : NULL;
	c = b ? strstr(b + 1, "\"sender\":\"") : NULL;
	assert_true(a && b && c);
	assert_memory_not_equal(a + 10, b + 10, 16);
	assert_memory_not_equal(a + 10, c + 10, 16);
	assert_memory_not_equal(b + 10, c + 10, 16);
	free(text);
	tmp_remove(dir);
}

/* An unwritable place fails with -1 and errno. */
static void
test_append_error(void **state)
{
	char dir[64], file[128];

	(void)state;
	tmp_dir(dir);
	tmp_write(dir, "afile", "x");
	snprintf(file, sizeof(file), "%s/afile/state", dir);
	errno = 0;
	assert_int_equal(unanswered_append(file, "r", "s", 1, "q", 1), -1);
	assert_int_not_equal(errno, 0);
	tmp_remove(dir);
}

static void
test_recent(void **state)
{
	char dir[64];
	struct buf out;
	const char *first, *second;

	(void)state;
	tmp_dir(dir);
	buf_init(&out);
	unanswered_recent(dir, 5, &out);
	assert_int_equal(out.len, 0); /* no log yet: nothing */
	assert_int_equal(unanswered_append(dir, "!a:x", "u1", 7, "oldest question", 1000), 0);
	assert_int_equal(unanswered_append(dir, "!b:x", "u2", 7, "middle *bold* question", 2000),
	                 0);
	assert_int_equal(unanswered_append(dir, "!c`x", "u3", 7, "newest question", 3000), 0);
	unanswered_recent(dir, 2, &out);
	first = strstr(out.data, "newest question");
	second = strstr(out.data, "middle \\*bold\\* question");
	assert_non_null(first);
	assert_non_null(second);
	assert_true(first < second);
	assert_null(strstr(out.data, "oldest"));
	/* Numbered, newest first: what `!faq teach N` refers to. */
	assert_non_null(strstr(out.data, "1. 1970-01-01 00:50 UTC, `!c'x`: newest question\n"));
	assert_non_null(strstr(out.data, "2. 1970-01-01 00:33 UTC, `!b:x`: middle"));
	{
		char **texts;
		size_t n, i;

		/* The same entries, in the same order, as text. */
		unanswered_last(dir, 2, &texts, &n);
		assert_int_equal(n, 2);
		assert_string_equal(texts[0], "newest question");
		assert_string_equal(texts[1], "middle *bold* question");
		for (i = 0; i < n; i++)
			free(texts[i]);
		free(texts);
	}
	/* A note says why an entry is there besides no answer. */
	assert_int_equal(unanswered_append_note(dir, "!d:x", "u4", 7, "a thumbs down", 4000,
	                                        "marked unhelpful"),
	                 0);
	buf_reset(&out);
	unanswered_recent(dir, 1, &out);
	assert_non_null(strstr(out.data, "1. 1970-01-01 01:06 UTC, `!d:x`: a thumbs down "
	                                 "(marked unhelpful)\n"));
	buf_free(&out);
	tmp_remove(dir);
}

/* --- the report ----------------------------------------------------------- */

/* A group as printed. */
struct group {
	unsigned count;  /* entries */
	unsigned askers; /* distinct senders */
	char rep[256];   /* the representative question */
	char ex[2][256]; /* examples */
	int nex;         /* how many */
};

struct report {
	struct group g[64]; /* the groups, in order */
	int n;              /* how many printed */
	unsigned ngroups;   /* "in N groups" */
	unsigned malformed; /* "N malformed lines skipped" */
	char *text;         /* the whole report */
};

/* Copies the text between the first and last double quote of line (up to the newline). */
static void
quoted(const char *line, char *out, size_t max)
{
	const char *a = strchr(line, '"'), *nl = strchr(line, '\n'), *b;

	out[0] = '\0';
	if (a == NULL)
		return;
	if (nl == NULL)
		nl = line + strlen(line);
	for (b = nl; b > a && *b != '"'; b--)
		;
	if (b <= a || (size_t)(b - a - 1) >= max)
		return;
	memcpy(out, a + 1, (size_t)(b - a - 1));
	out[b - a - 1] = '\0';
}

/* Runs the report on dir and parses it. */
static void
report_run(const char *dir, const struct kb *kb, size_t top, int64_t since, struct report *rp)
{
	struct buf out;
	const char *p, *s;

	memset(rp, 0, sizeof(*rp));
	buf_init(&out);
	unanswered_report(dir, kb, top, since, &out);
	rp->text = buf_steal(&out);
	if ((s = strstr(rp->text, ", in ")) != NULL)
		rp->ngroups = (unsigned)strtoul(s + 5, NULL, 10);
	if ((s = strstr(rp->text, " malformed line")) != NULL) {
		while (s > rp->text && s[-1] >= '0' && s[-1] <= '9')
			s--;
		rp->malformed = (unsigned)strtoul(s, NULL, 10);
	}
	for (p = rp->text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		unsigned no, count, askers;

		if (*p >= '0' && *p <= '9' && sscanf(p, "%u. %u time", &no, &count) == 2 &&
		    rp->n < 64) {
			struct group *g = &rp->g[rp->n++];

			s = strstr(p, ", by ");
			askers = s ? (unsigned)strtoul(s + 5, NULL, 10) : 0;
			g->count = count;
			g->askers = askers;
			quoted(p, g->rep, sizeof(g->rep));
		} else if (strncmp(p, "   - \"", 6) == 0 && rp->n > 0 && rp->g[rp->n - 1].nex < 2) {
			struct group *g = &rp->g[rp->n - 1];

			quoted(p, g->ex[g->nex++], sizeof(g->ex[0]));
		}
	}
}

/* The index of the group whose representative or examples include q, or -1. */
static int
group_of(const struct report *rp, const char *q)
{
	int i, k;

	for (i = 0; i < rp->n; i++) {
		if (strcmp(rp->g[i].rep, q) == 0)
			return i;
		for (k = 0; k < rp->g[i].nex; k++)
			if (strcmp(rp->g[i].ex[k], q) == 0)
				return i;
	}
	return -1;
}

struct logged {
	const char *sender;
	const char *question;
};

static void
log_all(const char *dir, const struct logged *v, size_t n, int64_t t0)
{
	size_t i;

	for (i = 0; i < n; i++)
		assert_int_equal(unanswered_append(dir, "!r:x", v[i].sender, 9, v[i].question,
		                                   t0 + (int64_t)i * 60),
		                 0);
}

/* Paraphrases with synonyms group together; unrelated questions do not. */
static void
test_group_synonyms(void **state)
{
	static const struct logged v[] = {
	    {"a", "Is keytruda safe after a kidney transplant?"},
	    {"b", "is pembrolizumab safe after a renal transplant"},
	    {"c", "Can I take Keytruda with a kidney transplant?"},
	    {"d", "pembro after kidney transplant, is it safe?"},
	    {"e", "Can my dog catch cancer from me?"},
	    {"f", "could my dog catch my cancer"},
	    {"g", "How do I get a blue badge for parking?"},
	    {"h", "does keytruda cause itching"},
	    {"i", "itching from pembrolizumab"},
	};
	struct report rp;
	char dir[64];
	int a, b;

	(void)state;
	tmp_dir(dir);
	log_all(dir, v, NELEM(v), 1700000000);
	report_run(dir, test_kb, 0, 0, &rp);
	check_begin();
	CHECK(rp.ngroups == 4, "want 4 groups, got %u:\n%s", rp.ngroups, rp.text);
	CHECK(rp.n == 4, "want 4 printed groups, got %d:\n%s", rp.n, rp.text);
	if (rp.n >= 1)
		CHECK(rp.g[0].count == 4 && rp.g[0].askers == 4, "transplant group first:\n%s",
		      rp.text);
	a = group_of(&rp, "Can my dog catch cancer from me?");
	b = group_of(&rp, "could my dog catch my cancer");
	CHECK(a >= 0 && a == b, "dog questions together:\n%s", rp.text);
	CHECK(a != 0, "dog questions apart from the transplant ones:\n%s", rp.text);
	a = group_of(&rp, "does keytruda cause itching");
	b = group_of(&rp, "itching from pembrolizumab");
	CHECK(a >= 0 && a == b, "keytruda = pembrolizumab through the lexicon:\n%s", rp.text);
	CHECK(group_of(&rp, "How do I get a blue badge for parking?") >= 0, "badge alone:\n%s",
	      rp.text);
	free(rp.text);

	/* Without the lexicon the brand and the generic name are different words. */
	report_run(dir, NULL, 0, 0, &rp);
	a = group_of(&rp, "does keytruda cause itching");
	b = group_of(&rp, "itching from pembrolizumab");
	CHECK(a >= 0 && b >= 0 && a != b, "apart without the lexicon:\n%s", rp.text);
	free(rp.text);
	tmp_remove(dir);
	CHECK_END();
}

/* Groups rank by distinct askers, then by entries. */
static void
test_report_ranking(void **state)
{
	static const struct logged v[] = {
	    /* 5 entries, 1 asker */
	    {"alice", "how do i get a blue badge for parking"},
	    {"alice", "blue badge for parking how"},
	    {"alice", "how do I get a blue parking badge?"},
	    {"alice", "blue badge parking"},
	    {"alice", "get blue badge parking"},
	    /* 3 entries, 2 askers */
	    {"bob", "does radiotherapy hurt"},
	    {"carol", "does radiotherapy hurt much"},
	    {"bob", "radiotherapy hurt?"},
	    /* 4 entries, 2 askers */
	    {"dan", "can I drink wine during chemo"},
	    {"erin", "wine during chemo ok?"},
	    {"dan", "drinking wine on chemo"},
	    {"dan", "is wine ok during chemo"},
	    /* 3 entries, 3 askers */
	    {"f1", "will my hair grow back after chemo"},
	    {"f2", "hair grow back after chemo?"},
	    {"f3", "when does hair grow back after chemo"},
	};
	struct report rp;
	char dir[64];

	(void)state;
	tmp_dir(dir);
	log_all(dir, v, NELEM(v), 1700000000);
	report_run(dir, test_kb, 10, 0, &rp);
	check_begin();
	CHECK(rp.n == 4, "want 4 groups, got %d:\n%s", rp.n, rp.text);
	if (rp.n == 4) {
		CHECK(rp.g[0].askers == 3 && rp.g[0].count == 3, "hair first:\n%s", rp.text);
		CHECK(rp.g[1].askers == 2 && rp.g[1].count == 4, "wine second:\n%s", rp.text);
		CHECK(rp.g[2].askers == 2 && rp.g[2].count == 3, "radiotherapy third:\n%s",
		      rp.text);
		CHECK(rp.g[3].askers == 1 && rp.g[3].count == 5, "badge last:\n%s", rp.text);
		CHECK(rp.g[0].nex == 2, "two examples:\n%s", rp.text);
	}
	free(rp.text);
	/* --top limits the groups printed, not the count. */
	report_run(dir, test_kb, 2, 0, &rp);
	CHECK(rp.n == 2 && rp.ngroups == 4, "top 2 of 4:\n%s", rp.text);
	free(rp.text);
	tmp_remove(dir);
	CHECK_END();
}

/*
 * The representative shares the most words with the rest of its group; it
 * need not be the most frequent wording (which leads the grouping).
 */
static void
test_report_representative(void **state)
{
	static const struct logged v[] = {
	    {"a", "radiotherapy skin burn"},       {"b", "radiotherapy skin burn?"},
	    {"c", "radiotherapy skin burn cream"}, {"d", "radiotherapy skin cream"},
	    {"e", "radiotherapy burn cream"},      {"f", "skin burn cream"},
	};
	struct report rp;
	char dir[64];

	(void)state;
	tmp_dir(dir);
	log_all(dir, v, NELEM(v), 1700000000);
	report_run(dir, NULL, 10, 0, &rp);
	check_begin();
	CHECK(rp.n == 1 && rp.g[0].count == 6 && rp.g[0].askers == 6, "one group:\n%s", rp.text);
	CHECK_STR(rp.g[0].rep, "radiotherapy skin burn cream", "representative");
	/* then the most asked other wording (its newest form), then the newest */
	CHECK(rp.g[0].nex == 2, "two examples:\n%s", rp.text);
	CHECK_STR(rp.g[0].ex[0], "radiotherapy skin burn?", "first example");
	CHECK_STR(rp.g[0].ex[1], "skin burn cream", "second example");
	free(rp.text);
	tmp_remove(dir);
	CHECK_END();
}

/* Malformed lines are skipped and counted; --since leaves out the old. */
static void
test_report_malformed_since(void **state)
{
	struct report rp;
	struct buf b;
	char dir[64];
	size_t i;

	(void)state;
	tmp_dir(dir);
	buf_init(&b);
	buf_puts(
	    &b, "{\"time\":\"2024-03-12T10:00:00Z\",\"room\":\"r\",\"sender\":\"0123456789abcdef\","
	        "\"question\":\"does radiotherapy hurt\"}\n");
	buf_puts(&b, "not json at all\n");
	buf_puts(&b, "{\"time\":\"yesterday\",\"room\":\"r\",\"sender\":\"0123456789abcdef\","
	             "\"question\":\"q\"}\n");
	buf_puts(&b, "{\"time\":\"2024-03-12T10:00:00Z\",\"room\":\"r\",\"sender\":\"xyz\","
	             "\"question\":\"q\"}\n");
	buf_puts(&b, "[1,2,3]\n\n");
	buf_puts(&b, "{\"question\":\"");
	for (i = 0; i < 20000; i++)
		buf_putc(&b, 'x');
	buf_puts(&b, "\"}\n");
	buf_puts(
	    &b, "{\"time\":\"2020-01-01T00:00:00Z\",\"room\":\"r\",\"sender\":\"0123456789abcdee\","
	        "\"question\":\"an old question about wigs\"}\n");
	buf_puts(
	    &b, "{\"time\":\"2024-03-13T10:00:00Z\",\"room\":\"r\",\"sender\":\"0123456789abcdef\","
	        "\"question\":\"radiotherapy hurt?\"}\n");
	buf_puts(&b, "{\"time\":\"2024-03-13T10:00:00Z\",\"room\":"); /* cut short */
	tmp_write_len(dir, "unanswered.jsonl", b.data, b.len);
	buf_free(&b);

	report_run(dir, test_kb, 10, 0, &rp);
	check_begin();
	CHECK(rp.malformed == 6, "6 malformed, got %u:\n%s", rp.malformed, rp.text);
	CHECK(rp.n == 2 && rp.g[0].count == 2 && rp.g[0].askers == 1, "2 groups:\n%s", rp.text);
	free(rp.text);
	/* since 2024-01-01: the 2020 question is left out */
	report_run(dir, test_kb, 10, 1704067200, &rp);
	CHECK(rp.n == 1 && rp.ngroups == 1, "1 group since 2024:\n%s", rp.text);
	CHECK(has(rp.text, "1 older question not counted"), "older counted:\n%s", rp.text);
	free(rp.text);
	tmp_remove(dir);
	CHECK_END();
}

/* 100,000 lines: read once, the newest 20,000 grouped, promptly, without leaks. */
static void
test_report_large(void **state)
{
	static const char *const topics[][2] = {
	    {"is keytruda safe with ", ""}, {"how long does ", " last"},
	    {"can i travel during ", ""},   {"does ", " cause hair loss"},
	    {"what to eat during ", ""},    {"is ", " covered by insurance"},
	};
	static const char *const things[] = {
	    "chemo",     "radiotherapy", "immunotherapy", "surgery",          "a kidney transplant",
	    "sunitinib", "cabozantinib", "nivolumab",     "a clinical trial", "hospice",
	};
	char dir[64], path[256], q[256], word[16];
	struct report rp;
	uint32_t seed = 7;
	double t0, t;
	FILE *fp;
	size_t i;

	(void)state;
	tmp_dir(dir);
	snprintf(path, sizeof(path), "%s/unanswered.jsonl", dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	for (i = 0; i < 100000; i++) {
		seed = seed * 1103515245u + 12345u;
		if (i % 10 == 9) {
			/* one in ten is a question of its own */
			snprintf(word, sizeof(word), "w%u", (unsigned)(seed >> 8) % 50000);
			snprintf(q, sizeof(q), "something about %s and %s", word, word + 1);
		} else {
			size_t k = (seed >> 4) % NELEM(topics);

			snprintf(q, sizeof(q), "%s%s%s", topics[k][0],
			         things[(seed >> 12) % NELEM(things)], topics[k][1]);
		}
		fprintf(
		    fp,
		    "{\"time\":\"2024-03-%02zuT10:00:00Z\",\"room\":\"!r:x\",\"sender\":\"%016zx\","
		    "\"question\":\"%s\"}\n",
		    1 + i / 4000, (size_t)(seed >> 10) % 3000, q);
	}
	fclose(fp);
	t0 = seconds_now();
	report_run(dir, test_kb, 10, 0, &rp);
	t = seconds_now() - t0;
	print_message("100,000-line report: %.2f s\n", t);
	check_begin();
	{
		const char *txt = rp.text != NULL ? rp.text : "(no report)";

		CHECK(has(txt, "100000 questions"), "all counted:\n%.400s", txt);
		CHECK(has(txt, "the newest 20000 grouped"), "capped:\n%.400s", txt);
		CHECK(rp.n == 10, "top 10 printed, got %d", rp.n);
		CHECK(rp.n > 0 && rp.g[0].count >= 200, "large groups first:\n%.2000s", txt);
	}
	free(rp.text);
	tmp_remove(dir);
	CHECK_END();
}

/* --- the command ---------------------------------------------------------- */

/* Runs unanswered_main with stdout sent to a file; returns the status, output in *out. */
static int
run_main(const char *dir, char **out, int argc, ...)
{
	char *argv[16], path[256];
	int saved, rc, i;
	va_list ap;
	size_t len;

	argv[0] = (char *)"unanswered";
	va_start(ap, argc);
	for (i = 0; i < argc && i < 14; i++)
		argv[i + 1] = va_arg(ap, char *);
	va_end(ap);
	argv[i + 1] = NULL;
	snprintf(path, sizeof(path), "%s/stdout.txt", dir);
	fflush(stdout);
	saved = dup(1);
	assert_true(freopen(path, "w", stdout) != NULL);
	rc = unanswered_main(argc + 1, argv);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	*out = file_read(path, 1 << 20, &len);
	unlink(path);
	return rc;
}

static void
test_main(void **state)
{
	char dir[64], state_dir[128], badstate[128], *out = NULL;

	(void)state;
	tmp_dir(dir);
	snprintf(state_dir, sizeof(state_dir), "%s/st", dir);
	snprintf(badstate, sizeof(badstate), "%s/afile/st", dir);
	tmp_write(dir, "afile", "x");
	check_begin();
	CHECK(run_main(dir, &out, 1, "-h") == 0 && has(out, "usage:"), "-h");
	free(out);
	CHECK(run_main(dir, &out, 2, "--top", "zero") == 2, "--top zero");
	free(out);
	CHECK(run_main(dir, &out, 2, "--since", "-3") == 2, "--since -3");
	free(out);
	CHECK(run_main(dir, &out, 1, "--bogus") == 2, "--bogus");
	free(out);
	CHECK(run_main(dir, &out, 3, "--state", state_dir, "extra") == 2, "extra argument");
	free(out);
	CHECK(run_main(dir, &out, 2, "--state", state_dir) == 0 && has(out, "No unanswered"),
	      "no log yet");
	free(out);
	CHECK(run_main(dir, &out, 2, "--state", badstate) == 1, "unreadable state");
	free(out);
	CHECK(run_main(dir, &out, 2, "-c", "/nonexistent/faqbot.json") == 1, "missing config");
	free(out);

	assert_int_equal(unanswered_append(state_dir, "!r:x", "a", 1, "is keytruda safe", 100), 0);
	assert_int_equal(
	    unanswered_append(state_dir, "!r:x", "b", 1, "is pembrolizumab safe?", now_wall()), 0);
	CHECK(run_main(dir, &out, 4, "--state", state_dir, "--top", "5") == 0 &&
	          has(out, "1. 2 times, by 2 people"),
	      "report: %s", out ? out : "");
	free(out);
	CHECK(run_main(dir, &out, 4, "--state", state_dir, "--since", "7") == 0 &&
	          has(out, "1. 1 time, by 1 person") && has(out, "1 older question"),
	      "--since: %s", out ? out : "");
	free(out);
	CHECK(run_main(dir, &out, 4, "--state", state_dir, "--recent", "1") == 0 &&
	          has(out, "is pembrolizumab safe?") && !has(out, "keytruda"),
	      "--recent: %s", out ? out : "");
	free(out);
	tmp_remove(dir);
	CHECK_END();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_redact_table),
	    cmocka_unit_test(test_redact_hostile),
	    cmocka_unit_test(test_append_format),
	    cmocka_unit_test(test_append_rotates),
	    cmocka_unit_test(test_append_salt),
	    cmocka_unit_test(test_append_error),
	    cmocka_unit_test(test_recent),
	    cmocka_unit_test(test_group_synonyms),
	    cmocka_unit_test(test_report_ranking),
	    cmocka_unit_test(test_report_representative),
	    cmocka_unit_test(test_report_malformed_since),
	    cmocka_unit_test(test_report_large),
	    cmocka_unit_test(test_main),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
