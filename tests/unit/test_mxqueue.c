/*
 * Unit tests for the Matrix transport's reply queue, fed /sync bodies with
 * mx_feed_sync() (nothing is sent: there is no token and the loop never
 * runs): a safety answer survives an overflow of the queue, which drops
 * the oldest other reply instead; and the queue's journal (pending.jsonl)
 * grows by what a batch adds, instead of being rewritten whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "bot.h"
#include "config.h"
#include "diag.h"
#include "helpers.h"
#include "journal.h"
#include "kb.h"
#include "loop.h"
#include "transport/matrix.h"
#include "util.h"

struct bed {
	char dir[64];
	struct config cfg;
	struct loop *loop;
	struct bot *bot;
	struct mx *mx;
	unsigned long batch;
};

static void
bed_open(struct bed *t)
{
	struct diag_list d;
	struct kb *kb;

	memset(t, 0, sizeof(*t));
	tmp_dir(t->dir);
	config_defaults(&t->cfg);
	free(t->cfg.mx_homeserver);
	t->cfg.mx_homeserver = xstrdup("http://127.0.0.1:9");
	free(t->cfg.mx_user_id);
	t->cfg.mx_user_id = xstrdup("@faqbot:localhost");
	t->cfg.allow_drafts = 1;
	t->cfg.cooldown_s = 0;
	t->cfg.user_rate_per_min = 100000;
	t->cfg.room_rate_per_min = 100000;
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
bed_close(struct bed *t)
{
	mx_free(t->mx);
	bot_free(t->bot);
	loop_free(t->loop);
	config_free(&t->cfg);
	tmp_remove(t->dir);
}

/* Feeds one batch of n messages (text, from distinct senders) into room. */
static int
feed(struct bed *t, const char *room, const char *text, int n, const char *first_id)
{
	cJSON *root = cJSON_CreateObject(), *events, *e, *c;
	char id[64], who[64], nb[32], *body;
	int i, rc;

	snprintf(nb, sizeof(nb), "s%lu", ++t->batch);
	cJSON_AddStringToObject(root, "next_batch", nb);
	events = cJSON_AddArrayToObject(
	    cJSON_AddObjectToObject(
	        cJSON_AddObjectToObject(
	            cJSON_AddObjectToObject(cJSON_AddObjectToObject(root, "rooms"), "join"), room),
	        "timeline"),
	    "events");
	for (i = 0; i < n; i++) {
		e = cJSON_CreateObject();
		if (i == 0 && first_id)
			snprintf(id, sizeof(id), "%s", first_id);
		else
			snprintf(id, sizeof(id), "$b%lu.%d", t->batch, i);
		snprintf(who, sizeof(who), "@p%lu.%d:x", t->batch, i);
		cJSON_AddStringToObject(e, "type", "m.room.message");
		cJSON_AddStringToObject(e, "sender", who);
		cJSON_AddStringToObject(e, "event_id", id);
		cJSON_AddNumberToObject(e, "origin_server_ts", 1700000000000.0);
		c = cJSON_AddObjectToObject(e, "content");
		cJSON_AddStringToObject(c, "msgtype", "m.text");
		cJSON_AddStringToObject(c, "body", text);
		cJSON_AddItemToArray(events, e);
	}
	body = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	rc = mx_feed_sync(t->mx, body, strlen(body));
	free(body);
	return rc;
}

static size_t
pending(struct bed *t)
{
	unsigned long ev, sent;
	size_t n;

	mx_counts(t->mx, &ev, &sent, &n);
	return n;
}

/* The live entries of pending.jsonl: adds not cancelled by a del. */
struct live {
	cJSON *adds; /* txn -> the add record */
};

static void
live_line(void *arg, char *line, size_t len)
{
	struct live *l = arg;
	cJSON *rec = cJSON_ParseWithLength(line, len), *add, *del, *txn;

	if (rec == NULL)
		return;
	add = cJSON_GetObjectItemCaseSensitive(rec, "add");
	del = cJSON_GetObjectItemCaseSensitive(rec, "del");
	if ((txn = cJSON_GetObjectItemCaseSensitive(add, "txn")) && cJSON_IsString(txn)) {
		cJSON_DeleteItemFromObjectCaseSensitive(l->adds, txn->valuestring);
		cJSON_AddItemToObject(l->adds, txn->valuestring, cJSON_Duplicate(add, 1));
	} else if (cJSON_IsString(del)) {
		cJSON_DeleteItemFromObjectCaseSensitive(l->adds, del->valuestring);
	}
	cJSON_Delete(rec);
}

static void
test_overflow_keeps_the_safety_answer(void **state)
{
	struct bed t;
	struct live l;
	char path[128];
	cJSON *e, *safety = NULL;
	int batches = 0;

	(void)state;
	check_begin();
	bed_open(&t);
	/* The oldest reply in the queue is a safety answer. */
	CHECK(feed(&t, "!r:x", "i just want it all to end for good", 1, "$crisis") == 0,
	      "the crisis batch");
	CHECK(pending(&t) == 1, "%zu replies queued for the crisis", pending(&t));
	/* Then more questions than the queue holds (10,000). */
	while (pending(&t) < 10000 && batches < 40) {
		CHECK(feed(&t, "!r:x", "what is immunotherapy?", 500, NULL) == 0, "a batch");
		batches++;
	}
	CHECK(feed(&t, "!r:x", "what is palliative care?", 100, NULL) == 0, "the overflow batch");
	CHECK(pending(&t) == 10000, "%zu replies queued", pending(&t));
	snprintf(path, sizeof(path), "%s/pending.jsonl", t.dir);
	l.adds = cJSON_CreateObject();
	CHECK(jrnl_replay(path, 256u << 20, live_line, &l) == 0, "the journal reads");
	CHECK(cJSON_GetArraySize(l.adds) == 10000, "%d replies in the journal",
	      cJSON_GetArraySize(l.adds));
	cJSON_ArrayForEach(e, l.adds)
	{
		cJSON *rt = cJSON_GetObjectItemCaseSensitive(e, "reply_to");

		if (cJSON_IsString(rt) && strcmp(rt->valuestring, "$crisis") == 0)
			safety = e;
	}
	CHECK(safety != NULL, "the safety answer was dropped when the queue overflowed");
	CHECK(safety && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(safety, "urgent")),
	      "the safety answer is not marked urgent");
	cJSON_Delete(l.adds);
	/* After a restart the queue comes back from the journal, the safety answer in it. */
	mx_free(t.mx);
	t.mx = mx_new(t.loop, &t.cfg, t.bot, t.dir);
	CHECK(pending(&t) == 10000, "%zu replies after a restart", pending(&t));
	bed_close(&t);
	CHECK_END();
}

static void
test_a_batch_appends_to_the_journal(void **state)
{
	struct bed t;
	struct stat before, after;
	char path[128];

	(void)state;
	check_begin();
	bed_open(&t);
	snprintf(path, sizeof(path), "%s/pending.jsonl", t.dir);
	CHECK(feed(&t, "!r:x", "what is immunotherapy?", 600, NULL) == 0, "600 questions");
	CHECK(pending(&t) == 600, "%zu queued", pending(&t));
	CHECK(stat(path, &before) == 0, "pending.jsonl is written");
	CHECK(feed(&t, "!r:x", "what is palliative care?", 1, NULL) == 0, "one more");
	CHECK(stat(path, &after) == 0, "pending.jsonl is still there");
	CHECK(before.st_ino == after.st_ino, "the journal was rewritten for one reply");
	CHECK(after.st_size > before.st_size && after.st_size - before.st_size < 4096,
	      "it grew by %lld bytes for one reply", (long long)(after.st_size - before.st_size));
	bed_close(&t);
	CHECK_END();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_overflow_keeps_the_safety_answer),
	    cmocka_unit_test(test_a_batch_appends_to_the_journal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
