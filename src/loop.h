/*
 * The event loop: one thread, one loop (Redis's ae.c is the model). It owns
 * a libcurl multi handle, so that HTTP long-polls and sends run without
 * blocking, and waits on them together with other file descriptors (the IRC
 * socket, signals, inotify, the metrics server) in curl_multi_poll(), plus
 * timers. Nothing in it blocks, so shutdown is never held up by a long-poll.
 */
#ifndef FAQBOT_LOOP_H
#define FAQBOT_LOOP_H

#include <stdint.h>

#include <curl/curl.h>

struct loop;

/* Called when fd is ready; revents as poll(2). */
typedef void (*loop_fd_fn)(void *arg, int fd, short revents);
/* Called when a timer expires. */
typedef void (*loop_timer_fn)(void *arg);

/*
 * Every easy handle added to the loop's multi handle carries, as its
 * CURLOPT_PRIVATE, a pointer to a struct whose first member is this: the
 * loop calls done() when the transfer ends (http.c builds on it).
 */
struct loop_easy {
	void (*done)(struct loop_easy *e, CURLcode rc);
};

/* Returns a new loop; free with loop_free(). NULL if curl cannot start. */
struct loop *loop_new(void);
void loop_free(struct loop *l);

/* The multi handle to add easy handles to. */
CURLM *loop_multi(struct loop *l);

/* Watches fd for events (POLLIN, POLLOUT); replaces an earlier watch of fd. */
void loop_add_fd(struct loop *l, int fd, short events, loop_fd_fn fn, void *arg);
void loop_del_fd(struct loop *l, int fd);

/* Calls fn(arg) after delay_ms; returns an id for loop_timer_cancel (never 0). */
uint64_t loop_timer(struct loop *l, uint64_t delay_ms, loop_timer_fn fn, void *arg);
/* Cancels a timer; unknown or 0 ids are ignored. */
void loop_timer_cancel(struct loop *l, uint64_t id);

/* Runs one iteration, waiting at most max_wait_ms (or until the next timer). */
void loop_once(struct loop *l, long max_wait_ms);
/* Runs until loop_stop(). */
void loop_run(struct loop *l);
/* Makes loop_run() return after the current iteration; safe from callbacks. */
void loop_stop(struct loop *l);
/* Is the loop stopping? */
int loop_stopping(const struct loop *l);

/* Milliseconds of CPU this process used (for the idle benchmark). */
uint64_t loop_cpu_ms(void);

#endif
