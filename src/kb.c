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

#include "acm.h"
#include "embed.h"
#include "json.h"
#include "lexicon.h"
#include "rxlit.h"
#include "smap.h"
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

/*
 * Builds a kb from the intent files ifiles (emptied on the way, once
 * nothing needs their text) and the response files rfiles. Returns NULL
 * when diags gained errors beyond errors_before.
 */
static struct kb *
kb_load_files(struct kb_files *ifiles, struct kb_files *rfiles, const char *origin, int partial,
              size_t errors_before, struct diag_list *diags)
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
	check_across(kb, partial, diags);
	if (diags->errors > errors_before) {
		kb_free(kb);
		return NULL;
	}
	build_index(kb);
	return kb;
}

struct kb *
kb_load(const struct kb_source *src, struct diag_list *diags)
{
	struct kb_files ifiles = {0}, rfiles = {0};
	struct buf origin;
	struct kb *kb;
	size_t i, errors_before = diags->errors;

	buf_init(&origin);
	if (src->nintent == 0) {
		collect_embedded(&ifiles, "intents/");
		buf_puts(&origin, "embedded intents");
	} else {
		for (i = 0; i < src->nintent; i++) {
			collect(&ifiles, src->intent_paths[i], ".json", diags);
			buf_printf(&origin, "%s%s", i ? ", " : "", src->intent_paths[i]);
		}
	}
	if (src->nresponse == 0) {
		collect_embedded(&rfiles, "responses/");
		buf_puts(&origin, " + embedded responses");
	} else {
		for (i = 0; i < src->nresponse; i++) {
			collect(&rfiles, src->response_paths[i], ".md", diags);
			buf_printf(&origin, "%s%s", i ? ", " : " + ", src->response_paths[i]);
		}
	}
	kb = kb_load_files(&ifiles, &rfiles, origin.data, src->partial, errors_before, diags);
	files_free(&ifiles);
	files_free(&rfiles);
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
	struct kb_files ifiles = {0}, rfiles = {0};
	struct kb *kb;
	size_t i, errors_before = diags->errors;

	for (i = 0; i < nintent; i++)
		files_add_mem(&ifiles, &intents[i]);
	for (i = 0; i < nresponse; i++)
		files_add_mem(&rfiles, &responses[i]);
	kb = kb_load_files(&ifiles, &rfiles, "memory", 1, errors_before, diags);
	files_free(&ifiles);
	files_free(&rfiles);
	return kb;
}
