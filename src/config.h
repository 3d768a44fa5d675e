/*
 * Configuration: one JSON file, checked against one table of options
 * (name, type, bounds, default, help), in the manner of tmux's
 * options-table.c. Every problem is reported with its file:line:col.
 * Without a file, every option has its default, which is what `faqbot chat`
 * runs on.
 *
 * Secrets (the Matrix password or access token, the IRC password) can be
 * written in the file, read from a file of their own (refused when group or
 * others can read it) or taken from the environment. They are never logged.
 */
#ifndef FAQBOT_CONFIG_H
#define FAQBOT_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "diag.h"

struct strlist {
	char **v; /* the strings */
	size_t n; /* how many */
};

/* Emergency and crisis contacts for one locale. */
struct cfg_contacts {
	char *locale;      /* "en", "de", ... */
	char *emergency;   /* the local emergency number, in words */
	char *oncology;    /* the oncology team's urgent line */
	char *crisis;      /* a crisis line: what follows "call" */
	char *crisis_text; /* a crisis line taking texts (after "text"), or "" */
	char *moderators;  /* how to reach the moderators */
	long verified;     /* the day these were last checked (days since 1970), or -1 */
	int line, col;     /* where "verified" (or the locale) is written; 0 for the defaults */
};

enum cfg_answer_mode {
	CFG_ANSWER_AUTO,    /* answer any confident question */
	CFG_ANSWER_MENTION, /* only when addressed: mention, reply, or the prefix */
};

/* A room's settings; "default" applies to rooms not listed. */
struct cfg_room {
	char *id;               /* a room id, an IRC channel, or "default" */
	int answer;             /* enum cfg_answer_mode, or -1 to inherit */
	char *locale;           /* or NULL to inherit */
	char *disclaimer;       /* or NULL to inherit */
	struct strlist intents; /* enabled intent ids or prefixes ("immunotherapy.*"); empty: all */
	int paused;             /* the bot stays silent here (but still answers safety) */
};

enum cfg_transport {
	CFG_TRANSPORT_MATRIX = 1 << 0,
	CFG_TRANSPORT_IRC = 1 << 1,
};

struct config {
	/* where things are */
	char *intents_dir;   /* "" for the embedded set */
	char *responses_dir; /* "" for the embedded set */
	char *labelled_dir;  /* labelled messages for the model; "" for beside intents_dir */
	char *state_dir;     /* state that survives restarts */
	/* logging */
	int log_level;     /* enum log_level */
	int log_chat_text; /* allow patients' words in debug logs */
	/* matching */
	double threshold;         /* points below which the bot stays silent */
	double margin;            /* top two closer than this: ambiguous */
	long match_limit;         /* PCRE2 match limit per pattern run */
	long depth_limit;         /* PCRE2 depth limit per pattern run */
	int jit;                  /* compile patterns with the PCRE2 JIT */
	struct strlist bot_names; /* names the bot answers to */
	/* the learned layer */
	int model;                /* train and use it */
	double model_answer;      /* no rule answered: the model answers from this probability */
	double model_safety_answer; /* P(emergency or crisis) for the safety answer */
	double model_safety_alert;  /* ... for a silent alert to the moderators */
	/* responses */
	int allow_drafts;   /* send draft responses (demo only) */
	char *disclaimer;   /* appended to every medical answer */
	char *locale;       /* default locale */
	double max_grade;   /* lint: highest reading grade */
	char *draft_notice; /* appended to drafts when they are sent */
	char *fallback;     /* addressed but not understood */
	/* safety */
	struct cfg_contacts *contacts; /* per locale; at least "en" */
	size_t ncontacts;
	long contacts_max_age_days; /* lint warns when older */
	char *alert_notice;         /* appended when moderators were alerted */
	/* rooms */
	struct cfg_room *rooms; /* per-room profiles, "default" first */
	size_t nrooms;
	char *command_prefix;      /* "!faq" */
	long cooldown_s;           /* same answer in a room not again within this */
	long user_rate_per_min;    /* answers per user per minute */
	long room_rate_per_min;    /* answers per room per minute */
	long choice_timeout_s;     /* how long a "did you mean" stays open */
	long safety_repeat_s;      /* one safety answer per person and room within this */
	long alert_every_s;        /* follow-up safety alerts at most this often */
	char *moderator_room;      /* where alerts and command replies go */
	struct strlist moderators; /* who may give commands (besides power level) */
	long moderator_power;      /* power level that makes a moderator */
	int watch_files;           /* reload when intents/ or responses/ change */
	char *metrics_listen;      /* "127.0.0.1:9464", or "" for none */
	/* transports */
	int transports; /* enum cfg_transport bits */
	/* matrix */
	char *mx_homeserver;             /* base URL */
	char *mx_user_id;                /* @bot:example.org */
	char *mx_password;               /* secret */
	char *mx_password_file;          /* or read from here */
	char *mx_access_token;           /* secret */
	char *mx_access_token_file;      /* or read from here */
	char *mx_device_name;            /* shown in the account's sessions */
	long mx_sync_timeout_ms;         /* long-poll timeout */
	long mx_max_body_bytes;          /* largest server reply accepted */
	long mx_max_message_bytes;       /* longer messages are read for safety only */
	long mx_backoff_max_ms;          /* cap of the retry backoff */
	long mx_request_timeout_ms;      /* a request that takes longer fails */
	struct strlist mx_ignored_users; /* never answered */
	struct strlist
	    mx_invite_allow; /* users (@u:s) or servers (:s) whose invites are accepted */
	int mx_safety_dms;   /* join direct chats from anyone, for safety answers only */
	/* irc */
	char *irc_server;            /* host */
	long irc_port;               /* 6697 with TLS */
	int irc_tls;                 /* TLS on */
	int irc_tls_verify;          /* check the certificate */
	char *irc_tls_ca_file;       /* CA bundle to verify with; "" for the system's */
	char *irc_nick;              /* wanted nick */
	char *irc_username;          /* user name */
	char *irc_realname;          /* real name */
	char *irc_sasl_user;         /* SASL PLAIN account, or "" */
	char *irc_password;          /* SASL password (secret) */
	char *irc_password_file;     /* or read from here */
	struct strlist irc_channels; /* "#chan" or "#chan key" */
	int irc_notice;              /* reply with NOTICE (else PRIVMSG) */
	int irc_private;             /* FAQ answers in private messages (safety: always) */
	long irc_burst;              /* lines sent at once */
	long irc_rate_ms;            /* then one line per this */
	long irc_ping_s;             /* lag check interval */
	long irc_backoff_max_ms;     /* reconnect backoff cap */
};

/* Fills cfg with every default. Free with config_free(). */
void config_defaults(struct config *cfg);
void config_free(struct config *cfg);

/*
 * Loads file over the defaults. Problems (syntax, unknown keys, types,
 * bounds, unreadable or too open secret files, a metrics.listen the daemon
 * would refuse) go to diags with their place; returns 0, or -1 when there
 * was an error. Warnings: a secret written in a file that group or others
 * can read, an IRC nick over 9 characters. Secrets from the environment
 * (FAQBOT_MATRIX_PASSWORD, FAQBOT_MATRIX_ACCESS_TOKEN, FAQBOT_IRC_PASSWORD)
 * are taken when the file gives none.
 */
int config_load(struct config *cfg, const char *file, struct diag_list *diags);

/* Loads from a string (for tests and the embedded demo config). */
int config_load_string(struct config *cfg, const char *name, const char *text,
                       struct diag_list *diags);

/* The contacts for locale, falling back to "en", then the first. */
const struct cfg_contacts *config_contacts(const struct config *cfg, const char *locale);

/* The profile for room, merged over "default" into *out (pointers borrowed). */
void config_room(const struct config *cfg, const char *room, struct cfg_room *out);

/* Lint-level checks beyond the syntax: contact dates, and so on. */
void config_check(const struct config *cfg, const char *file, long today, struct diag_list *diags);

/*
 * The state directory: state_dir if set, else $STATE_DIRECTORY (systemd's
 * StateDirectory=, first entry), else "./state". Returns a new string.
 */
char *config_state_dir(const struct config *cfg);

/* Prints every option with its type, default and help (for --help-config). */
void config_print_help(FILE *fp);

/* Is key a top-level key of the configuration? (To tell config files apart.) */
int config_is_top_key(const char *key);

void strlist_add(struct strlist *l, const char *s);
void strlist_free(struct strlist *l);
int strlist_has(const struct strlist *l, const char *s);

#endif
