/*
 * Unit tests for log.c: a log line stays one line whatever is put in it
 * (a room name or an id from a server), and shows its control characters
 * escaped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "helpers.h"
#include "log.h"
#include "util.h"

/* Runs fn with stderr going to a file; returns what was written (caller frees). */
static char *
capture(void (*fn)(void))
{
	char dir[64], path[128], *text;
	size_t len;
	int fd, saved;

	tmp_dir(dir);
	snprintf(path, sizeof(path), "%s/err", dir);
	fflush(stderr);
	saved = dup(2);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		fail_msg("open: %s", strerror(errno));
	dup2(fd, 2);
	close(fd);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	text = file_read(path, 1 << 20, &len);
	tmp_remove(dir);
	if (text == NULL)
		fail_msg("cannot read the captured log");
	return text;
}

static void
log_hostile(void)
{
	unsetenv("JOURNAL_STREAM");
	log_init(LOG_LEVEL_DEBUG, 0);
	/* A room name with a newline and a fake journald line, an id with CR and ESC. */
	log_info("matrix: joined %s", "!room:example.org\n<3>faqbot: forged line");
	log_warnx("irc: kicked by %s", "mallory\r\x1b[2Kbob");
	/* C1 controls, a line separator and a right-to-left override. */
	log_info("room %s", "a\xc2\x85" "b\xe2\x80\xa8" "c\xe2\x80\xae" "d\xe2\x81\xa6" "e");
}

static void
test_a_line_stays_one_line(void **state)
{
	char *out = capture(log_hostile), *p;
	int lines = 0;

	(void)state;
	for (p = out; *p; p++)
		lines += *p == '\n';
	if (lines != 3)
		fail_msg("%d lines, not 3:\n%s", lines, out);
	assert_non_null(strstr(out, "joined !room:example.org\\x0a<3>faqbot: forged line\n"));
	assert_non_null(strstr(out, "kicked by mallory\\x0d\\x1b[2Kbob\n"));
	assert_non_null(strstr(out, "room a\\u0085b\\u2028c\\u202ed\\u2066e\n"));
	assert_null(strchr(out, '\r'));
	assert_null(strchr(out, '\x1b'));
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_line_stays_one_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
