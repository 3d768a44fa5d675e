/*
 * Fuzz target: a model file, as faqbot-train writes it and as the bot
 * reads it back from the trainer or from its cache in the state directory
 * (learn_load). A damaged or hostile file is refused with a reason, never
 * a crash. The input is tried as it is, then with its last 8 bytes made
 * the right checksum (else the fuzzer could never get past it to the
 * parser). A file that loads is then used: every message of a few probes
 * goes through learn_read (features, both tiers, long-post windows) and
 * learn_explain, and saving it again gives back the same bytes (the format
 * has one way to write a model).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "learn.h"
#include "text.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const probes[] = {
    "what is palliative care?",
    "i dont want to be here anymore",
    "my husband cannot breathe and his lips are blue",
    "hello everyone, an update: scan was ok, then a long story about the week, the weather, "
    "the hospital car park, the nurses and the food and the family, and at the end a question "
    "about immunotherapy and how long it takes to work for most people",
    "",
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static int try_model(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *fixed;
	uint64_t sum;
	size_t i;

	try_model(data, size);
	if (size < 8)
		return 0;
	fixed = xmalloc(size);
	memcpy(fixed, data, size);
	sum = hash_bytes(fixed, size - 8);
	for (i = 0; i < 8; i++)
		fixed[size - 8 + i] = (uint8_t)(sum >> (8 * i));
	try_model(fixed, size);
	free(fixed);
	return 0;
}

static int
try_model(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"faqbot", NULL};
	struct learn_scratch sc = {0};
	struct learn_model *m;
	struct learn_pred p;
	struct text_norm n;
	struct buf out, ex;
	uint32_t *feat;
	uint64_t hash;
	const char *err;
	size_t i, c;

	m = learn_load(data, size, NULL, &hash, &err);
	if (m == NULL) {
		if (err == NULL || err[0] == '\0')
			abort(); /* refused without a reason */
		return 0;
	}
	feat = xcalloc(LEARN_MAX_FEATURES, sizeof(*feat));
	text_norm_init(&n);
	buf_init(&ex);
	for (i = 0; i < NELEM(probes); i++) {
		text_normalise(NULL, names, probes[i], strlen(probes[i]), &n);
		learn_read(m, &n, names, 1, &sc, feat, &p);
		if (!(p.p_safety >= 0 && p.p_safety <= 1) || p.ntop > LEARN_TOP)
			abort();
		for (c = 0; c < p.ntop; c++)
			if (p.top[c] >= learn_nclass(m) || !(p.ptop[c] >= 0 && p.ptop[c] <= 1.0000001))
				abort();
		learn_explain(m, &n, names, LEARN_C_CRISIS, 8, &ex);
		buf_reset(&ex);
	}
	/* One way to write a model: loading then saving gives the same bytes. */
	buf_init(&out);
	learn_save(m, hash, &out);
	if (out.len != size || memcmp(out.data, data, size) != 0)
		abort();
	buf_free(&out);
	buf_free(&ex);
	text_norm_free(&n);
	learn_scratch_free(&sc);
	free(feat);
	learn_free(m);
	return 0;
}
