/*
 * Parsing and compiling intent files: the lexicon sections and the intents.
 * Every problem a moderator can make is reported with its file:line:col;
 * nothing in a file can crash the loader.
 */
#include "intent.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lexicon.h"
#include "smap.h"
#include "text.h"
#include "util.h"

static const char *const file_keys[] = {"topic",      "comment", "intents", "synonyms",
                                        "vocabulary", "classes", NULL};
static const char *const intent_keys[] = {
    "id",           "response", "priority", "needs_question",   "silent",  "min_score", "patterns",
    "not_patterns", "keywords", "examples", "counter_examples", "comment", "title",     NULL};
static const char *const keyword_keys[] = {"all", "any", "none", "weight", "comment", NULL};
static const char *const pattern_keys[] = {"regex", "weight", "comment", NULL};

/*
 * Offset in the file of the character at decoded index idx of the JSON
 * string whose opening quote is at qoff.
 */
static size_t
string_raw_offset(const char *text, size_t qoff, size_t idx)
{
	size_t i = qoff + 1, d = 0;

	while (text[i] && text[i] != '"' && d < idx) {
		if (text[i] == '\\') {
			if (text[i + 1] == 'u') {
				char hex[5];
				unsigned long cp;

				memcpy(hex, text + i + 2, 4); /* the scanner checked 4 hex digits */
				hex[4] = '\0';
				cp = strtoul(hex, NULL, 16);
				if (cp >= 0xd800 && cp <= 0xdbff) {
					/* the scanner checked that a low surrogate follows */
					d += 4;
					i += 12;
					continue;
				}
				d += cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
				i += 6;
			} else {
				d++;
				i += 2;
			}
		} else {
			d++;
			i++;
		}
	}
	return i;
}

static void
place_of(const struct json_doc *doc, const cJSON *item, struct intent_place *at)
{
	at->file = doc->file;
	json_doc_linecol(doc, json_doc_offset(doc, item), &at->line, &at->col);
}

/* --- lexicon sections ------------------------------------------------- */

static int
read_synonyms(const struct json_doc *doc, const cJSON *syn, struct lexicon *lx,
              struct diag_list *diags)
{
	const cJSON *canon, *v;
	char *err;
	int errors = 0;

	if (!cJSON_IsObject(syn)) {
		json_diag(doc, diags, DIAG_ERROR, syn,
		          "\"synonyms\" must be an object mapping a canonical form to a list of "
		          "variants, not %s",
		          json_type_name(syn));
		return 1;
	}
	for (canon = syn->child; canon; canon = canon->next) {
		if (strcmp(canon->string, "comment") == 0)
			continue;
		if (!cJSON_IsArray(canon)) {
			json_diag(doc, diags, DIAG_ERROR, canon,
			          "synonyms of \"%s\" must be an array of strings, not %s",
			          canon->string, json_type_name(canon));
			errors++;
			continue;
		}
		cJSON_ArrayForEach(v, canon)
		{
			if (!cJSON_IsString(v)) {
				json_diag(doc, diags, DIAG_ERROR, v,
				          "a synonym must be a string, not %s", json_type_name(v));
				errors++;
				continue;
			}
			if (lexicon_add_synonym(lx, canon->string, v->valuestring, &err) == -1) {
				json_diag(doc, diags, DIAG_ERROR, v, "%s", err);
				free(err);
				errors++;
			}
		}
	}
	return errors;
}

static int
read_vocabulary(const struct json_doc *doc, const cJSON *voc, struct lexicon *lx,
                struct diag_list *diags)
{
	const cJSON *v;
	char *err;
	int errors = 0;

	if (!cJSON_IsArray(voc)) {
		json_diag(doc, diags, DIAG_ERROR, voc,
		          "\"vocabulary\" must be an array of words, not %s", json_type_name(voc));
		return 1;
	}
	cJSON_ArrayForEach(v, voc)
	{
		if (!cJSON_IsString(v)) {
			json_diag(doc, diags, DIAG_ERROR, v,
			          "a vocabulary word must be a string, not %s", json_type_name(v));
			errors++;
		} else if (lexicon_add_vocabulary(lx, v->valuestring, &err) == -1) {
			json_diag(doc, diags, DIAG_ERROR, v, "%s", err);
			free(err);
			errors++;
		}
	}
	return errors;
}

static int
read_classes(const struct json_doc *doc, const cJSON *cls, struct lexicon *lx,
             struct diag_list *diags)
{
	const cJSON *c, *m;
	char *err;
	int errors = 0, idx;

	if (!cJSON_IsObject(cls)) {
		json_diag(doc, diags, DIAG_ERROR, cls,
		          "\"classes\" must be an object mapping a name to a list of words, not %s",
		          json_type_name(cls));
		return 1;
	}
	for (c = cls->child; c; c = c->next) {
		if (strcmp(c->string, "comment") == 0)
			continue;
		if (!cJSON_IsArray(c)) {
			json_diag(doc, diags, DIAG_ERROR, c,
			          "class \"%s\" must be an array of strings, not %s", c->string,
			          json_type_name(c));
			errors++;
			continue;
		}
		if ((idx = lexicon_class_new(lx, c->string, &err)) == -1) {
			json_diag_key(doc, diags, DIAG_ERROR, c, "%s", err);
			free(err);
			errors++;
			continue;
		}
		cJSON_ArrayForEach(m, c)
		{
			if (!cJSON_IsString(m) || m->valuestring[0] == '\0') {
				json_diag(doc, diags, DIAG_ERROR, m,
				          "a class member must be a non-empty string, not %s",
				          json_type_name(m));
				errors++;
				continue;
			}
			if (m->valuestring[0] == '@') {
				json_diag(doc, diags, DIAG_ERROR, m,
				          "classes cannot contain other classes (\"%s\")",
				          m->valuestring);
				errors++;
				continue;
			}
			if (lexicon_class_add(lx, idx, m->valuestring) == -1) {
				json_diag(doc, diags, DIAG_ERROR, m,
				          "class member \"%s\" has no words", m->valuestring);
				errors++;
			}
		}
	}
	return errors;
}

int
intent_file_lexicon(const struct json_doc *doc, struct lexicon *lx, struct diag_list *diags)
{
	const cJSON *root = doc->root, *x;
	int errors = 0;

	if (!cJSON_IsObject(root))
		return 0; /* reported by intent_file_intents */
	if ((x = cJSON_GetObjectItemCaseSensitive(root, "synonyms")) != NULL)
		errors += read_synonyms(doc, x, lx, diags);
	if ((x = cJSON_GetObjectItemCaseSensitive(root, "vocabulary")) != NULL)
		errors += read_vocabulary(doc, x, lx, diags);
	if ((x = cJSON_GetObjectItemCaseSensitive(root, "classes")) != NULL)
		errors += read_classes(doc, x, lx, diags);
	return errors;
}

/* --- patterns ------------------------------------------------------ */

/* Appends s to b with every regex metacharacter escaped. */
static void
regex_quote(struct buf *b, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strchr("\\^$.|?*+()[]{}#/-", s[i]) != NULL)
			buf_putc(b, '\\');
		buf_putc(b, s[i]);
	}
}

/* One piece of an expanded pattern and where it came from. */
struct seg {
	size_t src;  /* offset in the pattern as written */
	size_t dst;  /* offset in the expansion */
	size_t dlen; /* length in the expansion */
	int literal; /* 1 when copied as is, 0 for an @{class} expansion */
};

/*
 * Expands @{class} into (?:member|member...) with members quoted and "x*"
 * prefixes as x\w*. Returns 0, or -1 with *err and *erroff.
 */
static int
expand_classes(const char *pat, const struct lexicon *lx, struct buf *out, struct seg **segs,
               size_t *nseg, char **err, size_t *erroff)
{
	size_t i = 0, start, n = strlen(pat), j, nm, ml;
	const char *const *mem;
	const char *close;
	int idx;

	*segs = NULL;
	*nseg = 0;
	while (i < n) {
		start = i;
		while (i < n &&
		       !(pat[i] == '@' && pat[i + 1] == '{' && (i == 0 || pat[i - 1] != '\\')))
			i++;
		if (i > start) {
			*segs = xreallocarray(*segs, *nseg + 1, sizeof(**segs));
			(*segs)[(*nseg)++] = (struct seg){start, out->len, i - start, 1};
			buf_append(out, pat + start, i - start);
		}
		if (i >= n)
			break;
		close = strchr(pat + i + 2, '}');
		if (close == NULL) {
			*err = xstrdup("\"@{\" without a closing \"}\"");
			*erroff = i;
			return -1;
		}
		idx = lx ? lexicon_class_find(lx, pat + i + 2, (size_t)(close - pat - i - 2)) : -1;
		if (idx < 0) {
			*err = xasprintf("unknown class \"%.*s\"", (int)(close - pat - i - 2),
			                 pat + i + 2);
			*erroff = i;
			return -1;
		}
		*segs = xreallocarray(*segs, *nseg + 1, sizeof(**segs));
		(*segs)[*nseg] = (struct seg){i, out->len, 0, 0};
		buf_puts(out, "(?:");
		mem = lexicon_class_members(lx, idx, &nm);
		for (j = 0; j < nm; j++) {
			if (j)
				buf_putc(out, '|');
			ml = strlen(mem[j]);
			if (ml > 1 && mem[j][ml - 1] == '*') {
				regex_quote(out, mem[j], ml - 1);
				buf_puts(out, "\\w*");
			} else {
				regex_quote(out, mem[j], ml);
			}
		}
		buf_putc(out, ')');
		(*segs)[*nseg].dlen = out->len - (*segs)[*nseg].dst;
		(*nseg)++;
		i = (size_t)(close - pat) + 1;
	}
	return 0;
}

static int use_jit = 1;

void
intent_set_jit(int on)
{
	use_jit = on != 0;
}

/* Maps an offset in the expansion back to the pattern as written. */
static size_t
map_offset(const struct seg *segs, size_t nseg, size_t off)
{
	size_t i;

	for (i = 0; i < nseg; i++) {
		if (off < segs[i].dst + segs[i].dlen || i + 1 == nseg) {
			if (segs[i].literal) {
				size_t d = off > segs[i].dst ? off - segs[i].dst : 0;
				return segs[i].src + d;
			}
			return segs[i].src;
		}
	}
	return off;
}

pcre2_code *
intent_compile(const char *pattern, const struct lexicon *lx, char **expanded, char **err,
               size_t *erroff)
{
	pcre2_compile_context *cc;
	pcre2_code *code;
	struct buf exp;
	struct seg *segs;
	size_t nseg, off;
	PCRE2_UCHAR msg[256];
	int rc;

	buf_init(&exp);
	if (expand_classes(pattern, lx, &exp, &segs, &nseg, err, erroff) == -1) {
		buf_free(&exp);
		free(segs);
		return NULL;
	}
	if (exp.len > INTENT_MAX_PATTERN_LEN) {
		*err = xasprintf("pattern is too long (%zu bytes after expanding classes; at "
		                 "most %d)",
		                 exp.len, INTENT_MAX_PATTERN_LEN);
		*erroff = 0;
		buf_free(&exp);
		free(segs);
		return NULL;
	}
	cc = pcre2_compile_context_create(NULL);
	pcre2_set_parens_nest_limit(cc, 50);
	code = pcre2_compile((PCRE2_SPTR)(exp.data ? exp.data : ""), exp.len,
	                     PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS | PCRE2_NEVER_BACKSLASH_C, &rc,
	                     &off, cc);
	pcre2_compile_context_free(cc);
	if (code == NULL) {
		pcre2_get_error_message(rc, msg, sizeof(msg));
		*erroff = map_offset(segs, nseg, off);
		*err = xasprintf("%s at offset %zu", (char *)msg, *erroff);
	} else {
		/* The JIT is an optimisation: without it the interpreter runs. */
		if (use_jit) {
			size_t sz = 0;

			(void)pcre2_pattern_info(code, PCRE2_INFO_SIZE, &sz);
			if (sz >= INTENT_JIT_MIN_SIZE)
				(void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
		}
		if (expanded != NULL)
			*expanded = xstrdup(exp.data ? exp.data : "");
	}
	buf_free(&exp);
	free(segs);
	return code;
}

/*
 * Messages that ask nothing: a pattern that matches each of them matches
 * whatever is written ("\\b" alone, ".", "\\w"), since a message is
 * matched in its normalised form (lower case, words and " ?").
 */
static const char *const probe_msgs[] = {"zq", "vbw 7 xj ?"};

/*
 * Does the compiled pattern match every message? Returns NULL when it does
 * not, or the end of a message saying why it does.
 */
static const char *
matches_always(const pcre2_code *code)
{
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
	const char *why = NULL;
	PCRE2_SIZE *ov;
	size_t i;
	int empty = 0;

	if (pcre2_match(code, (PCRE2_SPTR) "", 0, 0, 0, md, NULL) >= 0) {
		why = "matches an empty message, so it would match every message";
		goto out;
	}
	for (i = 0; i < NELEM(probe_msgs); i++) {
		if (pcre2_match(code, (PCRE2_SPTR)probe_msgs[i], strlen(probe_msgs[i]), 0, 0, md,
		                NULL) < 0)
			goto out;
		ov = pcre2_get_ovector_pointer(md);
		if (ov[0] == ov[1])
			empty = 1;
	}
	why = empty ? "matches an empty string inside a message (as \\b alone does), so it "
	              "would match every message"
	            : "matches every message, even one of random letters";
out:
	pcre2_match_data_free(md);
	return why;
}

/*
 * A control character in a pattern comes from a JSON escape ("\b" is a
 * backspace, not a word boundary): normalised messages never hold one, so
 * the pattern could never match. Returns the first one, or 0.
 */
static unsigned char
control_char(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return (unsigned char)*s;
	return 0;
}

static int
read_patterns(const struct json_doc *doc, const cJSON *arr, const char *what,
              const struct lexicon *lx, struct intent_pattern **out, size_t *n,
              struct diag_list *diags)
{
	const cJSON *p, *rx, *w;
	const char *why;
	char *err;
	size_t erroff;
	int errors = 0;
	uint32_t idx = 0;
	unsigned char cc;

	if (!cJSON_IsArray(arr)) {
		/* named as written: "patterns", "not_patterns" */
		json_diag(doc, diags, DIAG_ERROR, arr, "\"%s\" must be an array, not %s",
		          arr->string, json_type_name(arr));
		return 1;
	}
	if (cJSON_GetArraySize(arr) > INTENT_MAX_PATTERNS) {
		json_diag(doc, diags, DIAG_ERROR, arr, "more than %d %ss in one intent",
		          INTENT_MAX_PATTERNS, what);
		return 1;
	}
	cJSON_ArrayForEach(p, arr)
	{
		struct intent_pattern ip = {0};

		idx++;
		rx = p;
		ip.weight = INTENT_PATTERN_WEIGHT;
		if (cJSON_IsObject(p)) {
			errors += json_check_keys(doc, diags, p, "a pattern", pattern_keys);
			rx = cJSON_GetObjectItemCaseSensitive(p, "regex");
			if ((w = cJSON_GetObjectItemCaseSensitive(p, "weight")) != NULL) {
				if (!cJSON_IsNumber(w) || w->valuedouble < 0 ||
				    w->valuedouble > 10) {
					json_diag(doc, diags, DIAG_ERROR, w,
					          "%s %u: weight must be a number from 0 to 10",
					          what, idx);
					errors++;
				} else {
					ip.weight = w->valuedouble;
				}
			}
			if (rx == NULL) {
				json_diag(doc, diags, DIAG_ERROR, p, "%s %u: \"regex\" is missing",
				          what, idx);
				errors++;
				continue;
			}
		}
		if (!cJSON_IsString(rx)) {
			json_diag(doc, diags, DIAG_ERROR, rx,
			          "%s %u must be a string (or an object with \"regex\"), not %s",
			          what, idx, json_type_name(rx));
			errors++;
			continue;
		}
		if (rx->valuestring[0] == '\0') {
			json_diag(doc, diags, DIAG_ERROR, rx,
			          "%s %u is empty: it would match every "
			          "message",
			          what, idx);
			errors++;
			continue;
		}
		if ((cc = control_char(rx->valuestring)) != 0) {
			if (cc == '\b')
				json_diag(doc, diags, DIAG_ERROR, rx,
				          "%s %u holds a backspace (JSON \"\\b\"), so it can never "
				          "match: for a word boundary write \"\\\\b\"",
				          what, idx);
			else
				json_diag(doc, diags, DIAG_ERROR, rx,
				          "%s %u holds a control character (U+%04X, from a JSON "
				          "escape), so it can never match: in a regex, write \\\\ "
				          "for one backslash",
				          what, idx, cc);
			errors++;
			continue;
		}
		ip.code = intent_compile(rx->valuestring, lx, &ip.expanded, &err, &erroff);
		if (ip.code == NULL) {
			diag_add_at(diags, DIAG_ERROR, doc->file, doc->text,
			            string_raw_offset(doc->text, json_doc_offset(doc, rx), erroff),
			            "%s %u: %s", what, idx, err);
			free(err);
			errors++;
			continue;
		}
		if ((why = matches_always(ip.code)) != NULL) {
			json_diag(doc, diags, DIAG_ERROR, rx, "%s %u %s", what, idx, why);
			pcre2_code_free(ip.code);
			free(ip.expanded);
			errors++;
			continue;
		}
		ip.src = xstrdup(rx->valuestring);
		ip.index = idx;
		place_of(doc, rx, &ip.at);
		*out = xreallocarray(*out, *n + 1, sizeof(**out));
		(*out)[(*n)++] = ip;
	}
	return errors;
}

/* --- keywords ------------------------------------------------------ */

void
intent_terms_init(struct intent_terms *t)
{
	memset(t, 0, sizeof(*t));
	t->index = xcalloc(1, sizeof(struct smap));
	smap_init(t->index);
}

void
intent_terms_free(struct intent_terms *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		free(t->text[i]);
	free(t->text);
	free(t->len);
	free(t->prefix);
	if (t->index) {
		smap_free(t->index);
		free(t->index);
	}
	memset(t, 0, sizeof(*t));
}

/* Interns a term ("words" or "words*"), returning its number. */
static uint32_t
term_intern(struct intent_terms *t, const char *norm)
{
	size_t len = strlen(norm);
	uint32_t *slot;
	int added;
	int prefix = len > 1 && norm[len - 1] == '*';

	slot = smap_put(t->index, norm, len, (uint32_t)t->n, &added);
	if (!added)
		return *slot;
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->text = xreallocarray(t->text, t->cap, sizeof(*t->text));
		t->len = xreallocarray(t->len, t->cap, sizeof(*t->len));
		t->prefix = xreallocarray(t->prefix, t->cap, sizeof(*t->prefix));
	}
	t->text[t->n] = xstrndup(norm, prefix ? len - 1 : len);
	t->len[t->n] = (uint32_t)(prefix ? len - 1 : len);
	t->prefix[t->n] = (uint8_t)prefix;
	return (uint32_t)t->n++;
}

static void
group_add(struct intent_group *g, uint32_t term)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		if (g->term[i] == term)
			return;
	g->term = xreallocarray(g->term, g->n + 1, sizeof(*g->term));
	g->term[g->n++] = term;
}

static void
mark_known(struct lexicon *lx, const char *words)
{
	const char *p = words, *q;

	while (*p) {
		q = strchr(p, ' ');
		if (q == NULL)
			q = p + strlen(p);
		if (q > p && q[-1] != '*')
			lexicon_add_known(lx, p, (size_t)(q - p));
		p = *q ? q + 1 : q;
	}
}

/* Adds one keyword as written (a word, a phrase, "pre*" or "@class") to g. */
static int
term_add(const struct json_doc *doc, const cJSON *item, struct lexicon *lx,
         struct intent_terms *terms, struct intent_group *g, struct diag_list *diags)
{
	const char *s = item->valuestring;
	size_t len = strlen(s), nm, i;
	const char *const *mem;
	const char *var;
	struct buf b;
	char *norm;
	int idx;

	if (s[0] == '@') {
		idx = lexicon_class_find(lx, s + 1, len - 1);
		if (idx < 0) {
			json_diag(doc, diags, DIAG_ERROR, item, "unknown class \"%s\"", s + 1);
			return 1;
		}
		mem = lexicon_class_members(lx, idx, &nm);
		for (i = 0; i < nm; i++)
			group_add(g, term_intern(terms, mem[i]));
		return 0;
	}
	if (len > 1 && s[len - 1] == '*') {
		buf_init(&b);
		text_words(s, len - 1, &b);
		if (b.len == 0) {
			json_diag(doc, diags, DIAG_ERROR, item, "keyword \"%s\" has no words", s);
			buf_free(&b);
			return 1;
		}
		buf_putc(&b, '*');
		norm = buf_steal(&b);
	} else {
		norm = lexicon_normalise(lx, s);
		if (*norm == '\0') {
			json_diag(doc, diags, DIAG_ERROR, item, "keyword \"%s\" has no words", s);
			free(norm);
			return 1;
		}
		buf_init(&b);
		text_words(s, len, &b);
		if ((var = lexicon_variant_of(lx, b.data, b.len)) != NULL)
			json_diag(doc, diags, DIAG_NOTE, item,
			          "keyword \"%s\" is rewritten to \"%s\" by the lexicon before "
			          "matching",
			          s, var);
		buf_free(&b);
	}
	mark_known(lx, norm);
	group_add(g, term_intern(terms, norm));
	free(norm);
	return 0;
}

static int
read_term_list(const struct json_doc *doc, const cJSON *arr, const char *what, struct lexicon *lx,
               struct intent_terms *terms, struct intent_group *g, struct diag_list *diags)
{
	const cJSON *t;
	int errors = 0;
	struct buf label;

	if (cJSON_IsString(arr)) {
		errors = term_add(doc, arr, lx, terms, g, diags);
		g->label = xstrdup(arr->valuestring);
		return errors;
	}
	if (!cJSON_IsArray(arr)) {
		json_diag(doc, diags, DIAG_ERROR, arr, "%s must be an array of strings, not %s",
		          what, json_type_name(arr));
		return 1;
	}
	buf_init(&label);
	cJSON_ArrayForEach(t, arr)
	{
		if (!cJSON_IsString(t) || t->valuestring[0] == '\0') {
			json_diag(doc, diags, DIAG_ERROR, t,
			          "a keyword must be a non-empty string, not %s",
			          json_type_name(t));
			errors++;
			continue;
		}
		errors += term_add(doc, t, lx, terms, g, diags);
		if (label.len)
			buf_putc(&label, '|');
		buf_puts(&label, t->valuestring);
	}
	g->label = buf_steal(&label);
	return errors;
}

static int
read_keywords(const struct json_doc *doc, const cJSON *kw, struct lexicon *lx,
              struct intent_terms *terms, struct intent *in, struct diag_list *diags)
{
	const cJSON *all, *g, *w, *x;
	int errors = 0;

	if (!cJSON_IsObject(kw)) {
		json_diag(
		    doc, diags, DIAG_ERROR, kw,
		    "\"keywords\" must be an object with \"all\", \"any\" and \"none\", not %s",
		    json_type_name(kw));
		return 1;
	}
	errors += json_check_keys(doc, diags, kw, "keywords", keyword_keys);
	if ((all = cJSON_GetObjectItemCaseSensitive(kw, "all")) != NULL) {
		if (!cJSON_IsArray(all)) {
			json_diag(
			    doc, diags, DIAG_ERROR, all,
			    "\"all\" must be an array of groups (each a string or an array of "
			    "synonyms), not %s",
			    json_type_name(all));
			errors++;
		} else if (cJSON_GetArraySize(all) > INTENT_MAX_GROUPS) {
			json_diag(doc, diags, DIAG_ERROR, all, "\"all\" has more than %d groups",
			          INTENT_MAX_GROUPS);
			errors++;
		} else {
			cJSON_ArrayForEach(g, all)
			{
				struct intent_group grp = {0};

				errors += read_term_list(doc, g, "an \"all\" group", lx, terms,
				                         &grp, diags);
				if (grp.n == 0) {
					free(grp.term);
					free(grp.label);
					continue;
				}
				in->all = xreallocarray(in->all, in->nall + 1, sizeof(*in->all));
				in->all[in->nall++] = grp;
			}
		}
	}
	if ((x = cJSON_GetObjectItemCaseSensitive(kw, "any")) != NULL)
		errors += read_term_list(doc, x, "\"any\"", lx, terms, &in->any, diags);
	if ((x = cJSON_GetObjectItemCaseSensitive(kw, "none")) != NULL)
		errors += read_term_list(doc, x, "\"none\"", lx, terms, &in->none, diags);
	if ((w = cJSON_GetObjectItemCaseSensitive(kw, "weight")) != NULL) {
		if (!cJSON_IsNumber(w) || w->valuedouble < 0 || w->valuedouble > 10) {
			json_diag(
			    doc, diags, DIAG_ERROR, w,
			    "keywords weight must be a number from 0 to 10 (points per group)");
			errors++;
		} else {
			in->group_weight = w->valuedouble;
		}
	}
	return errors;
}

/* --- examples and the intent ------------------------------------------ */

static int
read_examples(const struct json_doc *doc, const cJSON *arr, const char *what,
              struct intent_example **out, size_t *n, struct diag_list *diags)
{
	const cJSON *e;
	int errors = 0;

	if (!cJSON_IsArray(arr)) {
		json_diag(doc, diags, DIAG_ERROR, arr, "\"%s\" must be an array of strings, not %s",
		          what, json_type_name(arr));
		return 1;
	}
	cJSON_ArrayForEach(e, arr)
	{
		if (!cJSON_IsString(e) || e->valuestring[0] == '\0') {
			json_diag(doc, diags, DIAG_ERROR, e,
			          "an entry of \"%s\" must be a non-empty string, not %s", what,
			          json_type_name(e));
			errors++;
			continue;
		}
		*out = xreallocarray(*out, *n + 1, sizeof(**out));
		(*out)[*n].text = xstrdup(e->valuestring);
		place_of(doc, e, &(*out)[*n].at);
		(*n)++;
	}
	return errors;
}

static int
valid_id(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '.' || *s == '-'))
			return 0;
	return 1;
}

static int
read_bool(const struct json_doc *doc, const cJSON *obj, const char *key, int *out,
          struct diag_list *diags)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (x == NULL)
		return 0;
	if (!cJSON_IsBool(x)) {
		json_diag(doc, diags, DIAG_ERROR, x, "\"%s\" must be true or false, not %s", key,
		          json_type_name(x));
		return 1;
	}
	*out = cJSON_IsTrue(x);
	return 0;
}

static int
read_intent(const struct json_doc *doc, const cJSON *obj, struct lexicon *lx,
            struct intent_terms *terms, struct intent *in, struct diag_list *diags)
{
	const cJSON *x;
	int errors = 0;

	memset(in, 0, sizeof(*in));
	in->needs_question = 1;
	in->group_weight = INTENT_GROUP_WEIGHT;
	place_of(doc, obj, &in->at);
	if (!cJSON_IsObject(obj)) {
		json_diag(doc, diags, DIAG_ERROR, obj, "an intent must be an object, not %s",
		          json_type_name(obj));
		return 1;
	}
	errors += json_check_keys(doc, diags, obj, "an intent", intent_keys);
	x = cJSON_GetObjectItemCaseSensitive(obj, "id");
	if (x == NULL) {
		json_diag(doc, diags, DIAG_ERROR, obj, "intent has no \"id\"");
		return errors + 1;
	}
	if (!cJSON_IsString(x) || !valid_id(x->valuestring)) {
		json_diag(doc, diags, DIAG_ERROR, x,
		          "\"id\" must be a string of a-z, 0-9, '.', '_' and '-'");
		return errors + 1;
	}
	in->id = xstrdup(x->valuestring);
	x = cJSON_GetObjectItemCaseSensitive(obj, "response");
	if (x != NULL && (!cJSON_IsString(x) || !valid_id(x->valuestring))) {
		json_diag(
		    doc, diags, DIAG_ERROR, x,
		    "\"response\" must be a response id (a string of a-z, 0-9, '.', '_', '-')");
		errors++;
	}
	in->response = xstrdup(x && cJSON_IsString(x) ? x->valuestring : in->id);
	if ((x = cJSON_GetObjectItemCaseSensitive(obj, "title")) != NULL) {
		if (!cJSON_IsString(x) || x->valuestring[0] == '\0' ||
		    strlen(x->valuestring) > 80) {
			json_diag(doc, diags, DIAG_ERROR, x,
			          "\"title\" must be a short string (at most 80 characters)");
			errors++;
		} else {
			in->title = xstrdup(x->valuestring);
		}
	}
	if ((x = cJSON_GetObjectItemCaseSensitive(obj, "priority")) != NULL) {
		if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) ||
		    fabs(x->valuedouble) > 1000) {
			json_diag(doc, diags, DIAG_ERROR, x,
			          "\"priority\" must be a whole number from -1000 to 1000");
			errors++;
		} else {
			in->priority = (int)x->valuedouble;
		}
	}
	if ((x = cJSON_GetObjectItemCaseSensitive(obj, "min_score")) != NULL) {
		if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > 10) {
			json_diag(doc, diags, DIAG_ERROR, x,
			          "\"min_score\" must be a number from 0 to 10");
			errors++;
		} else {
			in->min_score = x->valuedouble;
		}
	}
	errors += read_bool(doc, obj, "needs_question", &in->needs_question, diags);
	errors += read_bool(doc, obj, "silent", &in->silent, diags);
	if ((x = cJSON_GetObjectItemCaseSensitive(obj, "patterns")) != NULL)
		errors += read_patterns(doc, x, "pattern", lx, &in->pat, &in->npat, diags);
	if ((x = cJSON_GetObjectItemCaseSensitive(obj, "not_patterns")) != NULL)
		errors += read_patterns(doc, x, "not_pattern", lx, &in->neg, &in->nneg, diags);
	if ((x = cJSON_GetObjectItemCaseSensitive(obj, "keywords")) != NULL)
		errors += read_keywords(doc, x, lx, terms, in, diags);
	if ((x = cJSON_GetObjectItemCaseSensitive(obj, "examples")) != NULL)
		errors += read_examples(doc, x, "examples", &in->ex, &in->nex, diags);
	if ((x = cJSON_GetObjectItemCaseSensitive(obj, "counter_examples")) != NULL)
		errors += read_examples(doc, x, "counter_examples", &in->cex, &in->ncex, diags);
	if (errors == 0 && in->npat == 0 && in->nall == 0) {
		json_diag(
		    doc, diags, DIAG_ERROR, obj,
		    "intent \"%s\" has no patterns and no \"all\" keywords: it can never match",
		    in->id);
		errors++;
	}
	return errors;
}

int
intent_file_intents(const struct json_doc *doc, const char *file, struct lexicon *lx,
                    struct intent_terms *terms, struct intent **arr, size_t *n,
                    struct diag_list *diags)
{
	const cJSON *root = doc->root, *list, *obj;
	int errors = 0;

	(void)file;
	if (!cJSON_IsObject(root)) {
		json_diag(
		    doc, diags, DIAG_ERROR, root,
		    "an intent file must hold an object with \"intents\" (and/or \"synonyms\", "
		    "\"vocabulary\", \"classes\"), not %s",
		    json_type_name(root));
		return 1;
	}
	errors += json_check_keys(doc, diags, root, "an intent file", file_keys);
	list = cJSON_GetObjectItemCaseSensitive(root, "intents");
	if (list == NULL)
		return errors;
	if (!cJSON_IsArray(list)) {
		json_diag(doc, diags, DIAG_ERROR, list, "\"intents\" must be an array, not %s",
		          json_type_name(list));
		return errors + 1;
	}
	cJSON_ArrayForEach(obj, list)
	{
		struct intent in;
		int e = read_intent(doc, obj, lx, terms, &in, diags);

		errors += e;
		if (e || in.id == NULL) {
			intent_clear(&in);
			continue;
		}
		*arr = xreallocarray(*arr, *n + 1, sizeof(**arr));
		(*arr)[(*n)++] = in;
	}
	return errors;
}

static void
patterns_free(struct intent_pattern *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		pcre2_code_free(p[i].code);
		free(p[i].src);
		free(p[i].expanded);
	}
	free(p);
}

static void
examples_free(struct intent_example *e, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(e[i].text);
	free(e);
}

void
intent_clear(struct intent *in)
{
	size_t i;

	if (in == NULL)
		return;
	free(in->id);
	free(in->title);
	free(in->response);
	patterns_free(in->pat, in->npat);
	patterns_free(in->neg, in->nneg);
	for (i = 0; i < in->nall; i++) {
		free(in->all[i].term);
		free(in->all[i].label);
	}
	free(in->all);
	free(in->any.term);
	free(in->any.label);
	free(in->none.term);
	free(in->none.label);
	examples_free(in->ex, in->nex);
	examples_free(in->cex, in->ncex);
	memset(in, 0, sizeof(*in));
}
