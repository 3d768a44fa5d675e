/*
 * The bot's core, the same for every transport and for the terminal chat:
 * from a matched message and the room's profile to the reply to send (or
 * silence). Transports (transport/matrix.c, transport/irc.c) call it
 * through the event loop in daemon.c; `faqbot chat` calls it directly.
 */
#ifndef FAQBOT_BOT_H
#define FAQBOT_BOT_H

#include "config.h"
#include "diag.h"
#include "kb.h"
#include "match.h"
#include "response.h"
#include "transport.h"

struct policy;
struct stats;

enum bot_reply_kind {
	BOT_SILENT,   /* nothing to say */
	BOT_ANSWER,   /* a vetted FAQ or info answer */
	BOT_SAFETY,   /* the emergency or crisis answer */
	BOT_CHOICE,   /* "did you mean 1) ... 2) ...?" */
	BOT_FALLBACK, /* addressed, but no answer: points to people */
	BOT_POINTER,  /* the same answer was given recently: points back to it */
	BOT_NOTICE,   /* a reply to a moderator command, or a refusal */
};

struct bot_reply {
	enum bot_reply_kind kind;
	const struct intent *intent;    /* what was answered (ANSWER, SAFETY, POINTER) */
	const struct intent *choice[2]; /* the options of a CHOICE */
	struct rendered text;           /* what to send; empty when SILENT */
	int draft;                      /* the response sent is a draft */
	int named;                      /* the text addresses the asker by name already */
	const char *why;                /* for logs: why silent, or what was done */
};

/*
 * Composes the reply to a match result in room (a merged profile, see
 * config_room()). name is the asker's display name (may be NULL);
 * addressed says the bot was mentioned, replied to or given the prefix
 * (then "no answer" becomes the fallback). alerted says moderators were
 * alerted (adds the notice to a crisis answer). Never fails.
 */
void bot_compose(const struct kb *kb, const struct config *cfg, const struct match_result *res,
                 const struct cfg_room *room, const char *name, int addressed, int alerted,
                 struct bot_reply *out);

/* Composes the answer of one intent (after a "did you mean" choice, say). */
void bot_compose_intent(const struct kb *kb, const struct config *cfg, const struct intent *in,
                        const struct cfg_room *room, const char *name,
                        const struct match_result *res, int alerted, struct bot_reply *out);

void bot_reply_free(struct bot_reply *r);

/* Is in one of the safety intents (emergency, crisis)? */
int bot_is_safety(const struct intent *in);

/*
 * Where the configuration says to load the knowledge base from, with the
 * bot's names for the model: src points into this struct, so keep it
 * while src is used.
 */
struct bot_source {
	struct kb_source src;
	const char *ip[1], *rp[1], *lp[1];
	const char *names[17];
	char *taught;    /* the state directory's taught.tsv */
	char *cache_dir; /* where trained models are cached */
};
/*
 * state_dir: the state directory, for the moderators' taught messages and
 * the model cache (NULL: neither). bot_source_free() frees what it made.
 */
void bot_source_init(struct bot_source *bs, const struct config *cfg, const char *state_dir);
void bot_source_free(struct bot_source *bs);

/* Fills match options from the configuration (and a room's enabled intents). */
void bot_match_opts(const struct config *cfg, const struct cfg_room *room, struct match_opts *o,
                    const char **names_buf, size_t names_cap);

/* --- the running bot ---------------------------------------------------- */

#define BOT_MAX_TRANSPORTS 4

/* The learned model's cross-validated figures (`faqbot test --cv 5`), for `!faq stats`. */
struct bot_cv {
	int have;                   /* worked out */
	double accuracy, false_answers, answered, coverage, alarm_rate, flag_rate;
	size_t taught;              /* taught messages it learnt from */
	size_t messages;            /* labelled messages in all */
};

struct bot {
	struct config *cfg;		/* the configuration (not owned) */
	struct kb *kb;			/* what it answers from (owned; swapped on reload) */
	struct match_ctx *mctx;		/* matching scratch space */
	struct policy *policy;		/* flood limits, cooldowns, choices, pauses */
	struct stats *stats;		/* counters */
	struct transport *tp[BOT_MAX_TRANSPORTS]; /* the networks it is on */
	size_t ntp;
	const char *names[17];		/* names it answers to, NULL-terminated */
	char *state_dir;		/* state that survives restarts */
	uint64_t salt;			/* for sender hashes in the unanswered log */
	int dirty;			/* stats or pauses changed since the last save */
	int modroom;			/* the bot is in the moderator room: 1, 0 (lost), -1 not known */
	struct kb *pending;		/* a reload whose model is being trained: kb answers
					 * until bot_reload_poll() swaps it in */
	void (*on_pending)(void *arg);	/* told when a reload starts training, or the
					 * figures below are being worked out (to watch
					 * bot_job_fds) */
	void *pending_arg;
	struct teach *teach;		/* messages acted on lately; the taught file */
	struct learn_near *near;	/* messages taught as safety, in effect at once */
	char **listed;			/* the last `unanswered` list, for `teach N` */
	size_t nlisted;
	struct trainer_job *cv_job;	/* working out the model's figures, or NULL */
	struct bot_cv cv[2];		/* its figures now [0] and before [1] */
};

/*
 * A bot answering from kb (which it takes over) with cfg, keeping its state
 * in state_dir (created if missing). Returns NULL, with a log line, when the
 * state directory cannot be used.
 */
struct bot *bot_new(struct config *cfg, struct kb *kb, const char *state_dir);
void bot_free(struct bot *b);

void bot_add_transport(struct bot *b, struct transport *t);

/*
 * A message arrived on t: decide and send. Safety first (answered in every
 * room whatever its mode, and moderators alerted), then moderator commands,
 * pauses, "did you mean" answers, the room's mode, flood limits, cooldowns,
 * and at most one answer per message.
 */
void bot_on_message(struct bot *b, struct transport *t, const struct tp_msg *m);

/* The transport sent what carried key, as event_id (for cooldown pointers). */
void bot_on_sent(struct bot *b, const char *key, const char *event_id);

/*
 * sender reacted to event_id in room with key (an emoji): a 👍 or 👎 to one
 * of the bot's answers is counted for its intent, and a 👎 puts the
 * question in the unanswered log, "marked unhelpful".
 */
void bot_on_reaction(struct bot *b, struct transport *t, const char *room, const char *sender,
                     const char *event_id, const char *key);

/*
 * The descriptors of the bot's background work (a reload's trainer, the
 * model's figures) to wait on (POLLIN); their number, at most 4.
 */
int bot_job_fds(const struct bot *b, int fds[4]);

/* Starts working out the model's cross-validated figures (for `!faq stats`). */
void bot_cv_start(struct bot *b);

/*
 * Reads the figures' worker without blocking (bot_job_fds were ready);
 * returns 1 when they are worked out.
 */
int bot_cv_poll(struct bot *b);

/*
 * The bot's own membership of room on t is now joined (1) or not (0: kicked,
 * banned, left, refused); why says how, for the log (may be NULL). Losing
 * the moderator room is an error: alerts cannot reach anyone.
 */
void bot_on_membership(struct bot *b, struct transport *t, const char *room, int joined,
                       const char *why);

/*
 * room on t is end-to-end encrypted: the bot cannot read it. Says so there,
 * in plain text, with whom to ask instead. The transport calls this once
 * per room (and remembers that it did).
 */
void bot_on_unreadable(struct bot *b, struct transport *t, const char *room);

/* Sends what waits for a time (follow-up safety alerts); call about once a second. */
void bot_tick(struct bot *b);

/* 0 when the bot is known not to be in the configured moderator room, else 1. */
int bot_moderator_room_ok(const struct bot *b);

/*
 * Reloads intents, responses and labelled messages from the configured
 * directories. On any error the old set stays, the problems are in diags
 * (as lint prints them), and -1 is returned; moderators are told by the
 * caller (bot_notify). Returns 0 when the new set is in use, or 1 when it
 * loaded and its model is being trained: the old set answers until
 * bot_reload_poll() returns 1 (on_pending is called to say so).
 */
int bot_reload(struct bot *b, struct diag_list *diags);

/*
 * Reads the pending reload's trainer without blocking; returns 1 when the
 * new set is in use (diags say why it has no model, if it has none), 0
 * while it is still being trained.
 */
int bot_reload_poll(struct bot *b, struct diag_list *diags);

/* Sends Markdown to the moderator room, if one is configured. key may be NULL. */
void bot_notify(struct bot *b, const char *markdown, const char *key);

/* Saves what must survive a restart (counters, paused rooms). */
void bot_save(struct bot *b);

#endif
