/*
 * The daemon behind `faqbot run`; see daemon.h. It loads and checks the
 * configuration and the knowledge base, starts the transports, the metrics
 * endpoint and the file watcher on one event loop, and handles signals:
 * SIGTERM/SIGINT save everything and exit 0 at once, even in the middle of
 * a long-poll; SIGHUP reloads intents and responses, keeping the old set on
 * any error; SIGUSR1 and SIGUSR2 save the counters and log a status line
 * (they never stop the bot).
 */
#include "daemon.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "bot.h"
#include "config.h"
#include "diag.h"
#include "intent.h"
#include "kb.h"
#include "lint.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "stats.h"
#include "trainer.h"
#include "transport/irc.h"
#include "transport/matrix.h"
#include "util.h"

#define RELOAD_DEBOUNCE_MS 500	/* editors write files in several steps */
#define SAVE_EVERY_MS 60000	/* counters saved at least this often */
#define TICK_MS 1000		/* how often what waits for a time is looked at */

/*
 * A watched directory (intents_dir or responses_dir). Its parent is watched
 * too, for its name: a deploy that swaps the directory (mv new intents,
 * or a symlink repointed) leaves the old watch on the old directory, so
 * the watch is moved to whatever the name points to now.
 */
struct watch {
	const char *path;	/* the directory, as configured (not owned) */
	char *parent;		/* its parent directory */
	char *base;		/* its name in the parent */
	int wd;			/* the watch on the directory, or -1 */
	int wd_parent;		/* the watch on the parent, or -1 */
};

struct daemon {
	struct config cfg;
	struct loop *loop;
	struct bot *bot;
	struct mx *mx;
	struct irc *irc;
	struct metrics *metrics;
	int sigfd;
	int inotify;
	struct watch watch[3];	/* intents_dir, responses_dir, the labelled messages */
	char *labelled;		/* the labelled directory beside intents_dir, watched */
	size_t nwatch;
	uint64_t reload_timer;
	int exit_code;
	int train_fd[4];	/* the bot's background work (bot_job_fds), watched */
	int ntrain_fd;
	char *reload_why;	/* what started the pending reload */
	uint64_t reload_t0;	/* when (now_ms) */
};

static void
print_diags(const struct diag_list *d, enum diag_severity min)
{
	size_t i;

	for (i = 0; i < d->n; i++) {
		char *s;

		if (d->d[i].sev > min)
			continue;
		s = diag_format(&d->d[i]);
		if (d->d[i].sev == DIAG_ERROR)
			log_warnx("%s", s);
		else
			log_info("%s", s);
		free(s);
	}
}

/* Tells the log (and, with a problem, the moderators) what a finished reload gave. */
static void
reload_done(struct daemon *dm, const char *why, struct diag_list *d)
{
	const struct kb *kb = dm->bot->kb;
	struct learn_info li;
	struct buf md;

	if (kb->model != NULL) {
		learn_model_info(kb->model, &li);
		log_info("reloaded (%s): %zu intents, %zu responses; the model learnt from %zu "
		         "messages in %.1f s",
		         why, kb->nin, kb->responses.n, li.rows, li.seconds);
	} else {
		log_info("reloaded (%s): %zu intents, %zu responses; no learned model", why, kb->nin,
		         kb->responses.n);
	}
	print_diags(d, DIAG_WARNING);
	/* The new set's figures, for `!faq stats`, worked out in the background. */
	bot_cv_start(dm->bot);
	if (kb->model == NULL && dm->cfg.model) {
		buf_init(&md);
		buf_printf(&md, "**Reloaded (%s), without the learned model**: the rules answer "
		                "alone, which misses more emergencies and crises. ",
		           why);
		buf_puts(&md, d->n ? "Why:\n\n```\n" : "");
		if (d->n) {
			size_t i;

			for (i = 0; i < d->n && i < 5; i++) {
				char *s = diag_format(&d->d[i]);

				buf_printf(&md, "%s\n", s);
				free(s);
			}
			buf_puts(&md, "```");
		}
		bot_notify(dm->bot, md.data, NULL);
		buf_free(&md);
	} else if (dm->reload_why != NULL) {
		/* A reload that had to wait for its model: say it is in use now. */
		buf_init(&md);
		buf_printf(&md, "The reloaded set is in use (%s): %zu intents, %zu responses, "
		                "the model trained in %.1f s.",
		           why, kb->nin, kb->responses.n, (double)(now_ms() - dm->reload_t0) / 1e3);
		bot_notify(dm->bot, md.data, NULL);
		buf_free(&md);
	}
}

static void
unwatch_training(struct daemon *dm)
{
	int i;

	for (i = 0; i < dm->ntrain_fd; i++)
		loop_del_fd(dm->loop, dm->train_fd[i]);
	dm->ntrain_fd = 0;
}

/*
 * Watches the descriptors of the bot's background work: a reload's trainer,
 * the model's figures (they close one by one).
 */
static void on_training(void *arg, int fd, short revents);

static void
watch_training(void *arg)
{
	struct daemon *dm = arg;
	int i;

	unwatch_training(dm);
	if (dm->bot->pending != NULL && dm->reload_why == NULL) {
		/* Started by a moderator's command (do_reload sets its own reason). */
		dm->reload_why = xstrdup("moderator command");
		dm->reload_t0 = now_ms();
	}
	dm->ntrain_fd = bot_job_fds(dm->bot, dm->train_fd);
	for (i = 0; i < dm->ntrain_fd; i++)
		loop_add_fd(dm->loop, dm->train_fd[i], POLLIN, on_training, dm);
}

static void
on_training(void *arg, int fd, short revents)
{
	struct daemon *dm = arg;
	struct diag_list d;

	(void)fd;
	(void)revents;
	diag_list_init(&d);
	if (dm->bot->cv_job != NULL)
		bot_cv_poll(dm->bot);
	if (dm->bot->pending != NULL && bot_reload_poll(dm->bot, &d) == 1) {
		unwatch_training(dm);
		reload_done(dm, dm->reload_why ? dm->reload_why : "reload", &d);
		free(dm->reload_why);
		dm->reload_why = NULL;
	}
	watch_training(dm);
	diag_list_free(&d);
}

/* Reloads, and tells the moderators exactly what is wrong when it fails. */
static void
do_reload(struct daemon *dm, const char *why)
{
	struct diag_list d;
	struct buf md;
	size_t i, shown = 0;
	int rc;

	diag_list_init(&d);
	free(dm->reload_why);
	dm->reload_why = NULL;
	if ((rc = bot_reload(dm->bot, &d)) == 1) {
		log_info("reload (%s): %zu intents loaded; training the model, the previous set "
		         "answers until it is ready",
		         why, dm->bot->pending->nin);
		free(dm->reload_why); /* watch_training's guess */
		dm->reload_why = xstrdup(why);
		dm->reload_t0 = now_ms();
	} else if (rc == 0) {
		reload_done(dm, why, &d);
	} else {
		log_warnx("reload (%s) failed; the previous intents and responses stay in use:", why);
		print_diags(&d, DIAG_ERROR);
		buf_init(&md);
		buf_printf(&md, "**Reload failed** (%s): the bot keeps answering with the previous "
				"intents and responses. Fix these and save again:\n\n```\n",
		    why);
		for (i = 0; i < d.n && shown < 20; i++) {
			char *s;

			if (d.d[i].sev != DIAG_ERROR)
				continue;
			s = diag_format(&d.d[i]);
			buf_printf(&md, "%s\n", s);
			free(s);
			shown++;
		}
		if (d.errors > shown)
			buf_printf(&md, "... and %zu more (run `faqbot lint`)\n", d.errors - shown);
		buf_puts(&md, "```");
		bot_notify(dm->bot, md.data, NULL);
		buf_free(&md);
	}
	diag_list_free(&d);
}

static void
on_reload_timer(void *arg)
{
	struct daemon *dm = arg;

	dm->reload_timer = 0;
	do_reload(dm, "files changed");
}

#define WATCH_DIR_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | \
	IN_DELETE_SELF | IN_MOVE_SELF)
#define WATCH_PARENT_MASK (IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE)

/* (Re)points w's watch at what its path names now; quiet when it is gone for a moment. */
static void
watch_arm(struct daemon *dm, struct watch *w, int quiet)
{
	if (w->wd != -1)
		(void)inotify_rm_watch(dm->inotify, w->wd); /* may be gone already */
	w->wd = inotify_add_watch(dm->inotify, w->path, WATCH_DIR_MASK);
	if (w->wd == -1 && !quiet)
		log_warn("cannot watch %s for changes", w->path);
}

static void
watch_dir(struct daemon *dm, const char *dir)
{
	struct watch *w;
	char *copy, *slash;

	if (dir[0] == '\0' || dm->nwatch == NELEM(dm->watch))
		return;
	w = &dm->watch[dm->nwatch++];
	w->path = dir;
	w->wd = w->wd_parent = -1;
	copy = xstrdup(dir);
	while (strlen(copy) > 1 && copy[strlen(copy) - 1] == '/')
		copy[strlen(copy) - 1] = '\0';
	if ((slash = strrchr(copy, '/')) == NULL) {
		w->parent = xstrdup(".");
		w->base = xstrdup(copy);
	} else {
		w->base = xstrdup(slash + 1);
		slash[slash == copy ? 1 : 0] = '\0';
		w->parent = xstrdup(copy);
	}
	free(copy);
	watch_arm(dm, w, 0);
	if (w->base[0] != '\0' &&
	    (w->wd_parent = inotify_add_watch(dm->inotify, w->parent, WATCH_PARENT_MASK)) == -1)
		log_warn("cannot watch %s for a new %s (a swapped directory will not be seen)",
		    w->parent, w->base);
}

static void
watch_free(struct daemon *dm)
{
	size_t i;

	for (i = 0; i < dm->nwatch; i++) {
		free(dm->watch[i].parent);
		free(dm->watch[i].base);
	}
	dm->nwatch = 0;
}

/* One event: 1 when it calls for a reload. Moves watches whose directory was swapped. */
static int
watch_event(struct daemon *dm, const struct inotify_event *ev)
{
	int relevant = 0;
	size_t i;

	for (i = 0; i < dm->nwatch; i++) {
		struct watch *w = &dm->watch[i];

		if (ev->wd == w->wd_parent && ev->len > 0 && strcmp(ev->name, w->base) == 0) {
			/* The name points to another directory now (or, for a moment, to none). */
			log_info("%s was replaced; watching the new one", w->path);
			watch_arm(dm, w, 1);
			relevant = 1;
		} else if (ev->wd == w->wd && (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF))) {
			/* Moved away or deleted: what the name holds next comes through the parent. */
			watch_arm(dm, w, 1);
			relevant = 1;
		} else if (ev->wd == w->wd && ev->len > 0 && ev->name[0] != '.' &&
		    ev->name[strlen(ev->name) - 1] != '~' &&
		    (strstr(ev->name, ".json") || strstr(ev->name, ".md") || strstr(ev->name, ".tsv"))) {
			/* Editors' swap and backup files do not count. */
			relevant = 1;
		}
	}
	return relevant;
}

static void
on_inotify(void *arg, int fd, short revents)
{
	struct daemon *dm = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	int relevant = 0;

	(void)revents;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		char *p = buf;

		while (p < buf + n) {
			struct inotify_event *ev = (struct inotify_event *)p;

			relevant |= watch_event(dm, ev);
			p += sizeof(*ev) + ev->len;
		}
	}
	if (!relevant)
		return;
	loop_timer_cancel(dm->loop, dm->reload_timer);
	dm->reload_timer = loop_timer(dm->loop, RELOAD_DEBOUNCE_MS, on_reload_timer, dm);
}

static void
stop_all(struct daemon *dm)
{
	if (dm->mx)
		mx_stop(dm->mx);
	if (dm->irc)
		irc_stop(dm->irc);
	bot_save(dm->bot);
	loop_stop(dm->loop);
}

static int healthy(void *arg, struct buf *why);

static void
on_signal(void *arg, int fd, short revents)
{
	struct daemon *dm = arg;
	struct signalfd_siginfo si;

	(void)revents;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			log_info("%s: saving state and stopping",
			    si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			stop_all(dm);
			return;
		case SIGHUP:
			do_reload(dm, "SIGHUP");
			break;
		case SIGUSR1:
		case SIGUSR2: {
			/* Not a way to stop the bot: a status line, and the counters saved. */
			struct buf why;

			buf_init(&why);
			bot_save(dm->bot);
			log_info("%s: status: %zu intents, %zu responses from %s; %s%s; state saved",
			    si.ssi_signo == SIGUSR1 ? "SIGUSR1" : "SIGUSR2", dm->bot->kb->nin,
			    dm->bot->kb->responses.n, dm->bot->kb->origin,
			    healthy(dm, &why) ? "healthy" : "unhealthy: ", why.data ? why.data : "");
			buf_free(&why);
			break;
		}
		default:
			break;
		}
	}
}

static void
on_save_timer(void *arg)
{
	struct daemon *dm = arg;

	if (dm->bot->dirty)
		bot_save(dm->bot);
	loop_timer(dm->loop, SAVE_EVERY_MS, on_save_timer, dm);
}

/*
 * Healthy: every transport connected and syncing, and the bot in the
 * moderator room (without it, safety alerts reach nobody). Else why, in
 * words, for /healthz.
 */
static int
healthy(void *arg, struct buf *why)
{
	struct daemon *dm = arg;
	int ok = 1;

	if (dm->mx && !mx_healthy(dm->mx, why))
		ok = 0;
	if (dm->irc && !irc_healthy(dm->irc)) {
		if (why)
			buf_printf(why, "%sirc: not connected", ok ? "" : "; ");
		ok = 0;
	}
	if (!bot_moderator_room_ok(dm->bot)) {
		if (why)
			buf_printf(why, "%sthe bot is not in the moderator room", ok ? "" : "; ");
		ok = 0;
	}
	return ok;
}

/* Follow-up safety alerts wait for their time. */
static void
on_tick_timer(void *arg)
{
	struct daemon *dm = arg;

	bot_tick(dm->bot);
	loop_timer(dm->loop, TICK_MS, on_tick_timer, dm);
}

/* Loads and checks everything; prints the problems. Returns the kb or NULL. */
static struct kb *
load_all(struct daemon *dm, const char *config, int check)
{
	struct bot_source bs;
	struct diag_list d;
	struct lint_opts lo;
	const char *names[17];
	struct kb *kb = NULL;
	int bad;

	diag_list_init(&d);
	config_defaults(&dm->cfg);
	bad = config_load(&dm->cfg, config, &d) == -1;
	config_check(&dm->cfg, config, date_today_days(), &d);
	intent_set_jit(dm->cfg.jit);
	{
		/* The taught messages of the state directory are learnt from too. */
		char *state = config_state_dir(&dm->cfg);

		bot_source_init(&bs, &dm->cfg, state);
		if (check && dm->cfg.model) {
			/* Nothing is trained for a check; the trainer must be there to run. */
			char *tp = trainer_path();

			bs.src.no_model = 1;
			if (access(tp, X_OK) == -1)
				diag_add(&d, DIAG_WARNING, config, 0, 0,
				         "the trainer %s cannot be run (%s): the bot would answer with "
				         "the rules alone (model.enabled: false says that is meant)",
				         tp, strerror(errno));
			free(tp);
		}
		if (!bad)
			kb = kb_load(&bs.src, &d);
		if (kb != NULL && !check)
			kb_model_wait(kb, &d);
		bot_source_free(&bs);
		free(state);
	}
	if (kb && check) {
		memset(&lo, 0, sizeof(lo));
		bot_match_opts(&dm->cfg, NULL, &lo.match, names, NELEM(names));
		lo.max_grade = dm->cfg.max_grade;
		lo.allow_drafts = dm->cfg.allow_drafts;
		lo.drafts_are_warnings = !dm->cfg.allow_drafts;
		lo.today = date_today_days();
		lint_kb(kb, &lo, &d);
	}
	if (check) {
		diag_list_sort(&d);
		diag_print(&d, stdout, DIAG_WARNING);
		if (d.errors == 0)
			printf("configuration OK%s\n",
			    d.warnings ? " (with the warnings above)" : "");
	} else {
		print_diags(&d, DIAG_WARNING);
	}
	if (d.errors) {
		kb_free(kb);
		kb = NULL;
	}
	diag_list_free(&d);
	return kb;
}

int
daemon_main(const char *config, int check)
{
	struct daemon dm;
	struct kb *kb;
	sigset_t mask;
	char *state;

	memset(&dm, 0, sizeof(dm));
	dm.sigfd = dm.inotify = -1;
	kb = load_all(&dm, config, check);
	if (check || kb == NULL) {
		int rc = kb ? 0 : 1;

		kb_free(kb);
		config_free(&dm.cfg);
		return rc;
	}
	log_init((enum log_level)dm.cfg.log_level, dm.cfg.log_chat_text);
	if ((dm.cfg.transports & CFG_TRANSPORT_MATRIX) && dm.cfg.mx_homeserver[0] == '\0') {
		log_warnx("matrix.homeserver is not set");
		kb_free(kb);
		config_free(&dm.cfg);
		return 1;
	}
	srand((unsigned)now_ns() ^ (unsigned)getpid());
	state = config_state_dir(&dm.cfg);
	if ((dm.bot = bot_new(&dm.cfg, kb, state)) == NULL) {
		free(state);
		kb_free(kb);
		config_free(&dm.cfg);
		return 1;
	}
	if ((dm.loop = loop_new()) == NULL) {
		log_warnx("cannot start libcurl");
		bot_free(dm.bot);
		free(state);
		config_free(&dm.cfg);
		return 1;
	}
	/* Signals arrive as a descriptor, so a long-poll never delays them. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((dm.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal("signalfd");
	loop_add_fd(dm.loop, dm.sigfd, POLLIN, on_signal, &dm);
	dm.bot->on_pending = watch_training;
	dm.bot->pending_arg = &dm;
	bot_cv_start(dm.bot);
	if (dm.cfg.watch_files && (dm.cfg.intents_dir[0] || dm.cfg.responses_dir[0])) {
		if ((dm.inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1) {
			log_warn("inotify");
		} else {
			watch_dir(&dm, dm.cfg.intents_dir);
			watch_dir(&dm, dm.cfg.responses_dir);
			if (dm.cfg.labelled_dir[0] != '\0') {
				watch_dir(&dm, dm.cfg.labelled_dir);
			} else if (dm.cfg.intents_dir[0] != '\0' &&
			    (dm.labelled = kb_beside(dm.cfg.intents_dir, "labelled")) != NULL) {
				watch_dir(&dm, dm.labelled); /* watched through its parent if not there yet */
			}
			loop_add_fd(dm.loop, dm.inotify, POLLIN, on_inotify, &dm);
		}
	}
	log_info("faqbot %s starting: %zu intents, %zu responses from %s; state in %s",
	    FAQBOT_VERSION, kb->nin, kb->responses.n, kb->origin, state);
	if (dm.cfg.transports & CFG_TRANSPORT_MATRIX) {
		dm.mx = mx_new(dm.loop, &dm.cfg, dm.bot, state);
		bot_add_transport(dm.bot, mx_transport(dm.mx));
	}
	if (dm.cfg.transports & CFG_TRANSPORT_IRC) {
		dm.irc = irc_new(dm.loop, &dm.cfg, dm.bot);
		bot_add_transport(dm.bot, irc_transport(dm.irc));
	}
	if (dm.cfg.metrics_listen[0])
		dm.metrics = metrics_start(dm.loop, dm.cfg.metrics_listen, dm.bot->stats, healthy, &dm);
	loop_timer(dm.loop, SAVE_EVERY_MS, on_save_timer, &dm);
	loop_timer(dm.loop, TICK_MS, on_tick_timer, &dm);
	if (dm.mx)
		mx_start(dm.mx);
	if (dm.irc)
		irc_start(dm.irc);
	loop_run(dm.loop);

	if (dm.mx && mx_failed(dm.mx))
		dm.exit_code = 1;
	stop_all(&dm);
	metrics_stop(dm.metrics);
	mx_free(dm.mx);
	irc_free(dm.irc);
	unwatch_training(&dm);
	free(dm.reload_why);
	bot_free(dm.bot);
	loop_free(dm.loop);
	if (dm.sigfd != -1)
		close(dm.sigfd);
	if (dm.inotify != -1)
		close(dm.inotify);
	watch_free(&dm);
	free(dm.labelled);
	free(state);
	config_free(&dm.cfg);
	log_info("stopped");
	return dm.exit_code;
}
