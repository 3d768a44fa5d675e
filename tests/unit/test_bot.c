/*
 * Unit tests for the core's handling of one message (bot_on_message) on a
 * transport that only records what it is asked to send: safety read in
 * every message (a long one, one with a NUL in it, a private one where
 * other answers are off), what goes out with the asker addressed, and what
 * the unanswered log keeps of a private message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "bot.h"
#include "config.h"
#include "diag.h"
#include "helpers.h"
#include "kb.h"
#include "util.h"

#define MAX_SENT 16

/* One message the core asked the transport to send. */
struct sent {
	char *room;
	char *plain;
	char *mention; /* or NULL */
};

/* A transport that records. */
struct rec {
	struct transport tp;
	struct sent s[MAX_SENT];
	size_t n;
};

static int
rec_send(void *impl, const struct tp_out *out)
{
	struct rec *r = impl;

	if (r->n == MAX_SENT)
		return -1;
	r->s[r->n].room = xstrdup(out->room);
	r->s[r->n].plain = xstrdup(out->plain);
	r->s[r->n].mention = out->mention ? xstrdup(out->mention) : NULL;
	r->n++;
	return 0;
}

static int
rec_power_level(void *impl, const char *room, const char *user)
{
	(void)impl;
	(void)room;
	(void)user;
	return 0;
}

static int
rec_has_room(void *impl, const char *room)
{
	(void)impl;
	return room != NULL && room[0] == '#';
}

static void
rec_clear(struct rec *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		free(r->s[i].room);
		free(r->s[i].plain);
		free(r->s[i].mention);
	}
	r->n = 0;
}

/* A bot on the shipped set, with one recording transport. */
struct bed {
	char dir[64];
	struct config cfg;
	struct bot *bot;
	struct rec rec;
};

static void
bed_open(struct bed *t)
{
	struct diag_list d;
	struct kb *kb;

	memset(t, 0, sizeof(*t));
	tmp_dir(t->dir);
	config_defaults(&t->cfg);
	t->cfg.allow_drafts = 1;
	t->cfg.cooldown_s = 0;
	t->cfg.user_rate_per_min = 600;
	t->cfg.room_rate_per_min = 600;
	diag_list_init(&d);
	kb = kb_load_embedded(&d);
	diag_list_free(&d);
	assert_non_null(kb);
	assert_non_null(t->bot = bot_new(&t->cfg, kb, t->dir));
	t->rec.tp.name = "test";
	t->rec.tp.impl = &t->rec;
	t->rec.tp.send = rec_send;
	t->rec.tp.power_level = rec_power_level;
	t->rec.tp.has_room = rec_has_room;
	bot_add_transport(t->bot, &t->rec.tp);
}

static void
bed_close(struct bed *t)
{
	rec_clear(&t->rec);
	bot_free(t->bot);
	config_free(&t->cfg);
	tmp_remove(t->dir);
}

/* Feeds one message (len bytes of text) from "patient" in room. */
static void
say(struct bed *t, const char *room, const char *text, size_t len, int direct, int safety_only)
{
	struct tp_msg m = {0};

	rec_clear(&t->rec);
	m.room = room;
	m.sender = "patient";
	m.sender_name = "patient";
	m.text = text;
	m.len = len;
	m.direct = direct;
	m.addressed = direct;
	m.safety_only = safety_only;
	bot_on_message(t->bot, &t->rec.tp, &m);
}

/* Did the last message get the crisis (or emergency) answer? */
static int
got_safety(const struct bed *t)
{
	size_t i;

	for (i = 0; i < t->rec.n; i++)
		if (has(t->rec.s[i].plain, "Samaritans") || has(t->rec.s[i].plain, "988") ||
		    has(t->rec.s[i].plain, "112"))
			return 1;
	return 0;
}

/* A message of about n bytes of everyday chatter, with tail at its end. */
static char *
long_message(size_t n, const char *head, const char *tail)
{
	struct buf b;

	buf_init(&b);
	buf_puts(&b, head);
	while (b.len + strlen(tail) < n)
		buf_puts(&b, "Today was a long day at the clinic and the parking was awful again. ");
	buf_puts(&b, tail);
	return buf_steal(&b);
}

static void
test_long_messages_are_read_for_safety(void **state)
{
	static const struct {
		size_t bytes;
		const char *head, *tail;
	} cases[] = {
	    {4608, "", "I want to kill myself"},                   /* just over the 4 KiB cap */
	    {20000, "", "and honestly I want to end my life."},     /* past what one read takes */
	    {65000, "", "I want to kill myself"},                  /* the largest Matrix event */
	    {65000, "I want to kill myself. ", ""},                /* at the start */
	    {3000, "", "my dad just collapsed and is not breathing"}, /* under the cap */
	};
	struct bed t;
	size_t i;
	char *msg;

	(void)state;
	check_begin();
	bed_open(&t);
	for (i = 0; i < NELEM(cases); i++) {
		char room[16];

		/* A room each: a second crisis from one person in one room is not answered again. */
		snprintf(room, sizeof(room), "#room%zu", i);
		msg = long_message(cases[i].bytes, cases[i].head, cases[i].tail);
		say(&t, room, msg, strlen(msg), 0, 0);
		CHECK(got_safety(&t), "a %zu-byte message (\"%s%s\") gets no safety answer",
		      strlen(msg), cases[i].head, cases[i].tail);
		free(msg);
	}
	/* Only FAQ matching skips a long message. */
	msg = long_message(6000, "", "what is palliative care?");
	say(&t, "#support", msg, strlen(msg), 0, 0);
	CHECK(t.rec.n == 0, "a long message got a FAQ answer: %s", t.rec.n ? t.rec.s[0].plain : "");
	free(msg);
	bed_close(&t);
	CHECK_END();
}

static void
test_text_after_a_nul_is_read(void **state)
{
	static const char msg[] = "hello everyone\0 I want to kill myself";
	struct bed t;

	(void)state;
	bed_open(&t);
	say(&t, "#support", msg, sizeof(msg) - 1, 0, 0);
	if (!got_safety(&t))
		fail_msg("the crisis after a NUL gets no safety answer");
	bed_close(&t);
}

static void
test_private_messages_get_safety_answers_only(void **state)
{
	struct bed t;

	(void)state;
	check_begin();
	bed_open(&t);
	/* Other answers are off in private: a crisis is answered all the same, in private. */
	say(&t, "patient", "I want to kill myself", 21, 1, 1);
	CHECK(got_safety(&t), "a private crisis gets no answer");
	CHECK(t.rec.n >= 1 && strcmp(t.rec.s[0].room, "patient") == 0,
	      "the safety answer does not go to the private chat");
	say(&t, "patient", "what is palliative care?", 24, 1, 1);
	CHECK(t.rec.n == 0, "a private question got an answer with private answers off");
	say(&t, "patient", "!faq stats", 10, 1, 1);
	CHECK(t.rec.n == 0, "a private command got an answer with private answers off");
	/* With private answers on, the same question is answered. */
	say(&t, "patient", "what is palliative care?", 24, 1, 0);
	CHECK(t.rec.n == 1 && has(t.rec.s[0].plain, "comfort"), "no private answer when allowed");
	bed_close(&t);
	CHECK_END();
}

static void
test_the_fallback_addresses_the_asker(void **state)
{
	struct bed t;

	(void)state;
	check_begin();
	bed_open(&t);
	say(&t, "#support", "faqbot: how do I fix my bicycle chain?", 38, 0, 0);
	CHECK(t.rec.n == 1 && has(t.rec.s[0].plain, "don't have an answer"),
	      "no fallback: %s", t.rec.n ? t.rec.s[0].plain : "(nothing)");
	CHECK(t.rec.n == 1 && t.rec.s[0].mention && strcmp(t.rec.s[0].mention, "patient") == 0,
	      "the fallback does not mention the asker");
	bed_close(&t);
	CHECK_END();
}

/* A private message's room is the sender's nick on IRC: the log keeps only the hash. */
static void
test_unanswered_private_room_is_hashed(void **state)
{
	char path[128], *log;
	struct bed t;
	size_t len;

	(void)state;
	check_begin();
	bed_open(&t);
	say(&t, "SarahJones", "how do I fix my bicycle chain?", 30, 1, 0);
	say(&t, "#support", "faqbot: how do I fix my bicycle chain?", 38, 0, 0);
	snprintf(path, sizeof(path), "%s/unanswered.jsonl", t.dir);
	log = file_read(path, 1 << 20, &len);
	CHECK(log != NULL, "nothing logged");
	CHECK(log && !has(log, "SarahJones"), "the nick is in the log:\n%s", log ? log : "");
	CHECK(log && has(log, "\"room\":\"private:"), "the private room is not marked:\n%s",
	      log ? log : "");
	CHECK(log && has(log, "\"room\":\"#support\""), "a channel is not logged as it is:\n%s",
	      log ? log : "");
	free(log);
	bed_close(&t);
	CHECK_END();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_long_messages_are_read_for_safety),
	    cmocka_unit_test(test_text_after_a_nul_is_read),
	    cmocka_unit_test(test_private_messages_get_safety_answers_only),
	    cmocka_unit_test(test_the_fallback_addresses_the_asker),
	    cmocka_unit_test(test_unanswered_private_room_is_hashed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
