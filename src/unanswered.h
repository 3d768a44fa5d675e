/*
 * The unanswered log: questions addressed to the bot that got no answer,
 * one JSON line each in <state_dir>/unanswered.jsonl, with the time, the
 * room, a salted hash of the sender (never the sender) and the question
 * with obvious personal data redacted (phone numbers, e-mail addresses,
 * dates, names, postcodes, street addresses, record numbers). Past 4 MiB
 * the file becomes unanswered.jsonl.1 (the one before is deleted) and a new
 * one starts, so at most about 8 MiB of questions are kept. Moderators read
 * it with `faqbot unanswered`, which groups similar questions and ranks the
 * groups, so that they see what to write next.
 */
#ifndef FAQBOT_UNANSWERED_H
#define FAQBOT_UNANSWERED_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct kb;

/*
 * Redacts personal data from text: phone numbers -> [phone], e-mail
 * addresses -> [email], dates -> [date], names -> [name] (every word of it
 * after "my name is", "i'm called", "call me"; a capitalised name after
 * "I'm", after a relation ("my husband John"), after a title ("Dr Patel",
 * "dr. patel"), or before "here" at the start ("Sarah Jones here")), UK
 * postcodes -> [postcode], street addresses ("12 Acacia Avenue") ->
 * [address], record numbers ("MRN 12345678", "NHS number ...", "K123456",
 * 7 digits or more) -> [id]. It errs on the side of redacting. Returns a
 * new string (caller frees).
 */
char *unanswered_redact(const char *text);

/*
 * Appends one entry (redacted) to <state_dir>/unanswered.jsonl. salt makes
 * the sender hash unguessable. room NULL is a private message, whose room
 * would name the sender (an IRC nick): it is logged as "private:" and the
 * sender's hash. Returns 0, or -1 with errno.
 */
int unanswered_append(const char *state_dir, const char *room, const char *sender,
    uint64_t salt, const char *text, int64_t when);

/* The same, with a note saying why it is there besides no answer ("marked unhelpful"). */
int unanswered_append_note(const char *state_dir, const char *room, const char *sender,
    uint64_t salt, const char *text, int64_t when, const char *note);

/* Appends the last n entries, newest first, as a numbered Markdown list. */
void unanswered_recent(const char *state_dir, size_t n, struct buf *out);

/*
 * The questions of the last n entries, newest first, as unanswered_recent
 * numbers them (from 1): *count strings in a new array (caller frees each
 * and the array; NULL and 0 when there are none).
 */
void unanswered_last(const char *state_dir, size_t n, char ***texts, size_t *count);

/*
 * Appends a report: similar questions grouped (normalised through kb's
 * lexicon when kb is not NULL), groups ranked by the number of distinct
 * askers then entries, at most top groups, each with a count and examples.
 */
void unanswered_report(const char *state_dir, const struct kb *kb, size_t top, int64_t since,
    struct buf *out);

/* `faqbot unanswered`: returns the exit status. */
int unanswered_main(int argc, char **argv);

#endif
