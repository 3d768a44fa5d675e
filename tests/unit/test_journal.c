/*
 * Unit tests for journal.c: lines added and flushed come back on replay in
 * order; a line cut short by a crash is skipped and does not swallow the
 * next one; a rewrite replaces the file and appending goes on after it;
 * the size grows by what was written only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "helpers.h"
#include "journal.h"
#include "util.h"

struct seen {
	char lines[16][64];
	int n;
};

static void
collect(void *arg, char *line, size_t len)
{
	struct seen *s = arg;

	if (s->n < 16)
		snprintf(s->lines[s->n++], sizeof(s->lines[0]), "%.*s", (int)len, line);
}

static void
test_append_replay(void **state)
{
	char dir[64], path[128];
	struct jrnl *j;
	struct seen s = {0};
	struct stat st1, st2;

	(void)state;
	check_begin();
	tmp_dir(dir);
	snprintf(path, sizeof(path), "%s/j.jsonl", dir);
	CHECK(jrnl_replay(path, 1 << 20, collect, &s) == 0 && s.n == 0, "no file is empty");
	j = jrnl_open(path, 0600);
	CHECK(j != NULL, "open");
	jrnl_add(j, "{\"a\":1}");
	jrnl_add(j, "{\"a\":2}");
	CHECK(jrnl_pending(j), "lines wait to be written");
	CHECK(jrnl_size(j) == 0, "nothing written before the flush");
	CHECK(jrnl_flush(j) == 0, "flush");
	CHECK(jrnl_size(j) == 16, "size %zu after two lines", jrnl_size(j));
	stat(path, &st1);
	jrnl_add(j, "{\"a\":3}");
	CHECK(jrnl_flush(j) == 0, "flush again");
	stat(path, &st2);
	CHECK(st1.st_ino == st2.st_ino, "appending keeps the file");
	CHECK(st2.st_size == 24, "the file grew by one line only (%lld)", (long long)st2.st_size);
	jrnl_close(j);
	CHECK(jrnl_replay(path, 1 << 20, collect, &s) == 0 && s.n == 3, "%d lines replayed", s.n);
	CHECK_STR(s.lines[2], "{\"a\":3}", "the last line");
	tmp_remove(dir);
	CHECK_END();
}

static void
test_torn_line(void **state)
{
	char dir[64], path[128];
	struct jrnl *j;
	struct seen s = {0};
	FILE *fp;

	(void)state;
	check_begin();
	tmp_dir(dir);
	snprintf(path, sizeof(path), "%s/j.jsonl", dir);
	fp = fopen(path, "w");
	fputs("{\"a\":1}\n{\"a\":", fp); /* the process died writing the second */
	fclose(fp);
	CHECK(jrnl_replay(path, 1 << 20, collect, &s) == 0 && s.n == 1, "%d lines", s.n);
	j = jrnl_open(path, 0600);
	jrnl_add(j, "{\"b\":1}");
	CHECK(jrnl_flush(j) == 0, "flush");
	jrnl_close(j);
	s.n = 0;
	jrnl_replay(path, 1 << 20, collect, &s);
	CHECK(s.n == 3, "%d lines", s.n);
	CHECK_STR(s.lines[2], "{\"b\":1}", "the next line stands on its own");
	tmp_remove(dir);
	CHECK_END();
}

static void
test_replace(void **state)
{
	char dir[64], path[128];
	struct jrnl *j;
	struct seen s = {0};

	(void)state;
	check_begin();
	tmp_dir(dir);
	snprintf(path, sizeof(path), "%s/j.jsonl", dir);
	j = jrnl_open(path, 0600);
	jrnl_add(j, "old 1");
	jrnl_add(j, "old 2");
	jrnl_flush(j);
	jrnl_add(j, "dropped");
	CHECK(jrnl_replace(j, "new\n", 4) == 0, "replace");
	CHECK(jrnl_size(j) == 4, "size after replace %zu", jrnl_size(j));
	CHECK(!jrnl_pending(j), "the buffer went with the old state");
	jrnl_add(j, "after");
	jrnl_flush(j);
	jrnl_close(j);
	jrnl_replay(path, 1 << 20, collect, &s);
	CHECK(s.n == 2, "%d lines", s.n);
	CHECK_STR(s.lines[0], "new", "the rewritten state");
	CHECK_STR(s.lines[1], "after", "appended after the rewrite");
	tmp_remove(dir);
	CHECK_END();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_append_replay),
	    cmocka_unit_test(test_torn_line),
	    cmocka_unit_test(test_replace),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
