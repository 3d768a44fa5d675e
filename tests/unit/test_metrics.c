/*
 * Unit tests for metrics.c: the server is started on a free loopback port
 * inside an event loop, and fetched with libcurl easy handles added to the
 * same loop's multi handle, so that one thread drives both ends. A table
 * of requests checks statuses, bodies and content types (GET, HEAD, other
 * methods, unknown paths, /healthz both ways); another table checks that
 * every address that is not loopback, or is malformed, is refused. The
 * server must create no thread, and an idle half-open connection must not
 * hold up other requests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "helpers.h"
#include "loop.h"
#include "metrics.h"
#include "stats.h"
#include "util.h"

/* One request in flight on the loop. */
struct fetch {
	struct loop_easy le; /* first: the loop's completion hook */
	CURL *easy;          /* the transfer */
	struct buf body;     /* what came back */
	char ctype[128];     /* Content-Type */
	char allow[64];      /* Allow */
	long status;         /* HTTP status */
	CURLcode rc;         /* how it ended */
	int done;            /* the loop said it ended */
};

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct fetch *f = arg;

	buf_append(&f->body, p, size * n);
	return size * n;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct fetch *f = arg;
	size_t len = size * n;
	char *dst = NULL;
	size_t max = 0, k = 0, i;

	if (len > 13 && strncasecmp(p, "Content-Type:", 13) == 0) {
		dst = f->ctype;
		max = sizeof(f->ctype);
		i = 13;
	} else if (len > 6 && strncasecmp(p, "Allow:", 6) == 0) {
		dst = f->allow;
		max = sizeof(f->allow);
		i = 6;
	} else {
		return len;
	}
	while (i < len && p[i] == ' ')
		i++;
	for (; i < len && p[i] != '\r' && p[i] != '\n' && k + 1 < max; i++)
		dst[k++] = p[i];
	dst[k] = '\0';
	return len;
}

static void
on_done(struct loop_easy *e, CURLcode rc)
{
	struct fetch *f = (struct fetch *)e;

	f->rc = rc;
	f->done = 1;
}

/*
 * Runs method on url through the loop (loop_once in a bounded loop) and
 * fills f. Fails the test if it takes more than 10 s.
 */
static void
fetch(struct loop *l, const char *method, const char *url, struct fetch *f)
{
	double t0 = seconds_now();

	memset(f, 0, sizeof(*f));
	buf_init(&f->body);
	f->le.done = on_done;
	f->easy = curl_easy_init();
	assert_non_null(f->easy);
	curl_easy_setopt(f->easy, CURLOPT_URL, url);
	curl_easy_setopt(f->easy, CURLOPT_PRIVATE, (char *)f);
	curl_easy_setopt(f->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(f->easy, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(f->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(f->easy, CURLOPT_HEADERDATA, f);
	curl_easy_setopt(f->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(f->easy, CURLOPT_TIMEOUT_MS, 8000L);
	curl_easy_setopt(f->easy, CURLOPT_NOPROXY, "*");
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(f->easy, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "POST") == 0)
		curl_easy_setopt(f->easy, CURLOPT_POSTFIELDS, "x=1");
	else if (strcmp(method, "GET") != 0)
		curl_easy_setopt(f->easy, CURLOPT_CUSTOMREQUEST, method);
	assert_int_equal(curl_multi_add_handle(loop_multi(l), f->easy), CURLM_OK);
	while (!f->done && seconds_now() - t0 < 10.0)
		loop_once(l, 100);
	curl_multi_remove_handle(loop_multi(l), f->easy);
	if (f->done && f->rc == CURLE_OK)
		curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &f->status);
	curl_easy_cleanup(f->easy);
	if (f->body.data == NULL)
		buf_puts(&f->body, "");
	if (!f->done)
		fail_msg("%s %s did not finish within 10 s", method, url);
}

/* A port nobody listens on at the moment (bound, read, released). */
static unsigned
free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/* Threads of this process, from /proc. */
static int
thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int
health(void *arg, struct buf *why)
{
	if (*(int *)arg == 0)
		buf_puts(why, "matrix: cannot reach the homeserver for 12 s");
	return *(int *)arg;
}

struct req_case {
	const char *method;
	const char *path;
	int healthy;       /* what health() says */
	long status;       /* wanted */
	const char *body;  /* wanted in the body ("" for an empty body), or NULL */
	const char *ctype; /* wanted prefix of Content-Type, or NULL */
};

static const struct req_case req_cases[] = {
    {"GET", "/metrics", 1, 200, "faqbot_answers_total{intent=\"kidney.cure\"} 2\n",
     "text/plain; version=0.0.4"},
    {"GET", "/metrics", 0, 200, "\nfaqbot_up 1\n", "text/plain; version=0.0.4"},
    {"GET", "/healthz", 1, 200, "ok", "text/plain"},
    {"GET", "/healthz", 0, 503, "unhealthy: matrix: cannot reach the homeserver for 12 s\n",
     "text/plain"},
    {"HEAD", "/metrics", 1, 200, "", "text/plain; version=0.0.4"},
    {"HEAD", "/healthz", 0, 503, "", NULL},
    {"GET", "/", 1, 404, NULL, NULL},
    {"GET", "/metrics/", 1, 404, NULL, NULL},
    {"GET", "/metricsx", 1, 404, NULL, NULL},
    {"GET", "/nope?x=1", 1, 404, NULL, NULL},
    {"POST", "/metrics", 1, 405, NULL, NULL},
    {"DELETE", "/healthz", 1, 405, NULL, NULL},
    {"PUT", "/nope", 1, 405, NULL, NULL},
    {"OPTIONS", "/metrics", 1, 405, NULL, NULL},
    {"GET", "/healthz?verbose=1", 1, 200, "ok", NULL},
};

static void
test_serve(void **state)
{
	struct loop *l = loop_new();
	struct stats *st = stats_new();
	struct metrics *m;
	struct fetch f;
	char listen[64], url[128];
	int healthy = 1, before, i;
	unsigned port = free_port();

	(void)state;
	assert_non_null(l);
	stats_answer(st, "kidney.cure");
	stats_answer(st, "kidney.cure");
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	before = thread_count();
	m = metrics_start(l, listen, st, health, &healthy);
	assert_non_null(m);
	/* No thread of its own: libmicrohttpd runs from the loop. */
	assert_int_equal(thread_count(), before);

	check_begin();
	for (i = 0; i < (int)NELEM(req_cases); i++) {
		const struct req_case *c = &req_cases[i];

		healthy = c->healthy;
		snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, c->path);
		fetch(l, c->method, url, &f);
		CHECK(f.rc == CURLE_OK, "%s %s: %s", c->method, c->path, curl_easy_strerror(f.rc));
		CHECK(f.status == c->status, "%s %s: status %ld, want %ld", c->method, c->path,
		      f.status, c->status);
		if (c->body != NULL && c->body[0] == '\0')
			CHECK(f.body.len == 0, "%s %s: body should be empty", c->method, c->path);
		else if (c->body != NULL)
			CHECK(strstr(f.body.data, c->body) != NULL, "%s %s: body lacks \"%s\":\n%s",
			      c->method, c->path, c->body, f.body.data);
		if (c->ctype != NULL)
			CHECK(strncmp(f.ctype, c->ctype, strlen(c->ctype)) == 0,
			      "%s %s: Content-Type \"%s\"", c->method, c->path, f.ctype);
		if (c->status == 405)
			CHECK(strcmp(f.allow, "GET, HEAD") == 0, "%s %s: Allow \"%s\"", c->method,
			      c->path, f.allow);
		buf_free(&f.body);
	}
	/* The counters are read at each scrape. */
	stats_unanswered(st);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", port);
	fetch(l, "GET", url, &f);
	CHECK(strstr(f.body.data, "\nfaqbot_unanswered_total 1\n") != NULL, "live counters");
	buf_free(&f.body);
	CHECK(thread_count() == before, "still no thread after serving");
	CHECK_END();

	/* The port is taken now: a second server is refused. */
	assert_null(metrics_start(l, listen, st, health, &healthy));
	metrics_stop(m);
	/* ... and free again once stopped. */
	m = metrics_start(l, listen, st, NULL, NULL);
	assert_non_null(m);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/healthz", port);
	fetch(l, "GET", url, &f);
	assert_int_equal(f.status, 200); /* no health function: healthy */
	buf_free(&f.body);
	metrics_stop(m);
	metrics_stop(NULL);
	stats_free(st);
	loop_free(l);
}

/*
 * A client that connects and says half a request must not block the
 * others, and is disconnected when it has been idle for the timeout.
 */
static void
test_idle_client(void **state)
{
	struct loop *l = loop_new();
	struct stats *st = stats_new();
	struct sockaddr_in sa;
	struct metrics *m;
	struct fetch f;
	char listen[64], url[128];
	unsigned port = free_port();
	double t0, t;
	int fd, i;

	(void)state;
	snprintf(listen, sizeof(listen), "127.0.0.2:%u", port); /* any of 127.0.0.0/8 */
	m = metrics_start(l, listen, st, NULL, NULL);
	assert_non_null(m);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, "127.0.0.2", &sa.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, "GET /met", 8), 8);
	for (i = 0; i < 5; i++)
		loop_once(l, 10);
	snprintf(url, sizeof(url), "http://127.0.0.2:%u/metrics", port);
	fetch(l, "GET", url, &f);
	assert_int_equal(f.status, 200);
	buf_free(&f.body);
	/*
	 * Nothing more comes on the idle connection, so only the loop timer
	 * set from MHD_get_timeout() can let MHD close it (after 10 s).
	 */
	t0 = seconds_now();
	for (;;) {
		char c;
		ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK))
			break;
		if (seconds_now() - t0 > 20.0)
			fail_msg("the idle connection was not closed within 20 s");
		loop_once(l, 1000);
	}
	t = seconds_now() - t0;
	print_message("idle connection closed after %.1f s\n", t);
	assert_true(t > 5.0);
	close(fd);
	metrics_stop(m);
	stats_free(st);
	loop_free(l);
}

/* IPv6 loopback, when this host has it. */
static void
test_ipv6(void **state)
{
	struct loop *l;
	struct stats *st;
	struct sockaddr_in6 sa;
	struct metrics *m;
	struct fetch f;
	char listen[64], url[128];
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	socklen_t len = sizeof(sa);
	unsigned port;

	(void)state;
	memset(&sa, 0, sizeof(sa));
	sa.sin6_family = AF_INET6;
	sa.sin6_addr = in6addr_loopback;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (fd >= 0)
			close(fd);
		skip();
	}
	getsockname(fd, (struct sockaddr *)&sa, &len);
	port = ntohs(sa.sin6_port);
	close(fd);
	l = loop_new();
	st = stats_new();
	snprintf(listen, sizeof(listen), "[::1]:%u", port);
	m = metrics_start(l, listen, st, NULL, NULL);
	assert_non_null(m);
	snprintf(url, sizeof(url), "http://[::1]:%u/healthz", port);
	fetch(l, "GET", url, &f);
	assert_int_equal(f.status, 200);
	assert_string_equal(f.body.data, "ok\n");
	buf_free(&f.body);
	metrics_stop(m);
	stats_free(st);
	loop_free(l);
}

/* Everything that is not a loopback address, or not an address at all. */
static void
test_refused(void **state)
{
	static const char *const bad[] = {
	    "0.0.0.0:9464",
	    "192.168.1.10:9464",
	    "10.0.0.1:9464",
	    "128.0.0.1:9464",
	    "[::]:9464",
	    "[2001:db8::1]:9464",
	    "[::ffff:127.0.0.1]:9464",
	    "::1:9464",
	    "[::1]9464",
	    "[::1:9464",
	    "example.org:9464",
	    "127.0.0.1",
	    "127.0.0.1:",
	    "127.0.0.1:http",
	    "127.0.0.1:65536",
	    "127.0.0.1:-1",
	    "127.0.0.1:94 64",
	    "127.1:9464",
	    ":9464",
	    "",
	};
	struct loop *l = loop_new();
	struct stats *st = stats_new();
	size_t i;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(bad); i++) {
		struct metrics *m = metrics_start(l, bad[i], st, NULL, NULL);

		CHECK(m == NULL, "listening on \"%s\" was accepted", bad[i]);
		metrics_stop(m);
	}
	CHECK(metrics_start(l, NULL, st, NULL, NULL) == NULL, "NULL address");
	CHECK_END();
	stats_free(st);
	loop_free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_serve),
	    cmocka_unit_test(test_idle_client),
	    cmocka_unit_test(test_ipv6),
	    cmocka_unit_test(test_refused),
	};

#ifndef HAVE_MICROHTTPD
	/* Built without libmicrohttpd: metrics_start() only says so. */
	struct loop *l = loop_new();
	struct stats *st = stats_new();

	if (metrics_start(l, "127.0.0.1:9464", st, NULL, NULL) != NULL)
		return 1;
	stats_free(st);
	loop_free(l);
	return 0;
#endif
	return cmocka_run_group_tests(tests, NULL, NULL);
}
