/*
 * Unit tests for the trainer process (trainer.c) and the model cache
 * (kb.c): kb_load starts faqbot-train (the one built beside these tests,
 * TRAINER_PATH), the model arrives through kb_model_wait, is kept in the
 * cache directory and found there the next time; a trainer that is
 * missing, fails, writes garbage or learnt from other files gives no model
 * and a warning that says why, never a crash; a damaged cache is ignored.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "diag.h"
#include "helpers.h"
#include "kb.h"
#include "learn.h"
#include "util.h"

static const char intents_json[] =
    "{\"intents\": [\n"
    " {\"id\": \"safety.emergency\", \"priority\": 100, \"needs_question\": false,\n"
    "  \"patterns\": [\"\\\\bcannot breathe\\\\b\"]},\n"
    " {\"id\": \"safety.crisis\", \"priority\": 100, \"needs_question\": false,\n"
    "  \"patterns\": [\"\\\\bkill myself\\\\b\"]},\n"
    " {\"id\": \"palliative\", \"patterns\": [\"\\\\bpalliative\\\\b\"],\n"
    "  \"examples\": [\"what is palliative care?\"]}\n"
    "]}\n";

static const char labelled_tsv[] = "intent\tmessage\n"
                                   "safety.crisis\ti want to die\n"
                                   "safety.crisis\tthere is no point going on\n"
                                   "safety.emergency\the is not breathing\n"
                                   "safety.emergency\tthe bleeding will not stop\n"
                                   "palliative\tdoes palliative care mean giving up\n"
                                   "null\thello everyone\n"
                                   "null\tthanks all, see you friday\n";

struct set {
	char dir[64];
	char cache[128];
};

static void
set_write(struct set *s)
{
	static const char *const ids[] = {"safety.emergency", "safety.crisis", "palliative"};
	char name[128], body[256];
	size_t i;

	tmp_dir(s->dir);
	tmp_write(s->dir, "intents/set.json", intents_json);
	tmp_write(s->dir, "labelled/rows.tsv", labelled_tsv);
	for (i = 0; i < NELEM(ids); i++) {
		snprintf(name, sizeof(name), "responses/%s.md", ids[i]);
		snprintf(body, sizeof(body), "---\nid: %s\ntype: %s\nstatus: draft\n---\nAnswer.\n",
		         ids[i], strncmp(ids[i], "safety.", 7) == 0 ? "safety" : "info");
		tmp_write(s->dir, name, body);
	}
	snprintf(s->cache, sizeof(s->cache), "%s/cache", s->dir);
	mkdir(s->cache, 0700);
}

/* Loads the set and waits for its model; the warnings go to *warn (caller frees). */
static struct kb *
set_load(struct set *s, int *pending, char **warn)
{
	static const char *const names[] = {"faqbot", NULL};
	char ipath[128], rpath[128];
	const char *ip[1], *rp[1];
	struct kb_source src = {0};
	struct diag_list d;
	struct buf w;
	struct kb *kb;
	size_t i;

	snprintf(ipath, sizeof(ipath), "%s/intents", s->dir);
	snprintf(rpath, sizeof(rpath), "%s/responses", s->dir);
	ip[0] = ipath;
	rp[0] = rpath;
	src.intent_paths = ip;
	src.nintent = 1;
	src.response_paths = rp;
	src.nresponse = 1;
	src.bot_names = names;
	src.cache_dir = s->cache;
	diag_list_init(&d);
	kb = kb_load(&src, &d);
	if (kb == NULL) {
		diag_print(&d, stderr, DIAG_WARNING);
		fail_msg("the set did not load");
	}
	*pending = kb_model_pending(kb);
	kb_model_wait(kb, &d);
	buf_init(&w);
	buf_puts(&w, "");
	for (i = 0; i < d.n; i++) {
		char *line = diag_format(&d.d[i]);

		buf_printf(&w, "%s\n", line);
		free(line);
	}
	*warn = buf_steal(&w);
	diag_list_free(&d);
	return kb;
}

/* The name of the one model file in the cache, or "" (caller frees). */
static char *
cached_file(const struct set *s, size_t *count)
{
	DIR *d = opendir(s->cache);
	struct dirent *de;
	char *found = xstrdup("");

	*count = 0;
	while (d && (de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "model-", 6) == 0) {
			free(found);
			found = xasprintf("%s/%s", s->cache, de->d_name);
			(*count)++;
		}
	if (d)
		closedir(d);
	return found;
}

static void
test_trained_cached_and_found_again(void **state)
{
	struct set s;
	struct kb *kb;
	char *warn, *path;
	size_t n;
	int pending;

	(void)state;
	check_begin();
	setenv("FAQBOT_TRAINER", TRAINER_PATH, 1);
	set_write(&s);
	kb = set_load(&s, &pending, &warn);
	CHECK(pending, "no trainer was started");
	CHECK(kb->model != NULL, "no model from the trainer:\n%s", warn);
	CHECK(!has(warn, "no learned model"), "a warning:\n%s", warn);
	path = cached_file(&s, &n);
	CHECK(n == 1, "%zu models in the cache, want 1", n);
	kb_free(kb);
	free(warn);
	/* The same files again: from the cache, no trainer. */
	setenv("FAQBOT_TRAINER", "/nonexistent/faqbot-train", 1);
	kb = set_load(&s, &pending, &warn);
	CHECK(!pending && kb->model != NULL, "not taken from the cache (pending %d):\n%s", pending,
	      warn);
	kb_free(kb);
	free(warn);
	/* A damaged cache is ignored: the trainer runs again and mends it. */
	{
		size_t len;
		char *data = file_read(path, 1 << 24, &len);

		CHECK(data != NULL && len > 100, "cannot read the cached model");
		if (data != NULL) {
			data[len / 2] ^= 0x5a;
			file_write_atomic(path, data, len, 0600);
		}
		free(data);
	}
	setenv("FAQBOT_TRAINER", TRAINER_PATH, 1);
	kb = set_load(&s, &pending, &warn);
	CHECK(pending && kb->model != NULL, "a damaged cache was used, or no model:\n%s", warn);
	kb_free(kb);
	free(warn);
	/* Another set of files: another model, and the cache keeps a few. */
	tmp_write(s.dir, "labelled/more.tsv", "intent\tmessage\nnull\tgood morning\n");
	kb = set_load(&s, &pending, &warn);
	free(cached_file(&s, &n));
	CHECK(pending && kb->model != NULL && n == 2, "pending %d, %zu cached", pending, n);
	kb_free(kb);
	free(warn);
	free(path);
	tmp_remove(s.dir);
	CHECK_END();
}

/* A trainer that cannot do its work: no model, a warning saying why, no crash. */
static void
test_a_failing_trainer_leaves_the_rules(void **state)
{
	static const struct {
		const char *script; /* the trainer; NULL: none at all */
		const char *want;   /* in the warning */
	} cases[] = {
	    {NULL, "no learned model: cannot start /nonexistent"},
	    {"#!/bin/sh\necho 'faqbot-train: out of memory' >&2\nexit 3\n",
	     "the trainer failed (exit status 3): faqbot-train: out of memory"},
	    {"#!/bin/sh\necho 'this is not a model'\n", "refused: not a faqbot model"},
	    {"#!/bin/sh\nkill -9 $$\n", "killed by signal 9"},
	    /* A model of other files (another name): stale. */
	    {"#!/bin/sh\nexec " TRAINER_PATH " \"$@\" --name other\n",
	     "the files changed while it was trained"},
	};
	struct set s;
	struct kb *kb;
	char *warn, script[128];
	size_t i;
	int pending;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(cases); i++) {
		set_write(&s);
		if (cases[i].script == NULL) {
			setenv("FAQBOT_TRAINER", "/nonexistent/faqbot-train", 1);
		} else {
			snprintf(script, sizeof(script), "%s/trainer.sh", s.dir);
			tmp_write(s.dir, "trainer.sh", cases[i].script);
			chmod(script, 0700);
			setenv("FAQBOT_TRAINER", script, 1);
		}
		kb = set_load(&s, &pending, &warn);
		CHECK(kb->model == NULL, "case %zu: a model", i);
		CHECK(has(warn, cases[i].want), "case %zu: want \"%s\" in:\n%s", i, cases[i].want,
		      warn);
		kb_free(kb);
		free(warn);
		tmp_remove(s.dir);
	}
	CHECK_END();
}

/*
 * Intents copied elsewhere without a labelled folder beside them: the model
 * still learns the thousands of emergencies and crises built in (without
 * the messages for intents this set does not have), and says so.
 */
static void
test_without_labelled_files_the_set_built_in_stands_in(void **state)
{
	struct learn_info li;
	struct set s;
	struct kb *kb;
	char path[160], *warn;
	int pending;

	(void)state;
	check_begin();
	set_write(&s);
	snprintf(path, sizeof(path), "%s/labelled/rows.tsv", s.dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/labelled", s.dir);
	rmdir(path);
	setenv("FAQBOT_TRAINER", TRAINER_PATH, 1);
	kb = set_load(&s, &pending, &warn);
	CHECK(kb->model != NULL, "no model: %s", warn);
	if (kb->model != NULL) {
		learn_model_info(kb->model, &li);
		CHECK(li.rows > 5000, "learnt from %zu messages only", li.rows);
	}
	CHECK(has(warn, "learns from the set built in"), "not said: %s", warn);
	kb_free(kb);
	free(warn);
	tmp_remove(s.dir);
	CHECK_END();
}

/*
 * The daemon blocks the signals it reads through a signalfd and ignores
 * SIGPIPE; a trainer that inherited that could not be stopped by SIGTERM
 * (a shutdown would wait for a whole cross-validation).
 */
static void
test_the_trainer_starts_with_the_default_signals(void **state)
{
	/* grep reads its own mask, inherited through exec as the trainer's would be. */
	static const char script[] = "#!/bin/sh\n"
	                             "d=$(dirname \"$0\")\n"
	                             "exec grep -E '^Sig(Blk|Ign)' /proc/self/status > \"$d/sigs\"\n";
	sigset_t mask, old;
	struct set s;
	struct kb *kb;
	char path[160], *warn, *sigs;
	unsigned long long blk = 1, ign = ~0ULL;
	const char *p;
	int pending;

	(void)state;
	check_begin();
	set_write(&s);
	tmp_write(s.dir, "trainer.sh", script);
	snprintf(path, sizeof(path), "%s/trainer.sh", s.dir);
	chmod(path, 0700);
	setenv("FAQBOT_TRAINER", path, 1);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, &old);
	signal(SIGPIPE, SIG_IGN);
	kb = set_load(&s, &pending, &warn);
	sigprocmask(SIG_SETMASK, &old, NULL);
	signal(SIGPIPE, SIG_DFL);
	snprintf(path, sizeof(path), "%s/sigs", s.dir);
	sigs = file_read(path, 4096, NULL);
	CHECK(sigs != NULL, "the trainer did not run");
	if (sigs != NULL) {
		if ((p = strstr(sigs, "SigBlk:")) != NULL)
			blk = strtoull(p + 7, NULL, 16);
		if ((p = strstr(sigs, "SigIgn:")) != NULL)
			ign = strtoull(p + 7, NULL, 16);
		CHECK(blk == 0, "signals blocked in the trainer: %s", sigs);
		CHECK(!(ign & (1ULL << (SIGTERM - 1))) && !(ign & (1ULL << (SIGPIPE - 1))),
		      "SIGTERM or SIGPIPE ignored in the trainer: %s", sigs);
	}
	free(sigs);
	kb_free(kb);
	free(warn);
	tmp_remove(s.dir);
	CHECK_END();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_trained_cached_and_found_again),
	    cmocka_unit_test(test_a_failing_trainer_leaves_the_rules),
	    cmocka_unit_test(test_the_trainer_starts_with_the_default_signals),
	    cmocka_unit_test(test_without_labelled_files_the_set_built_in_stands_in),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
