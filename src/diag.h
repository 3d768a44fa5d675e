/*
 * Diagnostics: the problems found in intents, responses and config, each
 * with its place, printed as `file:line:col: severity: message` so that
 * moderators (and editors) can jump to it. Loaders append to a list; the
 * caller decides what to print and whether errors are fatal.
 */
#ifndef FAQBOT_DIAG_H
#define FAQBOT_DIAG_H

#include <stddef.h>
#include <stdio.h>

enum diag_severity {
	DIAG_ERROR,   /* the file cannot be used as it is */
	DIAG_WARNING, /* it works, but something is likely wrong */
	DIAG_NOTE,    /* for information */
};

struct diag {
	enum diag_severity sev; /* how bad */
	char *file;             /* the file, as given to the loader */
	int line;               /* 1-based, 0 when not known */
	int col;                /* 1-based, in characters; 0 when not known */
	char *msg;              /* the message, without the place */
};

struct diag_list {
	struct diag *d;  /* the diagnostics, in the order found */
	size_t n;        /* how many */
	size_t cap;      /* allocated */
	size_t errors;   /* how many are DIAG_ERROR */
	size_t warnings; /* how many are DIAG_WARNING */
};

void diag_list_init(struct diag_list *l);
void diag_list_free(struct diag_list *l);

void diag_add(struct diag_list *l, enum diag_severity sev, const char *file, int line, int col,
              const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/*
 * Same, with the place given as a byte offset into text (the file's
 * contents): line and column are computed from it (columns count UTF-8
 * characters, tabs count one).
 */
void diag_add_at(struct diag_list *l, enum diag_severity sev, const char *file, const char *text,
                 size_t offset, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Computes the 1-based line and column of a byte offset in text. */
void diag_offset_to_linecol(const char *text, size_t offset, int *line, int *col);

/* Formats one diagnostic as "file:line:col: severity: message" into a new string. */
char *diag_format(const struct diag *d);

/* Prints every diagnostic at or above min severity, one per line. */
void diag_print(const struct diag_list *l, FILE *fp, enum diag_severity min);

/* Moves every diagnostic of src to the end of dst; src is left empty. */
void diag_list_move(struct diag_list *dst, struct diag_list *src);

/* Sorts by file, line, column (stable). */
void diag_list_sort(struct diag_list *l);

#endif
