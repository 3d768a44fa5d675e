/*
 * faqbot's command line: wiring only. Each command parses its options,
 * loads what it needs and calls into the library.
 *
 *   faqbot classify   one message per line in, one JSON object per line out
 *   faqbot ask        the reply the bot would send, and why
 *   faqbot lint       check intents, responses and config
 *   faqbot test       run every example and counter-example
 *   faqbot chat       talk to the bot in the terminal
 *   faqbot run        the daemon (Matrix, IRC)
 *   faqbot unanswered what people asked that got no answer, grouped
 *   faqbot taught     what moderators taught the bot
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bot.h"
#include "config.h"
#include "daemon.h"
#include "diag.h"
#include "intent.h"
#include "kb.h"
#include "lint.h"
#include "log.h"
#include "match.h"
#include "response.h"
#include "teach.h"
#include "text.h"
#include "trainer.h"
#include "unanswered.h"
#include "util.h"

/* Options shared by the commands that load a knowledge base. */
struct common {
	const char *config;      /* -c FILE */
	const char *intents[64]; /* --intents PATH ... */
	size_t nintents;
	const char *responses[64]; /* --responses PATH ... */
	size_t nresponses;
	const char *labelled[64]; /* --labelled PATH ... */
	size_t nlabelled;
	int drafts;        /* -1 as configured, 0 or 1 forced */
	int no_model;      /* --no-model */
	int keep_rows;     /* keep the labelled rows (cross-validation) */
	struct config cfg; /* loaded */
	const char *names[17]; /* the bot's names, for the model */
	char *cache_dir;       /* trained models (kb_cache_dir) */
};

enum {
	OPT_INTENTS = 256,
	OPT_RESPONSES,
	OPT_DRAFTS,
	OPT_NO_DRAFTS,
	OPT_HTML,
	OPT_NAME,
	OPT_LOCALE,
	OPT_WERROR,
	OPT_CHECK,
	OPT_HELP_CONFIG,
	OPT_JSON,
	OPT_ROOM,
	OPT_LABELLED,
	OPT_NO_MODEL,
	OPT_CV,
	OPT_SWEEP,
};

#define COMMON_LONGOPTS                                                                            \
	{"config", required_argument, NULL, 'c'},                                                  \
	    {"intents", required_argument, NULL, OPT_INTENTS},                                     \
	    {"responses", required_argument, NULL, OPT_RESPONSES},                                 \
	    {"drafts", no_argument, NULL, OPT_DRAFTS},                                             \
	    {"no-drafts", no_argument, NULL, OPT_NO_DRAFTS},                                       \
	    {"labelled", required_argument, NULL, OPT_LABELLED},                                   \
	    {"no-model", no_argument, NULL, OPT_NO_MODEL},                                         \
	{                                                                                          \
		"help", no_argument, NULL, 'h'                                                     \
	}

static const char common_help[] =
    "  -c, --config FILE    configuration file (default: built-in defaults)\n"
    "      --intents PATH   intent file or directory (repeatable; default: the\n"
    "                       config's intents_dir, else the set built into faqbot)\n"
    "      --responses PATH response file or directory (likewise)\n"
    "      --labelled PATH  labelled messages (*.tsv file or directory) the model\n"
    "                       learns from (repeatable; default: the config's\n"
    "                       labelled_dir, else \"labelled\" beside the intents, else\n"
    "                       the set built into faqbot)\n"
    "      --no-model       rules only: no learned layer\n"
    "      --drafts         use draft responses (awaiting review) as if approved\n"
    "      --no-drafts      never use drafts, whatever the config says\n"
    "  -h, --help           this help\n";

/* Handles one common option; returns 1 if it was one. */
static int
common_opt(struct common *c, int ch)
{
	switch (ch) {
	case 'c':
		c->config = optarg;
		return 1;
	case OPT_INTENTS:
		if (c->nintents < NELEM(c->intents))
			c->intents[c->nintents++] = optarg;
		return 1;
	case OPT_RESPONSES:
		if (c->nresponses < NELEM(c->responses))
			c->responses[c->nresponses++] = optarg;
		return 1;
	case OPT_DRAFTS:
		c->drafts = 1;
		return 1;
	case OPT_NO_DRAFTS:
		c->drafts = 0;
		return 1;
	case OPT_LABELLED:
		if (c->nlabelled < NELEM(c->labelled) - 1)
			c->labelled[c->nlabelled++] = optarg;
		return 1;
	case OPT_NO_MODEL:
		c->no_model = 1;
		return 1;
	}
	return 0;
}

/* Loads the config (or defaults); prints problems; exits on errors. */
static void
common_config(struct common *c)
{
	struct diag_list d;

	config_defaults(&c->cfg);
	if (c->config) {
		diag_list_init(&d);
		if (config_load(&c->cfg, c->config, &d) == -1) {
			diag_print(&d, stderr, DIAG_WARNING);
			diag_list_free(&d);
			exit(1);
		}
		diag_print(&d, stderr, DIAG_WARNING);
		diag_list_free(&d);
	}
	if (c->drafts >= 0)
		c->cfg.allow_drafts = c->drafts;
	if (c->no_model)
		c->cfg.model = 0;
	intent_set_jit(c->cfg.jit);
	log_init((enum log_level)c->cfg.log_level, c->cfg.log_chat_text);
}

/* The kb source the options and config point to. */
static void
common_source(struct common *c, struct kb_source *src)
{
	size_t i;

	memset(src, 0, sizeof(*src));
	for (i = 0; i < c->cfg.bot_names.n && i + 1 < NELEM(c->names); i++)
		c->names[i] = c->cfg.bot_names.v[i];
	c->names[i] = NULL;
	src->bot_names = c->names;
	src->no_model = !c->cfg.model;
	src->keep_rows = c->keep_rows;
	if (c->nlabelled == 0 && c->cfg.labelled_dir[0])
		c->labelled[c->nlabelled++] = c->cfg.labelled_dir;
	src->labelled_paths = c->labelled;
	src->nlabelled = c->nlabelled;
	if (c->cache_dir == NULL)
		c->cache_dir = kb_cache_dir(NULL);
	src->cache_dir = c->cache_dir;
	if (c->nintents == 0 && c->cfg.intents_dir[0]) {
		c->intents[c->nintents++] = c->cfg.intents_dir;
	}
	if (c->nresponses == 0 && c->cfg.responses_dir[0]) {
		c->responses[c->nresponses++] = c->cfg.responses_dir;
	}
	src->intent_paths = c->intents;
	src->nintent = c->nintents;
	src->response_paths = c->responses;
	src->nresponse = c->nresponses;
}

static struct kb *
common_kb(struct common *c)
{
	struct kb_source src;
	struct diag_list d;
	struct kb *kb;

	common_source(c, &src);
	diag_list_init(&d);
	kb = kb_load(&src, &d);
	diag_print(&d, stderr, kb ? DIAG_ERROR : DIAG_WARNING);
	if (kb != NULL) {
		struct diag_list m;

		/* A model that could not be trained is worth a word: the rules answer alone. */
		diag_list_init(&m);
		kb_model_wait(kb, &m);
		diag_print(&m, stderr, DIAG_WARNING);
		diag_list_free(&m);
	}
	if (kb == NULL) {
		fprintf(stderr,
		        "faqbot: %zu error(s) in intents or responses; run `faqbot lint` "
		        "for the details\n",
		        d.errors);
		diag_list_free(&d);
		exit(1);
	}
	diag_list_free(&d);
	return kb;
}

static void
common_free(struct common *c)
{
	free(c->cache_dir);
	config_free(&c->cfg);
}

static void
usage_cmd(const char *cmd, const char *args, const char *what, const char *extra, int common)
{
	printf("usage: faqbot %s %s\n\n%s\n\noptions:\n%s%s", cmd, args, what, extra ? extra : "",
	       common ? common_help : "  -h, --help           this help\n");
}

/* --- classify ----------------------------------------------------------- */

static void
json_string(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(fp, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(fp, "\\u%04x", ch);
		else
			fputc(ch, fp);
	}
	fputc('"', fp);
}

static int
cmd_classify(int argc, char **argv)
{
	static const struct option lo[] = {COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
	struct common c = {.drafts = -1};
	struct match_result res;
	struct match_opts mo;
	struct match_ctx *ctx;
	struct kb *kb;
	const char *names[16];
	char *line = NULL;
	size_t cap = 0, i;
	ssize_t n;
	int ch;

	while ((ch = getopt_long(argc, argv, "c:h", lo, NULL)) != -1) {
		if (common_opt(&c, ch))
			continue;
		usage_cmd(
		    "classify", "[options] < messages",
		    "Reads one message per line on standard input and writes one JSON object per\n"
		    "line: {\"intent\": id or null, \"score\": points, \"ambiguous\": bool,\n"
		    "\"alternatives\": [{\"intent\", \"score\"}], and \"silenced_by\" when a "
		    "silent\n"
		    "intent won}. The contract used by eval/score.py.",
		    NULL, 1);
		return ch == 'h' ? 0 : 2;
	}
	common_config(&c);
	kb = common_kb(&c);
	bot_match_opts(&c.cfg, NULL, &mo, names, NELEM(names));
	ctx = match_ctx_new();
	if (isatty(STDOUT_FILENO))
		setvbuf(stdout, NULL, _IOLBF, 0);
	while ((n = getline(&line, &cap, stdin)) != -1) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		match_run(ctx, kb, &mo, line, (size_t)n, &res, NULL);
		fputs("{\"intent\": ", stdout);
		if (res.intent)
			json_string(stdout, res.intent->id);
		else
			fputs("null", stdout);
		printf(", \"score\": %.3f, \"ambiguous\": %s, \"alternatives\": [", res.score,
		       res.ambiguous ? "true" : "false");
		for (i = 0; i < res.nalt; i++) {
			fputs(i ? ", {\"intent\": " : "{\"intent\": ", stdout);
			json_string(stdout, res.alt[i].intent->id);
			printf(", \"score\": %.3f}", res.alt[i].score);
		}
		putchar(']');
		if (res.intent)
			printf(", \"by\": \"%s\"", res.by == MATCH_BY_MODEL ? "model" : "rules");
		if (res.flag)
			fputs(", \"flag\": \"safety\"", stdout);
		if (res.p_safety >= 0)
			printf(", \"p_safety\": %.3f", res.p_safety);
		if (res.silenced_by) {
			fputs(", \"silenced_by\": ", stdout);
			json_string(stdout, res.silenced_by->id);
		}
		fputs("}\n", stdout);
	}
	free(line);
	match_ctx_free(ctx);
	kb_free(kb);
	common_free(&c);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "faqbot classify: write error: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

/* --- ask ---------------------------------------------------------------- */

static int
cmd_ask(int argc, char **argv)
{
	static const struct option lo[] = {COMMON_LONGOPTS,
	                                   {"html", no_argument, NULL, OPT_HTML},
	                                   {"name", required_argument, NULL, OPT_NAME},
	                                   {"room", required_argument, NULL, OPT_ROOM},
	                                   {NULL, 0, NULL, 0}};
	struct common c = {.drafts = 1};
	struct match_result res;
	struct match_opts mo;
	struct match_ctx *ctx;
	struct bot_reply reply;
	struct cfg_room room;
	struct kb *kb;
	struct buf q, ex;
	const char *names[16], *name = NULL, *roomid = NULL;
	int ch, html = 0, i;
	size_t k;

	while ((ch = getopt_long(argc, argv, "c:h", lo, NULL)) != -1) {
		if (common_opt(&c, ch))
			continue;
		if (ch == OPT_HTML) {
			html = 1;
			continue;
		}
		if (ch == OPT_NAME) {
			name = optarg;
			continue;
		}
		if (ch == OPT_ROOM) {
			roomid = optarg;
			continue;
		}
		usage_cmd(
		    "ask", "[options] QUESTION...",
		    "Prints the reply the bot would send to QUESTION, and why: the normalised\n"
		    "text, the patterns and keywords that fired, the points of every candidate.\n"
		    "Drafts are used (and marked) unless --no-drafts.",
		    "      --name NAME      the asker's display name, for {{name}}\n"
		    "      --room ROOM      use this room's profile from the config\n"
		    "      --html           also print the HTML that Matrix would get\n",
		    1);
		return ch == 'h' ? 0 : 2;
	}
	if (optind >= argc) {
		fprintf(stderr, "faqbot ask: give a question, e.g. faqbot ask \"what is NED?\"\n");
		return 2;
	}
	common_config(&c);
	kb = common_kb(&c);
	buf_init(&q);
	for (i = optind; i < argc; i++) {
		if (i > optind)
			buf_putc(&q, ' ');
		buf_puts(&q, argv[i]);
	}
	config_room(&c.cfg, roomid, &room);
	bot_match_opts(&c.cfg, &room, &mo, names, NELEM(names));
	ctx = match_ctx_new();
	buf_init(&ex);
	match_run(ctx, kb, &mo, q.data, q.len, &res, &ex);
	printf("question:  \"%s\"\n", q.data);
	printf("%s", ex.data);
	bot_compose(kb, &c.cfg, &res, &room, name, 1, 0, &reply);
	printf("\nreply (%s):\n", reply.why);
	if (reply.kind == BOT_SILENT) {
		printf("  (silence)\n");
	} else {
		const char *p = reply.text.plain;

		while (*p) {
			const char *e = strchr(p, '\n');
			size_t len = e ? (size_t)(e - p) : strlen(p);

			printf("  %.*s\n", (int)len, p);
			p += len + (e ? 1 : 0);
		}
		if (html)
			printf("\nhtml:\n%s\n", reply.text.html);
	}
	if (reply.intent) {
		const struct response *r = kb_response(kb, reply.intent, room.locale);

		if (r) {
			printf("\nresponse:  %s (%s, %s", r->file,
			       r->status == RESPONSE_DRAFT ? "draft awaiting clinical review"
			                                   : "approved",
			       r->locale);
			if (r->status == RESPONSE_APPROVED)
				printf(", reviewed by %s", r->reviewed_by);
			printf(")\nsources:  ");
			for (k = 0; k < r->nsources; k++)
				printf(" %s", r->sources[k]);
			printf("\n");
		}
	}
	printf("knowledge: %s\n", kb->origin);
	bot_reply_free(&reply);
	buf_free(&ex);
	buf_free(&q);
	match_ctx_free(ctx);
	kb_free(kb);
	common_free(&c);
	return 0;
}

/* --- lint --------------------------------------------------------------- */

static int
has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);

	return n >= m && strcmp(s + n - m, suf) == 0;
}

static int
cmd_lint(int argc, char **argv)
{
	static const struct option lo[] = {{"config", required_argument, NULL, 'c'},
	                                   {"werror", no_argument, NULL, OPT_WERROR},
	                                   {"quiet", no_argument, NULL, 'q'},
	                                   {"help", no_argument, NULL, 'h'},
	                                   {NULL, 0, NULL, 0}};
	struct common c = {.drafts = -1};
	struct diag_list d;
	struct lint_opts lo_;
	struct kb_source src;
	struct kb *kb;
	const char *names[16];
	int ch, werror = 0, quiet = 0, i, rc, intent_files = 0, dirs = 0;

	while ((ch = getopt_long(argc, argv, "c:qh", lo, NULL)) != -1) {
		if (ch == 'c') {
			c.config = optarg;
		} else if (ch == OPT_WERROR) {
			werror = 1;
		} else if (ch == 'q') {
			quiet = 1;
		} else {
			usage_cmd(
			    "lint", "[options] [PATH...]",
			    "Checks intents (*.json), responses (*.md) and a configuration file.\n"
			    "PATHs are files or directories; without any, lints what the config "
			    "(or\n"
			    "the built-in set) uses. Prints every problem as file:line:col: "
			    "message,\n"
			    "then a summary. Exit status 1 when there are errors (or warnings, "
			    "with\n"
			    "--werror).",
			    "  -c, --config FILE    also check this configuration, and lint the\n"
			    "                       responses against it (drafts when drafts are "
			    "off)\n"
			    "      --werror         warnings count as errors\n"
			    "  -q, --quiet          print only errors and warnings, no summary\n",
			    0);
			return ch == 'h' ? 0 : 2;
		}
	}
	diag_list_init(&d);
	config_defaults(&c.cfg);
	if (c.config) {
		config_load(&c.cfg, c.config, &d);
		config_check(&c.cfg, c.config, date_today_days(), &d);
	}
	for (i = optind; i < argc; i++) {
		const char *p = argv[i];

		if (has_suffix(p, ".md")) {
			c.responses[c.nresponses++] = p;
		} else if (has_suffix(p, ".tsv")) {
			c.labelled[c.nlabelled++] = p;
		} else if (has_suffix(p, ".json")) {
			/* A configuration file, or an intent file? Look at its keys. */
			size_t len;
			char *text = file_read_regular(p, 1 << 20, &len);
			cJSON *root = text ? cJSON_ParseWithLength(text, len) : NULL;
			int is_config = root && cJSON_IsObject(root) && root->child &&
			                config_is_top_key(root->child->string) &&
			                !cJSON_GetObjectItemCaseSensitive(root, "intents");

			cJSON_Delete(root);
			free(text);
			if (is_config) {
				struct config tmp;

				config_defaults(&tmp);
				config_load(&tmp, p, &d);
				config_check(&tmp, p, date_today_days(), &d);
				config_free(&tmp);
			} else {
				c.intents[c.nintents++] = p;
				intent_files++;
			}
		} else {
			/* A directory: its *.json are intents, its *.md responses. */
			char *probe = xasprintf("%s/.", p);

			if (access(probe, F_OK) != 0) {
				diag_add(&d, DIAG_ERROR, p, 0, 0, "%s", strerror(errno));
			} else {
				c.intents[c.nintents++] = p;
				c.responses[c.nresponses++] = p;
				dirs++;
			}
			free(probe);
		}
		if (c.nintents >= NELEM(c.intents) - 1 || c.nresponses >= NELEM(c.responses) - 1 ||
		    c.nlabelled >= NELEM(c.labelled) - 1)
			break;
	}
	common_source(&c, &src);
	/* Single intent files are part of a set: the safety intents may be elsewhere. */
	src.partial = intent_files > 0 && dirs == 0;
	src.no_model = 1; /* the labelled files are checked; no model is needed for that */
	kb = kb_load(&src, &d);
	if (kb != NULL) {
		memset(&lo_, 0, sizeof(lo_));
		bot_match_opts(&c.cfg, NULL, &lo_.match, names, NELEM(names));
		lo_.max_grade = c.cfg.max_grade;
		lo_.allow_drafts = c.cfg.allow_drafts;
		lo_.drafts_are_warnings = c.config != NULL && !c.cfg.allow_drafts;
		lo_.today = date_today_days();
		lint_kb(kb, &lo_, &d);
	}
	diag_list_sort(&d);
	diag_print(&d, stdout, quiet ? DIAG_WARNING : DIAG_NOTE);
	if (!quiet)
		printf("lint: %zu error(s), %zu warning(s)%s%s\n", d.errors, d.warnings,
		       kb ? "; checked " : "", kb ? kb->origin : "");
	rc = d.errors || (werror && d.warnings) ? 1 : 0;
	diag_list_free(&d);
	kb_free(kb);
	common_free(&c);
	return rc;
}

/* --- test --------------------------------------------------------------- */

struct test_state {
	int verbose;
};

static void
on_test_example(void *arg, const struct lint_example *e)
{
	struct test_state *st = arg;
	char *msg;

	if (e->ok && !st->verbose)
		return;
	if (e->ok) {
		printf("ok   %s: %s \"%s\"\n", e->intent->id, e->counter ? "counter" : "example",
		       e->ex->text);
		return;
	}
	msg = lint_describe(e);
	printf("FAIL %s:%d:%d: %s\n", e->ex->at.file, e->ex->at.line, e->ex->at.col, msg);
	free(msg);
}

/* Appends "opt value" to argv (n entries, NULL-terminated). */
static void
argv_add(char ***argv, size_t *n, const char *opt, const char *value)
{
	*argv = xreallocarray(*argv, *n + 3, sizeof(**argv));
	(*argv)[(*n)++] = xstrdup(opt);
	if (value != NULL)
		(*argv)[(*n)++] = xstrdup(value);
	(*argv)[*n] = NULL;
}

/*
 * `faqbot test --cv K`: the cross-validated figures of the learned layer,
 * which the trainer computes (it has liblinear; see trainer.h). Runs it on
 * the same files and thresholds; returns only when it cannot.
 */
static int
test_cv(struct common *c, int k, int sweep, int verbose)
{
	struct kb_source src;
	struct match_opts mo;
	const char *names[16];
	char **argv = NULL, num[32], *path = trainer_path();
	size_t n = 0, i;

	common_source(c, &src);
	bot_match_opts(&c->cfg, NULL, &mo, names, NELEM(names));
	argv_add(&argv, &n, path, NULL);
	for (i = 0; i < src.nintent; i++)
		argv_add(&argv, &n, "--intents", src.intent_paths[i]);
	for (i = 0; i < src.nresponse; i++)
		argv_add(&argv, &n, "--responses", src.response_paths[i]);
	for (i = 0; i < src.nlabelled; i++)
		argv_add(&argv, &n, "--labelled", src.labelled_paths[i]);
	for (i = 0; src.bot_names[i]; i++)
		argv_add(&argv, &n, "--name", src.bot_names[i]);
	if (k < 0)
		argv_add(&argv, &n, "--cv", "files");
	else {
		snprintf(num, sizeof(num), "%d", k);
		argv_add(&argv, &n, "--cv", num);
	}
	snprintf(num, sizeof(num), "%.17g", mo.model_answer);
	argv_add(&argv, &n, "--answer", num);
	snprintf(num, sizeof(num), "%.17g", mo.model_alert);
	argv_add(&argv, &n, "--alert", num);
	snprintf(num, sizeof(num), "%.17g", mo.model_flag);
	argv_add(&argv, &n, "--flag", num);
	if (sweep)
		argv_add(&argv, &n, "--sweep", NULL);
	if (verbose)
		argv_add(&argv, &n, "--verbose", NULL);
	fflush(stdout);
	execv(path, argv);
	fprintf(stderr, "faqbot test: cannot run the trainer %s: %s\n", path, strerror(errno));
	for (i = 0; i < n; i++)
		free(argv[i]);
	free(argv);
	free(path);
	return 1;
}

static int
cmd_test(int argc, char **argv)
{
	static const struct option lo[] = {COMMON_LONGOPTS,
	                                   {"verbose", no_argument, NULL, 'v'},
	                                   {"cv", required_argument, NULL, OPT_CV},
	                                   {"sweep", no_argument, NULL, OPT_SWEEP},
	                                   {NULL, 0, NULL, 0}};
	struct common c = {.drafts = -1};
	struct test_state st = {0};
	struct match_opts mo;
	struct kb *kb;
	const char *names[16];
	size_t failed, passed;
	int ch, cv = 0, sweep = 0, rc;
	char *end;

	while ((ch = getopt_long(argc, argv, "c:vh", lo, NULL)) != -1) {
		if (common_opt(&c, ch))
			continue;
		if (ch == 'v') {
			st.verbose = 1;
			continue;
		}
		if (ch == OPT_CV) {
			if (strcmp(optarg, "files") == 0) {
				cv = -1;
				continue;
			}
			cv = (int)strtol(optarg, &end, 10);
			if (*end != '\0' || cv < 2 || cv > 20) {
				fprintf(stderr, "faqbot test: --cv takes a number of folds, 2 to 20, or "
				                "\"files\"\n");
				return 2;
			}
			continue;
		}
		if (ch == OPT_SWEEP) {
			sweep = 1;
			continue;
		}
		usage_cmd(
		    "test", "[options]",
		    "Runs every example (must reach its intent) and counter-example (must not),\n"
		    "prints each failure with its place, and a closing line \"N passed, N "
		    "failed\".\n"
		    "The rules alone answer: the model learns from these examples.\n"
		    "Exit status 1 when any failed.\n\n"
		    "With --cv K: K-fold cross-validation of the learned layer over the labelled\n"
		    "messages instead: accuracy, false answers, safety recall, answered and\n"
		    "coverage, alarm and flag rates, for the rules only, the model only, and both.",
		    "  -v, --verbose        print the examples that pass too (with --cv:\n"
		    "                       every labelled message answered otherwise)\n"
		    "      --cv K           cross-validate the model with K folds (2 to 20), or\n"
		    "                       with \"files\": one fold per labelled file, each\n"
		    "                       answered by a model that never saw it\n"
		    "      --sweep          with --cv: also how the figures move with each\n"
		    "                       threshold, to choose them\n",
		    1);
		return ch == 'h' ? 0 : 2;
	}
	common_config(&c);
	if (cv) {
		rc = test_cv(&c, cv, sweep, st.verbose);
		common_free(&c);
		return rc;
	}
	c.cfg.model = 0;
	kb = common_kb(&c);
	bot_match_opts(&c.cfg, NULL, &mo, names, NELEM(names));
	failed = lint_examples(kb, &mo, on_test_example, &st, &passed);
	printf("%zu passed, %zu failed\n", passed, failed);
	kb_free(kb);
	common_free(&c);
	return failed ? 1 : 0;
}

/* --- chat --------------------------------------------------------------- */

static void
print_indented(const char *prefix, const char *text)
{
	const char *p = text;
	int first = 1;

	while (*p) {
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		printf("%s%.*s\n", first ? prefix : "        ", (int)len, p);
		first = 0;
		p += len + (e ? 1 : 0);
	}
}

static int
cmd_chat(int argc, char **argv)
{
	static const struct option lo[] = {
	    COMMON_LONGOPTS, {"name", required_argument, NULL, OPT_NAME}, {NULL, 0, NULL, 0}};
	struct common c = {.drafts = 1};
	struct match_result res;
	struct match_opts mo;
	struct match_ctx *ctx;
	struct bot_reply reply;
	struct cfg_room room;
	struct kb *kb;
	const char *names[16], *name = NULL;
	const struct intent *choice[2] = {NULL, NULL};
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int ch, tty = isatty(STDIN_FILENO);

	while ((ch = getopt_long(argc, argv, "c:h", lo, NULL)) != -1) {
		if (common_opt(&c, ch))
			continue;
		if (ch == OPT_NAME) {
			name = optarg;
			continue;
		}
		usage_cmd(
		    "chat", "[options]",
		    "Talk to the bot in the terminal, as a patient would in a room. Every line\n"
		    "is treated as addressed to the bot. Drafts are used (and marked) unless\n"
		    "--no-drafts. Type /why after an answer to see why it was chosen; /quit or\n"
		    "end of input to leave.",
		    "      --name NAME      your display name, for {{name}}\n", 1);
		return ch == 'h' ? 0 : 2;
	}
	common_config(&c);
	kb = common_kb(&c);
	config_room(&c.cfg, "terminal", &room);
	bot_match_opts(&c.cfg, &room, &mo, names, NELEM(names));
	ctx = match_ctx_new();
	if (name == NULL)
		name = getenv("USER");
	printf("faqbot %s: ask a question about metastatic cancer (/quit to leave, /why to see "
	       "why).\nknowledge: %s%s\n\n",
	       FAQBOT_VERSION, kb->origin,
	       c.cfg.allow_drafts ? "; draft responses shown, marked as drafts" : "");
	{
		struct buf last;

		buf_init(&last);
		for (;;) {
			if (tty) {
				printf("you> ");
				fflush(stdout);
			}
			if ((n = getline(&line, &cap, stdin)) == -1)
				break;
			while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
				line[--n] = '\0';
			if (n == 0)
				continue;
			if (strcmp(line, "/quit") == 0)
				break;
			if (strcmp(line, "/why") == 0) {
				struct buf ex;

				buf_init(&ex);
				if (last.len) {
					match_run(ctx, kb, &mo, last.data, last.len, &res, &ex);
					printf("%s\n", ex.data);
				} else {
					printf("(ask something first)\n\n");
				}
				buf_free(&ex);
				continue;
			}
			if (!tty)
				printf("you> %s\n", line);
			/* An answer to "did you mean 1) ... 2)?" */
			if (choice[0] && (strcmp(line, "1") == 0 || strcmp(line, "2") == 0)) {
				bot_compose_intent(kb, &c.cfg, choice[line[0] - '1'], &room, name,
				                   NULL, 0, &reply);
				choice[0] = choice[1] = NULL;
			} else {
				buf_reset(&last);
				buf_append(&last, line, (size_t)n);
				match_run(ctx, kb, &mo, line, (size_t)n, &res, NULL);
				bot_compose(kb, &c.cfg, &res, &room, name, 1, 0, &reply);
				choice[0] = reply.choice[0];
				choice[1] = reply.choice[1];
			}
			if (reply.kind == BOT_SILENT)
				printf("faqbot> (no answer: %s; in a room the bot would stay "
				       "silent)\n\n",
				       reply.why);
			else {
				print_indented("faqbot> ", reply.text.plain);
				printf("\n");
			}
			fflush(stdout);
			bot_reply_free(&reply);
		}
		buf_free(&last);
	}
	if (tty)
		printf("\n");
	free(line);
	match_ctx_free(ctx);
	kb_free(kb);
	common_free(&c);
	return 0;
}

/* --- run, unanswered ------------------------------------------------------ */

static int
cmd_run(int argc, char **argv)
{
	static const struct option lo[] = {{"config", required_argument, NULL, 'c'},
	                                   {"check", no_argument, NULL, OPT_CHECK},
	                                   {"help-config", no_argument, NULL, OPT_HELP_CONFIG},
	                                   {"help", no_argument, NULL, 'h'},
	                                   {NULL, 0, NULL, 0}};
	const char *config = NULL;
	int ch, check = 0;

	while ((ch = getopt_long(argc, argv, "c:h", lo, NULL)) != -1) {
		if (ch == 'c') {
			config = optarg;
		} else if (ch == OPT_CHECK) {
			check = 1;
		} else if (ch == OPT_HELP_CONFIG) {
			config_print_help(stdout);
			return 0;
		} else {
			usage_cmd(
			    "run", "-c FILE [--check]",
			    "Runs the bot: logs in to the configured Matrix homeserver and/or IRC\n"
			    "network, answers in its rooms, reloads on SIGHUP, logs a status line on\n"
			    "SIGUSR1, stops on SIGTERM.",
			    "  -c, --config FILE    the configuration (required)\n"
			    "      --check          validate config, intents and responses, print\n"
			    "                       \"configuration OK\" or every problem, and "
			    "exit\n"
			    "      --help-config    list every option with its type, default and "
			    "help\n",
			    0);
			return ch == 'h' ? 0 : 2;
		}
	}
	if (config == NULL) {
		fprintf(stderr, "faqbot run: a configuration file is needed (-c FILE); see "
		                "deploy/faqbot.example.json\n");
		return 2;
	}
	return daemon_main(config, check);
}

static int
cmd_unanswered(int argc, char **argv)
{
	return unanswered_main(argc, argv);
}

static int
cmd_taught(int argc, char **argv)
{
	return teach_main(argc, argv);
}

/* --- dispatch ------------------------------------------------------------- */

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *what;
} commands[] = {
    {"classify", cmd_classify, "classify messages from stdin, one JSON line each"},
    {"ask", cmd_ask, "show the reply to one question, and why"},
    {"lint", cmd_lint, "check intents, responses and config"},
    {"test", cmd_test, "run every example and counter-example"},
    {"chat", cmd_chat, "talk to the bot in the terminal"},
    {"run", cmd_run, "run the bot on Matrix and/or IRC"},
    {"unanswered", cmd_unanswered, "questions that got no answer, grouped"},
    {"taught", cmd_taught, "what moderators taught the bot, as labelled TSV"},
};

static void
usage(FILE *fp)
{
	size_t i;

	fprintf(fp, "usage: faqbot COMMAND [options]\n\ncommands:\n");
	for (i = 0; i < NELEM(commands); i++)
		fprintf(fp, "  %-11s %s\n", commands[i].name, commands[i].what);
	fprintf(fp, "  %-11s %s\n\n`faqbot COMMAND --help` describes each.\n", "version",
	        "print the version");
}

int
main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("faqbot %s\n", FAQBOT_VERSION);
		return 0;
	}
	for (i = 0; i < NELEM(commands); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "faqbot: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return 2;
}
