/*
 * The event loop over curl_multi_poll(); see loop.h.
 */
#include "loop.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "log.h"
#include "util.h"

#define LOOP_MAX_FDS 32

struct loop_fd {
	int fd;			/* the descriptor, or -1 for a free slot */
	short events;		/* POLLIN / POLLOUT */
	loop_fd_fn fn;		/* the callback */
	void *arg;		/* its argument */
};

struct loop_timer {
	uint64_t id;		/* never 0 */
	uint64_t when;		/* monotonic ms */
	loop_timer_fn fn;	/* the callback */
	void *arg;		/* its argument */
};

struct loop {
	CURLM *multi;			/* every HTTP transfer */
	struct loop_fd fds[LOOP_MAX_FDS]; /* other descriptors */
	struct loop_timer *timers;	/* unsorted; few */
	size_t ntimers;
	size_t captimers;
	uint64_t next_id;		/* for timers */
	int stop;			/* loop_stop() was called */
};

struct loop *
loop_new(void)
{
	struct loop *l;
	size_t i;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return NULL;
	l = xcalloc(1, sizeof(*l));
	if ((l->multi = curl_multi_init()) == NULL) {
		free(l);
		return NULL;
	}
	for (i = 0; i < LOOP_MAX_FDS; i++)
		l->fds[i].fd = -1;
	l->next_id = 1;
	return l;
}

void
loop_free(struct loop *l)
{
	if (l == NULL)
		return;
	curl_multi_cleanup(l->multi);
	free(l->timers);
	free(l);
	curl_global_cleanup();
}

CURLM *
loop_multi(struct loop *l)
{
	return l->multi;
}

void
loop_add_fd(struct loop *l, int fd, short events, loop_fd_fn fn, void *arg)
{
	size_t i, freeslot = LOOP_MAX_FDS;

	for (i = 0; i < LOOP_MAX_FDS; i++) {
		if (l->fds[i].fd == fd) {
			freeslot = i;
			break;
		}
		if (l->fds[i].fd == -1 && freeslot == LOOP_MAX_FDS)
			freeslot = i;
	}
	if (freeslot == LOOP_MAX_FDS)
		fatalx("loop: more than %d descriptors", LOOP_MAX_FDS);
	l->fds[freeslot].fd = fd;
	l->fds[freeslot].events = events;
	l->fds[freeslot].fn = fn;
	l->fds[freeslot].arg = arg;
}

void
loop_del_fd(struct loop *l, int fd)
{
	size_t i;

	for (i = 0; i < LOOP_MAX_FDS; i++)
		if (l->fds[i].fd == fd)
			l->fds[i].fd = -1;
}

uint64_t
loop_timer(struct loop *l, uint64_t delay_ms, loop_timer_fn fn, void *arg)
{
	struct loop_timer *t;

	if (l->ntimers == l->captimers) {
		l->captimers = l->captimers ? l->captimers * 2 : 16;
		l->timers = xreallocarray(l->timers, l->captimers, sizeof(*l->timers));
	}
	t = &l->timers[l->ntimers++];
	t->id = l->next_id++;
	t->when = now_ms() + delay_ms;
	t->fn = fn;
	t->arg = arg;
	return t->id;
}

void
loop_timer_cancel(struct loop *l, uint64_t id)
{
	size_t i;

	if (id == 0)
		return;
	for (i = 0; i < l->ntimers; i++) {
		if (l->timers[i].id == id) {
			l->timers[i] = l->timers[--l->ntimers];
			return;
		}
	}
}

/* Runs the expired timers; a timer may add or cancel others. */
static void
run_timers(struct loop *l)
{
	uint64_t now = now_ms();
	size_t i;

	for (;;) {
		struct loop_timer t;

		for (i = 0; i < l->ntimers; i++)
			if (l->timers[i].when <= now)
				break;
		if (i == l->ntimers)
			return;
		t = l->timers[i];
		l->timers[i] = l->timers[--l->ntimers];
		t.fn(t.arg);
		if (l->stop)
			return;
	}
}

static long
next_timer_ms(const struct loop *l, long max)
{
	uint64_t now = now_ms();
	long best = max;
	size_t i;

	for (i = 0; i < l->ntimers; i++) {
		long d = l->timers[i].when <= now ? 0 : (long)(l->timers[i].when - now);

		if (d < best)
			best = d;
	}
	return best;
}

static void
run_curl(struct loop *l)
{
	struct loop_easy *e;
	CURLMsg *m;
	int running, left;

	curl_multi_perform(l->multi, &running);
	while ((m = curl_multi_info_read(l->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		e = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&e);
		if (e != NULL && e->done != NULL)
			e->done(e, m->data.result);
	}
}

void
loop_once(struct loop *l, long max_wait_ms)
{
	struct curl_waitfd w[LOOP_MAX_FDS];
	unsigned n = 0, i, k;
	long wait = next_timer_ms(l, max_wait_ms);

	for (i = 0; i < LOOP_MAX_FDS; i++) {
		if (l->fds[i].fd < 0)
			continue;
		w[n].fd = l->fds[i].fd;
		w[n].events = (short)((l->fds[i].events & POLLIN ? CURL_WAIT_POLLIN : 0) |
		    (l->fds[i].events & POLLOUT ? CURL_WAIT_POLLOUT : 0));
		w[n].revents = 0;
		n++;
	}
	if (wait < 0)
		wait = 0;
	curl_multi_poll(l->multi, w, n, (int)(wait > 3600000 ? 3600000 : wait), NULL);
	for (k = 0; k < n && !l->stop; k++) {
		short re = 0;

		if (w[k].revents == 0)
			continue;
		if (w[k].revents & CURL_WAIT_POLLIN)
			re |= POLLIN;
		if (w[k].revents & CURL_WAIT_POLLOUT)
			re |= POLLOUT;
		if (w[k].revents & CURL_WAIT_POLLPRI)
			re |= POLLPRI;
		for (i = 0; i < LOOP_MAX_FDS; i++) {
			if (l->fds[i].fd == w[k].fd) {
				l->fds[i].fn(l->fds[i].arg, w[k].fd, re);
				break;
			}
		}
	}
	if (!l->stop)
		run_curl(l);
	if (!l->stop)
		run_timers(l);
}

void
loop_run(struct loop *l)
{
	l->stop = 0;
	while (!l->stop)
		loop_once(l, 60000);
}

void
loop_stop(struct loop *l)
{
	l->stop = 1;
	curl_multi_wakeup(l->multi);
}

int
loop_stopping(const struct loop *l)
{
	return l->stop;
}

uint64_t
loop_cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)ru.ru_utime.tv_sec * 1000 + (uint64_t)ru.ru_utime.tv_usec / 1000 +
	    (uint64_t)ru.ru_stime.tv_sec * 1000 + (uint64_t)ru.ru_stime.tv_usec / 1000;
}
