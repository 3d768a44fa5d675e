/*
 * faqbot-train: the trainer the bot starts (trainer.h), and the cross-
 * validation behind `faqbot test --cv`. It loads intents, responses and
 * labelled messages as the bot does, trains the learned layer with
 * liblinear in this process, and writes the model (learn_save's format)
 * on its standard output; or, with --cv, prints the cross-validated
 * figures. Problems go to standard error; the exit status is 0 when the
 * model (or the figures) were written, 1 otherwise, 2 for bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"
#include "evaluate.h"
#include "kb.h"
#include "learn.h"
#include "match.h"
#include "util.h"

#define MAX_PATHS 64

enum {
	OPT_INTENTS = 256,
	OPT_RESPONSES,
	OPT_LABELLED,
	OPT_TAUGHT,
	OPT_NAME,
	OPT_CV,
	OPT_SWEEP,
	OPT_ANSWER,
	OPT_ALERT,
	OPT_FLAG,
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	        "usage: faqbot-train [options] > model\n"
	        "       faqbot-train --cv K|files [--sweep] [-v] [options]\n\n"
	        "Trains faqbot's learned layer from the intents' examples and the labelled\n"
	        "messages, and writes the model on standard output (the bot starts this\n"
	        "itself; see docs/intents.md). With --cv, cross-validates instead and prints\n"
	        "the figures (what `faqbot test --cv` shows).\n\n"
	        "options:\n"
	        "      --intents PATH   intent file or directory (repeatable; default: the\n"
	        "                       set built in)\n"
	        "      --responses PATH response file or directory (likewise)\n"
	        "      --labelled PATH  labelled messages, *.tsv file or directory\n"
	        "                       (repeatable; default: \"labelled\" beside the intents,\n"
	        "                       or the set built in)\n"
	        "      --taught FILE    the moderators' taught messages, if the file exists\n"
	        "      --name NAME      a name the bot answers to (repeatable)\n"
	        "      --cv K|files     K-fold cross-validation, or one fold per labelled file\n"
	        "      --sweep          with --cv: how the figures move with each threshold\n"
	        "  -v, --verbose        with --cv: every labelled message answered otherwise\n"
	        "      --answer P, --alert P, --flag P\n"
	        "                       with --cv: the thresholds (model.answer_threshold,\n"
	        "                       model.safety_answer_threshold,\n"
	        "                       model.safety_alert_threshold)\n"
	        "  -h, --help           this help\n");
}

/* Parses a probability for option name; exits with a message when it is not one. */
static double
prob_arg(const char *name, const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (*end != '\0' || !(v > 0 && v <= 1)) {
		fprintf(stderr, "faqbot-train: --%s takes a probability above 0 and at most 1\n",
		        name);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"intents", required_argument, NULL, OPT_INTENTS},
	    {"responses", required_argument, NULL, OPT_RESPONSES},
	    {"labelled", required_argument, NULL, OPT_LABELLED},
	    {"taught", required_argument, NULL, OPT_TAUGHT},
	    {"name", required_argument, NULL, OPT_NAME},
	    {"cv", required_argument, NULL, OPT_CV},
	    {"sweep", no_argument, NULL, OPT_SWEEP},
	    {"verbose", no_argument, NULL, 'v'},
	    {"answer", required_argument, NULL, OPT_ANSWER},
	    {"alert", required_argument, NULL, OPT_ALERT},
	    {"flag", required_argument, NULL, OPT_FLAG},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	const char *ip[MAX_PATHS], *rp[MAX_PATHS], *lp[MAX_PATHS], *names[MAX_PATHS + 1];
	struct kb_source src = {0};
	struct learn_params params;
	struct match_opts mo;
	struct diag_list d;
	struct kb *kb;
	struct buf out;
	size_t nnames = 0;
	int ch, cv = 0, sweep = 0, verbose = 0, rc = 1;
	char *end;

	match_opts_default(&mo);
	while ((ch = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
		switch (ch) {
		case OPT_INTENTS:
			if (src.nintent < MAX_PATHS)
				ip[src.nintent++] = optarg;
			break;
		case OPT_RESPONSES:
			if (src.nresponse < MAX_PATHS)
				rp[src.nresponse++] = optarg;
			break;
		case OPT_LABELLED:
			if (src.nlabelled < MAX_PATHS)
				lp[src.nlabelled++] = optarg;
			break;
		case OPT_TAUGHT:
			src.taught = optarg;
			break;
		case OPT_NAME:
			if (nnames < MAX_PATHS)
				names[nnames++] = optarg;
			break;
		case OPT_CV:
			if (strcmp(optarg, "files") == 0) {
				cv = -1;
				break;
			}
			cv = (int)strtol(optarg, &end, 10);
			if (*end != '\0' || cv < 2 || cv > 20) {
				fprintf(stderr, "faqbot-train: --cv takes a number of folds, 2 to 20, "
				                "or \"files\"\n");
				return 2;
			}
			break;
		case OPT_SWEEP:
			sweep = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case OPT_ANSWER:
			mo.model_answer = prob_arg("answer", optarg);
			break;
		case OPT_ALERT:
			mo.model_alert = prob_arg("alert", optarg);
			break;
		case OPT_FLAG:
			mo.model_flag = prob_arg("flag", optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	/* No --name: the bot has no names to be read as "@bot" (as its own kb_load). */
	names[nnames] = NULL;
	src.intent_paths = ip;
	src.response_paths = rp;
	src.labelled_paths = lp;
	src.bot_names = names;
	src.keep_rows = cv != 0;
	src.no_model = cv != 0; /* cross-validation trains its folds' models itself */
	learn_params_default(&params);
	src.learn = &params;
	kb_set_trainer(kb_train);
	diag_list_init(&d);
	kb = kb_load(&src, &d);
	diag_print(&d, stderr, DIAG_WARNING);
	diag_list_free(&d);
	if (kb == NULL) {
		fprintf(stderr, "faqbot-train: the intents did not load (run `faqbot lint`)\n");
		return 1;
	}
	if (cv != 0) {
		struct eval_cv res;

		mo.bot_names = names;
		if (sweep)
			printf("How the figures of \"both\" move with each threshold (the others as "
			       "given):\n\n");
		if (eval_cross_validate(kb, &mo, cv < 0 ? 0 : cv, &params, names, &res,
		                        sweep ? stdout : NULL, verbose ? stdout : NULL) == 0) {
			if (sweep)
				printf("\n");
			if (cv < 0)
				printf("one fold per labelled file (%d files): ", res.folds);
			else
				printf("%d-fold ", cv);
			eval_print(&res, stdout);
			printf("thresholds: model.answer_threshold %.2f, "
			       "model.safety_answer_threshold %.2f, model.safety_alert_threshold "
			       "%.2f\n",
			       mo.model_answer, mo.model_alert, mo.model_flag);
			rc = 0;
		} else {
			fprintf(stderr, "faqbot-train: too few labelled messages (or files) for "
			                "these folds\n");
		}
	} else if (kb->model == NULL) {
		fprintf(stderr, "faqbot-train: nothing to learn from (no labelled messages and no "
		                "examples in two classes or more)\n");
	} else {
		buf_init(&out);
		learn_save(kb->model, kb->input_hash, &out);
		if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) == EOF)
			fprintf(stderr, "faqbot-train: writing the model: %s\n", strerror(errno));
		else
			rc = 0;
		buf_free(&out);
	}
	kb_free(kb);
	return rc;
}
