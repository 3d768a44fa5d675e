/*
 * The shipped intents/ and responses/ compiled into the binary by
 * cmake/embed.cmake, so that faqbot runs with nothing else installed.
 */
#ifndef FAQBOT_EMBED_H
#define FAQBOT_EMBED_H

#include <stddef.h>

struct embed_file {
	const char *name; /* "intents/x.json" or "responses/y.md" */
	const char *data; /* the bytes, NUL-terminated */
	size_t len;       /* length without the NUL */
};

/* Terminated by an entry whose name is NULL. */
extern const struct embed_file embed_files[];

#endif
