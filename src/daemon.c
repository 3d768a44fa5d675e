/*
 * The daemon behind `faqbot run`; see daemon.h. It loads and checks the
 * configuration and the knowledge base, starts the transports, the metrics
 * endpoint and the file watcher on one event loop, and handles signals:
 * SIGTERM/SIGINT save everything and exit 0 at once, even in the middle of
 * a long-poll; SIGHUP reloads intents and responses, keeping the old set on
 * any error.
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
#include "transport/irc.h"
#include "transport/matrix.h"
#include "util.h"

#define RELOAD_DEBOUNCE_MS 500	/* editors write files in several steps */
#define SAVE_EVERY_MS 60000	/* counters saved at least this often */
#define TICK_MS 1000		/* how often what waits for a time is looked at */

struct daemon {
	struct config cfg;
	struct loop *loop;
	struct bot *bot;
	struct mx *mx;
	struct irc *irc;
	struct metrics *metrics;
	int sigfd;
	int inotify;
	uint64_t reload_timer;
	int exit_code;
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

/* Reloads, and tells the moderators exactly what is wrong when it fails. */
static void
do_reload(struct daemon *dm, const char *why)
{
	struct diag_list d;
	struct buf md;
	size_t i, shown = 0;

	diag_list_init(&d);
	if (bot_reload(dm->bot, &d) == 0) {
		log_info("reloaded (%s): %zu intents, %zu responses", why, dm->bot->kb->nin,
		    dm->bot->kb->responses.n);
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

			/* Editors' swap and backup files do not count. */
			if (ev->len > 0 && ev->name[0] != '.' && ev->name[strlen(ev->name) - 1] != '~' &&
			    (strstr(ev->name, ".json") || strstr(ev->name, ".md")))
				relevant = 1;
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

static void
watch_dir(struct daemon *dm, const char *dir)
{
	if (dir[0] == '\0')
		return;
	if (inotify_add_watch(dm->inotify, dir,
		IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE) == -1)
		log_warn("cannot watch %s for changes", dir);
}

/* Loads and checks everything; prints the problems. Returns the kb or NULL. */
static struct kb *
load_all(struct daemon *dm, const char *config, int check)
{
	struct kb_source src = {0};
	struct diag_list d;
	struct lint_opts lo;
	const char *ip[1], *rp[1], *names[17];
	struct kb *kb = NULL;
	int bad;

	diag_list_init(&d);
	config_defaults(&dm->cfg);
	bad = config_load(&dm->cfg, config, &d) == -1;
	config_check(&dm->cfg, config, date_today_days(), &d);
	intent_set_jit(dm->cfg.jit);
	if (dm->cfg.intents_dir[0]) {
		ip[0] = dm->cfg.intents_dir;
		src.intent_paths = ip;
		src.nintent = 1;
	}
	if (dm->cfg.responses_dir[0]) {
		rp[0] = dm->cfg.responses_dir;
		src.response_paths = rp;
		src.nresponse = 1;
	}
	if (!bad)
		kb = kb_load(&src, &d);
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
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((dm.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal("signalfd");
	loop_add_fd(dm.loop, dm.sigfd, POLLIN, on_signal, &dm);
	if (dm.cfg.watch_files && (dm.cfg.intents_dir[0] || dm.cfg.responses_dir[0])) {
		if ((dm.inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1) {
			log_warn("inotify");
		} else {
			watch_dir(&dm, dm.cfg.intents_dir);
			watch_dir(&dm, dm.cfg.responses_dir);
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
	bot_free(dm.bot);
	loop_free(dm.loop);
	if (dm.sigfd != -1)
		close(dm.sigfd);
	if (dm.inotify != -1)
		close(dm.inotify);
	free(state);
	config_free(&dm.cfg);
	log_info("stopped");
	return dm.exit_code;
}
