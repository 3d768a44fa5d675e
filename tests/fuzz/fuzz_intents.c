/*
 * Fuzz target: an intent file as a moderator might write it (or get
 * wrong), loaded from memory with kb_load_mem() next to the shipped
 * lexicon (intents/lexicon.json, so that @{class} references resolve) and
 * the shipped responses, all taken from the set built into the binary.
 * When the set loads, every whole-set check of `faqbot lint` runs on it
 * and its examples are matched, so that hostile patterns meet the match
 * limits. A broken file must give diagnostics, never a crash, a hang or a
 * leak; a load that fails must report at least one error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "embed.h"
#include "kb.h"
#include "lint.h"
#include "log.h"
#include "match.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FILE   (1 << 20) /* as kb.c reads from disk */
#define MAX_RUNS   64        /* examples matched per input */

static struct kb_mem_file lexicon;      /* intents/lexicon.json */
static struct kb_mem_file *responses;   /* responses/ *.md */
static size_t nresponses;
static struct match_ctx *ctx;

static void
cleanup(void)
{
	free(responses);
	match_ctx_free(ctx);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const struct embed_file *e;

	(void)argc;
	(void)argv;
	log_init(LOG_LEVEL_ERROR, 0);
	for (e = embed_files; e->name; e++) {
		if (strcmp(e->name, "intents/lexicon.json") == 0) {
			lexicon.name = e->name;
			lexicon.text = e->data;
			lexicon.len = e->len;
		} else if (strncmp(e->name, "responses/", 10) == 0) {
			responses = xreallocarray(responses, nresponses + 1, sizeof(*responses));
			responses[nresponses].name = e->name;
			responses[nresponses].text = e->data;
			responses[nresponses].len = e->len;
			nresponses++;
		}
	}
	if (lexicon.name == NULL || nresponses == 0)
		abort();
	ctx = match_ctx_new();
	atexit(cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kb_mem_file in[2];
	struct diag_list d;
	struct lint_opts lo;
	struct match_result res;
	struct kb *kb;
	size_t i, j, runs = 0, n = 0;

	if (size > MAX_FILE)
		return 0;
	in[n++] = lexicon;
	in[n].name = "intents/fuzz.json";
	in[n].text = (const char *)data;
	in[n].len = size;
	n++;
	diag_list_init(&d);
	kb = kb_load_mem(in, n, responses, nresponses, &d);
	if (kb == NULL && d.errors == 0)
		abort(); /* a failed load always says why */
	for (i = 0; i < d.n; i++)
		free(diag_format(&d.d[i]));
	if (kb != NULL) {
		memset(&lo, 0, sizeof(lo));
		match_opts_default(&lo.match);
		lo.max_grade = 8;
		lo.today = 20000;
		lint_kb(kb, &lo, &d);
		/* What the bot does with every message: match, within the limits. */
		for (i = 0; i < kb->nin && runs < MAX_RUNS; i++) {
			for (j = 0; j < kb->in[i].nex && runs < MAX_RUNS; j++, runs++)
				match_run(ctx, kb, &lo.match, kb->in[i].ex[j].text,
				          strlen(kb->in[i].ex[j].text), &res, NULL);
			for (j = 0; j < kb->in[i].ncex && runs < MAX_RUNS; j++, runs++)
				match_run(ctx, kb, &lo.match, kb->in[i].cex[j].text,
				          strlen(kb->in[i].cex[j].text), &res, NULL);
		}
		match_run(ctx, kb, &lo.match, (const char *)data, size < 4096 ? size : 4096, &res,
		          NULL);
		kb_free(kb);
	}
	diag_list_free(&d);
	return 0;
}
