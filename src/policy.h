/*
 * Room rules that need memory: flood limits per user and per room, the
 * cooldown that stops the same answer being repeated in a room, open "did
 * you mean" questions, and paused rooms (which survive restarts). All of it
 * is bounded: old entries are evicted first.
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
