/*
 * Training the learned layer with liblinear (see learn.h). Only the
 * trainer (faqbot-train, src/train_main.c) and the tests link this file:
 * the bot itself asks the trainer, in a process of its own, so that it
 * carries neither liblinear nor the memory training takes.
 */
#include <linear.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kb.h"
#include "learn.h"
#include "text.h"
#include "util.h"

/* --- training ----------------------------------------------------------- */

struct trainer {
	struct problem prob;      /* the rows as liblinear takes them (y set per class) */
	struct problem rest;      /* the rows that are not safety messages */
	const uint32_t *rest_cls; /* their classes */
	const uint32_t *bucket;   /* compact feature index - 1 -> bucket */
	size_t nfeat;             /* compact features */
	const uint32_t *row_cls;  /* each row's class */
	size_t nclass;
	const struct learn_params *p;
	struct learn_weight **kept;       /* per class: its weights */
	size_t *nkept;
	float *bias;
	pthread_mutex_t lock;     /* guards next */
	size_t next;              /* the next class to train */
};

static void
quiet(const char *s)
{
	(void)s;
}

/*
 * Trains class c against the rest and keeps its weights (one thread). The
 * safety classes learn from every message; the others from the messages
 * that are not safety messages.
 */
static void
train_class(struct trainer *tr, size_t c, double *y)
{
	int second = c >= LEARN_C_NULL;
	struct problem prob = second ? tr->rest : tr->prob;
	const uint32_t *cls = second ? tr->rest_cls : tr->row_cls;
	struct parameter param;
	struct model *mod;
	size_t i, npos = 0, n = 0;
	double sign;

	for (i = 0; i < (size_t)prob.l; i++) {
		int pos = c == LEARN_C_SAFETY ? cls[i] == LEARN_C_EMERGENCY || cls[i] == LEARN_C_CRISIS
		                              : cls[i] == c;

		y[i] = pos ? 1 : -1;
		npos += (size_t)pos;
	}
	tr->kept[c] = NULL;
	tr->nkept[c] = 0;
	if (npos == 0 || npos == (size_t)prob.l) {
		/* Nothing to tell apart: never (or always) this class. */
		tr->bias[c] = npos ? 10.0f : -10.0f;
		return;
	}
	prob.y = y;
	memset(&param, 0, sizeof(param));
	param.solver_type = L2R_LR; /* the primal solver draws no random numbers */
	param.C = second ? tr->p->c_second : tr->p->c;
	param.eps = tr->p->eps;
	if (second) {
		/*
		 * liblinear stops at eps * min(pos, neg) / l of the first gradient: for a
		 * class of a hundred messages among thousands, a hundred times tighter than
		 * a safety class. The same answers come sooner at tol_second (measured).
		 */
		size_t mn = npos < (size_t)prob.l - npos ? npos : (size_t)prob.l - npos;
		double e2 = tr->p->tol_second * (double)prob.l / (double)(mn ? mn : 1);

		if (e2 > param.eps)
			param.eps = e2;
	}
	mod = train(&prob, &param);
	/* The first label seen is the positive side of w. */
	sign = mod->label[0] == 1 ? 1.0 : -1.0;
	/*
	 * Small weights go; so do the second tier's negative ones up to a higher
	 * bound: against the rest of many classes, a word gets a small negative
	 * weight in almost every one, and they would make every message touch
	 * every class (measured: the same answers, a third of the weights).
	 */
	double pneg = second ? tr->p->prune_neg : tr->p->prune;
#define KEEP(wv) ((wv) >= tr->p->prune || -(wv) >= pneg)
	for (i = 0; i < tr->nfeat; i++)
		if (KEEP(sign * mod->w[i]))
			n++;
	tr->kept[c] = xcalloc(n ? n : 1, sizeof(struct learn_weight));
	for (i = 0, n = 0; i < tr->nfeat; i++)
		if (KEEP(sign * mod->w[i]))
			tr->kept[c][n++] =
			    (struct learn_weight){tr->bucket[i], (uint32_t)c, (float)(sign * mod->w[i])};
	tr->nkept[c] = n;
	tr->bias[c] = (float)(sign * mod->w[tr->nfeat] * prob.bias);
	free_and_destroy_model(&mod);
}

static void *
train_worker(void *arg)
{
	struct trainer *tr = arg;
	double *y = xcalloc((size_t)tr->prob.l, sizeof(*y));
	size_t c;

	for (;;) {
		pthread_mutex_lock(&tr->lock);
		c = tr->next++;
		pthread_mutex_unlock(&tr->lock);
		if (c >= tr->nclass)
			break;
		train_class(tr, c, y);
	}
	free(y);
	return NULL;
}

struct learn_model *
learn_train(const struct lexicon *lx, const char *const *bot_names, const char *const *ids,
            size_t nclass, const struct learn_row *rows, size_t nrows,
            const struct learn_params *p)
{
	struct learn_model *m;
	struct text_norm norm;
	struct trainer tr;
	struct feature_node *nodes, **x;
	uint32_t *feat, *compact, *bucket, *row_cls, *fbuf;
	size_t *row_start, nnodes = 0, nfeat = 0, fcap = 0, i, j, c, total, nthreads;
	unsigned char *seen_cls;
	pthread_t th[8];
	struct learn_weight *all;
	uint64_t t0 = now_ns();
	size_t distinct = 0;
	struct learn_info info = {0};
	float *bias;
	double *val;

	if (nclass > LEARN_MAX_CLASSES || nclass <= LEARN_C_FIRST - 1 || nrows == 0)
		return NULL;
	seen_cls = xcalloc(nclass, 1);
	for (i = 0, c = 0; i < nrows; i++)
		if (rows[i].cls < nclass && !seen_cls[rows[i].cls]++)
			c++;
	free(seen_cls);
	if (c < 2)
		return NULL;

	m = learn_model_new(lx, p);

	/*
	 * Features of every row, then liblinear's rows: features numbered
	 * 1, 2, ... in bucket order (so that each row stays sorted), then the
	 * bias feature, then the end mark.
	 */
	text_norm_init(&norm);
	feat = xcalloc(LEARN_MAX_FEATURES, sizeof(*feat));
	row_start = xcalloc(nrows + 1, sizeof(*row_start));
	row_cls = xcalloc(nrows, sizeof(*row_cls));
	fbuf = NULL;
	for (i = 0, nnodes = 0; i < nrows; i++) {
		size_t nf;

		text_normalise(lx, bot_names, rows[i].text, strlen(rows[i].text), &norm);
		nf = learn_features(m, &norm, bot_names, feat, NULL, NULL, NULL);
		if (nnodes + nf > fcap) {
			fcap = (nnodes + nf) * 2;
			fbuf = xreallocarray(fbuf, fcap, sizeof(*fbuf));
		}
		memcpy(fbuf + nnodes, feat, nf * sizeof(*feat));
		row_start[i] = nnodes;
		nnodes += nf;
		row_cls[i] = rows[i].cls;
	}
	row_start[nrows] = nnodes;
	free(feat);
	text_norm_free(&norm);
	compact = xcalloc(LEARN_BUCKETS, sizeof(*compact)); /* bucket -> number, 0: unused */
	for (i = 0; i < nnodes; i++)
		compact[fbuf[i]] = 1;
	for (i = 0, nfeat = 0; i < LEARN_BUCKETS; i++)
		if (compact[i])
			nfeat++;
	bucket = xcalloc(nfeat ? nfeat : 1, sizeof(*bucket));
	for (i = 0, j = 0; i < LEARN_BUCKETS; i++)
		if (compact[i]) {
			bucket[j] = (uint32_t)i;
			compact[i] = (uint32_t)++j;
		}
	nodes = xcalloc(nnodes + 2 * nrows, sizeof(*nodes));
	val = xcalloc(LEARN_MAX_FEATURES, sizeof(*val));
	x = xcalloc(nrows, sizeof(*x));
	for (i = 0, j = 0; i < nrows; i++) {
		const uint32_t *f = fbuf + row_start[i];
		size_t k, nf = row_start[i + 1] - row_start[i];

		learn_values(m, f, nf, val);
		x[i] = nodes + j;
		for (k = 0; k < nf; k++) {
			nodes[j].index = (int)compact[f[k]];
			nodes[j].value = val[k];
			j++;
		}
		nodes[j++] = (struct feature_node){(int)nfeat + 1, 1.0}; /* the bias */
		nodes[j++] = (struct feature_node){-1, 0};
	}
	distinct = nfeat;
	free(val);
	free(compact);
	free(fbuf);

	memset(&tr, 0, sizeof(tr));
	tr.prob.l = (int)nrows;
	tr.prob.n = (int)nfeat + 1;
	tr.prob.x = x;
	tr.prob.bias = 1.0;
	tr.bucket = bucket;
	tr.nfeat = nfeat;
	tr.row_cls = row_cls;
	tr.nclass = nclass;
	{
		struct feature_node **rx = xcalloc(nrows, sizeof(*rx));
		uint32_t *rc = xcalloc(nrows, sizeof(*rc));
		size_t nr = 0;

		for (i = 0; i < nrows; i++)
			if (row_cls[i] != LEARN_C_EMERGENCY && row_cls[i] != LEARN_C_CRISIS) {
				rx[nr] = x[i];
				rc[nr++] = row_cls[i];
			}
		tr.rest = tr.prob;
		tr.rest.l = (int)nr;
		tr.rest.x = rx;
		tr.rest_cls = rc;
	}
	tr.p = p;
	tr.kept = xcalloc(nclass, sizeof(*tr.kept));
	tr.nkept = xcalloc(nclass, sizeof(*tr.nkept));
	bias = xcalloc(nclass, sizeof(*bias));
	tr.bias = bias;
	pthread_mutex_init(&tr.lock, NULL);
	set_print_string_function(quiet);
	nthreads = p->threads < 1 ? 1 : (size_t)p->threads;
	if (nthreads > NELEM(th))
		nthreads = NELEM(th);
	for (i = 1; i < nthreads; i++)
		if (pthread_create(&th[i], NULL, train_worker, &tr) != 0)
			break;
	nthreads = i;
	train_worker(&tr);
	for (i = 1; i < nthreads; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&tr.lock);
	free(tr.rest.x);
	free((void *)tr.rest_cls);
	free(x);
	free(nodes);
	free(row_start);
	free(row_cls);
	free(bucket);

	/* Every class's weights, in one list. */
	for (c = 0, total = 0; c < nclass; c++)
		total += tr.nkept[c];
	all = xcalloc(total ? total : 1, sizeof(*all));
	for (c = 0, j = 0; c < nclass; c++) {
		if (tr.nkept[c])
			memcpy(all + j, tr.kept[c], tr.nkept[c] * sizeof(*all));
		j += tr.nkept[c];
		free(tr.kept[c]);
	}
	free(tr.kept);
	free(tr.nkept);
	info.rows = nrows;
	info.features = distinct;
	info.seconds = (double)(now_ns() - t0) / 1e9;
	learn_model_set(m, ids, nclass, bias, all, total, &info);
	free(all);
	free(bias);
	return m;
}


struct learn_model *
kb_train(const struct kb *kb, const char *const *bot_names, const struct kb_row *rows,
         size_t nrows, const unsigned char *keep, const struct learn_params *p)
{
	struct learn_params def;
	struct learn_row *lr = xcalloc(nrows ? nrows * LEARN_TAUGHT_REPEAT : 1, sizeof(*lr));
	const char **ids = xcalloc(kb->nclass, sizeof(*ids));
	struct learn_model *m;
	size_t i, n = 0;

	if (p == NULL) {
		learn_params_default(&def);
		p = &def;
	}
	ids[LEARN_C_SAFETY] = "safety (either)";
	ids[LEARN_C_EMERGENCY] = "safety.emergency";
	ids[LEARN_C_CRISIS] = "safety.crisis";
	ids[LEARN_C_NULL] = "(no answer)";
	for (i = LEARN_C_FIRST; i < kb->nclass; i++)
		ids[i] = kb->in[kb->class_intent[i]].id;
	for (i = 0; i < nrows; i++) {
		size_t k, times = rows[i].source == KB_ROW_TAUGHT ? LEARN_TAUGHT_REPEAT : 1;

		if (keep != NULL && !keep[i])
			continue;
		for (k = 0; k < times; k++) {
			lr[n].text = rows[i].text;
			lr[n].cls =
			    rows[i].intent < 0 ? LEARN_C_NULL : kb->intent_class[rows[i].intent];
			n++;
		}
	}
	m = learn_train(kb->lx, bot_names, ids, kb->nclass, lr, n, p);
	free(ids);
	free(lr);
	return m;
}
