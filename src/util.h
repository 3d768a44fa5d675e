/*
 * Small helpers used everywhere: allocation that cannot fail (it ends the
 * process on out-of-memory, as OpenSMTPD's xmalloc does), a growable byte
 * buffer, and file reading with a size cap.
 */
#ifndef FAQBOT_UTIL_H
#define FAQBOT_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Allocate or end the process with a message; never return NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Returns a newly allocated formatted string; the caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable buffer, always NUL-terminated after the first append. */
struct buf {
	char *data; /* the bytes; NULL until the first append */
	size_t len; /* bytes used, not counting the NUL */
	size_t cap; /* bytes allocated */
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Hands the bytes to the caller (who frees them) and resets the buffer. */
char *buf_steal(struct buf *b);

/*
 * Reads a whole file of at most `max` bytes. Returns a NUL-terminated copy
 * (caller frees) and its length in *len, or NULL with errno set (EFBIG when
 * the file is larger than max).
 */
char *file_read(const char *path, size_t max, size_t *len);

/*
 * Like file_read(), but only for a regular file (or a symlink to one), and
 * without ever blocking: the file is opened non-blocking and checked
 * before it is read, so a FIFO, a device or a socket fails at once with
 * errno EINVAL. For the files a daemon reads while it serves (intents,
 * responses), where anyone who can write to the directory could leave such
 * a thing.
 */
char *file_read_regular(const char *path, size_t max, size_t *len);

/*
 * Writes a file atomically: a temporary file in the same directory, fsync,
 * rename, then fsync of the directory. Returns 0 or -1 with errno set;
 * on failure the temporary file is removed and no descriptor stays open.
 */
int file_write_atomic(const char *path, const void *data, size_t len, int mode);

/* Monotonic clock in nanoseconds and milliseconds. */
uint64_t now_ns(void);
uint64_t now_ms(void);
/* Wall clock, seconds since the epoch. */
int64_t now_wall(void);

/*
 * Levenshtein distance between two short strings, for "did you mean";
 * strings of 63 bytes or more are "far" (99).
 */
size_t util_edit_distance(const char *a, const char *b);
/* The value of the hexadecimal digit c, or -1. */
int util_hex_value(int c);
/* How many values two ascending arrays share. */
size_t util_sorted_common(const uint32_t *a, size_t na, const uint32_t *b, size_t nb);

/* 64-bit FNV-1a hash. */
uint64_t hash_bytes(const void *p, size_t n);

/* Parses YYYY-MM-DD into days since 1970-01-01; returns -1 when malformed. */
long date_parse_days(const char *s);
/* Today's date (UTC) in days since 1970-01-01. */
long date_today_days(void);

#endif
