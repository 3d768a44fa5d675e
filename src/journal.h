/*
 * An append-only journal of lines (JSON records, one a line) that a
 * caller replays at start to rebuild what it keeps in memory: writing a
 * change costs the change, not the whole state. Lines are buffered and
 * written, then fdatasync'ed, by jrnl_flush(); a line cut short by a crash
 * is skipped on replay. When the records that no longer matter outweigh
 * the live ones, the caller rewrites the file whole with jrnl_replace()
 * (atomically, as file_write_atomic() does).
 */
#ifndef FAQBOT_JOURNAL_H
#define FAQBOT_JOURNAL_H

#include <stddef.h>

#include "util.h"

struct jrnl;

/* Called for each complete line on replay (without its newline; NUL-terminated). */
typedef void (*jrnl_line_fn)(void *arg, char *line, size_t len);

/*
 * Replays path: fn gets each line that ends in a newline (a last line
 * without one was being written when the process died, and is skipped).
 * Returns 0 (also when the file does not exist), or -1 with errno set
 * (EFBIG when the file is larger than max bytes).
 */
int jrnl_replay(const char *path, size_t max, jrnl_line_fn fn, void *arg);

/*
 * Opens path for appending (created with mode if missing). Returns the
 * journal (free with jrnl_close()), or NULL with errno set.
 */
struct jrnl *jrnl_open(const char *path, int mode);
void jrnl_close(struct jrnl *j);

/* Buffers line (a newline is added; line must not contain one). */
void jrnl_add(struct jrnl *j, const char *line);

/* Does the journal hold lines not yet written? */
int jrnl_pending(const struct jrnl *j);

/* Writes what is buffered and makes it durable. 0, or -1 with errno set (kept buffered). */
int jrnl_flush(struct jrnl *j);

/*
 * Replaces the whole file with data (len bytes of complete lines), dropping
 * what was buffered: the caller's data is the whole state. 0, or -1 with
 * errno set (the old file and the buffer are then kept).
 */
int jrnl_replace(struct jrnl *j, const char *data, size_t len);

/* Bytes in the file now (written lines only). */
size_t jrnl_size(const struct jrnl *j);

#endif
