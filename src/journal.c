/*
 * The append-only journal; see journal.h. One descriptor opened with
 * O_APPEND, a buffer of lines not yet written, and a size kept so the
 * caller can tell when to compact.
 */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct jrnl {
	char *path;     /* the file */
	int fd;         /* open for appending */
	int mode;       /* its mode, for a rewrite */
	struct buf out; /* lines not yet written */
	size_t size;    /* bytes in the file */
};

int
jrnl_replay(const char *path, size_t max, jrnl_line_fn fn, void *arg)
{
	size_t len, start = 0, i;
	char *text = file_read(path, max, &len);

	if (text == NULL)
		return errno == ENOENT ? 0 : -1;
	for (i = 0; i < len; i++) {
		if (text[i] != '\n')
			continue;
		text[i] = '\0';
		if (i > start)
			fn(arg, text + start, i - start);
		start = i + 1;
	}
	/* What follows the last newline was cut short by a crash: skipped. */
	free(text);
	return 0;
}

struct jrnl *
jrnl_open(const char *path, int mode)
{
	struct jrnl *j;
	struct stat st;
	int fd;

	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode)) == -1)
		return NULL;
	if (fstat(fd, &st) == -1) {
		int saved = errno;

		close(fd);
		errno = saved;
		return NULL;
	}
	j = xcalloc(1, sizeof(*j));
	j->path = xstrdup(path);
	j->fd = fd;
	j->mode = mode;
	j->size = (size_t)st.st_size;
	buf_init(&j->out);
	/* A line cut short by a crash must not swallow the next one: end it. */
	if (st.st_size > 0) {
		char last = '\n';
		int rfd = open(path, O_RDONLY | O_CLOEXEC);

		if (rfd != -1) {
			if (pread(rfd, &last, 1, st.st_size - 1) != 1)
				last = '\n';
			close(rfd);
		}
		if (last != '\n')
			buf_putc(&j->out, '\n');
	}
	return j;
}

void
jrnl_close(struct jrnl *j)
{
	if (j == NULL)
		return;
	if (j->fd != -1)
		close(j->fd);
	buf_free(&j->out);
	free(j->path);
	free(j);
}

void
jrnl_add(struct jrnl *j, const char *line)
{
	buf_puts(&j->out, line);
	buf_putc(&j->out, '\n');
}

int
jrnl_pending(const struct jrnl *j)
{
	return j->out.len > 0;
}

int
jrnl_flush(struct jrnl *j)
{
	size_t off = 0;
	ssize_t n;

	if (j->out.len == 0)
		return 0;
	if (j->fd == -1 &&
	    (j->fd = open(j->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, j->mode)) == -1)
		return -1;
	while (off < j->out.len) {
		n = write(j->fd, j->out.data + off, j->out.len - off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		off += (size_t)n;
	}
	j->size += off;
	buf_reset(&j->out);
	if (fdatasync(j->fd) == -1)
		return -1;
	return 0;
fail:
	/* What was written stays; the rest waits for the next flush. */
	if (off > 0) {
		int saved = errno;

		memmove(j->out.data, j->out.data + off, j->out.len - off);
		j->out.len -= off;
		j->out.data[j->out.len] = '\0';
		j->size += off;
		errno = saved;
	}
	return -1;
}

int
jrnl_replace(struct jrnl *j, const char *data, size_t len)
{
	int fd;

	if (file_write_atomic(j->path, data, len, j->mode) == -1)
		return -1;
	/* The old descriptor points at the file renamed over: append to the new one
	 * (opened again by the next flush if it cannot be now). */
	fd = open(j->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (j->fd != -1)
		close(j->fd);
	j->fd = fd;
	j->size = len;
	buf_reset(&j->out);
	return 0;
}

size_t
jrnl_size(const struct jrnl *j)
{
	return j->size;
}
