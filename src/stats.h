/*
 * What the bot did, counted: answers per intent, unanswered questions,
 * safety alerts, sync errors, reloads, and the reply latency as a
 * histogram. Read by `!faq stats` and exported in the Prometheus text
 * format by metrics.c; saved in the state directory so that counts survive
 * restarts.
 */
#ifndef FAQBOT_STATS_H
#define FAQBOT_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct stats;

/* Returns empty counters; free with stats_free(). Never NULL. */
struct stats *stats_new(void);
void stats_free(struct stats *s);

void stats_answer(struct stats *s, const char *intent);	/* one answer sent */
void stats_pointer(struct stats *s, const char *intent);	/* a cooldown pointer instead */
void stats_choice(struct stats *s);				/* a "did you mean" */
void stats_unanswered(struct stats *s);				/* addressed, no answer */
void stats_safety_alert(struct stats *s, const char *intent);	/* moderators alerted */
void stats_model_answer(struct stats *s, const char *intent);	/* the answer was the model's */
void stats_safety_flag(struct stats *s);			/* a silent alert */
void stats_feedback(struct stats *s, const char *intent, int helpful); /* a 👍 (1) or 👎 (0) */
void stats_sync_error(struct stats *s, const char *transport);	/* a failed poll or send */
void stats_reload(struct stats *s, int ok);			/* a reload, good or kept old */
void stats_limited(struct stats *s);				/* silenced by a flood limit */
void stats_safety_repeat(struct stats *s);			/* a safety repeat not answered */
void stats_alert_undelivered(struct stats *s);			/* an alert with nowhere to go */
/* The bot is (1) or is not (0) in the moderator room now; not saved. */
void stats_moderator_room(struct stats *s, int joined);
/* Seconds from a message's arrival to its reply being handed to the network. */
void stats_latency(struct stats *s, double seconds);

/* Appends the Prometheus text exposition (version 0.0.4) of every counter. */
void stats_prometheus(const struct stats *s, struct buf *out);
/* Appends a short Markdown summary for moderators (!faq stats). */
void stats_summary(const struct stats *s, struct buf *out);

/* Saves / loads the counters as JSON (atomic write). 0, or -1 with errno. */
int stats_save(const struct stats *s, const char *path);
int stats_load(struct stats *s, const char *path);

#endif
