/*
 * Fuzz target: a chat message, as anyone in a room can write it, through
 * the normaliser (text_normalise) and the matcher (match_run) against the
 * set built into the binary, loaded once per process. Also the other
 * functions that take a stranger's words: the log escaper, text_fold and
 * text_words. Checks what the headers promise: the normalised text is
 * valid UTF-8, tokens lie inside it, the winner (if any) is above the
 * threshold, and nothing crashes, hangs or leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "kb.h"
#include "log.h"
#include "match.h"
#include "text.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct kb *kb;
static struct match_ctx *ctx;
static struct text_norm norm;

static void
cleanup(void)
{
	kb_free(kb);
	match_ctx_free(ctx);
	text_norm_free(&norm);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct diag_list d;

	(void)argc;
	(void)argv;
	log_init(LOG_LEVEL_ERROR, 0);
	diag_list_init(&d);
	kb = kb_load_embedded(&d);
	diag_list_free(&d);
	if (kb == NULL)
		abort();
	ctx = match_ctx_new();
	text_norm_init(&norm);
	atexit(cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"faqbot", "faq bot", NULL};
	const char *msg = (const char *)data;
	struct match_opts o;
	struct match_result res;
	struct buf explain, words;
	char logbuf[256], *folded;
	size_t i, flen;

	/* The normaliser alone, with the lexicon and (short inputs) without. */
	if (size < 2048)
		text_normalise(NULL, NULL, msg, size, &norm);
	text_normalise(kb->lx, names, msg, size, &norm);
	if (!text_utf8_valid(norm.text.data ? norm.text.data : "", norm.text.len))
		abort();
	for (i = 0; i < norm.ntok; i++)
		if ((size_t)norm.tok[i].off + norm.tok[i].len > norm.text.len ||
		    (size_t)norm.tok[i].src_off + norm.tok[i].src_len > size)
			abort();

	/* The matcher, as the bot runs it and as `faqbot ask` explains it. */
	match_opts_default(&o);
	o.bot_names = names;
	buf_init(&explain);
	match_run(ctx, kb, &o, msg, size, &res, size & 1 ? &explain : NULL);
	if (res.intent != NULL &&
	    res.score < (res.intent->min_score > 0 ? res.intent->min_score : o.threshold))
		abort();
	if (res.ncap > MATCH_MAX_CAPTURES || res.nalt > MATCH_MAX_ALT)
		abort();
	for (i = 0; i < res.ncap; i++)
		if (res.cap_name[i] == NULL || res.cap_value[i] == NULL)
			abort();
	buf_free(&explain);

	/* Strict limits: every pattern run may stop early, and must still return. */
	if (size < 2048) {
		o.match_limit = 1000;
		o.depth_limit = 10;
		match_run(ctx, kb, &o, msg, size, &res, NULL);
	}

	/* The other ways a stranger's words are handled. */
	log_escape(msg, size, logbuf, sizeof(logbuf));
	if (memchr(logbuf, '\0', sizeof(logbuf)) == NULL)
		abort();
	folded = text_fold(msg, size, &flen);
	if (strlen(folded) > flen)
		abort();
	free(folded);
	buf_init(&words);
	text_words(msg, size, &words);
	buf_free(&words);
	return 0;
}
