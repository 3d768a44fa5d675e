/*
 * Diagnostics with their place; see diag.h.
 */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void
diag_list_init(struct diag_list *l)
{
	memset(l, 0, sizeof(*l));
}

void
diag_list_free(struct diag_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++) {
		free(l->d[i].file);
		free(l->d[i].msg);
	}
	free(l->d);
	diag_list_init(l);
}

static void
diag_push(struct diag_list *l, enum diag_severity sev, const char *file, int line, int col,
          char *msg)
{
	struct diag *d;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->d = xreallocarray(l->d, l->cap, sizeof(*l->d));
	}
	d = &l->d[l->n++];
	d->sev = sev;
	d->file = xstrdup(file ? file : "-");
	d->line = line;
	d->col = col;
	d->msg = msg;
	if (sev == DIAG_ERROR)
		l->errors++;
	else if (sev == DIAG_WARNING)
		l->warnings++;
}

void
diag_add(struct diag_list *l, enum diag_severity sev, const char *file, int line, int col,
         const char *fmt, ...)
{
	struct buf b;
	va_list ap;

	if (l == NULL)
		return;
	buf_init(&b);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	diag_push(l, sev, file, line, col, buf_steal(&b));
}

void
diag_offset_to_linecol(const char *text, size_t offset, int *line, int *col)
{
	size_t i;
	int ln = 1, cl = 1;

	for (i = 0; i < offset && text[i] != '\0'; i++) {
		if (text[i] == '\n') {
			ln++;
			cl = 1;
		} else if (((unsigned char)text[i] & 0xc0) != 0x80) {
			cl++;
		}
	}
	*line = ln;
	*col = cl;
}

void
diag_add_at(struct diag_list *l, enum diag_severity sev, const char *file, const char *text,
            size_t offset, const char *fmt, ...)
{
	struct buf b;
	va_list ap;
	int line = 0, col = 0;

	if (l == NULL)
		return;
	if (text != NULL)
		diag_offset_to_linecol(text, offset, &line, &col);
	buf_init(&b);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	diag_push(l, sev, file, line, col, buf_steal(&b));
}

char *
diag_format(const struct diag *d)
{
	static const char *sevname[] = {"error", "warning", "note"};

	if (d->line > 0)
		return xasprintf("%s:%d:%d: %s: %s", d->file, d->line, d->col > 0 ? d->col : 1,
		                 sevname[d->sev], d->msg);
	return xasprintf("%s: %s: %s", d->file, sevname[d->sev], d->msg);
}

void
diag_print(const struct diag_list *l, FILE *fp, enum diag_severity min)
{
	size_t i;
	char *s;

	for (i = 0; i < l->n; i++) {
		if (l->d[i].sev > min)
			continue;
		s = diag_format(&l->d[i]);
		fprintf(fp, "%s\n", s);
		free(s);
	}
}

void
diag_list_move(struct diag_list *dst, struct diag_list *src)
{
	size_t i;

	for (i = 0; i < src->n; i++) {
		diag_push(dst, src->d[i].sev, src->d[i].file, src->d[i].line, src->d[i].col,
		          src->d[i].msg);
		free(src->d[i].file);
	}
	free(src->d);
	diag_list_init(src);
}

static int
diag_cmp(const void *a, const void *b)
{
	const struct diag *x = a, *y = b;
	int c = strcmp(x->file, y->file);

	if (c)
		return c;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return 0;
}

void
diag_list_sort(struct diag_list *l)
{
	size_t i, j;

	/* Insertion sort: stable, and lists are short. */
	for (i = 1; i < l->n; i++) {
		struct diag t = l->d[i];

		for (j = i; j > 0 && diag_cmp(&l->d[j - 1], &t) > 0; j--)
			l->d[j] = l->d[j - 1];
		l->d[j] = t;
	}
}
