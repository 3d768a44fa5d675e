/*
 * Fuzz target: what an IRC server (or anyone it relays) sends, through
 * the parts of the IRC transport that do not need a connection
 * (transport/irc_internal.h): the line framer fed in pieces of varying
 * size, the parser, the prefix and address helpers, the case mapping;
 * and, with the same bytes as the text of a reply, the splitter that cuts
 * replies into lines and the SASL PLAIN encoder.
 *
 * Oracles beyond "no crash, hang or leak": parsed fields lie inside the
 * line; the splitter's pieces are non-empty, at most max bytes, hold no
 * line break, never cut a valid UTF-8 character, and lose nothing but the
 * spaces at a cut; SASL chunks are at most 400 bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "transport/irc_internal.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/* --- the framer and the parser ------------------------------------------ */

static int
on_line(void *arg, char *line, size_t len)
{
	static const enum irc_casemap maps[] = {IRC_CASEMAP_RFC1459, IRC_CASEMAP_STRICT,
	                                        IRC_CASEMAP_ASCII};
	unsigned long *lines = arg;
	struct irc_msg m;
	char nick[64];
	const char *rest, *end = line + len;
	size_t i;
	int k;

	(*lines)++;
	if (len == 0 || len > IRC_MAX_LINE || strlen(line) != len)
		abort();
	if (irc_parse(line, &m) == -1)
		return 0;
	if (m.command == NULL || m.command[0] == '\0' || m.command < line || m.command >= end)
		abort();
	if (m.nparams < 0 || m.nparams > IRC_MAX_PARAMS)
		abort();
	for (k = 0; k < m.nparams; k++)
		if (m.params[k] < line || m.params[k] > end)
			abort();
	for (i = 0; m.command[i]; i++)
		if (m.command[i] >= 'a' && m.command[i] <= 'z')
			abort();
	irc_prefix_nick(m.prefix, nick, sizeof(nick));
	if (strlen(nick) >= sizeof(nick))
		abort();
	irc_prefix_nick(m.prefix, nick, 1);
	for (i = 0; i < NELEM(maps); i++) {
		if (m.nparams > 0) {
			if (irc_casecmp(m.params[0], m.params[0], maps[i]) != 0)
				abort();
			(void)irc_casecmp(m.params[0], "#Support[x]", maps[i]);
			if (irc_addressed(m.params[m.nparams - 1], "faqbot", maps[i], &rest) == 1 &&
			    (rest < m.params[m.nparams - 1] || rest > end))
				abort();
			(void)irc_addressed(m.params[m.nparams - 1], m.params[0], maps[i], &rest);
		}
	}
	return 0;
}

static void
fuzz_framer(const uint8_t *data, size_t size)
{
	struct irc_rbuf *rb = xcalloc(1, sizeof(*rb));
	unsigned long lines = 0;
	size_t off = 0, step;

	irc_rbuf_reset(rb);
	/* Pieces of 1 to 256 bytes, their sizes taken from the data itself. */
	while (off < size) {
		step = 1 + data[off] % 256;
		if (step > size - off)
			step = size - off;
		irc_rbuf_feed(rb, (const char *)data + off, step, on_line, &lines);
		off += step;
	}
	/* The same stream at once must give the same lines. */
	{
		struct irc_rbuf *rb2 = xcalloc(1, sizeof(*rb2));
		unsigned long lines2 = 0;

		irc_rbuf_reset(rb2);
		irc_rbuf_feed(rb2, (const char *)data, size, on_line, &lines2);
		if (lines2 != lines || rb2->dropped_long != rb->dropped_long ||
		    rb2->dropped_nul != rb->dropped_nul)
			abort();
		free(rb2);
	}
	free(rb);
}

/* --- the splitter -------------------------------------------------------- */

struct split_state {
	size_t max;     /* the limit given */
	int valid;      /* the text was valid UTF-8 */
	struct buf ink; /* every byte of the pieces but spaces, tabs and line breaks */
};

static int
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void
on_piece(void *arg, const char *piece, size_t len)
{
	struct split_state *st = arg;
	size_t i;

	if (len == 0 || len > st->max)
		abort();
	if (memchr(piece, '\n', len) != NULL || memchr(piece, '\r', len) != NULL)
		abort();
	if (st->valid && !text_utf8_valid(piece, len))
		abort(); /* a character was cut in two */
	for (i = 0; i < len; i++)
		if (!is_blank(piece[i]))
			buf_putc(&st->ink, piece[i]);
}

static void
fuzz_split(const char *text, size_t max)
{
	struct split_state st;
	struct buf want;
	size_t i, n = strlen(text);

	st.max = max < 4 ? 4 : max;
	st.valid = text_utf8_valid(text, n);
	buf_init(&st.ink);
	buf_init(&want);
	irc_split(text, max, on_piece, &st);
	for (i = 0; i < n; i++)
		if (!is_blank(text[i]))
			buf_putc(&want, text[i]);
	if (want.len != st.ink.len || (want.len && memcmp(want.data, st.ink.data, want.len) != 0))
		abort(); /* something besides blanks was lost or added */
	buf_free(&want);
	buf_free(&st.ink);
}

/* --- SASL ----------------------------------------------------------------- */

static void
on_chunk(void *arg, const char *piece, size_t len)
{
	size_t *total = arg;

	if (len == 0 || len > 400)
		abort();
	if (!(len == 1 && piece[0] == '+'))
		*total += len;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, *b64, *user, *pass;
	size_t half = size / 2, total = 0;

	fuzz_framer(data, size);

	text = xstrndup((const char *)data + (size ? 1 : 0), size ? size - 1 : 0);
	fuzz_split(text, size ? data[0] : 0);
	fuzz_split(text, 400);
	free(text);

	user = xstrndup((const char *)data, half);
	pass = xstrndup((const char *)data + half, size - half);
	b64 = irc_sasl_plain(user, pass);
	irc_sasl_chunks(b64, on_chunk, &total);
	if (total != strlen(b64))
		abort();
	free(b64);
	free(user);
	free(pass);
	return 0;
}
