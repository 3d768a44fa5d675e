/*
 * Unit tests for teach.c (the messages remembered for moderators to teach
 * from, the taught file) and learn_near (taught safety messages in effect
 * at once): links and ids find a message or the bot's answer to it, texts
 * are kept redacted and on one line, the ring forgets the oldest, the taught
 * file is the labelled-file format with who and when, and a message close
 * to a taught crisis is found while a different one is not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "learn.h"
#include "teach.h"
#include "text.h"
#include "util.h"

static void
test_remember_and_find(void **state)
{
	struct teach *t;
	const struct teach_item *it;
	char dir[64], id[64];
	int i;

	(void)state;
	check_begin();
	tmp_dir(dir);
	t = teach_new(dir);
	teach_remember(t, "$q1:server", "!room:server", "my name is Sarah Jones\tcall me on 07700 900123",
	               NULL, 0, 1);
	teach_answered(t, "$q1:server", "$a1:server");
	it = teach_find(t, "$q1:server");
	CHECK(it != NULL, "not found by its id");
	it = teach_find(t, "https://matrix.to/#/%21room%3Aserver/%24a1%3Aserver?via=server");
	CHECK(it != NULL && it->flagged && it->intent == NULL, "not found by a link to its answer");
	if (it != NULL) {
		CHECK(!has(it->text, "07700") && !has(it->text, "\t"),
		      "kept unredacted or with a TAB: %s", it->text);
		CHECK(has(it->text, "[phone]"), "no [phone] in %s", it->text);
	}
	CHECK(teach_find(t, "$nosuch:server") == NULL, "an unknown id was found");
	CHECK(teach_find(t, "") == NULL, "an empty id was found");
	/* The ring keeps the newest TEACH_KEEP. */
	for (i = 0; i < TEACH_KEEP; i++) {
		snprintf(id, sizeof(id), "$m%d:server", i);
		teach_remember(t, id, "!room:server", "hello", "palliative.care", 0, 0);
	}
	CHECK(teach_find(t, "$q1:server") == NULL, "the oldest was not forgotten");
	CHECK(teach_find(t, "$m0:server") != NULL && teach_find(t, id) != NULL,
	      "the newest were forgotten");
	teach_free(t);
	tmp_remove(dir);
	CHECK_END();
}

static void
count_safety(void *arg, const char *intent, const char *text)
{
	(void)text;
	if (strcmp(intent, "safety.crisis") == 0)
		(*(int *)arg)++;
}

static void
test_taught_file(void **state)
{
	struct teach *t;
	char dir[64], *data;
	size_t len;
	int n = 0;

	(void)state;
	check_begin();
	tmp_dir(dir);
	t = teach_new(dir);
	CHECK(teach_count(t) == 0, "a count without a file");
	CHECK(teach_store(t, "clinical.trials", "where are\nthe studies?", "@mod:server", 0) == 0,
	      "cannot store");
	CHECK(teach_store(t, NULL, "thanks bot", "@mod:server", 86400) == 0, "cannot store null");
	CHECK(teach_store(t, "safety.crisis", "the letters are\tin the drawer", "@mod:server", 0) ==
	          0,
	      "cannot store a crisis");
	data = file_read(teach_path(t), 1 << 20, &len);
	if (data == NULL)
		data = xstrdup("");
	CHECK(strncmp(data, "intent\tmessage\n", 15) == 0, "no header:\n%s", data);
	CHECK(has(data, "# taught by @mod:server on 1970-01-01 00:00 UTC\nclinical.trials\twhere are"),
	      "the first entry:\n%s", data);
	CHECK(has(data, "null\tthanks bot\n"), "the null entry:\n%s", data);
	CHECK(has(data, "safety.crisis\tthe letters are in the drawer\n"),
	      "the TAB was kept:\n%s", data);
	CHECK(teach_count(t) == 3, "counted %zu, want 3", teach_count(t));
	teach_each_safety(t, count_safety, &n);
	CHECK(n == 1, "%d safety lines, want 1", n);
	free(data);
	teach_free(t);
	tmp_remove(dir);
	CHECK_END();
}

/* learn_near with a message: the class found, or -1. */
static int
near_of(struct learn_near *nr, const char *msg, double *sim)
{
	struct text_norm n;
	uint32_t *feat = xcalloc(LEARN_MAX_FEATURES, sizeof(*feat));
	size_t nf;
	int c;

	text_norm_init(&n);
	text_normalise(NULL, NULL, msg, strlen(msg), &n);
	nf = learn_features(NULL, &n, NULL, feat, NULL, NULL, NULL);
	c = learn_near_match(nr, NULL, NULL, NULL, feat, nf, sim);
	text_norm_free(&n);
	free(feat);
	return c;
}

static void
test_near(void **state)
{
	struct learn_near *nr = learn_near_new();
	double sim;

	(void)state;
	check_begin();
	CHECK(near_of(nr, "anything at all", &sim) == -1, "found in an empty set");
	learn_near_add(nr, "put the good watch in an envelope for my son with the note",
	               LEARN_C_CRISIS);
	learn_near_add(nr, "put the good watch in an envelope for my son with the note",
	               LEARN_C_CRISIS);
	CHECK(learn_near_count(nr) == 1, "the same message twice: %zu", learn_near_count(nr));
	CHECK(near_of(nr, "the note for my son is in the envelope with the good watch", &sim) ==
	          LEARN_C_CRISIS,
	      "a close message is not found (%.2f)", sim);
	CHECK(near_of(nr, "what does palliative care mean?", &sim) == -1,
	      "a different message is found (%.2f)", sim);
	CHECK(near_of(nr, "my son has a good watch", &sim) == -1,
	      "a message sharing a few words is found (%.2f)", sim);
	learn_near_free(nr);
	CHECK_END();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_remember_and_find),
	    cmocka_unit_test(test_taught_file),
	    cmocka_unit_test(test_near),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
