/*
 * Starting faqbot-train and reading its model back. See trainer.h.
 */
#define _GNU_SOURCE /* pipe2, posix_spawn_file_actions_addclosefrom_np */
#include "trainer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kb.h"
#include "log.h"

#define TRAINER_NAME    "faqbot-train"
#define TRAINER_MAX_OUT (512u << 20) /* a model larger than this is refused */
#define TRAINER_MAX_ERR (16u << 10)  /* what is kept of its standard error */

extern char **environ;

struct trainer_job {
	pid_t pid;       /* the trainer, or -1 once reaped */
	int out;         /* its standard output (the model), or -1 once closed */
	int err;         /* its standard error, or -1 once closed */
	struct buf model; /* what it wrote on out */
	struct buf errs;  /* the end of what it wrote on err */
	int status;      /* its wait status, once reaped */
	int failed;      /* reading failed (too much, or a read error) */
	uint64_t t0;     /* when it started (now_ns) */
};

char *
trainer_path(void)
{
	const char *env = getenv("FAQBOT_TRAINER");
	char self[PATH_MAX], *slash;
	ssize_t n;

	if (env != NULL && env[0] != '\0')
		return xstrdup(env);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return xstrdup(TRAINER_NAME);
	self[n] = '\0';
	if ((slash = strrchr(self, '/')) == NULL)
		return xstrdup(TRAINER_NAME);
	slash[1] = '\0';
	return xasprintf("%s%s", self, TRAINER_NAME);
}

/* Appends "opt value" pairs to argv for every path of list. */
static void
add_paths(char ***argv, size_t *n, const char *opt, const char *const *list, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++) {
		*argv = xreallocarray(*argv, *n + 3, sizeof(**argv));
		(*argv)[(*n)++] = xstrdup(opt);
		(*argv)[(*n)++] = xstrdup(list[i]);
		(*argv)[*n] = NULL;
	}
}

struct trainer_job *
trainer_start(const struct kb_source *src, const char *const *extra, char **err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, deflt;
	struct trainer_job *j;
	char **argv = xcalloc(2, sizeof(*argv)), *path = trainer_path();
	int pout[2] = {-1, -1}, perr[2] = {-1, -1}, rc;
	size_t n = 0, i, nnames;

	*err = NULL;
	argv[n++] = xstrdup(path);
	add_paths(&argv, &n, "--intents", src->intent_paths, src->nintent);
	add_paths(&argv, &n, "--responses", src->response_paths, src->nresponse);
	add_paths(&argv, &n, "--labelled", src->labelled_paths, src->nlabelled);
	for (nnames = 0; src->bot_names && src->bot_names[nnames]; nnames++)
		;
	add_paths(&argv, &n, "--name", src->bot_names, nnames);
	if (src->taught != NULL)
		add_paths(&argv, &n, "--taught", &src->taught, 1);
	for (i = 0; extra && extra[i]; i++) {
		argv = xreallocarray(argv, n + 2, sizeof(*argv));
		argv[n++] = xstrdup(extra[i]);
		argv[n] = NULL;
	}
	if (pipe2(pout, O_CLOEXEC) == -1 || pipe2(perr, O_CLOEXEC) == -1) {
		*err = xasprintf("cannot start %s: %s", path, strerror(errno));
		goto fail;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
	posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	/*
	 * The daemon blocks the signals it reads through a signalfd and ignores
	 * SIGPIPE; the trainer starts with neither, so that SIGTERM stops it.
	 */
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigemptyset(&deflt);
	sigaddset(&deflt, SIGTERM);
	sigaddset(&deflt, SIGINT);
	sigaddset(&deflt, SIGHUP);
	sigaddset(&deflt, SIGPIPE);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &deflt);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	j = xcalloc(1, sizeof(*j));
	rc = posix_spawn(&j->pid, path, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(pout[1]);
	close(perr[1]);
	if (rc != 0) {
		*err = xasprintf("cannot start %s: %s", path, strerror(rc));
		close(pout[0]);
		close(perr[0]);
		free(j);
		j = NULL;
		goto out;
	}
	j->out = pout[0];
	j->err = perr[0];
	fcntl(j->out, F_SETFL, fcntl(j->out, F_GETFL) | O_NONBLOCK);
	fcntl(j->err, F_SETFL, fcntl(j->err, F_GETFL) | O_NONBLOCK);
	buf_init(&j->model);
	buf_init(&j->errs);
	j->t0 = now_ns();
	log_debug("started %s (pid %d)", path, (int)j->pid);
	goto out;
fail:
	for (i = 0; i < 2; i++) {
		if (pout[i] != -1)
			close(pout[i]);
		if (perr[i] != -1)
			close(perr[i]);
	}
	j = NULL;
out:
	for (i = 0; i < n; i++)
		free(argv[i]);
	free(argv);
	free(path);
	return j;
}

int
trainer_fds(const struct trainer_job *j, int fds[2])
{
	int n = 0;

	if (j->out != -1)
		fds[n++] = j->out;
	if (j->err != -1)
		fds[n++] = j->err;
	return n;
}

/* Reads fd into b until it would block; closes it at its end. 1 read on, 0 closed, -1 error. */
static int
drain(int *fd, struct buf *b, size_t cap, int keep_tail)
{
	char chunk[65536];
	ssize_t n;

	for (;;) {
		n = read(*fd, chunk, sizeof(chunk));
		if (n > 0) {
			if (b->len + (size_t)n > cap) {
				if (!keep_tail)
					return -1;
				/* Keep the end: the last lines say what went wrong. */
				buf_reset(b);
			}
			buf_append(b, chunk, (size_t)n);
			continue;
		}
		if (n == 0) {
			close(*fd);
			*fd = -1;
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 1;
		return -1;
	}
}

int
trainer_read(struct trainer_job *j, char **err)
{
	*err = NULL;
	if (j->out != -1 && drain(&j->out, &j->model, TRAINER_MAX_OUT, 0) == -1) {
		*err = xasprintf("reading the model from the trainer failed (%s)",
		                 j->model.len >= TRAINER_MAX_OUT ? "larger than 512 MiB"
		                                                 : strerror(errno));
		j->failed = 1;
		close(j->out);
		j->out = -1;
		if (j->err != -1) {
			close(j->err);
			j->err = -1;
		}
		return -1;
	}
	if (j->err != -1 && drain(&j->err, &j->errs, TRAINER_MAX_ERR, 1) == -1) {
		close(j->err);
		j->err = -1;
	}
	return j->out == -1 && j->err == -1;
}

int
trainer_wait(struct trainer_job *j, char **err)
{
	struct pollfd pfd[2];
	int fds[2], n, i, rc;

	*err = NULL;
	while ((rc = trainer_read(j, err)) == 0) {
		n = trainer_fds(j, fds);
		for (i = 0; i < n; i++) {
			pfd[i].fd = fds[i];
			pfd[i].events = POLLIN;
		}
		if (poll(pfd, (nfds_t)n, -1) == -1 && errno != EINTR) {
			*err = xasprintf("waiting for the trainer: %s", strerror(errno));
			return -1;
		}
	}
	return rc == 1 ? 0 : -1;
}

/* Reaps the trainer (blocking: it has closed its outputs, so it is exiting). */
static void
reap(struct trainer_job *j)
{
	while (j->pid > 0 && waitpid(j->pid, &j->status, 0) == -1 && errno == EINTR)
		;
	j->pid = -1;
}

const char *
trainer_output(struct trainer_job *j, size_t *len, char **err)
{
	const char *tail = "";
	char *nl;
	size_t l;

	*err = NULL;
	reap(j);
	if (!j->failed && WIFEXITED(j->status) && WEXITSTATUS(j->status) == 0) {
		*len = j->model.len;
		return j->model.data ? j->model.data : "";
	}
	/* Its last line of complaint, to say why. */
	if (j->errs.len > 0) {
		for (l = j->errs.len; l > 0 && j->errs.data[l - 1] == '\n'; l--)
			;
		j->errs.data[l] = '\0';
		tail = j->errs.data;
		if ((nl = strrchr(j->errs.data, '\n')) != NULL)
			tail = nl + 1;
	}
	if (j->failed)
		*err = xstrdup("the trainer's output could not be read");
	else if (WIFSIGNALED(j->status))
		*err = xasprintf("the trainer was killed by signal %d%s%s", WTERMSIG(j->status),
		                 *tail ? ": " : "", tail);
	else
		*err = xasprintf("the trainer failed (exit status %d)%s%s",
		                 WIFEXITED(j->status) ? WEXITSTATUS(j->status) : -1, *tail ? ": " : "",
		                 tail);
	return NULL;
}

double
trainer_seconds(const struct trainer_job *j)
{
	return (double)(now_ns() - j->t0) / 1e9;
}

void
trainer_free(struct trainer_job *j)
{
	if (j == NULL)
		return;
	if (j->pid > 0) {
		kill(j->pid, SIGTERM);
		reap(j);
	}
	if (j->out != -1)
		close(j->out);
	if (j->err != -1)
		close(j->err);
	buf_free(&j->model);
	buf_free(&j->errs);
	free(j);
}
