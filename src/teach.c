/*
 * What moderators teach the bot. See teach.h.
 */
#include "teach.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "unanswered.h"
#include "util.h"

#define TEACH_FILE     "taught.tsv"
#define TEACH_MAX_FILE (16u << 20) /* a taught file larger than this is not read */
#define TEACH_MAX_TEXT 2000        /* bytes of a message kept */

struct teach {
	char *path;                         /* <state_dir>/taught.tsv */
	struct teach_item item[TEACH_KEEP]; /* a ring: the oldest is overwritten */
	size_t next;                        /* where the next one goes */
	size_t n;                           /* how many are kept */
};

struct teach *
teach_new(const char *state_dir)
{
	struct teach *t = xcalloc(1, sizeof(*t));

	t->path = xasprintf("%s/%s", state_dir, TEACH_FILE);
	return t;
}

static void
item_clear(struct teach_item *it)
{
	free(it->event_id);
	free(it->answer_id);
	free(it->room);
	free(it->intent);
	free(it->text);
	memset(it, 0, sizeof(*it));
}

void
teach_free(struct teach *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < TEACH_KEEP; i++)
		item_clear(&t->item[i]);
	free(t->path);
	free(t);
}

const char *
teach_path(const struct teach *t)
{
	return t->path;
}

/* text redacted, on one line (no TAB, no line break), and not too long. */
static char *
one_line(const char *text)
{
	char *r = unanswered_redact(text), *p;
	size_t len = strlen(r);

	for (p = r; *p; p++)
		if (*p == '\t' || *p == '\n' || *p == '\r')
			*p = ' ';
	if (len > TEACH_MAX_TEXT) {
		/* Cut before a character the cap would split. */
		len = TEACH_MAX_TEXT;
		while (len > 0 && ((unsigned char)r[len] & 0xc0) == 0x80)
			len--;
		r[len] = '\0';
	}
	return r;
}

void
teach_remember(struct teach *t, const char *event_id, const char *room, const char *text,
               const char *intent, int by, int flagged)
{
	struct teach_item *it = &t->item[t->next];

	item_clear(it);
	it->event_id = event_id ? xstrdup(event_id) : NULL;
	it->room = xstrdup(room ? room : "");
	it->intent = intent ? xstrdup(intent) : NULL;
	it->by = by;
	it->flagged = flagged;
	it->text = one_line(text);
	it->when = now_wall();
	t->next = (t->next + 1) % TEACH_KEEP;
	if (t->n < TEACH_KEEP)
		t->n++;
}

void
teach_answered(struct teach *t, const char *event_id, const char *answer_id)
{
	size_t i;

	for (i = 0; i < TEACH_KEEP; i++) {
		struct teach_item *it = &t->item[i];

		if (it->event_id && strcmp(it->event_id, event_id) == 0) {
			free(it->answer_id);
			it->answer_id = xstrdup(answer_id);
			return;
		}
	}
}

/* The event id in id: a bare "$..." or the last "$..." part of a link. Caller frees. */
static char *
event_of(const char *id)
{
	struct buf b;
	const char *p;
	char *dec, *ev, *end;
	int h, l;

	buf_init(&b);
	for (p = id; *p; p++) {
		if (*p == '%' && (h = util_hex_value(p[1])) >= 0 && (l = util_hex_value(p[2])) >= 0) {
			buf_putc(&b, (char)(h * 16 + l));
			p += 2;
		} else {
			buf_putc(&b, *p);
		}
	}
	dec = buf_steal(&b);
	if (dec == NULL)
		return xstrdup("");
	ev = strrchr(dec, '$');
	if (ev == NULL) {
		free(dec);
		return xstrdup(id);
	}
	ev = xstrdup(ev);
	if ((end = strpbrk(ev, "?/ \t>")) != NULL)
		*end = '\0';
	free(dec);
	return ev;
}

const struct teach_item *
teach_find(const struct teach *t, const char *id)
{
	char *ev = event_of(id);
	const struct teach_item *found = NULL;
	size_t i;

	for (i = 0; ev[0] && i < TEACH_KEEP && found == NULL; i++) {
		const struct teach_item *it = &t->item[i];

		if ((it->event_id && strcmp(it->event_id, ev) == 0) ||
		    (it->answer_id && strcmp(it->answer_id, ev) == 0))
			found = it;
	}
	free(ev);
	return found;
}

int
teach_store(struct teach *t, const char *intent, const char *text, const char *moderator,
            int64_t when)
{
	char day[32] = "", *line = one_line(text), *who = one_line(moderator ? moderator : "");
	struct buf b;
	time_t tt = (time_t)when;
	struct tm tm;
	int fd, rc = -1, saved;

	if (gmtime_r(&tt, &tm) != NULL)
		strftime(day, sizeof(day), "%Y-%m-%d %H:%M UTC", &tm);
	buf_init(&b);
	if (access(t->path, F_OK) == -1)
		buf_puts(&b, "intent\tmessage\n");
	buf_printf(&b, "# taught by %s on %s\n%s\t%s\n", who, day, intent ? intent : "null", line);
	fd = open(t->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd != -1) {
		if (write(fd, b.data, b.len) == (ssize_t)b.len && fsync(fd) == 0)
			rc = 0;
		saved = errno;
		close(fd);
		errno = saved;
	}
	buf_free(&b);
	free(line);
	free(who);
	return rc;
}

/* Calls fn for every labelled line of the taught file. */
static void
each_line(const struct teach *t, void (*fn)(void *arg, const char *intent, const char *text),
          void *arg)
{
	size_t len;
	char *data = file_read(t->path, TEACH_MAX_FILE, &len), *p, *nl, *tab;
	int first = 1;

	if (data == NULL)
		return;
	for (p = data; p < data + len; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(data + len - p))) == NULL)
			nl = data + len;
		*nl = '\0';
		if (first) {
			first = 0;
			continue; /* the header */
		}
		if (*p == '#' || (tab = strchr(p, '\t')) == NULL)
			continue;
		*tab = '\0';
		fn(arg, p, tab + 1);
	}
	free(data);
}

static void
count_one(void *arg, const char *intent, const char *text)
{
	(void)intent;
	(void)text;
	(*(size_t *)arg)++;
}

size_t
teach_count(const struct teach *t)
{
	size_t n = 0;

	each_line(t, count_one, &n);
	return n;
}

struct safety_each {
	void (*fn)(void *arg, const char *intent, const char *text);
	void *arg;
};

static void
safety_one(void *arg, const char *intent, const char *text)
{
	struct safety_each *se = arg;

	if (strncmp(intent, "safety.", 7) == 0)
		se->fn(se->arg, intent, text);
}

void
teach_each_safety(const struct teach *t,
                  void (*fn)(void *arg, const char *intent, const char *text), void *arg)
{
	struct safety_each se = {fn, arg};

	each_line(t, safety_one, &se);
}

int
teach_main(int argc, char **argv)
{
	static const struct option lo[] = {{"config", required_argument, NULL, 'c'},
	                                   {"state", required_argument, NULL, 's'},
	                                   {"help", no_argument, NULL, 'h'},
	                                   {NULL, 0, NULL, 0}};
	struct config cfg;
	struct diag_list d;
	const char *config = NULL, *state = NULL;
	char *dir, *path, *data;
	size_t len;
	int ch, rc = 1;

	while ((ch = getopt_long(argc, argv, "c:s:h", lo, NULL)) != -1) {
		if (ch == 'c') {
			config = optarg;
		} else if (ch == 's') {
			state = optarg;
		} else {
			printf("usage: faqbot taught [-c FILE] [--state DIR]\n\n"
			       "Prints the messages moderators taught the bot (`!faq teach`, `!faq "
			       "wrong`),\n"
			       "as the labelled-file TSV of docs/intents.md, each after a comment "
			       "line\n"
			       "saying who taught it and when: ready to review, and to copy into "
			       "labelled/\n"
			       "once reviewed like any other content change.\n\n"
			       "options:\n"
			       "  -c, --config FILE    the configuration (for its state directory)\n"
			       "      --state DIR      the state directory (default: the "
			       "configuration's)\n"
			       "  -h, --help           this help\n");
			return ch == 'h' ? 0 : 2;
		}
	}
	config_defaults(&cfg);
	if (config != NULL) {
		diag_list_init(&d);
		if (config_load(&cfg, config, &d) == -1) {
			diag_print(&d, stderr, DIAG_WARNING);
			diag_list_free(&d);
			config_free(&cfg);
			return 1;
		}
		diag_list_free(&d);
	}
	dir = state ? xstrdup(state) : config_state_dir(&cfg);
	path = xasprintf("%s/%s", dir, TEACH_FILE);
	data = file_read(path, TEACH_MAX_FILE, &len);
	if (data == NULL && errno == ENOENT) {
		fprintf(stderr, "faqbot taught: nothing taught yet (no %s)\n", path);
		rc = 0;
	} else if (data == NULL) {
		fprintf(stderr, "faqbot taught: %s: %s\n", path, strerror(errno));
	} else if (fwrite(data, 1, len, stdout) == len && fflush(stdout) == 0) {
		rc = 0;
	}
	free(data);
	free(path);
	free(dir);
	config_free(&cfg);
	return rc;
}
