/*
 * Allocation, buffers, files and clocks shared by every module.
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		fatal("malloc %zu bytes", n);
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		fatal("calloc %zu x %zu bytes", n, size);
	return p;
}

void *
xreallocarray(void *p, size_t n, size_t size)
{
	void *q;

	if (size && n > SIZE_MAX / size)
		fatalx("reallocarray: %zu x %zu overflows", n, size);
	q = realloc(p, (n && size) ? n * size : 1);
	if (q == NULL)
		fatal("realloc %zu bytes", n * size);
	return q;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	struct buf b;
	va_list ap;

	buf_init(&b);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	return buf_steal(&b);
}

void
buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void
buf_reserve(struct buf *b, size_t extra)
{
	size_t need;

	if (extra > SIZE_MAX - b->len - 1)
		fatalx("buffer size overflows");
	need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	if (b->cap == 0)
		b->cap = 64;
	while (b->cap < need)
		b->cap = b->cap > SIZE_MAX / 2 ? need : b->cap * 2;
	b->data = xreallocarray(b->data, b->cap, 1);
	b->data[b->len] = '\0'; /* a reserved, still empty buffer is a string too */
}

void
buf_append(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void
buf_putc(struct buf *b, char c)
{
	buf_append(b, &c, 1);
}

void
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list aq;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		fatalx("vsnprintf failed");
	buf_reserve(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

char *
buf_steal(struct buf *b)
{
	char *p = b->data;

	if (p == NULL)
		p = xstrdup("");
	buf_init(b);
	return p;
}

/* Reads fd (which it closes) to its end, at most max bytes; see file_read(). */
static char *
read_fd(int fd, size_t max, size_t *lenp)
{
	struct buf b;
	char chunk[65536];
	ssize_t n;
	int saved;

	buf_init(&b);
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > max) {
			errno = EFBIG;
			goto fail;
		}
		buf_append(&b, chunk, (size_t)n);
	}
	close(fd);
	if (lenp)
		*lenp = b.len;
	/* The buffer grew by doubling: keep only what the file holds. */
	if (b.data != NULL)
		b.data = xreallocarray(b.data, b.len + 1, 1);
	return buf_steal(&b);
fail:
	saved = errno;
	close(fd);
	buf_free(&b);
	errno = saved;
	return NULL;
}

char *
file_read(const char *path, size_t max, size_t *lenp)
{
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	return read_fd(fd, max, lenp);
}

char *
file_read_regular(const char *path, size_t max, size_t *lenp)
{
	struct stat st;
	int fd, fl;

	/* O_NONBLOCK: opening a FIFO for reading would wait for a writer. */
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) == -1)
		return NULL;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	if (st.st_size > 0 && (uintmax_t)st.st_size > max) {
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	/* A regular file never blocks; the flag goes only to be tidy. */
	if ((fl = fcntl(fd, F_GETFL)) != -1)
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return read_fd(fd, max, lenp);
}

int
file_write_atomic(const char *path, const void *data, size_t len, int mode)
{
	char *tmp, *dcopy;
	const char *p = data;
	ssize_t n;
	int fd, dfd, saved;

	tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd == -1) {
		saved = errno;
		free(tmp);
		errno = saved;
		return -1;
	}
	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) == -1)
		goto fail; /* closed there */
	if (close(fd) == -1) {
		fd = -1; /* closed even so: close() is not retried on Linux */
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail;
	free(tmp);
	dcopy = xstrdup(path);
	if ((dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		(void)fsync(dfd);
		close(dfd);
	}
	free(dcopy);
	return 0;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	unlink(tmp);
	free(tmp);
	errno = saved;
	return -1;
}

uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
now_ms(void)
{
	return now_ns() / 1000000u;
}

int64_t
now_wall(void)
{
	return (int64_t)time(NULL);
}

uint64_t
hash_bytes(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 14695981039346656037u;

	while (n--) {
		h ^= *s++;
		h *= 1099511628211u;
	}
	return h;
}

/* Days from civil date, after Howard Hinnant's algorithm. */
static long
days_from_civil(long y, unsigned m, unsigned d)
{
	long era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long)doe - 719468;
}

long
date_parse_days(const char *s)
{
	static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	unsigned y, m, d;
	int i;

	if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return -1;
	for (i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return -1;
	y = (unsigned)atoi(s);
	m = (unsigned)atoi(s + 5);
	d = (unsigned)atoi(s + 8);
	if (y < 1970 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return -1;
	if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return -1;
	return days_from_civil((long)y, m, d);
}

long
date_today_days(void)
{
	const char *fake = getenv("FAQBOT_TODAY"); /* for tests of review dates */
	time_t t = time(NULL);

	if (fake && date_parse_days(fake) >= 0)
		return date_parse_days(fake);
	return (long)(t / 86400);
}

size_t
util_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, prev, cur, tmp;
	size_t row[64];

	if (la >= 63 || lb >= 63)
		return 99;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			cur = row[j];
			tmp = prev + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < tmp)
				tmp = row[j] + 1;
			if (row[j - 1] + 1 < tmp)
				tmp = row[j - 1] + 1;
			row[j] = tmp;
			prev = cur;
		}
	}
	return row[lb];
}

int
util_hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t
util_sorted_common(const uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
	size_t i = 0, j = 0, n = 0;

	while (i < na && j < nb) {
		if (a[i] == b[j]) {
			n++;
			i++;
			j++;
		} else if (a[i] < b[j]) {
			i++;
		} else {
			j++;
		}
	}
	return n;
}
