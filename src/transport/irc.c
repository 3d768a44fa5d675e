/*
 * The IRC transport; see irc.h.
 *
 * States: RESOLVING (getaddrinfo_a, polled from a timer, so the loop never
 * waits on DNS) -> CONNECTING (a non-blocking connect to each address in
 * turn) -> TLS (a non-blocking handshake that verifies the certificate and
 * the host name) -> REGISTERING (CAP LS 302, SASL PLAIN, NICK/USER, nick
 * collisions) -> REGISTERED (JOIN, messages, PING lag checks). Any failure
 * closes the link and goes to WAITING, from where a timer starts again after
 * a capped exponential backoff with jitter; the backoff is forgotten only
 * once a link has stayed up a while (ngircd's Conf_UnsetServer does the
 * same), so a server that accepts and then drops the bot is not hammered.
 *
 * Sending: registration lines, PONG and the lag PING go out at once; JOINs,
 * nick changes and replies wait in bounded queues and leave through a token
 * bucket (irc.burst lines, then one per irc.rate_ms), so the server's flood
 * protection never fires: control lines first (a reply to a channel needs
 * the JOIN), then safety answers and alerts (the priority lane, never
 * dropped for age), then every other reply. Nothing here
 * writes to the socket from inside a handler: handlers append to the
 * output buffer, and the fd callback and the timers flush it, so that a
 * write error can never free the connection under a reader's feet.
 *
 * Replies are split to fit the 512-byte line the server relays (its
 * ":nick!user@host NOTICE #chan :" prefix included) on word and UTF-8
 * boundaries. The password and the SASL payload are never logged; chat text
 * only through log_chat().
 */
#define _GNU_SOURCE /* getaddrinfo_a */

#include "irc.h"
#include "irc_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "util.h"

#define IRC_BACKOFF_BASE_MS     1000   /* first reconnect delay */
#define IRC_RESOLVE_TIMEOUT_MS  30000  /* DNS gives up after this */
#define IRC_CONNECT_TIMEOUT_MS  15000  /* per address */
#define IRC_REGISTER_TIMEOUT_MS 60000  /* from TCP connect to 001 (TLS and SASL included) */
#define IRC_REGAIN_MS           30000  /* try for the wanted nick again this often */
#define IRC_MAX_NICK_TRIES      10     /* alternative nicks before giving up a connection */
#define IRC_PREFIX_RESERVE      100    /* ":nick!user@host " the server adds, at least */
#define IRC_HOST_MAX            63     /* a host name label as servers show it */
#define IRC_CTL_QUEUE           512    /* JOINs and NICKs waiting for the bucket */
#define IRC_MSG_QUEUE           400    /* reply lines waiting for the bucket */
#define IRC_PRIO_QUEUE          2000   /* safety lines waiting for the bucket */
#define IRC_QUEUE_MAX_AGE_MS    600000 /* replies older than this are not sent */
#define IRC_OUT_HIGH            16384  /* stop filling the output buffer above this */
#define IRC_KEY_RING            128    /* idempotency keys remembered */
#define IRC_MAX_MEMBERS         20000  /* members tracked per channel */
#define IRC_JOIN_LINE           400    /* JOIN lines are batched up to this */
#define IRC_SASL_CHUNK          400    /* AUTHENTICATE argument size */

enum irc_state {
	IRC_IDLE,        /* not started */
	IRC_RESOLVING,   /* looking the server up */
	IRC_CONNECTING,  /* TCP connect in progress */
	IRC_TLS,         /* TLS handshake in progress */
	IRC_REGISTERING, /* CAP, SASL, NICK, USER until 001 */
	IRC_REGISTERED,  /* on the network */
	IRC_WAITING,     /* between links: the retry timer runs */
	IRC_FAILED,      /* a configuration problem: no retries */
	IRC_STOPPED,     /* irc_stop() */
};

enum irc_sasl {
	SASL_OFF,    /* not configured */
	SASL_WANTED, /* configured: waiting for CAP LS */
	SASL_REQ,    /* CAP REQ :sasl sent */
	SASL_AUTH,   /* AUTHENTICATE PLAIN sent */
	SASL_DONE,   /* logged in (903) */
	SASL_FAILED, /* refused or unavailable; continuing without an account */
};

struct irc_member {
	char *nick;     /* as the server spells it */
	unsigned modes; /* bit i: the i-th mode of PREFIX (o, v, ...) */
};

struct irc_chan {
	char *name;             /* as configured ("#chan") */
	char *key;              /* its key, or NULL */
	int joined;             /* the server confirmed our JOIN */
	int names_done;         /* the member list is complete (366 seen) */
	int names_building;     /* a 353 list is coming in */
	struct irc_member *mem; /* who is in it */
	size_t nmem;
	size_t capmem;
	uint64_t rejoin_timer;   /* a JOIN after a KICK or a refusal */
	struct irc_rejoin rejoin; /* when to try again, and whether to */
	int given_up;            /* banned, or kicked too often: no JOIN until the next link */
	struct irc *c;           /* whose (for the timer) */
};

struct irc_qline {
	char *text;     /* the line without CR LF */
	uint64_t at_ms; /* when it was queued */
};

/* A bounded FIFO of lines. */
struct irc_queue {
	struct irc_qline *v; /* ring of cap entries */
	size_t cap;
	size_t head; /* the oldest */
	size_t n;    /* how many */
};

/* An asynchronous lookup; kept apart so that one glibc cannot cancel can outlive us. */
struct irc_gai {
	struct gaicb cb;       /* glibc's request */
	struct gaicb *list[1]; /* the list getaddrinfo_a() takes */
	struct addrinfo hints; /* what we ask for */
	char *host;            /* the name looked up */
	char port[8];          /* the service */
};

struct irc {
	struct loop *loop;
	const struct config *cfg;
	struct bot *bot;
	struct transport tp;
	enum irc_state state;

	SSL_CTX *ctx;   /* TLS settings, NULL without TLS */
	SSL *ssl;       /* the TLS session, or NULL */
	int fd;         /* the socket, or -1 */
	unsigned gen;   /* bumped at each close: stale callbacks notice */
	int ip_literal; /* irc.server is an IP address */

	struct irc_gai *gai;      /* the lookup in progress, or NULL */
	uint64_t gai_started;     /* when it began */
	struct addrinfo *ai;      /* the addresses found */
	struct addrinfo *ai_next; /* the next to try */
	int last_errno;           /* why the last address failed */

	uint64_t retry_timer;   /* WAITING -> start again */
	uint64_t conn_timer;    /* connect, or registration, timeout */
	uint64_t resolve_timer; /* polls the lookup */
	uint64_t pump_timer;    /* the bucket has a token again */
	uint64_t ping_timer;    /* idle check */
	uint64_t lag_timer;     /* our PING was not answered in time */
	uint64_t regain_timer;  /* try for the wanted nick */

	struct irc_rbuf *rb; /* incoming bytes cut into lines */
	struct buf out;      /* outgoing bytes */
	size_t out_off;      /* of which this many are written */
	size_t ssl_wretry;   /* length an SSL_write must be repeated with, or 0 */
	int tls_want_write;  /* the handshake or a read waits for POLLOUT */

	char *nick;         /* our nick now, or the one being tried */
	char *want;         /* the nick wanted: irc.nick, cut to nicklen */
	size_t nicklen;     /* the server's NICKLEN (or 9 after a long nick was refused); 0: none known */
	int nick_tries;     /* alternatives tried in this registration */
	enum irc_sasl sasl; /* where SASL stands */
	struct buf caps;    /* CAP LS, collected over continuation lines */

	enum irc_casemap casemap; /* from ISUPPORT */
	char prefix_modes[16];    /* "ov" */
	char prefix_syms[16];     /* "@+" */
	char chanmodes[4][64];    /* CHANMODES A, B, C, D */
	char chantypes[16];       /* "#&" */

	struct irc_bucket bucket; /* flood control */
	struct irc_queue ctl;     /* JOIN, NICK */
	struct irc_queue prio;    /* safety answers and alerts */
	struct irc_queue msg;     /* other replies */

	int failures;          /* links that failed since the last stable one */
	uint64_t up_since_ms;  /* registered at, or 0 */
	uint64_t last_rx_ms;   /* last line received */
	uint64_t ping_sent_ms; /* our lag PING is out since, or 0 */
	char ping_token[32];   /* what its PONG carries */
	unsigned long ping_seq;

	struct irc_chan *chans; /* configured channels */
	size_t nchans;

	uint64_t keys[IRC_KEY_RING]; /* hashes of idempotency keys sent */
	size_t keys_next;
	unsigned long nsent; /* lines of replies sent */
	unsigned long nrecv; /* messages passed to the core */
};

static void irc_connect_next(struct irc *c);
static void irc_flush(struct irc *c);
static void irc_close(struct irc *c, const char *why);
static int irc_send(void *impl, const struct tp_out *out);
static int irc_power_level(void *impl, const char *room, const char *user);
static int irc_link(void *impl, const char *room, const char *event_id, struct buf *out);
static int irc_has_room(void *impl, const char *room);

/* --- parsing ------------------------------------------------------------ */

int
irc_parse(char *p, struct irc_msg *m)
{
	char *cmd;

	memset(m, 0, sizeof(*m));
	if (*p == '@') {
		/* IRCv3 tags: not used, skipped whole. */
		if ((p = strchr(p, ' ')) == NULL)
			return -1;
	}
	while (*p == ' ')
		p++;
	if (*p == ':') {
		m->prefix = ++p;
		while (*p && *p != ' ')
			p++;
		if (*p == '\0' || p == m->prefix)
			return -1;
		*p++ = '\0';
		while (*p == ' ')
			p++;
	}
	if (*p == '\0')
		return -1;
	cmd = p;
	for (; *p && *p != ' '; p++) {
		if (!isalnum((unsigned char)*p))
			return -1;
		*p = (char)toupper((unsigned char)*p);
	}
	if (isdigit((unsigned char)cmd[0]) &&
	    (p - cmd != 3 || !isdigit((unsigned char)cmd[1]) || !isdigit((unsigned char)cmd[2])))
		return -1;
	if (*p)
		*p++ = '\0';
	m->command = cmd;
	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if (*p == ':' || m->nparams == IRC_MAX_PARAMS - 1) {
			/* The trailing parameter (or the 15th): the rest of the line. */
			if (*p == ':')
				p++;
			m->params[m->nparams++] = p;
			break;
		}
		m->params[m->nparams++] = p;
		while (*p && *p != ' ')
			p++;
		if (*p)
			*p++ = '\0';
	}
	return 0;
}

const char *
irc_prefix_nick(const char *prefix, char *out, size_t outlen)
{
	size_t n = prefix ? strcspn(prefix, "!@") : 0;

	if (outlen == 0)
		return out;
	if (n >= outlen)
		n = outlen - 1;
	if (n)
		memcpy(out, prefix, n);
	out[n] = '\0';
	return out;
}

void
irc_rbuf_reset(struct irc_rbuf *rb)
{
	rb->len = 0;
	rb->discard = 0;
	rb->has_nul = 0;
}

int
irc_rbuf_feed(struct irc_rbuf *rb, const char *data, size_t n, irc_line_fn fn, void *arg)
{
	size_t i = 0;

	while (i < n) {
		const char *nl = memchr(data + i, '\n', n - i);
		size_t take = nl ? (size_t)(nl - (data + i)) : n - i, len;

		if (!rb->discard) {
			/* One byte more than the limit for a CR before the LF. */
			if (rb->len + take > IRC_MAX_LINE + 1) {
				rb->discard = 1;
			} else {
				if (memchr(data + i, '\0', take) != NULL)
					rb->has_nul = 1;
				memcpy(rb->buf + rb->len, data + i, take);
				rb->len += take;
			}
		}
		i += take;
		if (nl == NULL)
			break;
		i++;
		len = rb->len;
		if (len > 0 && rb->buf[len - 1] == '\r')
			len--;
		if (rb->discard || len > IRC_MAX_LINE) {
			rb->dropped_long++;
		} else if (rb->has_nul) {
			rb->dropped_nul++;
		} else if (len > 0) {
			rb->buf[len] = '\0';
			irc_rbuf_reset(rb);
			if (fn(arg, rb->buf, len) == -1)
				return -1;
			continue;
		}
		irc_rbuf_reset(rb);
	}
	return 0;
}

/* --- case mapping ------------------------------------------------------- */

static int
fold(int ch, enum irc_casemap cm)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch + ('a' - 'A');
	if (cm == IRC_CASEMAP_ASCII)
		return ch;
	switch (ch) {
	case '[':
		return '{';
	case ']':
		return '}';
	case '\\':
		return '|';
	case '~':
		return cm == IRC_CASEMAP_RFC1459 ? '^' : ch;
	default:
		return ch;
	}
}

static int
ncasecmp(const char *a, const char *b, size_t n, enum irc_casemap cm)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int x = fold((unsigned char)a[i], cm), y = fold((unsigned char)b[i], cm);

		if (x != y)
			return x - y;
		if (x == 0)
			return 0;
	}
	return 0;
}

int
irc_casecmp(const char *a, const char *b, enum irc_casemap cm)
{
	return ncasecmp(a, b, (size_t)-1, cm);
}

int
irc_addressed(const char *text, const char *nick, enum irc_casemap cm, const char **rest)
{
	size_t n = strlen(nick);
	const char *p;

	if (n == 0 || strnlen(text, n + 1) < n + 1 || ncasecmp(text, nick, n, cm) != 0)
		return 0;
	if (text[n] != ':' && text[n] != ',')
		return 0;
	for (p = text + n + 1; *p == ' ' || *p == '\t'; p++)
		;
	*rest = p;
	return 1;
}

/* --- splitting, SASL, the bucket ---------------------------------------- */

static int
is_space(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* Splits one line of text (no LF in it); returns the pieces emitted. */
static size_t
split_line(const char *s, size_t len, size_t max, irc_piece_fn fn, void *arg)
{
	size_t n = 0;

	while (len > 0 && is_space(s[len - 1]))
		len--;
	while (len > max) {
		size_t k = max, sp, end;

		/* s[k] starts the next piece: not a continuation byte (at most 3 back). */
		while (k > max - 3 && ((unsigned char)s[k] & 0xc0) == 0x80)
			k--;
		if (((unsigned char)s[k] & 0xc0) == 0x80)
			k = max; /* invalid UTF-8: any cut is as good */
		/* A space at s[sp] (sp <= k) ends the piece before it and is dropped. */
		for (sp = k; sp > 0 && !is_space(s[sp]); sp--)
			;
		if (sp > 0) {
			end = sp;
			while (end > 0 && is_space(s[end - 1]))
				end--;
			k = sp + 1;
		} else {
			end = k;
		}
		if (end > 0) {
			fn(arg, s, end);
			n++;
		}
		s += k;
		len -= k;
		while (len > 0 && is_space(*s)) {
			s++;
			len--;
		}
	}
	if (len > 0) {
		fn(arg, s, len);
		n++;
	}
	return n;
}

size_t
irc_split(const char *text, size_t max, irc_piece_fn fn, void *arg)
{
	const char *p = text;
	size_t n = 0;

	if (max < 4)
		max = 4;
	while (*p) {
		size_t len = strcspn(p, "\r\n");

		n += split_line(p, len, max, fn, arg);
		p += len;
		if (*p == '\r')
			p++;
		if (*p == '\n')
			p++;
	}
	return n;
}

char *
irc_sasl_plain(const char *user, const char *pass)
{
	size_t ul = strlen(user), pl = strlen(pass), n = 1 + ul + 1 + pl;
	unsigned char *raw = xmalloc(n);
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);

	raw[0] = '\0';
	memcpy(raw + 1, user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, pass, pl);
	EVP_EncodeBlock((unsigned char *)out, raw, (int)n);
	OPENSSL_cleanse(raw, n);
	free(raw);
	return out;
}

size_t
irc_sasl_chunks(const char *b64, irc_piece_fn fn, void *arg)
{
	size_t len = strlen(b64), off = 0, n = 0;

	while (off < len) {
		size_t k = len - off < IRC_SASL_CHUNK ? len - off : IRC_SASL_CHUNK;

		fn(arg, b64 + off, k);
		off += k;
		n++;
	}
	if (len % IRC_SASL_CHUNK == 0) {
		fn(arg, "+", 1);
		n++;
	}
	return n;
}

void
irc_bucket_init(struct irc_bucket *b, long burst, long rate_ms, uint64_t now)
{
	b->burst = burst < 1 ? 1 : burst;
	b->rate_ms = rate_ms < 1 ? 1 : rate_ms;
	b->tokens = b->burst;
	b->last_ms = now;
}

static void
bucket_refill(struct irc_bucket *b, uint64_t now)
{
	uint64_t n;

	if (now <= b->last_ms)
		return;
	if (b->tokens >= b->burst) {
		b->last_ms = now;
		return;
	}
	n = (now - b->last_ms) / (uint64_t)b->rate_ms;
	if (n == 0)
		return;
	if (n >= (uint64_t)(b->burst - b->tokens)) {
		b->tokens = b->burst;
		b->last_ms = now;
	} else {
		b->tokens += (long)n;
		b->last_ms += n * (uint64_t)b->rate_ms;
	}
}

int
irc_bucket_take(struct irc_bucket *b, uint64_t now)
{
	bucket_refill(b, now);
	if (b->tokens <= 0)
		return -1;
	b->tokens--;
	return 0;
}

uint64_t
irc_bucket_wait(struct irc_bucket *b, uint64_t now)
{
	bucket_refill(b, now);
	if (b->tokens > 0)
		return 0;
	if (now < b->last_ms)
		return (uint64_t)b->rate_ms;
	return (uint64_t)b->rate_ms - (now - b->last_ms);
}

/* --- small helpers ------------------------------------------------------ */

/* A string from the server made safe for a log line (4 rotating buffers). */
static const char *
esc(const char *s)
{
	static char bufs[4][300];
	static int next;
	char *b = bufs[next++ & 3];

	if (s == NULL)
		return "";
	return log_escape(s, strlen(s), b, sizeof(bufs[0]));
}

static uint64_t
jitter(uint64_t ms)
{
	/* 0.5x to 1.5x, so that many bots do not come back in step. */
	return ms / 2 + (uint64_t)((double)ms * ((double)rand() / RAND_MAX));
}

static void
timer_cancel(struct irc *c, uint64_t *t)
{
	loop_timer_cancel(c->loop, *t);
	*t = 0;
}

static int
is_channel(const struct irc *c, const char *name)
{
	return name[0] != '\0' && strchr(c->chantypes, name[0]) != NULL;
}

static struct irc_chan *
chan_find(struct irc *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nchans; i++)
		if (irc_casecmp(c->chans[i].name, name, c->casemap) == 0)
			return &c->chans[i];
	return NULL;
}

static int
is_me(const struct irc *c, const char *nick)
{
	return c->nick != NULL && irc_casecmp(nick, c->nick, c->casemap) == 0;
}

/* The nick the bot wants: irc.nick as this server can take it. */
static const char *
wanted(const struct irc *c)
{
	return c->want ? c->want : c->cfg->irc_nick;
}

/* Sets the server's nick length (0: unknown), and the wanted nick with it. */
static void
set_nicklen(struct irc *c, size_t n)
{
	c->nicklen = n;
	free(c->want);
	c->want = irc_nick_try(c->cfg->irc_nick, 0, n);
}

/* --- queues ------------------------------------------------------------- */

static void
q_init(struct irc_queue *q, size_t cap)
{
	q->v = xcalloc(cap, sizeof(*q->v));
	q->cap = cap;
	q->head = q->n = 0;
}

static size_t
q_room(const struct irc_queue *q)
{
	return q->cap - q->n;
}

/* Takes text over; -1 (and frees it) when the queue is full. */
static int
q_push(struct irc_queue *q, char *text, uint64_t now)
{
	struct irc_qline *l;

	if (q->n == q->cap) {
		free(text);
		return -1;
	}
	l = &q->v[(q->head + q->n) % q->cap];
	l->text = text;
	l->at_ms = now;
	q->n++;
	return 0;
}

static struct irc_qline *
q_peek(struct irc_queue *q)
{
	return q->n ? &q->v[q->head] : NULL;
}

static void
q_drop(struct irc_queue *q)
{
	if (q->n == 0)
		return;
	free(q->v[q->head].text);
	q->v[q->head].text = NULL;
	q->head = (q->head + 1) % q->cap;
	q->n--;
}

static void
q_clear(struct irc_queue *q)
{
	while (q->n)
		q_drop(q);
}

/* --- output ------------------------------------------------------------- */

/* Appends a line (CR LF added) to the output, bypassing the queues. */
static void send_now(struct irc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
send_now(struct irc *c, const char *fmt, ...)
{
	va_list ap;
	size_t start = c->out.len;

	if (c->fd < 0)
		return;
	va_start(ap, fmt);
	buf_vprintf(&c->out, fmt, ap);
	va_end(ap);
	/* A line never carries CR, LF or NUL of its own (they come from the server). */
	for (; start < c->out.len; start++)
		if (c->out.data[start] == '\r' || c->out.data[start] == '\n')
			c->out.data[start] = ' ';
	buf_puts(&c->out, "\r\n");
}

/* Queues a control line (JOIN, NICK) for the bucket. */
static void send_ctl(struct irc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
send_ctl(struct irc *c, const char *fmt, ...)
{
	va_list ap;
	struct buf b;

	buf_init(&b);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (q_push(&c->ctl, buf_steal(&b), now_ms()) == -1)
		log_warnx("irc: control queue full; a line is dropped");
}

/* Writes what the socket takes; returns 0, or -1 when the link was closed. */
static int
write_out(struct irc *c)
{
	while (c->out_off < c->out.len) {
		size_t len = c->out.len - c->out_off;
		ssize_t n;

		if (c->ssl) {
			int r, e;

			if (c->ssl_wretry)
				len = c->ssl_wretry;
			if (len > INT32_MAX)
				len = INT32_MAX;
			ERR_clear_error();
			r = SSL_write(c->ssl, c->out.data + c->out_off, (int)len);
			if (r > 0) {
				c->ssl_wretry = 0;
				c->out_off += (size_t)r;
				continue;
			}
			e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
				/* It must be repeated with the same length. */
				c->ssl_wretry = len;
				break;
			}
			irc_close(c, e == SSL_ERROR_SYSCALL ? strerror(errno) : "TLS write failed");
			return -1;
		}
		n = write(c->fd, c->out.data + c->out_off, len);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		irc_close(c, n < 0 ? strerror(errno) : "write returned 0");
		return -1;
	}
	if (c->out_off == c->out.len) {
		buf_reset(&c->out);
		c->out_off = 0;
	} else if (c->out_off > 65536 && c->ssl_wretry == 0) {
		/* Drop what was written so the buffer does not grow forever. */
		memmove(c->out.data, c->out.data + c->out_off, c->out.len - c->out_off);
		c->out.len -= c->out_off;
		c->out.data[c->out.len] = '\0';
		c->out_off = 0;
	}
	return 0;
}

static void
on_pump_timer(void *arg)
{
	struct irc *c = arg;

	c->pump_timer = 0;
	irc_flush(c);
}

/* Moves queued lines into the output as the bucket allows. */
static void
pump(struct irc *c)
{
	uint64_t now = now_ms();
	unsigned long dropped = 0;

	if (c->state != IRC_REGISTERED || c->fd < 0)
		return;
	while (c->out.len - c->out_off < IRC_OUT_HIGH) {
		struct irc_queue *q = c->ctl.n ? &c->ctl : c->prio.n ? &c->prio : &c->msg;
		struct irc_qline *l = q_peek(q);

		if (l == NULL)
			break;
		if (q == &c->msg && now - l->at_ms > IRC_QUEUE_MAX_AGE_MS) {
			q_drop(q);
			dropped++;
			continue;
		}
		if (irc_bucket_take(&c->bucket, now) == -1) {
			if (c->pump_timer == 0)
				c->pump_timer = loop_timer(
				    c->loop, irc_bucket_wait(&c->bucket, now), on_pump_timer, c);
			break;
		}
		buf_puts(&c->out, l->text);
		buf_puts(&c->out, "\r\n");
		if (q != &c->ctl)
			c->nsent++;
		q_drop(q);
	}
	if (dropped)
		log_warnx("irc: %lu reply line(s) waited over %d minutes and were dropped", dropped,
		          IRC_QUEUE_MAX_AGE_MS / 60000);
}

static void on_fd(void *arg, int fd, short revents);

/* Pumps the queues, writes, and sets what to poll for. */
static void
irc_flush(struct irc *c)
{
	short ev = POLLIN;

	if (c->fd < 0)
		return;
	pump(c);
	if (c->state >= IRC_REGISTERING && c->state <= IRC_REGISTERED && write_out(c) == -1)
		return;
	if (c->state == IRC_CONNECTING)
		ev = POLLOUT;
	else if (c->tls_want_write || c->out_off < c->out.len)
		ev |= POLLOUT;
	loop_add_fd(c->loop, c->fd, ev, on_fd, c);
}

/* --- channels and members ----------------------------------------------- */

static void
members_clear(struct irc_chan *ch)
{
	size_t i;

	for (i = 0; i < ch->nmem; i++)
		free(ch->mem[i].nick);
	ch->nmem = 0;
	ch->names_done = ch->names_building = 0;
}

static struct irc_member *
member_find(struct irc *c, struct irc_chan *ch, const char *nick)
{
	size_t i;

	for (i = 0; i < ch->nmem; i++)
		if (irc_casecmp(ch->mem[i].nick, nick, c->casemap) == 0)
			return &ch->mem[i];
	return NULL;
}

static void
member_set(struct irc *c, struct irc_chan *ch, const char *nick, unsigned modes)
{
	struct irc_member *m = member_find(c, ch, nick);

	if (m != NULL) {
		m->modes = modes;
		return;
	}
	if (ch->nmem >= IRC_MAX_MEMBERS) {
		/* Too many to track: power levels become unknown rather than wrong. */
		ch->names_done = 0;
		return;
	}
	if (ch->nmem == ch->capmem) {
		ch->capmem = ch->capmem ? ch->capmem * 2 : 16;
		ch->mem = xreallocarray(ch->mem, ch->capmem, sizeof(*ch->mem));
	}
	ch->mem[ch->nmem].nick = xstrdup(nick);
	ch->mem[ch->nmem].modes = modes;
	ch->nmem++;
}

static void
member_del(struct irc *c, struct irc_chan *ch, const char *nick)
{
	struct irc_member *m = member_find(c, ch, nick);

	if (m == NULL)
		return;
	free(m->nick);
	*m = ch->mem[--ch->nmem];
}

static void
on_rejoin(void *arg)
{
	struct irc_chan *ch = arg;
	struct irc *c = ch->c;

	ch->rejoin_timer = 0;
	if (c->state != IRC_REGISTERED || ch->joined || ch->given_up)
		return;
	if (ch->key)
		send_ctl(c, "JOIN %s %s", ch->name, ch->key);
	else
		send_ctl(c, "JOIN %s", ch->name);
	irc_flush(c);
}

char *
irc_nick_try(const char *want, int tries, size_t limit)
{
	char suffix[16] = "";
	size_t base = strlen(want), sl;

	if (tries == 1)
		snprintf(suffix, sizeof(suffix), "_");
	else if (tries > 1)
		snprintf(suffix, sizeof(suffix), "%d", tries - 1);
	sl = strlen(suffix);
	if (limit > 0 && base + sl > limit)
		base = limit > sl ? limit - sl : 1;
	return xasprintf("%.*s%s", (int)base, want, suffix);
}

void
irc_rejoin_joined(struct irc_rejoin *r, uint64_t now)
{
	r->joined_ms = now ? now : 1;
}

uint64_t
irc_rejoin_next(struct irc_rejoin *r, enum irc_rejoin_why why, uint64_t now)
{
	uint64_t ms = IRC_REJOIN_BASE_MS;
	int i;

	/* A stay long enough starts the delays over, once: the JOINs refused after it do not. */
	if (r->joined_ms && now - r->joined_ms >= IRC_STABLE_MS)
		r->fails = r->kicks = 0;
	r->joined_ms = 0;
	if (why == IRC_REJOIN_BANNED)
		return 0;
	if (why == IRC_REJOIN_KICKED && ++r->kicks >= IRC_MAX_KICKS)
		return 0;
	for (i = 0; i < r->fails && ms < IRC_REJOIN_MAX_MS; i++)
		ms *= 2;
	if (ms > IRC_REJOIN_MAX_MS)
		ms = IRC_REJOIN_MAX_MS;
	r->fails++;
	return ms;
}

/* After losing ch, or a refused JOIN: try again later, or give up and say so. */
static void
schedule_rejoin(struct irc *c, struct irc_chan *ch, enum irc_rejoin_why why)
{
	uint64_t ms = irc_rejoin_next(&ch->rejoin, why, now_ms());
	char *md;

	loop_timer_cancel(c->loop, ch->rejoin_timer);
	ch->rejoin_timer = 0;
	if (ms > 0) {
		ch->rejoin_timer = loop_timer(c->loop, ms, on_rejoin, ch);
		log_info("irc: will try to join %s again in %llu s", ch->name,
		         (unsigned long long)(ms / 1000));
		return;
	}
	ch->given_up = 1;
	log_warnx("irc: %s %s: the bot will not try to join it again until it reconnects or "
	          "is restarted",
	          why == IRC_REJOIN_BANNED ? "banned from" : "kicked too often from", ch->name);
	md = xasprintf("**The bot is %s %s on IRC**, so it no longer answers there, not even "
	               "emergencies. It will not try to join again until it reconnects or is "
	               "restarted; if it should be there, lift %s and restart it.",
	               why == IRC_REJOIN_BANNED ? "banned from" : "kicked again and again from",
	               ch->name, why == IRC_REJOIN_BANNED ? "the ban" : "what makes it be kicked");
	bot_notify(c->bot, md, NULL);
	free(md);
}

/* JOINs every configured channel, batched; keyed channels first in each line. */
static void
join_all(struct irc *c)
{
	struct buf names, keys;
	int pass;
	size_t i;

	buf_init(&names);
	buf_init(&keys);
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < c->nchans; i++) {
			struct irc_chan *ch = &c->chans[i];

			if ((pass == 0) != (ch->key != NULL))
				continue;
			if (names.len && names.len + keys.len + strlen(ch->name) +
			                         (ch->key ? strlen(ch->key) : 0) + 8 >
			                     IRC_JOIN_LINE) {
				send_ctl(c, "JOIN %s%s%s", names.data, keys.len ? " " : "",
				         keys.len ? keys.data : "");
				buf_reset(&names);
				buf_reset(&keys);
			}
			buf_printf(&names, "%s%s", names.len ? "," : "", ch->name);
			if (ch->key)
				buf_printf(&keys, "%s%s", keys.len ? "," : "", ch->key);
		}
		/* Keyed and unkeyed channels go in separate lines: keys pair by position. */
		if (names.len)
			send_ctl(c, "JOIN %s%s%s", names.data, keys.len ? " " : "",
			         keys.len ? keys.data : "");
		buf_reset(&names);
		buf_reset(&keys);
	}
	buf_free(&names);
	buf_free(&keys);
}

/* --- connection life ---------------------------------------------------- */

static void
on_retry(void *arg)
{
	struct irc *c = arg;

	c->retry_timer = 0;
	if (c->state != IRC_WAITING)
		return;
	irc_connect_next(c); /* with ai == NULL: starts a new lookup */
}

static uint64_t
backoff_ms(const struct irc *c)
{
	uint64_t ms = IRC_BACKOFF_BASE_MS, cap = (uint64_t)c->cfg->irc_backoff_max_ms;
	int i;

	for (i = 1; i < c->failures && ms < cap; i++)
		ms *= 2;
	if (ms > cap)
		ms = cap;
	ms = jitter(ms);
	return ms > cap ? cap : ms;
}

/* Closes the socket and everything tied to this link; the queue of replies stays. */
static void
close_link(struct irc *c)
{
	size_t i;

	c->gen++;
	if (c->fd >= 0)
		loop_del_fd(c->loop, c->fd);
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	timer_cancel(c, &c->conn_timer);
	timer_cancel(c, &c->pump_timer);
	timer_cancel(c, &c->ping_timer);
	timer_cancel(c, &c->lag_timer);
	timer_cancel(c, &c->regain_timer);
	irc_rbuf_reset(c->rb);
	buf_reset(&c->out);
	c->out_off = 0;
	c->ssl_wretry = 0;
	c->tls_want_write = 0;
	c->ping_sent_ms = 0;
	buf_reset(&c->caps);
	q_clear(&c->ctl);
	for (i = 0; i < c->nchans; i++) {
		c->chans[i].joined = 0;
		c->chans[i].given_up = 0; /* a new link tries every channel again */
		memset(&c->chans[i].rejoin, 0, sizeof(c->chans[i].rejoin));
		members_clear(&c->chans[i]);
		timer_cancel(c, &c->chans[i].rejoin_timer);
	}
}

/* The link is gone (or could not be made): wait, then start again. */
static void
irc_close(struct irc *c, const char *why)
{
	uint64_t now = now_ms(), ms;

	if (c->state == IRC_STOPPED || c->state == IRC_FAILED)
		return;
	close_link(c);
	if (c->up_since_ms != 0 && now - c->up_since_ms >= IRC_STABLE_MS)
		c->failures = 0;
	c->up_since_ms = 0;
	c->failures++;
	ms = backoff_ms(c);
	log_warnx("irc: %s; connecting again in %llu ms", why, (unsigned long long)ms);
	c->state = IRC_WAITING;
	c->retry_timer = loop_timer(c->loop, ms, on_retry, c);
}

/* Stops for good: a configuration problem that retrying cannot fix. */
static void
irc_fail(struct irc *c, const char *why)
{
	close_link(c);
	log_warnx("irc: %s; the IRC transport stops", why);
	c->state = IRC_FAILED;
}

static void
on_conn_timeout(void *arg)
{
	struct irc *c = arg;

	c->conn_timer = 0;
	if (c->state == IRC_CONNECTING) {
		log_info("irc: connecting to an address of %s timed out", esc(c->cfg->irc_server));
		c->last_errno = ETIMEDOUT;
		loop_del_fd(c->loop, c->fd);
		close(c->fd);
		c->fd = -1;
		irc_connect_next(c);
	} else if (c->state == IRC_TLS || c->state == IRC_REGISTERING) {
		irc_close(c, c->state == IRC_TLS
		                 ? "TLS handshake timed out"
		                 : "registration timed out (no 001 from the server)");
	}
}

static void
start_registration(struct irc *c)
{
	c->state = IRC_REGISTERING;
	c->nick_tries = 0;
	free(c->nick);
	c->nick = xstrdup(wanted(c));
	c->sasl = c->cfg->irc_sasl_user[0] ? SASL_WANTED : SASL_OFF;
	c->last_rx_ms = now_ms();
	send_now(c, "CAP LS 302");
	send_now(c, "NICK %s", c->nick);
	send_now(c, "USER %s 0 * :%s", c->cfg->irc_username, c->cfg->irc_realname);
	irc_flush(c);
}

/* Runs (or continues) the TLS handshake. */
static void
tls_handshake(struct irc *c)
{
	int r, e;

	ERR_clear_error();
	r = SSL_connect(c->ssl);
	if (r == 1) {
		c->tls_want_write = 0;
		log_info("irc: TLS established (%s, %s)%s", SSL_get_version(c->ssl),
		         SSL_get_cipher_name(c->ssl),
		         c->cfg->irc_tls_verify ? ", certificate verified"
		                                : ", certificate NOT verified");
		start_registration(c);
		return;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		c->tls_want_write = e == SSL_ERROR_WANT_WRITE;
		irc_flush(c);
		return;
	}
	{
		long vr = SSL_get_verify_result(c->ssl);
		unsigned long err = ERR_peek_last_error();
		char why[512], ebuf[256];

		if (vr != X509_V_OK && c->cfg->irc_tls_verify) {
			snprintf(
			    why, sizeof(why),
			    "the TLS certificate of %s is not trusted: %s (see irc.tls_ca_file)",
			    esc(c->cfg->irc_server), X509_verify_cert_error_string(vr));
		} else {
			if (err)
				ERR_error_string_n(err, ebuf, sizeof(ebuf));
			else
				snprintf(ebuf, sizeof(ebuf), "%s",
				         e == SSL_ERROR_SYSCALL && errno ? strerror(errno)
				                                         : "connection closed");
			snprintf(why, sizeof(why), "TLS handshake with %s failed: %s",
			         esc(c->cfg->irc_server), ebuf);
		}
		ERR_clear_error();
		irc_close(c, why);
	}
}

/* TCP is up on c->fd. */
static void
connected(struct irc *c)
{
	int one = 1;

	freeaddrinfo(c->ai);
	c->ai = c->ai_next = NULL;
	setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	timer_cancel(c, &c->conn_timer);
	c->conn_timer = loop_timer(c->loop, IRC_REGISTER_TIMEOUT_MS, on_conn_timeout, c);
	if (c->ctx == NULL) {
		start_registration(c);
		return;
	}
	c->state = IRC_TLS;
	if ((c->ssl = SSL_new(c->ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		ERR_clear_error();
		irc_close(c, "cannot start TLS");
		return;
	}
	if (c->ip_literal) {
		if (c->cfg->irc_tls_verify &&
		    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->cfg->irc_server) !=
		        1) {
			ERR_clear_error();
			irc_close(c, "cannot set the address to verify");
			return;
		}
	} else {
		/* SNI, and the name the certificate must carry. */
		if (SSL_set_tlsext_host_name(c->ssl, c->cfg->irc_server) != 1 ||
		    (c->cfg->irc_tls_verify && SSL_set1_host(c->ssl, c->cfg->irc_server) != 1)) {
			ERR_clear_error();
			irc_close(c, "cannot set the TLS host name");
			return;
		}
	}
	tls_handshake(c);
}

static void
check_connect(struct irc *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err == EINPROGRESS)
		return;
	if (err != 0) {
		c->last_errno = err;
		log_info("irc: connect to an address of %s: %s", esc(c->cfg->irc_server),
		         strerror(err));
		timer_cancel(c, &c->conn_timer);
		loop_del_fd(c->loop, c->fd);
		close(c->fd);
		c->fd = -1;
		irc_connect_next(c);
		return;
	}
	log_info("irc: connected to %s port %ld%s", esc(c->cfg->irc_server), c->cfg->irc_port,
	         c->ctx ? ", starting TLS" : " (no TLS)");
	connected(c);
}

static void
on_resolve_poll(void *arg)
{
	struct irc *c = arg;
	struct irc_gai *g = c->gai;
	int r;

	c->resolve_timer = 0;
	if (g == NULL)
		return;
	r = gai_error(&g->cb);
	if (r == EAI_INPROGRESS) {
		if (c->state == IRC_RESOLVING &&
		    now_ms() - c->gai_started > IRC_RESOLVE_TIMEOUT_MS) {
			if (gai_cancel(&g->cb) == EAI_CANCELED) {
				free(g->host);
				free(g);
				c->gai = NULL;
			}
			irc_close(c, "looking up the server timed out");
			if (c->gai == NULL)
				return;
		}
		c->resolve_timer = loop_timer(c->loop, 50, on_resolve_poll, c);
		return;
	}
	c->gai = NULL;
	if (c->state != IRC_RESOLVING) {
		/* A lookup that outlived its attempt: just tidy up. */
		if (r == 0)
			freeaddrinfo(g->cb.ar_result);
		free(g->host);
		free(g);
		return;
	}
	if (r != 0) {
		char why[512];

		snprintf(why, sizeof(why), "cannot look up %s: %s", esc(g->host), gai_strerror(r));
		free(g->host);
		free(g);
		irc_close(c, why);
		return;
	}
	c->ai = c->ai_next = g->cb.ar_result;
	free(g->host);
	free(g);
	irc_connect_next(c);
}

/* Starts looking the server up; numeric addresses need no waiting. */
static void
resolve(struct irc *c)
{
	struct addrinfo hints, *res = NULL;
	struct irc_gai *g;
	char port[8];
	int r;

	c->state = IRC_RESOLVING;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	snprintf(port, sizeof(port), "%ld", c->cfg->irc_port);
	if (c->ip_literal) {
		hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
		if ((r = getaddrinfo(c->cfg->irc_server, port, &hints, &res)) != 0) {
			irc_fail(c, "irc.server is not a usable address");
			return;
		}
		c->ai = c->ai_next = res;
		irc_connect_next(c);
		return;
	}
	if (c->gai != NULL) {
		/* The previous lookup is still running (it could not be cancelled). */
		irc_close(c, "the previous lookup of the server has not finished");
		return;
	}
	g = xcalloc(1, sizeof(*g));
	g->host = xstrdup(c->cfg->irc_server);
	memcpy(g->port, port, sizeof(port));
	g->hints = hints;
	g->cb.ar_name = g->host;
	g->cb.ar_service = g->port;
	g->cb.ar_request = &g->hints;
	g->list[0] = &g->cb;
	if ((r = getaddrinfo_a(GAI_NOWAIT, g->list, 1, NULL)) != 0) {
		char why[512];

		snprintf(why, sizeof(why), "cannot look up %s: %s", esc(g->host), gai_strerror(r));
		free(g->host);
		free(g);
		irc_close(c, why);
		return;
	}
	c->gai = g;
	c->gai_started = now_ms();
	c->resolve_timer = loop_timer(c->loop, 5, on_resolve_poll, c);
}

/* Tries the next address; with none left, waits and starts over. */
static void
irc_connect_next(struct irc *c)
{
	if (c->ai == NULL) {
		log_info("irc: connecting to %s port %ld%s", esc(c->cfg->irc_server),
		         c->cfg->irc_port, c->ctx ? " with TLS" : "");
		c->last_errno = 0;
		resolve(c);
		return;
	}
	while (c->ai_next != NULL) {
		struct addrinfo *a = c->ai_next;

		c->ai_next = a->ai_next;
		c->fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		               a->ai_protocol);
		if (c->fd == -1) {
			c->last_errno = errno;
			continue;
		}
		if (connect(c->fd, a->ai_addr, a->ai_addrlen) == 0) {
			c->state = IRC_CONNECTING;
			connected(c);
			return;
		}
		if (errno == EINPROGRESS) {
			c->state = IRC_CONNECTING;
			loop_add_fd(c->loop, c->fd, POLLOUT, on_fd, c);
			c->conn_timer =
			    loop_timer(c->loop, IRC_CONNECT_TIMEOUT_MS, on_conn_timeout, c);
			return;
		}
		c->last_errno = errno;
		close(c->fd);
		c->fd = -1;
	}
	freeaddrinfo(c->ai);
	c->ai = c->ai_next = NULL;
	{
		char why[512];

		snprintf(why, sizeof(why), "cannot connect to %s port %ld: %s",
		         esc(c->cfg->irc_server), c->cfg->irc_port,
		         c->last_errno ? strerror(c->last_errno) : "no address");
		irc_close(c, why);
	}
}

/* --- lag checks and the nick -------------------------------------------- */

static void
on_lag_timer(void *arg)
{
	struct irc *c = arg;
	char why[128];

	c->lag_timer = 0;
	if (c->ping_sent_ms == 0)
		return;
	snprintf(why, sizeof(why), "no answer to PING in %ld s", c->cfg->irc_ping_s);
	irc_close(c, why);
}

static void
on_ping_timer(void *arg)
{
	struct irc *c = arg;
	uint64_t now = now_ms(), idle = now - c->last_rx_ms,
	         every = (uint64_t)c->cfg->irc_ping_s * 1000;

	c->ping_timer = 0;
	if (c->state != IRC_REGISTERED)
		return;
	if (idle + 50 < every) {
		c->ping_timer = loop_timer(c->loop, every - idle, on_ping_timer, c);
		return;
	}
	if (c->ping_sent_ms == 0) {
		snprintf(c->ping_token, sizeof(c->ping_token), "faqbot-lag-%lu", ++c->ping_seq);
		send_now(c, "PING :%s", c->ping_token);
		c->ping_sent_ms = now;
		c->lag_timer = loop_timer(c->loop, every, on_lag_timer, c);
		irc_flush(c);
	}
	c->ping_timer = loop_timer(c->loop, every, on_ping_timer, c);
}

static void
on_regain_timer(void *arg)
{
	struct irc *c = arg;

	c->regain_timer = 0;
	if (c->state != IRC_REGISTERED || is_me(c, wanted(c)))
		return;
	send_ctl(c, "NICK %s", wanted(c));
	irc_flush(c);
	c->regain_timer = loop_timer(c->loop, IRC_REGAIN_MS, on_regain_timer, c);
}

/* The next nick to try after a collision: nick_, then nick1, nick2, ... */
static void
next_nick(struct irc *c)
{
	free(c->nick);
	c->nick = irc_nick_try(wanted(c), c->nick_tries, c->nicklen);
}

/* --- handling lines ----------------------------------------------------- */

static void
sasl_send_payload(void *arg, const char *piece, size_t len)
{
	struct irc *c = arg;

	send_now(c, "AUTHENTICATE %.*s", (int)len, piece);
}

static void
cap_end(struct irc *c)
{
	send_now(c, "CAP END");
}

/* The full CAP LS list is in c->caps. */
static void
caps_listed(struct irc *c)
{
	const char *p = c->caps.data ? c->caps.data : "";
	int have_sasl = 0, plain = 0, multi = 0;

	while (*p) {
		size_t n = strcspn(p, " ");

		if (n == 12 && strncmp(p, "multi-prefix", 12) == 0)
			multi = 1;
		if (n >= 4 && strncmp(p, "sasl", 4) == 0 && (n == 4 || p[4] == '=')) {
			have_sasl = 1;
			if (n == 4) {
				plain = 1; /* no list: ask and see */
			} else {
				char mechs[256];

				snprintf(mechs, sizeof(mechs), ",%.*s,", (int)(n - 5), p + 5);
				plain = strstr(mechs, ",PLAIN,") != NULL;
			}
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	/* Every prefix in NAMES, so that an op who is also voiced is seen as op. */
	if (multi)
		send_now(c, "CAP REQ :multi-prefix");
	if (c->sasl != SASL_WANTED) {
		cap_end(c);
		return;
	}
	if (!have_sasl || !plain) {
		log_warnx(
		    "irc: the server offers no SASL PLAIN; continuing without logging in as %s",
		    esc(c->cfg->irc_sasl_user));
		c->sasl = SASL_FAILED;
		cap_end(c);
		return;
	}
	c->sasl = SASL_REQ;
	send_now(c, "CAP REQ :sasl");
}

static void
handle_cap(struct irc *c, const struct irc_msg *m)
{
	const char *sub;

	if (m->nparams < 3)
		return;
	sub = m->params[1];
	if (strcmp(sub, "LS") == 0) {
		/* "CAP * LS * :caps" continues; "CAP * LS :caps" ends the list. */
		int more = m->nparams >= 4 && strcmp(m->params[2], "*") == 0;

		if (c->caps.len < 8192) {
			buf_puts(&c->caps, m->params[m->nparams - 1]);
			buf_putc(&c->caps, ' ');
		}
		if (!more && c->state == IRC_REGISTERING)
			caps_listed(c);
	} else if (strcmp(sub, "ACK") == 0 && c->sasl == SASL_REQ) {
		if (strstr(m->params[m->nparams - 1], "sasl") != NULL) {
			c->sasl = SASL_AUTH;
			send_now(c, "AUTHENTICATE PLAIN");
		}
	} else if (strcmp(sub, "NAK") == 0 && c->sasl == SASL_REQ &&
	           strstr(m->params[m->nparams - 1], "sasl") != NULL) {
		log_warnx("irc: the server refused the sasl capability; continuing without "
		          "logging in");
		c->sasl = SASL_FAILED;
		cap_end(c);
	}
}

static void
handle_authenticate(struct irc *c, const struct irc_msg *m)
{
	char *b64;

	if (c->sasl != SASL_AUTH || m->nparams < 1 || strcmp(m->params[0], "+") != 0)
		return;
	b64 = irc_sasl_plain(c->cfg->irc_sasl_user, c->cfg->irc_password);
	irc_sasl_chunks(b64, sasl_send_payload, c);
	OPENSSL_cleanse(b64, strlen(b64));
	free(b64);
}

static void
handle_sasl_numeric(struct irc *c, int num, const struct irc_msg *m)
{
	const char *text = m->nparams ? m->params[m->nparams - 1] : "";

	switch (num) {
	case 900: /* RPL_LOGGEDIN <nick> <nick!user@host> <account> :text */
		log_info("irc: logged in as account %s",
		         esc(m->nparams >= 3 ? m->params[2] : c->cfg->irc_sasl_user));
		return;
	case 903: /* RPL_SASLSUCCESS */
		if (c->sasl == SASL_AUTH) {
			log_info("irc: SASL PLAIN login as %s succeeded",
			         esc(c->cfg->irc_sasl_user));
			c->sasl = SASL_DONE;
			cap_end(c);
		}
		return;
	case 908: /* RPL_SASLMECHS */
		log_warnx("irc: the server's SASL mechanisms are %s",
		          esc(m->nparams >= 2 ? m->params[1] : "?"));
		return;
	case 902: /* ERR_NICKLOCKED */
	case 904: /* ERR_SASLFAIL */
	case 905: /* ERR_SASLTOOLONG */
	case 906: /* ERR_SASLABORTED */
	case 907: /* ERR_SASLALREADY */
		if (c->sasl != SASL_AUTH && c->sasl != SASL_REQ)
			return;
		log_warnx("irc: SASL PLAIN login as %s FAILED (%d: %s): check irc.sasl_user and "
		          "irc.password; continuing without logging in",
		          esc(c->cfg->irc_sasl_user), num, esc(text));
		c->sasl = SASL_FAILED;
		cap_end(c);
		return;
	default:
		return;
	}
}

static void
handle_isupport(struct irc *c, const struct irc_msg *m)
{
	int i;

	/* <nick> TOKEN[=value]... :are supported by this server */
	for (i = 1; i < m->nparams - 1; i++) {
		const char *t = m->params[i];

		if (strncmp(t, "CASEMAPPING=", 12) == 0) {
			if (strcmp(t + 12, "ascii") == 0)
				c->casemap = IRC_CASEMAP_ASCII;
			else if (strcmp(t + 12, "strict-rfc1459") == 0)
				c->casemap = IRC_CASEMAP_STRICT;
			else
				c->casemap = IRC_CASEMAP_RFC1459;
		} else if (strncmp(t, "PREFIX=(", 8) == 0) {
			const char *close = strchr(t + 8, ')');
			size_t n;

			if (close == NULL)
				continue;
			n = (size_t)(close - (t + 8));
			if (n == 0 || n >= sizeof(c->prefix_modes) || strlen(close + 1) != n)
				continue;
			memcpy(c->prefix_modes, t + 8, n);
			c->prefix_modes[n] = '\0';
			memcpy(c->prefix_syms, close + 1, n);
			c->prefix_syms[n] = '\0';
		} else if (strncmp(t, "CHANMODES=", 10) == 0) {
			const char *p = t + 10;
			int k;

			for (k = 0; k < 4; k++) {
				size_t n = strcspn(p, ",");

				snprintf(c->chanmodes[k], sizeof(c->chanmodes[k]), "%.*s",
				         (int)(n < 63 ? n : 63), p);
				p += n;
				if (*p == ',')
					p++;
			}
		} else if (strncmp(t, "CHANTYPES=", 10) == 0 && t[10] != '\0') {
			snprintf(c->chantypes, sizeof(c->chantypes), "%s", t + 10);
		} else if (strncmp(t, "NICKLEN=", 8) == 0 || strncmp(t, "MAXNICKLEN=", 11) == 0) {
			long n = strtol(strchr(t, '=') + 1, NULL, 10);

			/* The wanted nick is cut to fit; the regain timer goes for that one. */
			if (n >= 1 && n <= 512 && (c->nicklen == 0 || (size_t)n < c->nicklen ||
			                           strncmp(t, "NICKLEN=", 8) == 0))
				set_nicklen(c, (size_t)n);
		}
	}
}

/* Mode bits of a NAMES entry ("@+nick" or "@nick!user@host"); *nick set to the name. */
static unsigned
names_entry(const struct irc *c, const char *e, char *nick, size_t len)
{
	unsigned modes = 0;
	const char *s;

	while (*e && (s = strchr(c->prefix_syms, *e)) != NULL) {
		modes |= 1u << (s - c->prefix_syms);
		e++;
	}
	irc_prefix_nick(e, nick, len);
	return modes;
}

static void
handle_names(struct irc *c, const struct irc_msg *m)
{
	/* 353 <me> <=|*|@> <#chan> :names */
	struct irc_chan *ch;
	char *list, *save = NULL, *e;

	if (m->nparams < 4 || (ch = chan_find(c, m->params[2])) == NULL)
		return;
	if (!ch->names_building) {
		members_clear(ch);
		ch->names_building = 1;
	}
	list = xstrdup(m->params[3]);
	for (e = strtok_r(list, " ", &save); e; e = strtok_r(NULL, " ", &save)) {
		char nick[128];
		unsigned modes = names_entry(c, e, nick, sizeof(nick));

		if (nick[0])
			member_set(c, ch, nick, modes);
	}
	free(list);
}

static void
handle_mode(struct irc *c, const struct irc_msg *m)
{
	struct irc_chan *ch;
	const char *modes;
	int sign = 1, arg = 2;

	if (m->nparams < 2 || (ch = chan_find(c, m->params[0])) == NULL)
		return;
	for (modes = m->params[1]; *modes; modes++) {
		const char *pm;
		char mc = *modes;

		if (mc == '+' || mc == '-') {
			sign = mc == '+';
			continue;
		}
		if ((pm = strchr(c->prefix_modes, mc)) != NULL) {
			struct irc_member *mem;
			unsigned bit = 1u << (pm - c->prefix_modes);

			if (arg >= m->nparams)
				break;
			if ((mem = member_find(c, ch, m->params[arg])) != NULL)
				mem->modes = sign ? (mem->modes | bit) : (mem->modes & ~bit);
			arg++;
		} else if (strchr(c->chanmodes[0], mc) || strchr(c->chanmodes[1], mc) ||
		           (sign && strchr(c->chanmodes[2], mc))) {
			arg++;
		}
	}
}

static void
handle_privmsg(struct irc *c, const struct irc_msg *m, const char *nick)
{
	struct tp_msg msg;
	const char *target, *text, *rest;
	struct irc_chan *ch = NULL;

	if (m->nparams < 2 || nick[0] == '\0' || is_me(c, nick))
		return;
	target = m->params[0];
	text = m->params[1];
	if (text[0] == '\x01') {
		log_debug("irc: CTCP from %s ignored", esc(nick));
		return;
	}
	memset(&msg, 0, sizeof(msg));
	msg.received_ns = now_ns();
	if (is_channel(c, target)) {
		if ((ch = chan_find(c, target)) == NULL) {
			log_debug("irc: message in %s ignored: not a configured channel",
			          esc(target));
			return;
		}
		msg.room = ch->name;
	} else if (is_me(c, target)) {
		/* With irc.private off only a safety answer goes out: never silence in danger. */
		msg.room = nick;
		msg.direct = 1;
		msg.addressed = 1;
		msg.safety_only = !c->cfg->irc_private;
	} else {
		/* "@#chan" (ops only) and the like: not for the bot to answer. */
		return;
	}
	if (irc_addressed(text, c->nick, c->casemap, &rest)) {
		msg.addressed = 1;
		text = rest;
	}
	msg.sender = nick;
	msg.sender_name = nick;
	msg.text = text;
	msg.len = strlen(text);
	c->nrecv++;
	bot_on_message(c->bot, &c->tp, &msg);
}

static void
registered(struct irc *c, const struct irc_msg *m)
{
	uint64_t now = now_ms();

	if (m->nparams >= 1 && m->params[0][0]) {
		free(c->nick);
		c->nick = xstrdup(m->params[0]);
	}
	c->state = IRC_REGISTERED;
	c->up_since_ms = now;
	timer_cancel(c, &c->conn_timer);
	if (c->sasl == SASL_WANTED || c->sasl == SASL_REQ || c->sasl == SASL_AUTH)
		log_warnx("irc: registered without the SASL login as %s (the server did not "
		          "complete it)",
		          esc(c->cfg->irc_sasl_user));
	log_info("irc: registered on %s as %s", esc(c->cfg->irc_server), esc(c->nick));
	irc_bucket_init(&c->bucket, c->cfg->irc_burst, c->cfg->irc_rate_ms, now);
	join_all(c);
	c->ping_timer = loop_timer(c->loop, (uint64_t)c->cfg->irc_ping_s * 1000, on_ping_timer, c);
	if (!is_me(c, wanted(c)))
		c->regain_timer = loop_timer(c->loop, IRC_REGAIN_MS, on_regain_timer, c);
}

static void
nick_in_use(struct irc *c, int num, const struct irc_msg *m)
{
	if (c->state != IRC_REGISTERING) {
		/* Our attempt to regain the wanted nick: try again later. */
		log_debug("irc: %s is still taken (%d)", esc(wanted(c)), num);
		return;
	}
	if (num == 432 && strlen(c->nick) > IRC_RFC_NICKLEN &&
	    (c->nicklen == 0 || c->nicklen > IRC_RFC_NICKLEN)) {
		/*
		 * Refused, and longer than RFC 2812 allows (ngircd's default): the
		 * server's NICKLEN comes only after registration, so take 9 and
		 * cut the nick before any suffix goes on.
		 */
		set_nicklen(c, IRC_RFC_NICKLEN);
		free(c->nick);
		c->nick = irc_nick_try(wanted(c), c->nick_tries, c->nicklen);
		log_info("irc: nick %s refused (432), perhaps as too long; trying %s",
		         esc(m->nparams >= 2 ? m->params[1] : "?"), esc(c->nick));
		send_now(c, "NICK %s", c->nick);
		return;
	}
	if (++c->nick_tries > IRC_MAX_NICK_TRIES) {
		char why[128];

		snprintf(why, sizeof(why), "no free nick after %d tries (last: %s)",
		         IRC_MAX_NICK_TRIES, m->nparams >= 2 ? esc(m->params[1]) : "?");
		irc_close(c, why);
		return;
	}
	next_nick(c);
	log_info("irc: nick %s is %s (%d); trying %s", esc(wanted(c)),
	         num == 432 ? "refused" : "taken", num, esc(c->nick));
	send_now(c, "NICK %s", c->nick);
}

static void
join_failed(struct irc *c, int num, const struct irc_msg *m)
{
	struct irc_chan *ch;
	static const struct {
		int num;
		const char *why;
	} reasons[] = {
	    {471, "it is full"},
	    {473, "it is invite only"},
	    {474, "the bot is banned"},
	    {475, "the key is wrong (check irc.channels)"},
	    {477, "it needs a registered nick"},
	    {437, "it is unavailable"},
	    {403, "there is no such channel"},
	    {405, "too many channels"},
	};
	const char *why = "refused";
	size_t i;

	if (m->nparams < 2 || (ch = chan_find(c, m->params[1])) == NULL)
		return;
	for (i = 0; i < NELEM(reasons); i++)
		if (reasons[i].num == num)
			why = reasons[i].why;
	log_warnx("irc: cannot join %s: %s (%d: %s)", ch->name, why, num,
	          esc(m->params[m->nparams - 1]));
	if (!ch->joined && !ch->given_up) {
		bot_on_membership(c->bot, &c->tp, ch->name, 0, why);
		schedule_rejoin(c, ch, num == 474 ? IRC_REJOIN_BANNED : IRC_REJOIN_REFUSED);
	}
}

static void
handle_numeric(struct irc *c, int num, const struct irc_msg *m)
{
	struct irc_chan *ch;

	switch (num) {
	case 1:
		if (c->state == IRC_REGISTERING)
			registered(c, m);
		break;
	case 5:
		handle_isupport(c, m);
		break;
	case 353:
		handle_names(c, m);
		break;
	case 366: /* RPL_ENDOFNAMES <me> <#chan> */
		if (m->nparams >= 2 && (ch = chan_find(c, m->params[1])) != NULL) {
			ch->names_building = 0;
			ch->names_done = 1;
		}
		break;
	case 432: /* ERR_ERRONEUSNICKNAME */
	case 433: /* ERR_NICKNAMEINUSE */
	case 436: /* ERR_NICKCOLLISION */
		nick_in_use(c, num, m);
		break;
	case 437: /* ERR_UNAVAILRESOURCE: a nick or a channel */
		if (m->nparams >= 2 && is_channel(c, m->params[1]))
			join_failed(c, num, m);
		else
			nick_in_use(c, num, m);
		break;
	case 403:
	case 405:
	case 471:
	case 473:
	case 474:
	case 475:
	case 477:
		join_failed(c, num, m);
		break;
	case 404: /* ERR_CANNOTSENDTOCHAN */
		log_warnx("irc: cannot send to %s: %s", esc(m->nparams >= 2 ? m->params[1] : "?"),
		          esc(m->params[m->nparams - 1]));
		break;
	case 465: /* ERR_YOUREBANNEDCREEP */
	case 464: /* ERR_PASSWDMISMATCH */
		log_warnx("irc: the server refuses the bot (%d: %s)", num,
		          esc(m->params[m->nparams - 1]));
		break;
	case 900:
	case 902:
	case 903:
	case 904:
	case 905:
	case 906:
	case 907:
	case 908:
		handle_sasl_numeric(c, num, m);
		break;
	default:
		break;
	}
}

/* One line from the server; returns -1 when the link went away meanwhile. */
static int
handle_line(void *arg, char *line, size_t len)
{
	struct irc *c = arg;
	struct irc_msg m;
	unsigned gen = c->gen;
	char nick[128];
	const char *cmd;
	struct irc_chan *ch;

	(void)len;
	c->last_rx_ms = now_ms();
	if (irc_parse(line, &m) == -1) {
		log_debug("irc: malformed line from the server ignored");
		return 0;
	}
	cmd = m.command;
	irc_prefix_nick(m.prefix, nick, sizeof(nick));
	if (isdigit((unsigned char)cmd[0])) {
		handle_numeric(c, atoi(cmd), &m);
	} else if (strcmp(cmd, "PING") == 0) {
		send_now(c, "PONG :%s", m.nparams ? m.params[m.nparams - 1] : "");
	} else if (strcmp(cmd, "PONG") == 0) {
		if (c->ping_sent_ms && m.nparams &&
		    strcmp(m.params[m.nparams - 1], c->ping_token) == 0) {
			log_debug("irc: lag %llu ms",
			          (unsigned long long)(now_ms() - c->ping_sent_ms));
			c->ping_sent_ms = 0;
			timer_cancel(c, &c->lag_timer);
		}
	} else if (strcmp(cmd, "PRIVMSG") == 0) {
		if (c->state == IRC_REGISTERED)
			handle_privmsg(c, &m, nick);
	} else if (strcmp(cmd, "NOTICE") == 0) {
		/* Never answered: that is what keeps bots from answering each other. */
	} else if (strcmp(cmd, "CAP") == 0) {
		handle_cap(c, &m);
	} else if (strcmp(cmd, "AUTHENTICATE") == 0) {
		handle_authenticate(c, &m);
	} else if (strcmp(cmd, "JOIN") == 0 && m.nparams >= 1) {
		if ((ch = chan_find(c, m.params[0])) != NULL) {
			if (is_me(c, nick)) {
				ch->joined = 1;
				irc_rejoin_joined(&ch->rejoin, now_ms());
				timer_cancel(c, &ch->rejoin_timer);
				members_clear(ch);
				log_info("irc: joined %s", ch->name);
				bot_on_membership(c->bot, &c->tp, ch->name, 1, NULL);
			} else {
				member_set(c, ch, nick, 0);
			}
		}
	} else if (strcmp(cmd, "PART") == 0 && m.nparams >= 1) {
		if ((ch = chan_find(c, m.params[0])) != NULL) {
			if (is_me(c, nick)) {
				ch->joined = 0;
				members_clear(ch);
				log_warnx("irc: the bot left %s; joining it again", ch->name);
				bot_on_membership(c->bot, &c->tp, ch->name, 0, "it left");
				schedule_rejoin(c, ch, IRC_REJOIN_LEFT);
			} else {
				member_del(c, ch, nick);
			}
		}
	} else if (strcmp(cmd, "KICK") == 0 && m.nparams >= 2) {
		if ((ch = chan_find(c, m.params[0])) != NULL) {
			if (is_me(c, m.params[1])) {
				ch->joined = 0;
				members_clear(ch);
				log_warnx("irc: kicked from %s by %s: %s", ch->name, esc(nick),
				          esc(m.nparams >= 3 ? m.params[2] : ""));
				bot_on_membership(c->bot, &c->tp, ch->name, 0, "kicked");
				schedule_rejoin(c, ch, IRC_REJOIN_KICKED);
			} else {
				member_del(c, ch, m.params[1]);
			}
		}
	} else if (strcmp(cmd, "QUIT") == 0) {
		size_t i;

		for (i = 0; i < c->nchans; i++)
			member_del(c, &c->chans[i], nick);
		if (irc_casecmp(nick, wanted(c), c->casemap) == 0 && !is_me(c, wanted(c)) &&
		    c->state == IRC_REGISTERED)
			send_ctl(c, "NICK %s", wanted(c));
	} else if (strcmp(cmd, "NICK") == 0 && m.nparams >= 1) {
		const char *to = m.params[0];
		size_t i;

		for (i = 0; i < c->nchans; i++) {
			struct irc_member *mem = member_find(c, &c->chans[i], nick);

			if (mem != NULL) {
				free(mem->nick);
				mem->nick = xstrdup(to);
			}
		}
		if (is_me(c, nick)) {
			free(c->nick);
			c->nick = xstrdup(to);
			log_info("irc: the bot's nick is now %s", esc(to));
			if (is_me(c, wanted(c)))
				timer_cancel(c, &c->regain_timer);
		} else if (irc_casecmp(nick, wanted(c), c->casemap) == 0 && !is_me(c, wanted(c)) &&
		           c->state == IRC_REGISTERED) {
			/* The wanted nick was just given up. */
			send_ctl(c, "NICK %s", wanted(c));
		}
	} else if (strcmp(cmd, "MODE") == 0) {
		handle_mode(c, &m);
	} else if (strcmp(cmd, "ERROR") == 0) {
		char why[400];

		snprintf(why, sizeof(why), "the server closed the link: %s",
		         esc(m.nparams ? m.params[0] : ""));
		irc_close(c, why);
	}
	return c->gen == gen ? 0 : -1;
}

/* Reads what there is; returns -1 when the link was closed. */
static int
read_in(struct irc *c)
{
	char data[16384];
	unsigned gen = c->gen;

	for (;;) {
		unsigned long dl = c->rb->dropped_long, dn = c->rb->dropped_nul;
		ssize_t n;
		int r;

		if (c->ssl) {
			int e;

			ERR_clear_error();
			r = SSL_read(c->ssl, data, sizeof(data));
			if (r <= 0) {
				e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_READ)
					return 0;
				if (e == SSL_ERROR_WANT_WRITE) {
					c->tls_want_write = 1;
					return 0;
				}
				if (e == SSL_ERROR_ZERO_RETURN)
					irc_close(c, "the server closed the connection");
				else if (e == SSL_ERROR_SYSCALL)
					irc_close(c, errno ? strerror(errno)
					                   : "the server closed the connection");
				else
					irc_close(c, "TLS read failed");
				ERR_clear_error();
				return -1;
			}
			n = r;
		} else {
			n = read(c->fd, data, sizeof(data));
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
				return 0;
			if (n <= 0) {
				irc_close(c, n == 0 ? "the server closed the connection"
				                    : strerror(errno));
				return -1;
			}
		}
		if (irc_rbuf_feed(c->rb, data, (size_t)n, handle_line, c) == -1 || c->gen != gen)
			return -1;
		if (c->rb->dropped_long != dl)
			log_warnx("irc: a line over %d bytes from the server was dropped",
			          IRC_MAX_LINE);
		if (c->rb->dropped_nul != dn)
			log_warnx("irc: a line with a NUL byte from the server was dropped");
	}
}

static void
on_fd(void *arg, int fd, short revents)
{
	struct irc *c = arg;

	(void)fd;
	switch (c->state) {
	case IRC_CONNECTING:
		check_connect(c);
		return;
	case IRC_TLS:
		tls_handshake(c);
		return;
	case IRC_REGISTERING:
	case IRC_REGISTERED:
		if ((revents & POLLIN) || (c->tls_want_write && (revents & POLLOUT))) {
			c->tls_want_write = 0;
			if (read_in(c) == -1)
				return;
		}
		irc_flush(c);
		return;
	default:
		return;
	}
}

/* --- the transport ------------------------------------------------------ */

struct split_ctx {
	char **lines; /* "NOTICE #chan :piece" */
	size_t n;
	size_t cap;
	const char *cmd;
	const char *target;
};

static void
collect_piece(void *arg, const char *piece, size_t len)
{
	struct split_ctx *s = arg;

	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 8;
		s->lines = xreallocarray(s->lines, s->cap, sizeof(*s->lines));
	}
	s->lines[s->n++] = xasprintf("%s %s :%.*s", s->cmd, s->target, (int)len, piece);
}

/* Bytes of text that fit one line to target, with the relaying prefix reserved. */
static size_t
text_budget(const struct irc *c, const char *cmd, const char *target)
{
	size_t nick = strlen(c->cfg->irc_nick) + 3, reserve, over;

	if (c->nick && strlen(c->nick) > nick)
		nick = strlen(c->nick);
	/* ":" nick "!~" user "@" host " " */
	reserve = 1 + nick + 2 + strlen(c->cfg->irc_username) + 1 + IRC_HOST_MAX + 1;
	if (reserve < IRC_PREFIX_RESERVE)
		reserve = IRC_PREFIX_RESERVE;
	over = reserve + strlen(cmd) + 1 + strlen(target) + 2 + 2; /* " :" and CR LF */
	return over + 64 > 512 ? 64 : 512 - over;
}

static int
valid_target(const char *t)
{
	const unsigned char *p = (const unsigned char *)t;

	if (*p == '\0' || *p == ':' || strlen(t) > 200)
		return 0;
	for (; *p; p++)
		if (*p <= ' ' || *p == ',' || *p == 0x7f)
			return 0;
	return 1;
}

static int
key_seen(struct irc *c, const char *key)
{
	uint64_t h;
	size_t i;

	if (key == NULL)
		return 0;
	h = hash_bytes(key, strlen(key));
	for (i = 0; i < IRC_KEY_RING; i++)
		if (c->keys[i] == h)
			return 1;
	c->keys[c->keys_next++ % IRC_KEY_RING] = h;
	return 0;
}

static int
irc_send(void *impl, const struct tp_out *out)
{
	struct irc *c = impl;
	struct split_ctx s = {0};
	struct irc_queue *q;
	struct buf text;
	uint64_t now = now_ms();
	size_t i;
	int rc = 0;

	if (c->state == IRC_STOPPED || c->state == IRC_FAILED || out->room == NULL ||
	    out->plain == NULL)
		return -1;
	if (!valid_target(out->room) ||
	    (is_channel(c, out->room) && chan_find(c, out->room) == NULL)) {
		log_warnx("irc: not sending to %s: not a configured channel or a nick",
		          esc(out->room));
		return -1;
	}
	if (key_seen(c, out->key))
		return 0;
	buf_init(&text);
	/* A mention in a private chat would only repeat the name; so would one
	 * before a text that names the person already. */
	if (out->mention && out->mention[0] && !out->named &&
	    irc_casecmp(out->mention, out->room, c->casemap) != 0)
		buf_printf(&text, "%s: ", out->mention);
	buf_puts(&text, out->plain);
	s.cmd = c->cfg->irc_notice ? "NOTICE" : "PRIVMSG";
	s.target = out->room;
	irc_split(text.data, text_budget(c, s.cmd, s.target), collect_piece, &s);
	q = out->urgent ? &c->prio : &c->msg;
	if (s.n > q_room(q)) {
		if (out->urgent)
			log_errorx("irc: %zu safety line(s) are waiting already; a safety reply to %s "
			           "is dropped",
			           q->n, esc(out->room));
		else
			log_warnx("irc: the send queue is full; a reply of %zu line(s) to %s is "
			          "dropped",
			          s.n, esc(out->room));
		rc = -1;
	}
	for (i = 0; i < s.n; i++) {
		if (rc == 0)
			q_push(q, s.lines[i], now);
		else
			free(s.lines[i]);
	}
	free(s.lines);
	buf_free(&text);
	if (rc == 0 && c->state == IRC_REGISTERED && c->pump_timer == 0)
		/* Written from the loop, not from inside the caller's handler. */
		c->pump_timer = loop_timer(c->loop, 0, on_pump_timer, c);
	return rc;
}

static int
irc_power_level(void *impl, const char *room, const char *user)
{
	struct irc *c = impl;
	struct irc_chan *ch;
	struct irc_member *m;
	const char *o;
	unsigned opmask;

	if (room == NULL || user == NULL || (ch = chan_find(c, room)) == NULL || !ch->joined ||
	    !ch->names_done)
		return -1;
	if ((m = member_find(c, ch, user)) == NULL)
		return 0;
	/* Op and every prefix ranked above it (owner ~, admin &). */
	o = strchr(c->prefix_modes, 'o');
	opmask = (1u << (o ? (o - c->prefix_modes) + 1 : 1)) - 1;
	return (m->modes & opmask) ? 50 : 0;
}

static int
irc_member(void *impl, const char *room, const char *user)
{
	struct irc *c = impl;
	struct irc_chan *ch;

	if (room == NULL || user == NULL || (ch = chan_find(c, room)) == NULL || !ch->joined ||
	    !ch->names_done)
		return -1;
	return member_find(c, ch, user) != NULL;
}

static int
irc_link(void *impl, const char *room, const char *event_id, struct buf *out)
{
	(void)impl;
	(void)room;
	(void)event_id;
	(void)out;
	return -1; /* IRC messages have no address */
}

static int
irc_has_room(void *impl, const char *room)
{
	struct irc *c = impl;

	return room != NULL && (room[0] == '#' || room[0] == '&') && chan_find(c, room) != NULL;
}

/* --- lifecycle ----------------------------------------------------------- */

static SSL_CTX *
make_ctx(const struct config *cfg)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char ebuf[256];

	if (ctx == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (cfg->irc_tls_verify) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		if (cfg->irc_tls_ca_file[0]) {
			if (SSL_CTX_load_verify_locations(ctx, cfg->irc_tls_ca_file, NULL) != 1) {
				ERR_error_string_n(ERR_get_error(), ebuf, sizeof(ebuf));
				log_warnx("irc: irc.tls_ca_file %s cannot be used: %s",
				          cfg->irc_tls_ca_file, ebuf);
				goto fail;
			}
		} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
			log_warnx("irc: the system's CA certificates cannot be loaded");
			goto fail;
		}
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		log_warnx("irc: irc.tls_verify is off: the server's certificate is NOT checked");
	}
	return ctx;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

/* The configured channels: "#chan" or "#chan key"; bad entries are skipped. */
static void
load_channels(struct irc *c)
{
	size_t i;

	c->chans = xcalloc(c->cfg->irc_channels.n ? c->cfg->irc_channels.n : 1, sizeof(*c->chans));
	for (i = 0; i < c->cfg->irc_channels.n; i++) {
		const char *e = c->cfg->irc_channels.v[i], *sp;
		struct irc_chan *ch;
		char *name;

		while (*e == ' ')
			e++;
		sp = strchr(e, ' ');
		name = sp ? xstrndup(e, (size_t)(sp - e)) : xstrdup(e);
		if ((name[0] != '#' && name[0] != '&') || !valid_target(name) ||
		    chan_find(c, name) != NULL) {
			log_warnx(
			    "irc: irc.channels entry \"%s\" is not a channel name (\"#chan\" or "
			    "\"#chan key\") or is listed twice; skipped",
			    esc(name));
			free(name);
			continue;
		}
		ch = &c->chans[c->nchans++];
		ch->name = name;
		ch->c = c;
		if (sp) {
			while (*sp == ' ')
				sp++;
			if (*sp)
				ch->key = xstrdup(sp);
			if (ch->key && !valid_target(ch->key)) {
				log_warnx("irc: the key of %s has spaces or commas; it is ignored",
				          name);
				free(ch->key);
				ch->key = NULL;
			}
		}
	}
}

struct irc *
irc_new(struct loop *l, const struct config *cfg, struct bot *b)
{
	struct irc *c = xcalloc(1, sizeof(*c));
	struct in6_addr a6;
	struct in_addr a4;

	c->loop = l;
	c->cfg = cfg;
	c->bot = b;
	c->fd = -1;
	c->state = IRC_IDLE;
	c->tp.name = "irc";
	c->tp.impl = c;
	c->tp.send = irc_send;
	c->tp.power_level = irc_power_level;
	c->tp.link = irc_link;
	c->tp.has_room = irc_has_room;
	c->tp.member = irc_member;
	c->rb = xcalloc(1, sizeof(*c->rb));
	buf_init(&c->out);
	buf_init(&c->caps);
	q_init(&c->ctl, IRC_CTL_QUEUE);
	q_init(&c->prio, IRC_PRIO_QUEUE);
	q_init(&c->msg, IRC_MSG_QUEUE);
	c->casemap = IRC_CASEMAP_RFC1459;
	snprintf(c->prefix_modes, sizeof(c->prefix_modes), "ov");
	snprintf(c->prefix_syms, sizeof(c->prefix_syms), "@+");
	snprintf(c->chanmodes[0], sizeof(c->chanmodes[0]), "beI");
	snprintf(c->chanmodes[1], sizeof(c->chanmodes[1]), "k");
	snprintf(c->chanmodes[2], sizeof(c->chanmodes[2]), "l");
	snprintf(c->chanmodes[3], sizeof(c->chanmodes[3]), "imnpst");
	snprintf(c->chantypes, sizeof(c->chantypes), "#&");
	/* The length learnt from the server (NICKLEN, or a refused long nick) outlives a link. */
	set_nicklen(c, 0);
	c->ip_literal = inet_pton(AF_INET, cfg->irc_server, &a4) == 1 ||
	                inet_pton(AF_INET6, cfg->irc_server, &a6) == 1;
	load_channels(c);
	return c;
}

struct transport *
irc_transport(struct irc *c)
{
	return &c->tp;
}

void
irc_start(struct irc *c)
{
	if (c->state != IRC_IDLE)
		return;
	if (c->cfg->irc_server[0] == '\0') {
		irc_fail(c, "irc.server is not set");
		return;
	}
	if (c->cfg->irc_password[0] && c->cfg->irc_sasl_user[0] == '\0')
		log_warnx("irc: irc.password is set but irc.sasl_user is empty: no SASL login");
	if (c->nchans == 0)
		log_warnx("irc: irc.channels is empty: the bot joins no channel");
	if (c->cfg->irc_tls && (c->ctx = make_ctx(c->cfg)) == NULL) {
		irc_fail(c, "TLS cannot be set up");
		return;
	}
	if (!c->cfg->irc_tls)
		log_warnx("irc: irc.tls is off: the link to %s is not encrypted",
		          esc(c->cfg->irc_server));
	c->state = IRC_WAITING;
	irc_connect_next(c);
}

void
irc_stop(struct irc *c)
{
	enum irc_state was = c->state;

	if (c->state == IRC_STOPPED)
		return;
	/* Stopped first, so that a failing write does not schedule a reconnect. */
	c->state = IRC_STOPPED;
	if (c->fd >= 0 && (was == IRC_REGISTERED || was == IRC_REGISTERING)) {
		/* Best effort: one non-blocking try to say goodbye. */
		send_now(c, "QUIT :faqbot is stopping");
		write_out(c);
		if (c->ssl && c->fd >= 0) {
			ERR_clear_error();
			SSL_shutdown(c->ssl);
			ERR_clear_error();
		}
	}
	close_link(c);
	timer_cancel(c, &c->retry_timer);
	timer_cancel(c, &c->resolve_timer);
	if (c->ai) {
		freeaddrinfo(c->ai);
		c->ai = c->ai_next = NULL;
	}
	if (c->gai) {
		if (gai_cancel(&c->gai->cb) == EAI_CANCELED ||
		    gai_error(&c->gai->cb) != EAI_INPROGRESS) {
			if (gai_error(&c->gai->cb) == 0)
				freeaddrinfo(c->gai->cb.ar_result);
			free(c->gai->host);
			free(c->gai);
		}
		/* else: glibc still uses it; it is left behind on purpose. */
		c->gai = NULL;
	}
	if (was != IRC_IDLE && was != IRC_FAILED)
		log_info("irc: stopped (%lu message(s) received, %lu reply line(s) sent)", c->nrecv,
		         c->nsent);
}

void
irc_free(struct irc *c)
{
	size_t i;

	if (c == NULL)
		return;
	irc_stop(c);
	for (i = 0; i < c->nchans; i++) {
		members_clear(&c->chans[i]);
		free(c->chans[i].mem);
		free(c->chans[i].name);
		free(c->chans[i].key);
	}
	free(c->chans);
	q_clear(&c->ctl);
	q_clear(&c->prio);
	q_clear(&c->msg);
	free(c->ctl.v);
	free(c->prio.v);
	free(c->msg.v);
	buf_free(&c->out);
	buf_free(&c->caps);
	free(c->rb);
	free(c->nick);
	free(c->want);
	SSL_CTX_free(c->ctx);
	free(c);
}

int
irc_healthy(const struct irc *c)
{
	if (c->state != IRC_REGISTERED)
		return 0;
	/* A lag check still out after 10 s counts against the link. */
	return c->ping_sent_ms == 0 || now_ms() - c->ping_sent_ms < 10000;
}
