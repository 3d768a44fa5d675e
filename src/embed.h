/*
 * The shipped intents/, responses/ and labelled/ compiled into the binary by
 * cmake/embed.cmake, so that faqbot runs with nothing else installed.
 */
#ifndef FAQBOT_EMBED_H
#define FAQBOT_EMBED_H

#include <stddef.h>

struct embed_file {
	const char *name; /* "intents/x.json", "responses/y.md" or "labelled/z.tsv" */
	const char *data; /* the bytes, NUL-terminated */
	size_t len;       /* length without the NUL */
};

/* Terminated by an entry whose name is NULL. */
extern const struct embed_file embed_files[];

#endif
