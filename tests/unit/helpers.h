/*
 * Small helpers shared by the unit tests: a checker that reports every
 * failing table case before failing the test (so one wrong case does not
 * hide the others), and scratch directories under /tmp that are always
 * removed, written to by the tests that need files (intents, responses,
 * configuration, secrets).
 */
#ifndef FAQBOT_TEST_HELPERS_H
#define FAQBOT_TEST_HELPERS_H

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Failures seen by the current test; reset by check_begin(). */
static int check_failures;

static inline void
check_begin(void)
{
	check_failures = 0;
}

/* Records a failure (with where it was found) when ok is 0. Returns ok. */
static inline int __attribute__((format(printf, 4, 5)))
check_at(const char *file, int line, int ok, const char *fmt, ...)
{
	va_list ap;
	char msg[4096];

	if (ok)
		return 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	print_error("%s:%d: %s\n", file, line, msg);
	check_failures++;
	return 0;
}

#define CHECK(ok, ...) check_at(__FILE__, __LINE__, (ok) ? 1 : 0, __VA_ARGS__)

/* Checks that two strings (either may be NULL) are equal. */
#define CHECK_STR(got, want, what)                                                                 \
	do {                                                                                       \
		const char *g_ = (got), *w_ = (want);                                              \
		CHECK((g_ == NULL && w_ == NULL) || (g_ && w_ && strcmp(g_, w_) == 0),             \
		      "%s:\n    got  \"%s\"\n    want \"%s\"", (what), g_ ? g_ : "(null)",         \
		      w_ ? w_ : "(null)");                                                         \
	} while (0)

/* Fails the test if any CHECK failed since check_begin(). */
#define CHECK_END()                                                                                \
	do {                                                                                       \
		if (check_failures)                                                                \
			fail_msg("%d check(s) failed, see above", check_failures);                 \
	} while (0)

/* Does s contain needle? */
static inline int
has(const char *s, const char *needle)
{
	return s != NULL && strstr(s, needle) != NULL;
}

/* --- scratch directories ------------------------------------------------ */

/* Creates a new empty directory under /tmp into path (at least 64 bytes). */
static inline void
tmp_dir(char *path)
{
	strcpy(path, "/tmp/faqbot-unit-XXXXXX");
	if (mkdtemp(path) == NULL)
		fail_msg("mkdtemp: %s", strerror(errno));
}

/* Writes len bytes to dir/name (creating one level of subdirectory), mode 0600. */
static inline void
tmp_write_len(const char *dir, const char *name, const char *text, size_t len)
{
	char path[512], sub[512];
	const char *slash = strchr(name, '/');
	int fd;

	if (slash != NULL) {
		snprintf(sub, sizeof(sub), "%s/%.*s", dir, (int)(slash - name), name);
		if (mkdir(sub, 0700) == -1 && errno != EEXIST)
			fail_msg("mkdir %s: %s", sub, strerror(errno));
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd == -1)
		fail_msg("open %s: %s", path, strerror(errno));
	if (len > 0 && write(fd, text, len) != (ssize_t)len)
		fail_msg("write %s: %s", path, strerror(errno));
	close(fd);
}

static inline void
tmp_write(const char *dir, const char *name, const char *text)
{
	tmp_write_len(dir, name, text, strlen(text));
}

/* Removes dir and everything in it (no symlinks are followed). */
static inline void
tmp_remove(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat st;
	char path[1024];

	if (d != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
				tmp_remove(path);
			else if (unlink(path) == -1)
				print_error("cannot remove %s: %s\n", path, strerror(errno));
		}
		closedir(d);
	}
	if (rmdir(dir) == -1)
		print_error("cannot remove %s: %s\n", dir, strerror(errno));
}

/* Monotonic seconds, for "returns promptly" checks. */
static inline double
seconds_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- running code that may crash ---------------------------------------- */

/*
 * Runs fn(arg, fd) in a child process, so that a crash (or a sanitizer
 * report, which ends the process) fails one case instead of the whole
 * test program. What fn writes to fd is collected into out (NUL-terminated,
 * cut at outsz - 1 bytes). Returns 0 when fn returned, or -1 with how the
 * child ended in why. fn must not call cmocka's assertions.
 */
static inline int
run_in_child(void (*fn)(void *arg, int fd), void *arg, char *out, size_t outsz, char *why,
             size_t whylen)
{
	int p[2], st;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	if (pipe(p) == -1)
		fail_msg("pipe: %s", strerror(errno));
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == -1)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		/* cmocka's handlers would go back into its test runner: die instead */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		signal(SIGILL, SIG_DFL);
		signal(SIGFPE, SIG_DFL);
		signal(SIGABRT, SIG_DFL);
		close(p[0]);
		fn(arg, p[1]);
		close(p[1]);
		_exit(0);
	}
	close(p[1]);
	while (got + 1 < outsz && (n = read(p[0], out + got, outsz - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(p[0]);
	if (waitpid(pid, &st, 0) == -1)
		fail_msg("waitpid: %s", strerror(errno));
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFSIGNALED(st))
		snprintf(why, whylen, "crashed with signal %d", WTERMSIG(st));
	else
		snprintf(why, whylen, "ended with status %d (see the sanitizer report above)",
		         WEXITSTATUS(st));
	return -1;
}

/* Writes all of s to fd (in a child of run_in_child). */
static inline void
fd_puts(int fd, const char *s)
{
	size_t n = strlen(s);
	ssize_t w;

	while (n > 0 && (w = write(fd, s, n)) > 0) {
		s += w;
		n -= (size_t)w;
	}
}

#endif
