/*
 * The parts of the IRC transport that do not need a connection, exposed
 * for the unit tests (tests/unit/test_irc.c): the line framer and parser,
 * the splitter that fits replies into 512-byte lines, the SASL PLAIN
 * payload, the token bucket of the flood control, and the case mapping of
 * nicks and channels. Nothing outside irc.c and its tests uses these.
 */
#ifndef FAQBOT_IRC_INTERNAL_H
#define FAQBOT_IRC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#define IRC_MAX_PARAMS 15   /* RFC 1459: at most 15 parameters */
#define IRC_MAX_LINE   8191 /* longer lines (without CR LF) are dropped */

/* --- parsing ------------------------------------------------------------ */

/* One parsed line; the pointers point into the line given to irc_parse(). */
struct irc_msg {
	const char *prefix;                 /* "nick!user@host" or a server, or NULL */
	const char *command;                /* "PRIVMSG", "001", ...; upper case */
	const char *params[IRC_MAX_PARAMS]; /* the parameters, the trailing one last */
	int nparams;                        /* how many */
};

/*
 * Parses line (NUL-terminated, without CR LF) in place: IRCv3 message tags
 * are skipped, the prefix, command and parameters are cut out with NULs.
 * Returns 0, or -1 when the line is malformed (empty, no command, a tag or
 * prefix with nothing after it, a command that is not a word or 3 digits).
 */
int irc_parse(char *line, struct irc_msg *m);

/* Copies the nick of a prefix ("nick!user@host" -> "nick") into out; returns out. */
const char *irc_prefix_nick(const char *prefix, char *out, size_t outlen);

/*
 * Cuts a byte stream into lines (CR LF or LF). A line longer than
 * IRC_MAX_LINE bytes, or with a NUL in it, is dropped and counted. Lines are
 * handed to fn NUL-terminated and writable (irc_parse works in place).
 */
struct irc_rbuf {
	char buf[IRC_MAX_LINE + 2]; /* the line being read */
	size_t len;                 /* bytes in buf */
	int discard;                /* the current line is too long: skip to its end */
	int has_nul;                /* the current line has a NUL */
	unsigned long dropped_long; /* lines dropped for their length */
	unsigned long dropped_nul;  /* lines dropped for a NUL */
};

/* Called for each line; returns 0 to go on, -1 to stop feeding. */
typedef int (*irc_line_fn)(void *arg, char *line, size_t len);

void irc_rbuf_reset(struct irc_rbuf *rb);
/* Feeds n bytes; returns 0, or -1 when fn asked to stop (the rest is lost). */
int irc_rbuf_feed(struct irc_rbuf *rb, const char *data, size_t n, irc_line_fn fn, void *arg);

/* --- case mapping ------------------------------------------------------- */

enum irc_casemap {
	IRC_CASEMAP_RFC1459, /* []\~ are the lower case of {}|^ (the default) */
	IRC_CASEMAP_STRICT,  /* strict-rfc1459: []\ only */
	IRC_CASEMAP_ASCII,   /* A-Z only */
};

/* Compares two nicks or channel names as the server does; 0 when equal. */
int irc_casecmp(const char *a, const char *b, enum irc_casemap cm);

/*
 * Is text addressed to nick ("nick: question", "nick, question")? Returns 1
 * and sets *rest to the text after the prefix and its spaces, or 0.
 */
int irc_addressed(const char *text, const char *nick, enum irc_casemap cm, const char **rest);

/* --- sending ------------------------------------------------------------ */

/* Called for each piece of text the splitter cuts (not NUL-terminated). */
typedef void (*irc_piece_fn)(void *arg, const char *piece, size_t len);

/*
 * Splits text into pieces of at most max bytes (max >= 4): each line of the
 * text (LF or CR LF) on its own, long lines cut at a space where there is
 * one, else between two UTF-8 characters (never inside one, invalid bytes
 * being characters of their own). Spaces at a cut are dropped, and so are
 * empty lines. Returns the number of pieces.
 */
size_t irc_split(const char *text, size_t max, irc_piece_fn fn, void *arg);

/*
 * The SASL PLAIN payload for user and pass ("\0user\0pass"), base64 encoded.
 * The caller wipes (OPENSSL_cleanse or memset) and frees it.
 */
char *irc_sasl_plain(const char *user, const char *pass);

/*
 * Cuts a base64 payload into AUTHENTICATE arguments of 400 bytes, with a
 * final "+" when the last chunk is exactly 400 bytes (or the payload empty).
 * Returns the number of chunks.
 */
size_t irc_sasl_chunks(const char *b64, irc_piece_fn fn, void *arg);

/* --- nicks and channels -------------------------------------------------- */

/* Longest nick RFC 2812 allows, and ngircd's default. */
#define IRC_RFC_NICKLEN 9

/*
 * The nick to try after tries refusals of want: want itself, then want_,
 * then want1, want2, ... Each is cut to limit bytes (0: no limit) before
 * the suffix goes on, so that the suffix is never what the server cuts
 * off. Returns a new string (caller frees).
 */
char *irc_nick_try(const char *want, int tries, size_t limit);

/*
 * When to join a channel again after losing it (a KICK, a PART) or after
 * the server refused a JOIN: a delay that doubles from IRC_REJOIN_BASE_MS
 * to IRC_REJOIN_MAX_MS, started over only once the bot has stayed in the
 * channel IRC_STABLE_MS. A ban stops the tries at once, and so do
 * IRC_MAX_KICKS kicks in a row (each before a stable stay).
 */
#define IRC_STABLE_MS      60000  /* a stay (or a link) this long starts the delays over */
#define IRC_REJOIN_BASE_MS 5000   /* the first delay */
#define IRC_REJOIN_MAX_MS  300000 /* the longest */
#define IRC_MAX_KICKS      5      /* kicks in a row before the bot stops coming back */

enum irc_rejoin_why {
	IRC_REJOIN_KICKED,  /* a KICK */
	IRC_REJOIN_LEFT,    /* our own PART (a server may force it) */
	IRC_REJOIN_REFUSED, /* full, invite only, a wrong key ...: may change */
	IRC_REJOIN_BANNED,  /* 474: the channel does not want the bot */
};

struct irc_rejoin {
	int fails;          /* losses and refusals since the last stable stay */
	int kicks;          /* kicks among them */
	uint64_t joined_ms; /* when the last JOIN was confirmed, or 0 once counted */
};

/* The server confirmed our JOIN at now. */
void irc_rejoin_joined(struct irc_rejoin *r, uint64_t now);
/* Returns the delay (ms) before the next JOIN, or 0: stop trying. */
uint64_t irc_rejoin_next(struct irc_rejoin *r, enum irc_rejoin_why why, uint64_t now);

/* The flood control: burst lines at once, then one line per rate_ms. */
struct irc_bucket {
	long burst;       /* most tokens held */
	long rate_ms;     /* one token comes back after this */
	long tokens;      /* tokens now */
	uint64_t last_ms; /* when tokens were last counted */
};

void irc_bucket_init(struct irc_bucket *b, long burst, long rate_ms, uint64_t now_ms);
/* Takes a token: 0, or -1 when none is left (send later). */
int irc_bucket_take(struct irc_bucket *b, uint64_t now_ms);
/* Milliseconds until a token is there (0: now). */
uint64_t irc_bucket_wait(struct irc_bucket *b, uint64_t now_ms);

#endif
