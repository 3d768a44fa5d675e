/*
 * Moderators teaching the bot from what it missed (`!faq teach`, `!faq
 * wrong`, patients' reactions): the messages the bot acted on lately, so
 * that a moderator can point at one, and the file of taught messages in the
 * state directory (taught.tsv, the labelled-file format of docs/intents.md),
 * which the model learns from at every reload and `faqbot taught` prints
 * for review.
 *
 * Messages are kept redacted (unanswered_redact: names, numbers, places),
 * in memory only, and only the last TEACH_KEEP of them: after a restart,
 * or after that many, a moderator teaches from the unanswered list or a
 * newer message.
 */
#ifndef FAQBOT_TEACH_H
#define FAQBOT_TEACH_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define TEACH_KEEP 1000 /* messages remembered */

/* A message the bot acted on. */
struct teach_item {
	char *event_id;  /* the message's id on its network, or NULL */
	char *answer_id; /* the bot's answer to it, once the network has given it */
	char *room;      /* where */
	char *intent;    /* what the bot answered with, or NULL (nothing, a fallback) */
	int by;          /* enum match_by: who chose intent */
	int flagged;     /* the moderators got a silent alert about it */
	char *text;      /* the message, redacted */
	int64_t when;    /* wall clock, seconds */
};

struct teach;

/* Remembers messages and writes taught ones to <state_dir>/taught.tsv. */
struct teach *teach_new(const char *state_dir);
void teach_free(struct teach *t);

/* The path of the taught file (owned by t). */
const char *teach_path(const struct teach *t);

/*
 * Remembers a message (text as written: it is redacted here) and what the
 * bot did with it. event_id may be NULL (then it cannot be pointed at).
 */
void teach_remember(struct teach *t, const char *event_id, const char *room, const char *text,
                    const char *intent, int by, int flagged);

/* The network gave the bot's answer to event_id its own id. */
void teach_answered(struct teach *t, const char *event_id, const char *answer_id);

/*
 * The remembered message that id names: the message itself, or the bot's
 * answer to it. id may be a bare event id or a link holding one
 * (https://matrix.to/#/!room:server/$event:server). NULL when not known.
 */
const struct teach_item *teach_find(const struct teach *t, const char *id);

/*
 * Appends text (already redacted), labelled intent (an intent id, or NULL
 * for "no answer"), to the taught file, with a comment line saying who
 * taught it and when. Returns 0, or -1 with errno.
 */
int teach_store(struct teach *t, const char *intent, const char *text, const char *moderator,
                int64_t when);

/* How many messages the taught file holds (0 without one). */
size_t teach_count(const struct teach *t);

/*
 * The taught file's messages labelled with a safety intent, for
 * learn_near_add: calls fn for each (at start, so that they stay in effect
 * across restarts).
 */
void teach_each_safety(const struct teach *t,
                       void (*fn)(void *arg, const char *intent, const char *text), void *arg);

/* `faqbot taught --state DIR`: prints the taught file. Returns the exit status. */
int teach_main(int argc, char **argv);

#endif
