/*
 * Loading a whole knowledge base (lexicon, intents, responses), the checks
 * across files, and the matcher's index. See kb.h.
 */
#include "kb.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "acm.h"
#include "embed.h"
#include "json.h"
#include "learn.h"
#include "lexicon.h"
#include "match.h"
#include "rxlit.h"
#include "smap.h"
#include "trainer.h"
#include "text.h"
#include "util.h"

#define KB_MAX_FILE (1 << 20)   /* a hand-written file larger than this is a mistake */
#define KB_MAX_FILES 10000      /* files read from one directory */
#define KB_MAX_TOTAL (64 << 20) /* bytes read in all, so that a load is bounded */

/* A file to load: its name and contents. */
struct kb_file {
	char *name;
	char *text;
	size_t len;
};

struct kb_files {
	struct kb_file *f;
	size_t n;
	size_t total; /* bytes read */
	int builtin;  /* labelled files: the set built in, standing for a missing one */
};

static void
files_free(struct kb_files *fs)
{
	size_t i;

	for (i = 0; i < fs->n; i++) {
		free(fs->f[i].name);
		free(fs->f[i].text);
	}
	free(fs->f);
	fs->f = NULL;
	fs->n = 0;
}

static void
files_add(struct kb_files *fs, const char *name, char *text, size_t len)
{
	fs->f = xreallocarray(fs->f, fs->n + 1, sizeof(*fs->f));
	fs->f[fs->n].name = xstrdup(name);
	fs->f[fs->n].text = text;
	fs->f[fs->n].len = len;
	fs->n++;
}

static int
has_ext(const char *name, const char *ext)
{
	size_t n = strlen(name), e = strlen(ext);

	return n > e && strcmp(name + n - e, ext) == 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Reads one file, regular files only and never blocking, so that a FIFO or
 * a device left in a directory cannot hang a load (and with it the bot).
 * Such a thing found in a directory (in_dir) is skipped with a warning; a
 * path named as it is must be a file.
 */
static void
read_one(struct kb_files *fs, const char *path, int in_dir, struct diag_list *diags)
{
	size_t len;
	char *text;

	if (fs->total >= KB_MAX_TOTAL) {
		diag_add(diags, DIAG_ERROR, path, 0, 0,
		         "not read: the files before it already hold %d MiB, the most loaded",
		         KB_MAX_TOTAL >> 20);
		return;
	}
	if ((text = file_read_regular(path, KB_MAX_FILE, &len)) == NULL) {
		if (errno == EINVAL && in_dir)
			diag_add(diags, DIAG_WARNING, path, 0, 0,
			         "not a regular file (a FIFO, device, socket or directory); skipped");
		else if (errno == EINVAL)
			diag_add(diags, DIAG_ERROR, path, 0, 0,
			         "not a regular file (a FIFO, device, socket or directory)");
		else
			diag_add(diags, DIAG_ERROR, path, 0, 0, "cannot read: %s",
			         errno == EFBIG ? "larger than 1 MiB" : strerror(errno));
		return;
	}
	fs->total += len;
	files_add(fs, path, text, len);
}

/* Adds path (a file, or a directory's *ext files in name order) to fs. */
static void
collect(struct kb_files *fs, const char *path, const char *ext, struct diag_list *diags)
{
	struct stat st;
	struct dirent *de;
	DIR *d;
	char **names = NULL, *full;
	size_t n = 0, i;

	if (stat(path, &st) == -1) {
		diag_add(diags, DIAG_ERROR, path, 0, 0, "%s", strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		read_one(fs, path, 0, diags);
		return;
	}
	if ((d = opendir(path)) == NULL) {
		diag_add(diags, DIAG_ERROR, path, 0, 0, "%s", strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !has_ext(de->d_name, ext))
			continue;
		if (n == KB_MAX_FILES) {
			diag_add(diags, DIAG_ERROR, path, 0, 0,
			         "more than %d %s files; the rest are not read", KB_MAX_FILES, ext);
			break;
		}
		names = xreallocarray(names, n + 1, sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_str);
	for (i = 0; i < n; i++) {
		full =
		    xasprintf("%s%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/", names[i]);
		read_one(fs, full, 1, diags);
		free(full);
		free(names[i]);
	}
	free(names);
}

static void
collect_embedded(struct kb_files *fs, const char *prefix)
{
	const struct embed_file *e;
	size_t pl = strlen(prefix);

	for (e = embed_files; e->name; e++)
		if (strncmp(e->name, prefix, pl) == 0)
			files_add(fs, e->name, xstrndup(e->data, e->len), e->len);
}

static const char *
keep_name(struct kb *kb, const char *name)
{
	kb->files = xreallocarray(kb->files, kb->nfiles + 1, sizeof(*kb->files));
	kb->files[kb->nfiles] = xstrdup(name);
	return kb->files[kb->nfiles++];
}

void
kb_free(struct kb *kb)
{
	size_t i;

	if (kb == NULL)
		return;
	for (i = 0; i < kb->nin; i++)
		intent_clear(&kb->in[i]);
	free(kb->in);
	intent_terms_free(&kb->terms);
	response_set_free(&kb->responses);
	lexicon_free(kb->lx);
	for (i = 0; i < kb->nfiles; i++)
		free(kb->files[i]);
	free(kb->files);
	free(kb->origin);
	acm_free(kb->ac);
	trainer_free(kb->job);
	free(kb->model_err);
	free(kb->cache_path);
	learn_free(kb->model);
	free(kb->intent_class);
	free(kb->class_intent);
	kb_rows_free(kb->rows, kb->nrows);
	free(kb->pat);
	free(kb->lit_start);
	free(kb->lit_pat);
	free(kb->term_start);
	free(kb->term_ref);
	free(kb->always);
	free(kb);
}

int
kb_intent_find(const struct kb *kb, const char *id)
{
	size_t i;

	for (i = 0; i < kb->nin; i++)
		if (strcmp(kb->in[i].id, id) == 0)
			return (int)i;
	return -1;
}

const struct response *
kb_response(const struct kb *kb, const struct intent *in, const char *locale)
{
	return response_find(&kb->responses, in->response, locale);
}

void
kb_stats(const struct kb *kb, size_t *patterns, size_t *always, size_t *literals, size_t *terms)
{
	*patterns = kb->npat;
	*always = kb->nalways;
	*literals = kb->nlit;
	*terms = kb->terms.n;
}

/* Pairs (key, value) turned into compressed rows: start[key]..start[key+1]. */
struct pairs {
	uint32_t *key;
	uint32_t *val;
	size_t n;
	size_t cap;
};

static void
pairs_add(struct pairs *p, uint32_t key, uint32_t val)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 256;
		p->key = xreallocarray(p->key, p->cap, sizeof(*p->key));
		p->val = xreallocarray(p->val, p->cap, sizeof(*p->val));
	}
	p->key[p->n] = key;
	p->val[p->n] = val;
	p->n++;
}

/* Builds start[nkeys + 1] and the values grouped by key. */
static void
pairs_rows(const struct pairs *p, size_t nkeys, uint32_t **start, uint32_t **vals)
{
	uint32_t *s = xcalloc(nkeys + 1, sizeof(*s)), *fill;
	uint32_t *v = xcalloc(p->n ? p->n : 1, sizeof(*v));
	size_t i;

	for (i = 0; i < p->n; i++)
		s[p->key[i] + 1]++;
	for (i = 0; i < nkeys; i++)
		s[i + 1] += s[i];
	fill = xcalloc(nkeys ? nkeys : 1, sizeof(*fill));
	for (i = 0; i < p->n; i++)
		v[s[p->key[i]] + fill[p->key[i]]++] = p->val[i];
	free(fill);
	*start = s;
	*vals = v;
}

static void
pairs_free(struct pairs *p)
{
	free(p->key);
	free(p->val);
}

static void
index_pattern(struct kb *kb, struct smap *lits, struct pairs *lp, uint32_t intent, uint16_t idx,
              int negative, struct intent_pattern *ip)
{
	struct rxlit r;
	uint32_t p = (uint32_t)kb->npat, *slot, cap;
	size_t i, flen;
	char *f;
	int added;

	kb->pat = xreallocarray(kb->pat, kb->npat + 1, sizeof(*kb->pat));
	kb->pat[kb->npat].intent = intent;
	kb->pat[kb->npat].idx = idx;
	kb->pat[kb->npat].negative = (uint8_t)negative;
	kb->npat++;
	if (pcre2_pattern_info(ip->code, PCRE2_INFO_CAPTURECOUNT, &cap) == 0 &&
	    cap > kb->max_captures)
		kb->max_captures = cap;
	if (rxlit_extract(ip->expanded, strlen(ip->expanded), &r) <= 0 || r.n == 0) {
		rxlit_free(&r);
		ip->always = 1;
		kb->always = xreallocarray(kb->always, kb->nalways + 1, sizeof(*kb->always));
		kb->always[kb->nalways++] = p;
		return;
	}
	for (i = 0; i < r.n; i++) {
		f = text_fold(r.lit[i], r.len[i], &flen);
		slot = smap_put(lits, f, flen, (uint32_t)lits->count, &added);
		pairs_add(lp, *slot, p);
		free(f);
	}
	rxlit_free(&r);
}

static void
build_index(struct kb *kb)
{
	struct smap lits;
	struct pairs lp = {0}, tp = {0};
	struct kb_term_ref *refs = NULL;
	size_t i, j, k, nrefs = 0;
	uint32_t *refidx;

	smap_init(&lits);
	for (i = 0; i < kb->nin; i++) {
		struct intent *in = &kb->in[i];

		for (j = 0; j < in->npat; j++)
			index_pattern(kb, &lits, &lp, (uint32_t)i, (uint16_t)j, 0, &in->pat[j]);
		for (j = 0; j < in->nneg; j++)
			index_pattern(kb, &lits, &lp, (uint32_t)i, (uint16_t)j, 1, &in->neg[j]);
#define REF(t, r, g)                                                                               \
	do {                                                                                       \
		refs = xreallocarray(refs, nrefs + 1, sizeof(*refs));                              \
		refs[nrefs] = (struct kb_term_ref){(uint32_t)i, (uint8_t)(r), (uint8_t)(g)};       \
		pairs_add(&tp, (t), (uint32_t)nrefs);                                              \
		nrefs++;                                                                           \
	} while (0)
		for (j = 0; j < in->nall; j++)
			for (k = 0; k < in->all[j].n; k++)
				REF(in->all[j].term[k], KB_ROLE_ALL, j);
		for (k = 0; k < in->any.n; k++)
			REF(in->any.term[k], KB_ROLE_ANY, 0);
		for (k = 0; k < in->none.n; k++)
			REF(in->none.term[k], KB_ROLE_NONE, 0);
#undef REF
	}
	kb->nlit = lits.count;
	pairs_rows(&lp, kb->nlit, &kb->lit_start, &kb->lit_pat);
	pairs_rows(&tp, kb->terms.n, &kb->term_start, &refidx);
	kb->term_ref = xcalloc(tp.n ? tp.n : 1, sizeof(*kb->term_ref));
	for (i = 0; i < tp.n; i++)
		kb->term_ref[i] = refs[refidx[i]];
	free(refidx);
	free(refs);

	kb->ac = acm_new();
	for (i = 0; i <= lits.mask && lits.slot; i++)
		if (lits.slot[i].hash)
			acm_add(kb->ac, lits.slot[i].key, lits.slot[i].keylen,
			        lits.slot[i].value | KB_LIT_FLAG);
	for (i = 0; i < kb->terms.n; i++)
		acm_add(kb->ac, kb->terms.text[i], kb->terms.len[i], (uint32_t)i);
	acm_build(kb->ac);
	pairs_free(&lp);
	pairs_free(&tp);
	smap_free(&lits);
}

static void
check_across(struct kb *kb, int partial, struct diag_list *diags)
{
	struct smap ids, seen;
	size_t i, j;
	uint32_t *slot;
	int added, k;
	static const char *const safety[] = KB_SAFETY_IDS;

	smap_init(&ids);
	for (i = 0; i < kb->nin; i++) {
		struct intent *in = &kb->in[i];

		slot = smap_put(&ids, in->id, strlen(in->id), (uint32_t)i, &added);
		if (!added) {
			struct intent *first = &kb->in[*slot];

			diag_add(diags, DIAG_ERROR, in->at.file, in->at.line, in->at.col,
			         "duplicate intent id \"%s\" (first defined at %s:%d:%d)", in->id,
			         first->at.file, first->at.line, first->at.col);
		}
		if (!in->silent && response_find(&kb->responses, in->response, NULL) == NULL)
			diag_add(diags, DIAG_ERROR, in->at.file, in->at.line, in->at.col,
			         "intent \"%s\" answers with response \"%s\", which does not exist",
			         in->id, in->response);
	}
	smap_free(&ids);
	/* Without them an emergency gets no answer: such a set never replaces a working one. */
	for (i = 0; i < NELEM(safety); i++) {
		if ((k = kb_intent_find(kb, safety[i])) < 0)
			diag_add(diags, partial ? DIAG_WARNING : DIAG_ERROR, kb->origin, 0, 0,
			         "the set has no intent \"%s\": such messages would get no safety "
			         "answer (restore it from the shipped intents/safety.json)",
			         safety[i]);
		else if (kb->in[k].silent)
			diag_add(diags, DIAG_ERROR, kb->in[k].at.file, kb->in[k].at.line,
			         kb->in[k].at.col, "intent \"%s\" must not be silent", safety[i]);
	}
	/* Hashed, so that a set of thousands costs no more than it holds. */
	smap_init(&ids);
	for (j = 0; j < kb->nin; j++)
		smap_put(&ids, kb->in[j].response, strlen(kb->in[j].response), 0, NULL);
	smap_init(&seen);
	for (i = 0; i < kb->responses.n; i++) {
		const struct response *r = &kb->responses.r[i];
		char *key = xasprintf("%s%c%s", r->id, '\0', r->locale);

		slot = smap_put(&seen, key, strlen(r->id) + 1 + strlen(r->locale), (uint32_t)i,
		                &added);
		free(key);
		if (!added)
			diag_add(diags, DIAG_ERROR, r->file, 1, 1,
			         "duplicate response \"%s\" for locale %s (also in %s)", r->id,
			         r->locale, kb->responses.r[*slot].file);
		if (kb->nin > 0 && smap_get(&ids, r->id, strlen(r->id)) == NULL)
			diag_add(diags, DIAG_NOTE, r->file, 1, 1,
			         "response \"%s\" is not used by any intent", r->id);
	}
	smap_free(&seen);
	smap_free(&ids);
}

/* Adds the words of every string under j to the lexicon's dictionary. */
static void
add_words_of(struct lexicon *lx, const cJSON *j, int depth)
{
	const cJSON *c;

	if (depth > JSON_MAX_DEPTH)
		return;
	if (cJSON_IsString(j))
		lexicon_add_words(lx, j->valuestring, strlen(j->valuestring));
	for (c = j->child; c; c = c->next)
		add_words_of(lx, c, depth + 1);
}

/* --- the learned layer ---------------------------------------------------- */

/*
 * The model's classes: the safety binary, the two safety intents, "no
 * answer", then every other intent that answers. A silent intent's class is
 * "no answer": when it wins, the bot says nothing.
 */
static void
set_classes(struct kb *kb)
{
	size_t i, n = LEARN_C_FIRST;

	kb->intent_class = xcalloc(kb->nin ? kb->nin : 1, sizeof(*kb->intent_class));
	kb->class_intent = xcalloc(kb->nin + LEARN_C_FIRST, sizeof(*kb->class_intent));
	for (i = 0; i < LEARN_C_FIRST; i++)
		kb->class_intent[i] = -1;
	for (i = 0; i < kb->nin; i++) {
		const struct intent *in = &kb->in[i];
		uint32_t c;

		if (strcmp(in->id, "safety.emergency") == 0)
			c = LEARN_C_EMERGENCY;
		else if (strcmp(in->id, "safety.crisis") == 0)
			c = LEARN_C_CRISIS;
		else if (in->silent)
			c = LEARN_C_NULL;
		else
			c = (uint32_t)n++;
		kb->intent_class[i] = c;
		if (c != LEARN_C_NULL)
			kb->class_intent[c] = (int)i;
	}
	kb->nclass = n;
}

void
kb_rows_free(struct kb_row *rows, size_t n)
{
	size_t i;

	for (i = 0; rows != NULL && i < n; i++)
		free(rows[i].text);
	free(rows);
}

static void
row_add(struct kb_row **rows, size_t *n, const char *text, size_t len, int intent, int source,
        const char *file, int line, int col)
{
	struct kb_row *r;

	if (rows == NULL) { /* only checked and counted */
		(*n)++;
		return;
	}
	if ((*n & (*n - 1)) == 0) /* 0, 1, 2, 4, ...: doubles */
		*rows = xreallocarray(*rows, *n ? *n * 2 : 1, sizeof(**rows));
	r = &(*rows)[(*n)++];
	r->text = xstrndup(text, len);
	r->intent = intent;
	r->source = (uint8_t)source;
	r->at.file = file;
	r->at.line = line;
	r->at.col = col;
}

/* The intent id closest to id (for "did you mean"), or NULL. */
static const char *
closest_intent(const struct kb *kb, const char *id)
{
	size_t i, d, best = 4;
	const char *hint = NULL;

	for (i = 0; i < kb->nin; i++) {
		d = util_edit_distance(id, kb->in[i].id);
		if (d < best) {
			best = d;
			hint = kb->in[i].id;
		}
	}
	return hint;
}

/* Problems reported per labelled file; the rest are counted in one line. */
#define KB_TSV_MAX_DIAGS 10

static int tsv_rows(const struct kb *kb, const char *file, const char *text, size_t len,
                    struct kb_row **rows, size_t *nrows, size_t *left_out,
                    struct diag_list *diags);

/* Reads one TSV file of labelled messages (header "intent<TAB>message"). */
static int
rows_from_tsv(const struct kb *kb, const char *file, const char *text, size_t len,
              struct kb_row **rows, size_t *nrows, size_t *left_out, struct diag_list *all)
{
	struct diag_list local;
	size_t i;
	int errors;

	diag_list_init(&local);
	errors = tsv_rows(kb, file, text, len, rows, nrows, left_out, &local);
	for (i = 0; i < local.n && i < KB_TSV_MAX_DIAGS; i++)
		diag_add(all, local.d[i].sev, local.d[i].file, local.d[i].line, local.d[i].col, "%s",
		         local.d[i].msg);
	if (local.n > KB_TSV_MAX_DIAGS)
		diag_add(all, DIAG_ERROR, file, local.d[i].line, 0,
		         "%zu more problems in this file (fix the ones above first)",
		         local.n - KB_TSV_MAX_DIAGS);
	diag_list_free(&local);
	return errors;
}

/* rows_from_tsv() without the cap on what it reports. */
static int
tsv_rows(const struct kb *kb, const char *file, const char *text, size_t len,
         struct kb_row **rows, size_t *nrows, size_t *left_out, struct diag_list *diags)
{
	const char *p = text, *end = text + len, *nl, *tab;
	int line = 0, errors = 0;

	while (p < end) {
		size_t l, il;
		char id[128];
		int idx;

		nl = memchr(p, '\n', (size_t)(end - p));
		l = nl ? (size_t)(nl - p) : (size_t)(end - p);
		line++;
		if (l > 0 && p[l - 1] == '\r')
			l--;
		if (line == 1) {
			if (l != 14 || memcmp(p, "intent\tmessage", 14) != 0) {
				diag_add(diags, DIAG_ERROR, file, 1, 1,
				         "the first line must be the header \"intent<TAB>message\"");
				return 1;
			}
			goto next;
		}
		if (l == 0 || p[0] == '#')
			goto next;
		if ((tab = memchr(p, '\t', l)) == NULL) {
			diag_add(diags, DIAG_ERROR, file, line, 1,
			         "expected an intent id, a TAB, then the message");
			errors++;
			goto next;
		}
		il = (size_t)(tab - p);
		if (il == 0 || il >= sizeof(id)) {
			diag_add(diags, DIAG_ERROR, file, line, 1,
			         il ? "intent id too long" : "empty intent id before the TAB");
			errors++;
			goto next;
		}
		memcpy(id, p, il);
		id[il] = '\0';
		if (tab + 1 == p + l) {
			diag_add(diags, DIAG_ERROR, file, line, (int)il + 2,
			         "empty message after the intent id");
			errors++;
			goto next;
		}
		if (strcmp(id, "null") == 0) {
			idx = -1;
		} else if ((idx = kb_intent_find(kb, id)) < 0 && kb->labels_builtin) {
			/* Another set's intent: the message teaches this set nothing. */
			(*left_out)++;
			goto next;
		} else if (idx < 0) {
			const char *hint = closest_intent(kb, id);

			if (hint)
				diag_add(diags, DIAG_ERROR, file, line, 1,
				         "unknown intent \"%s\" (did you mean \"%s\"?)", id, hint);
			else
				diag_add(diags, DIAG_ERROR, file, line, 1,
				         "unknown intent \"%s\" (an intent id, or null for messages the "
				         "bot should not answer)",
				         id);
			errors++;
			goto next;
		}
		if (!text_utf8_valid(tab + 1, (size_t)(p + l - tab - 1))) {
			diag_add(diags, DIAG_ERROR, file, line, (int)il + 2,
			         "the message is not valid UTF-8");
			errors++;
			goto next;
		}
		row_add(rows, nrows, tab + 1, (size_t)(p + l - tab - 1), idx, KB_ROW_FILE, file, line,
		        (int)il + 2);
next:
		p = nl ? nl + 1 : end;
	}
	return errors;
}

int
kb_rows_collect(const struct kb *kb, const char *const *bot_names, const char *const *names,
                const char *const *texts, const size_t *lens, size_t nfiles,
                struct kb_row **rows, size_t *nrows, struct diag_list *diags)
{
	struct match_ctx *ctx = match_ctx_new();
	struct match_opts mo;
	struct match_result res;
	size_t i, j, left_out = 0;
	int errors = 0;

	match_opts_default(&mo);
	mo.bot_names = bot_names;
	mo.no_model = 1;
	for (i = 0; rows != NULL && i < kb->nin; i++) {
		const struct intent *in = &kb->in[i];

		for (j = 0; j < in->nex; j++)
			row_add(rows, nrows, in->ex[j].text, strlen(in->ex[j].text),
			        in->silent ? -1 : (int)i, KB_ROW_EXAMPLE, in->ex[j].at.file,
			        in->ex[j].at.line, in->ex[j].at.col);
		for (j = 0; j < in->ncex; j++) {
			const char *t = in->cex[j].text;
			int label = -1;

			/* Evidence against this intent: whatever the rules say without it. */
			match_run(ctx, kb, &mo, t, strlen(t), &res, NULL);
			if (res.intent == in)
				res.intent = res.nalt > 0 && !res.alt[0].intent->silent
				                 ? res.alt[0].intent
				                 : NULL;
			if (res.intent != NULL && res.intent != in)
				label = (int)(res.intent - kb->in);
			row_add(rows, nrows, t, strlen(t), label, KB_ROW_COUNTER, in->cex[j].at.file,
			        in->cex[j].at.line, in->cex[j].at.col);
		}
	}
	match_ctx_free(ctx);
	for (i = 0; i < nfiles; i++)
		errors += rows_from_tsv(kb, names[i], texts[i], lens[i], rows, nrows, &left_out,
		                        diags);
	if (left_out > 0)
		diag_add(diags, DIAG_NOTE, names[0], 0, 0,
		         "no labelled messages beside the intents: the model learns from the set "
		         "built in, without its %zu messages for intents this set does not have",
		         left_out);
	return errors;
}

/* Trains in this process, when set (the trainer itself, and the tests). */
static kb_trainer_fn trainer_here;

void
kb_set_trainer(kb_trainer_fn fn)
{
	trainer_here = fn;
}

/* The input hash of a set of files: their bytes, in order, and the names. */
static uint64_t
files_hash(uint64_t h, const struct kb_files *fs)
{
	size_t i;

	for (i = 0; i < fs->n; i++) {
		h ^= hash_bytes(fs->f[i].text, fs->f[i].len) + 0x9e3779b97f4a7c15ull + (h << 6) +
		     (h >> 2);
		h *= 0x100000001b3ull;
	}
	return h;
}

#define KB_CACHE_KEEP 3 /* models kept in a cache directory */

static int model_mismatch(const struct kb *kb, const struct learn_model *m);

/* The model cached for kb's inputs, if there is a sound one: 0, else -1. */
static int
cache_load(struct kb *kb)
{
	const char *why;
	uint64_t hash;
	size_t len;
	char *data;

	if (kb->cache_path == NULL || (data = file_read(kb->cache_path, 512u << 20, &len)) == NULL)
		return -1;
	kb->model = learn_load(data, len, kb->lx, &hash, &why);
	free(data);
	if (kb->model != NULL && (hash != kb->input_hash || model_mismatch(kb, kb->model))) {
		learn_free(kb->model);
		kb->model = NULL;
	}
	return kb->model != NULL ? 0 : -1;
}

/* A cached model file and its age. */
struct cached {
	char *path;
	time_t mtime;
};

static int
cmp_newest_first(const void *a, const void *b)
{
	const struct cached *x = a, *y = b;

	return x->mtime > y->mtime ? -1 : x->mtime < y->mtime;
}

/* Keeps the model just trained in the cache, and only the newest few there. */
static void
cache_store(const struct kb *kb, const char *data, size_t len)
{
	struct cached *old = NULL;
	struct dirent *de;
	struct stat st;
	char *dir, *slash, *p;
	size_t n = 0, i;
	DIR *d;

	if (kb->cache_path == NULL)
		return;
	if (file_write_atomic(kb->cache_path, data, len, 0600) == -1)
		return; /* a cache: without it the next start trains again */
	dir = xstrdup(kb->cache_path);
	if ((slash = strrchr(dir, '/')) != NULL)
		*slash = '\0';
	if ((d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strncmp(de->d_name, "model-", 6) != 0 || !has_ext(de->d_name, ".bin"))
				continue;
			p = xasprintf("%s/%s", dir, de->d_name);
			if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
				old = xreallocarray(old, n + 1, sizeof(*old));
				old[n].path = p;
				old[n++].mtime = st.st_mtime;
			} else {
				free(p);
			}
		}
		closedir(d);
	}
	qsort(old, n, sizeof(*old), cmp_newest_first);
	for (i = 0; i < n; i++) {
		if (i >= KB_CACHE_KEEP && strcmp(old[i].path, kb->cache_path) != 0)
			unlink(old[i].path);
		free(old[i].path);
	}
	free(old);
	free(dir);
}

/*
 * Reads the labelled files, collects the rows, and trains (here, or in the
 * trainer process, see trainer.h). Returns the number of errors.
 */
static int
learn_layer(struct kb *kb, struct kb_files *lfiles, const struct kb_source *src,
            struct diag_list *diags)
{
	const char **names = xcalloc(lfiles->n ? lfiles->n : 1, sizeof(*names));
	const char **texts = xcalloc(lfiles->n ? lfiles->n : 1, sizeof(*texts));
	size_t *lens = xcalloc(lfiles->n ? lfiles->n : 1, sizeof(*lens));
	const char *const *bn;
	char *err;
	size_t i;
	int errors, keep;

	kb->labels_builtin = lfiles->builtin;
	for (i = 0; i < lfiles->n; i++) {
		names[i] = keep_name(kb, lfiles->f[i].name);
		texts[i] = lfiles->f[i].text;
		lens[i] = lfiles->f[i].len;
	}
	/*
	 * The bot itself only checks the files (the trainer process reads them
	 * again to learn): no copy of thousands of messages in its memory.
	 */
	keep = src->keep_rows || (trainer_here != NULL && !src->no_model);
	errors = kb_rows_collect(kb, src->bot_names, names, texts, lens, lfiles->n,
	                         keep ? &kb->rows : NULL, &kb->nrows, diags);
	for (i = 0; src->taught != NULL && kb->rows != NULL && i < kb->nrows; i++)
		if (kb->rows[i].source == KB_ROW_FILE && strcmp(kb->rows[i].at.file, src->taught) == 0)
			kb->rows[i].source = KB_ROW_TAUGHT;
	free(names);
	free(texts);
	free(lens);
	kb->input_hash = files_hash(kb->input_hash, lfiles);
	for (bn = src->bot_names; bn && *bn; bn++)
		kb->input_hash = kb->input_hash * 31 + hash_bytes(*bn, strlen(*bn));
	if (src->cache_dir != NULL) {
		kb->cache_path = xasprintf("%s/model-%016llx.bin", src->cache_dir,
		                           (unsigned long long)kb->input_hash);
	}
	if (errors == 0 && !src->no_model) {
		if (cache_load(kb) == 0) {
			/* Learnt from the same files before: nothing to train. */
		} else if (trainer_here != NULL) {
			kb->model = trainer_here(kb, src->bot_names, kb->rows, kb->nrows, NULL,
			                         src->learn);
		} else if ((kb->job = trainer_start(src, NULL, &err)) == NULL) {
			/* Said when the model is waited for (kb_model_wait, kb_model_poll). */
			kb->model_err = err;
		}
	}
	if (!src->keep_rows) {
		kb_rows_free(kb->rows, kb->nrows);
		kb->rows = NULL;
		kb->nrows = 0;
	}
	return errors;
}

int
kb_model_pending(const struct kb *kb)
{
	return kb->job != NULL;
}

int
kb_model_fds(const struct kb *kb, int fds[2])
{
	return kb->job ? trainer_fds(kb->job, fds) : 0;
}

/* Does m not fit kb (other classes)? 1 when it does not. */
static int
model_mismatch(const struct kb *kb, const struct learn_model *m)
{
	size_t c;

	if (learn_nclass(m) != kb->nclass)
		return 1;
	for (c = LEARN_C_FIRST; c < kb->nclass; c++)
		if (strcmp(learn_class_id(m, (uint32_t)c), kb->in[kb->class_intent[c]].id) != 0)
			return 1;
	return 0;
}

/* Takes the finished trainer's model: checked against kb, attached, cached. */
static int
model_take(struct kb *kb, struct diag_list *diags)
{
	struct learn_model *m;
	const char *data, *why = NULL;
	uint64_t hash = 0;
	size_t len = 0;
	char *err = NULL;

	data = trainer_output(kb->job, &len, &err);
	if (data != NULL) {
		m = learn_load(data, len, kb->lx, &hash, &why);
		if (m != NULL && hash != kb->input_hash)
			why = "the files changed while it was trained (reload again)";
		else if (m != NULL && model_mismatch(kb, m))
			why = "its intents are not these";
		if (why != NULL) {
			learn_free(m);
			err = xasprintf("the trainer's model is refused: %s", why);
		} else {
			kb->model = m;
			cache_store(kb, data, len);
		}
	}
	trainer_free(kb->job);
	kb->job = NULL;
#ifdef __GLIBC__
	/* The trainer's output is read and gone: give the memory back. */
	malloc_trim(0);
#endif
	if (err != NULL) {
		diag_add(diags, DIAG_WARNING, kb->origin, 0, 0, "no learned model: %s", err);
		free(err);
		return -1;
	}
	return 0;
}

/* Reports, once, why the trainer could not start. */
static int
start_failed(struct kb *kb, struct diag_list *diags)
{
	if (kb->model_err == NULL)
		return 0;
	diag_add(diags, DIAG_WARNING, kb->origin, 0, 0, "no learned model: %s", kb->model_err);
	free(kb->model_err);
	kb->model_err = NULL;
	return -1;
}

int
kb_model_poll(struct kb *kb, struct diag_list *diags)
{
	char *err;
	int rc;

	if (kb->job == NULL) {
		start_failed(kb, diags);
		return 1;
	}
	if ((rc = trainer_read(kb->job, &err)) == 0)
		return 0;
	if (rc == -1) {
		diag_add(diags, DIAG_WARNING, kb->origin, 0, 0, "no learned model: %s", err);
		free(err);
		trainer_free(kb->job);
		kb->job = NULL;
		return 1;
	}
	model_take(kb, diags);
	return 1;
}

int
kb_model_wait(struct kb *kb, struct diag_list *diags)
{
	char *err;

	if (kb->job == NULL)
		return start_failed(kb, diags);
	if (trainer_wait(kb->job, &err) == -1) {
		diag_add(diags, DIAG_WARNING, kb->origin, 0, 0, "no learned model: %s", err);
		free(err);
		trainer_free(kb->job);
		kb->job = NULL;
		return -1;
	}
	return model_take(kb, diags);
}

/*
 * Builds a kb from the intent files ifiles (emptied on the way, once
 * nothing needs their text) and the response files rfiles. Returns NULL
 * when diags gained errors beyond errors_before.
 */
static struct kb *
kb_load_files(struct kb_files *ifiles, struct kb_files *rfiles, struct kb_files *lfiles,
              const struct kb_source *src, const char *origin, size_t errors_before,
              struct diag_list *diags)
{
	struct kb *kb = xcalloc(1, sizeof(*kb));
	struct json_doc doc;
	const char **names;
	unsigned char *ok;
	size_t i;

	kb->origin = xstrdup(origin);
	kb->lx = lexicon_new();
	intent_terms_init(&kb->terms);
	/*
	 * Two passes, one parsed file at a time (a parsed tree with its places
	 * is many times the file): the lexicon sections of every file first,
	 * since keywords and examples are normalised through it, then the
	 * intents. A file that does not parse is reported once.
	 */
	ok = xcalloc(ifiles->n ? ifiles->n : 1, 1);
	names = xcalloc(ifiles->n ? ifiles->n : 1, sizeof(*names));
	/*
	 * The words the files use come first: the normaliser reads "k1ll" and
	 * "sooo" through them, and it must read a keyword or an example the same
	 * way whichever file it is in. (A file that does not parse gives none;
	 * its error comes below.)
	 */
	for (i = 0; i < ifiles->n; i++) {
		cJSON *j = cJSON_ParseWithLength(ifiles->f[i].text, ifiles->f[i].len);

		if (j != NULL)
			add_words_of(kb->lx, j, 0);
		cJSON_Delete(j);
	}
	lexicon_words_done(kb->lx);
	for (i = 0; i < ifiles->n; i++) {
		names[i] = keep_name(kb, ifiles->f[i].name);
		if (json_doc_parse(&doc, names[i], ifiles->f[i].text, ifiles->f[i].len, diags) == 0) {
			ok[i] = 1;
			intent_file_lexicon(&doc, kb->lx, diags);
		}
		json_doc_free(&doc);
	}
	for (i = 0; i < ifiles->n; i++) {
		/* Parsed again: its warnings (duplicate keys) were given the first time. */
		if (!ok[i] ||
		    json_doc_parse(&doc, names[i], ifiles->f[i].text, ifiles->f[i].len, NULL) == -1) {
			json_doc_free(&doc);
			continue;
		}
		intent_file_intents(&doc, doc.file, kb->lx, &kb->terms, &kb->in, &kb->nin, diags);
		json_doc_free(&doc);
	}
	free(ok);
	free(names);
	kb->input_hash = files_hash(LEARN_FORMAT_HASH, ifiles);
	/* Nothing refers to the intent files' text any more (places are numbers). */
	files_free(ifiles);

	for (i = 0; i < rfiles->n; i++) {
		struct response r;

		if (response_parse(rfiles->f[i].name, rfiles->f[i].text, rfiles->f[i].len, &r,
		                   diags) == 0) {
			kb->responses.r = xreallocarray(kb->responses.r, kb->responses.n + 1,
			                                sizeof(*kb->responses.r));
			kb->responses.r[kb->responses.n++] = r;
		}
	}
	check_across(kb, src->partial, diags);
	if (diags->errors > errors_before) {
		kb_free(kb);
		return NULL;
	}
	build_index(kb);
	set_classes(kb);
	if (learn_layer(kb, lfiles, src, diags) > 0 || diags->errors > errors_before) {
		kb_free(kb);
		return NULL;
	}
	return kb;
}

/*
 * The directory called name beside the directory path ("intents" ->
 * "labelled", "/etc/faqbot/intents/" -> "/etc/faqbot/labelled"), or NULL
 * when path is not a directory. Caller frees.
 */
char *
kb_beside(const char *path, const char *name)
{
	struct stat st;
	size_t n = strlen(path);
	const char *slash;

	if (stat(path, &st) == -1 || !S_ISDIR(st.st_mode))
		return NULL;
	while (n > 1 && path[n - 1] == '/')
		n--;
	for (slash = path + n; slash > path && slash[-1] != '/'; slash--)
		;
	if (slash == path)
		return xstrdup(name);
	return xasprintf("%.*s%s", (int)(slash - path), path, name);
}

struct kb *
kb_load(const struct kb_source *src, struct diag_list *diags)
{
	struct kb_files ifiles = {0}, rfiles = {0}, lfiles = {0};
	struct buf origin;
	struct kb *kb;
	size_t i, errors_before = diags->errors;
	int found = 0;

	buf_init(&origin);
	if (src->nlabelled > 0) {
		for (i = 0; i < src->nlabelled; i++)
			collect(&lfiles, src->labelled_paths[i], ".tsv", diags);
	} else if (src->nintent == 0) {
		collect_embedded(&lfiles, "labelled/");
	} else {
		for (i = 0; i < src->nintent; i++) {
			char *dir = kb_beside(src->intent_paths[i], "labelled");
			struct stat st;

			if (dir != NULL && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
				collect(&lfiles, dir, ".tsv", diags);
				found = 1;
			}
			free(dir);
		}
		/*
		 * Intents copied elsewhere without their labelled messages: the
		 * model must not lose the thousands of emergencies and crises it
		 * learns from, so the set built in stands in.
		 */
		if (!found) {
			collect_embedded(&lfiles, "labelled/");
			lfiles.builtin = 1;
		}
	}
	if (src->nintent == 0) {
		collect_embedded(&ifiles, "intents/");
		buf_puts(&origin, "embedded intents");
	} else {
		for (i = 0; i < src->nintent; i++) {
			collect(&ifiles, src->intent_paths[i], ".json", diags);
			buf_printf(&origin, "%s%s", i ? ", " : "", src->intent_paths[i]);
		}
	}
	if (src->taught != NULL && access(src->taught, F_OK) == 0)
		collect(&lfiles, src->taught, ".tsv", diags);
	if (src->nresponse == 0) {
		collect_embedded(&rfiles, "responses/");
		buf_puts(&origin, " + embedded responses");
	} else {
		for (i = 0; i < src->nresponse; i++) {
			collect(&rfiles, src->response_paths[i], ".md", diags);
			buf_printf(&origin, "%s%s", i ? ", " : " + ", src->response_paths[i]);
		}
	}
	kb = kb_load_files(&ifiles, &rfiles, &lfiles, src, origin.data, errors_before, diags);
	files_free(&ifiles);
	files_free(&rfiles);
	files_free(&lfiles);
	buf_free(&origin);
#ifdef __GLIBC__
	/* Loading parses and compiles a lot and keeps little: give the rest back. */
	malloc_trim(0);
#endif
	return kb;
}

struct kb *
kb_load_embedded(struct diag_list *diags)
{
	struct kb_source src = {0};

	return kb_load(&src, diags);
}

/* Adds a copy of mf's bytes, NUL-terminated, to fs. */
static void
files_add_mem(struct kb_files *fs, const struct kb_mem_file *mf)
{
	char *text = xmalloc(mf->len + 1);

	if (mf->len > 0)
		memcpy(text, mf->text, mf->len);
	text[mf->len] = '\0';
	files_add(fs, mf->name, text, mf->len);
}

struct kb *
kb_load_mem(const struct kb_mem_file *intents, size_t nintent,
            const struct kb_mem_file *responses, size_t nresponse, struct diag_list *diags)
{
	struct kb_files ifiles = {0}, rfiles = {0}, lfiles = {0};
	struct kb_source src = {0};
	struct kb *kb;
	size_t i, errors_before = diags->errors;

	src.no_model = 1;
	src.partial = 1; /* fuzzers and tests: a set without safety intents will do */
	for (i = 0; i < nintent; i++)
		files_add_mem(&ifiles, &intents[i]);
	for (i = 0; i < nresponse; i++)
		files_add_mem(&rfiles, &responses[i]);
	kb = kb_load_files(&ifiles, &rfiles, &lfiles, &src, "memory", errors_before, diags);
	files_free(&ifiles);
	files_free(&rfiles);
	return kb;
}

char *
kb_cache_dir(const char *fallback)
{
	const char *env = getenv("FAQBOT_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"),
	           *home = getenv("HOME");
	char *dir, *parent = NULL;

	if (env != NULL && env[0] != '\0')
		dir = xstrdup(env);
	else if (fallback != NULL)
		return xstrdup(fallback);
	else if (xdg != NULL && xdg[0] == '/')
		dir = xasprintf("%s/faqbot", xdg);
	else if (home != NULL && home[0] == '/') {
		parent = xasprintf("%s/.cache", home);
		dir = xasprintf("%s/faqbot", parent);
	} else
		return NULL;
	if (parent != NULL)
		mkdir(parent, 0700);
	free(parent);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		free(dir);
		return NULL;
	}
	return dir;
}
