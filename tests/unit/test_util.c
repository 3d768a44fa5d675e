/*
 * Unit tests for util.c: the atomic write gives back every descriptor it
 * took, whatever step fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "helpers.h"
#include "util.h"

/* Descriptors open in this process now. */
static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		fail_msg("opendir /proc/self/fd: %s", strerror(errno));
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own */
}

/*
 * fsync fails (the temporary file is a symlink to /dev/null, which cannot
 * be synced): the write fails, and neither the descriptor nor the
 * temporary file is left behind. Repeated, so a leak of one per call shows.
 */
static void
test_write_atomic_fsync_failure_closes_the_file(void **state)
{
	char dir[64], path[256], tmp[300];
	int before, i, rc;
	struct stat st;

	(void)state;
	tmp_dir(dir);
	snprintf(path, sizeof(path), "%s/state.json", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	before = open_fds();
	for (i = 0; i < 20; i++) {
		if (symlink("/dev/null", tmp) == -1)
			fail_msg("symlink: %s", strerror(errno));
		errno = 0;
		rc = file_write_atomic(path, "{}", 2, 0600);
		assert_int_equal(rc, -1);
		assert_int_equal(errno, EINVAL);
		assert_int_equal(lstat(tmp, &st), -1);
	}
	assert_int_equal(open_fds(), before);
	assert_int_equal(lstat(path, &st), -1);
	/* And it still works once the way is clear. */
	assert_int_equal(file_write_atomic(path, "{}", 2, 0600), 0);
	assert_int_equal(open_fds(), before);
	tmp_remove(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_write_atomic_fsync_failure_closes_the_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
