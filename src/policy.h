/*
 * Room rules that need memory: flood limits per user and per room, the
 * cooldown that stops the same answer being repeated in a room, open "did
 * you mean" questions, paused rooms (which survive restarts), and the
 * memory of safety messages that keeps one person's flood from becoming a
 * flood of answers and alerts. All of it is bounded: old entries are
 * evicted first.
 */
#ifndef FAQBOT_POLICY_H
#define FAQBOT_POLICY_H

#include <stddef.h>
#include <stdint.h>

struct policy;

/* Limits: answers per minute per user and per room, cooldown and choice lifetimes. */
struct policy *policy_new(long user_per_min, long room_per_min, long cooldown_s,
    long choice_timeout_s);
void policy_free(struct policy *p);
/* Changes the limits (after a config reload); keeps what is remembered. */
void policy_set_limits(struct policy *p, long user_per_min, long room_per_min, long cooldown_s,
    long choice_timeout_s);

/*
 * Flood limits: returns 1, and takes a token from both buckets, when an
 * answer to sender in room may go out at now_ms; 0 when either is empty.
 */
int policy_allow(struct policy *p, const char *room, const char *sender, uint64_t now_ms);

/*
 * After policy_allow() said no: returns 1 once per stretch of time in
 * which sender's own limit holds them back (so that the bot says so once),
 * else 0 (already said, or the room's limit is the cause). The stretch
 * ends with the next answer policy_allow() lets through for sender.
 */
int policy_limit_notice(struct policy *p, const char *sender, uint64_t now_ms);

/*
 * Safety messages: the first of a sender in a room (per safety intent) is
 * answered and alerted; the next ones within window_s of that answer are
 * neither, and are counted for one follow-up alert, sent at most every
 * alert_every_s. Defaults: 300 and 60.
 */
void policy_set_safety(struct policy *p, long window_s, long alert_every_s);

enum policy_safety {
	POLICY_SAFETY_NEW,    /* answer it and alert the moderators */
	POLICY_SAFETY_REPEAT, /* answered less than the window ago: counted only */
};

/*
 * A safety message (intent) of sender in room, event_id (may be NULL), at
 * now_ms. For NEW, *more_before is the number of repeats counted since
 * the last alert that no follow-up reported yet (to mention in the alert).
 */
enum policy_safety policy_safety_seen(struct policy *p, const char *room, const char *sender,
    const char *intent, const char *event_id, uint64_t now_ms, unsigned long *more_before);

/* A follow-up alert: strings owned by the policy, valid until its next call. */
struct policy_followup {
	const char *room;     /* where */
	const char *sender;   /* who */
	const char *intent;   /* which safety intent */
	const char *event_id; /* the latest of the messages, or NULL */
	unsigned long more;   /* messages counted since the last alert */
};

/* Takes the next follow-up alert due at now_ms: returns 1 and fills *out, or 0. */
int policy_safety_due(struct policy *p, uint64_t now_ms, struct policy_followup *out);

/*
 * Was intent answered in room less than the cooldown ago? Returns 1 and
 * the event id of that answer (NULL if not yet known; owned by the policy)
 * and its age in seconds.
 */
int policy_recent(struct policy *p, const char *room, const char *intent, uint64_t now_ms,
    const char **event_id, uint64_t *age_s);
/* Records an answer of intent in room, sent with idempotency key. */
void policy_answered(struct policy *p, const char *room, const char *intent, const char *key,
    uint64_t now_ms);
/* The transport reports the event id of what was sent with key. */
void policy_sent(struct policy *p, const char *key, const char *event_id);

/* Opens "did you mean a or b" for sender in room. */
void policy_choice_open(struct policy *p, const char *room, const char *sender, const char *a,
    const char *b, uint64_t now_ms);
/*
 * Takes choice which (1 or 2) of sender's open question in room, if any and
 * not expired. Returns the intent id (a new string, caller frees) or NULL.
 */
char *policy_choice_take(struct policy *p, const char *room, const char *sender, int which,
    uint64_t now_ms);

void policy_pause(struct policy *p, const char *room, int paused);
int policy_paused(const struct policy *p, const char *room);
/* Appends the paused rooms, comma-separated, to a new string (caller frees). */
char *policy_paused_list(const struct policy *p);

/* Saves / loads the paused rooms (JSON, atomic). 0, or -1 with errno. */
int policy_save(const struct policy *p, const char *path);
int policy_load(struct policy *p, const char *path);

#endif
