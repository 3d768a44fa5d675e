/*
 * JSON files that people edit by hand (intents, config): parsed with cJSON,
 * but first checked by a small validating scanner that reports syntax errors
 * the way an editor would (`file:line:col: expected ',' or '}' after member`),
 * and that remembers where every value and key is, so that later checks
 * (unknown key, wrong type, bad regex) can point at the exact place.
 */
#ifndef FAQBOT_JSON_H
#define FAQBOT_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "diag.h"

/* Deepest nesting accepted in a hand-written file. */
#define JSON_MAX_DEPTH 64

struct json_pos;

struct json_doc {
	cJSON *root;          /* the parsed tree; NULL after a syntax error */
	const char *file;     /* the file name, for diagnostics (not owned) */
	const char *text;     /* the file's contents (not owned) */
	struct json_pos *pos; /* cJSON node -> offsets */
	size_t npos;          /* entries in pos */
	size_t mask;          /* hash mask of pos */
	/* The last place asked of json_doc_linecol(), to go on from there. */
	size_t lc_off;
	int lc_line, lc_col;
};

/*
 * Parses text (len bytes) of file. Returns 0, or -1 after adding a
 * diagnostic for the first syntax error. Duplicate keys are reported as
 * warnings. file and text must outlive the document. Free with
 * json_doc_free() in either case.
 */
int json_doc_parse(struct json_doc *doc, const char *file, const char *text, size_t len,
                   struct diag_list *diags);
void json_doc_free(struct json_doc *doc);

/* Byte offset of item's value (or of its key, for object members). */
size_t json_doc_offset(const struct json_doc *doc, const cJSON *item);

/*
 * The line and column (1-based, in characters) of byte offset off, as
 * diag_offset_to_linecol() counts them, but going on from the last place
 * asked, so that asking for the places of a whole file in order costs one
 * pass, not one per item. (The cache is the document's only mutable part.)
 */
void json_doc_linecol(const struct json_doc *doc, size_t off, int *line, int *col);
size_t json_doc_key_offset(const struct json_doc *doc, const cJSON *item);

/* Adds a diagnostic placed at item's value (or key). */
void json_diag(const struct json_doc *doc, struct diag_list *diags, enum diag_severity sev,
               const cJSON *item, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void json_diag_key(const struct json_doc *doc, struct diag_list *diags, enum diag_severity sev,
                   const cJSON *item, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The JSON type of item in words ("a string", "an array", ...). */
const char *json_type_name(const cJSON *item);

/*
 * Checks that every key of object obj is one of the NULL-terminated list
 * allowed; reports the others as errors ("unknown key 'paterns' (did you
 * mean 'patterns'?)"). Returns the number of unknown keys.
 */
int json_check_keys(const struct json_doc *doc, struct diag_list *diags, const cJSON *obj,
                    const char *what, const char *const *allowed);

/*
 * Makes NULs in the JSON text (len bytes) visible to cJSON's strings, in
 * place: a \u0000 escape in a string becomes \uFFFD, a raw NUL byte a
 * space. cJSON keeps a \u0000 as a NUL, which would end its string there
 * and hide the rest of, say, a message body ("hello\u0000 I want to die").
 */
void json_defuse_nul(char *text, size_t len);

#endif
