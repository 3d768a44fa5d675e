/*
 * The metrics endpoint (see metrics.h). libmicrohttpd runs in its
 * "external select" mode with epoll: it creates no thread; its epoll
 * descriptor is watched by the event loop, MHD_run() is called when it is
 * readable, and a loop timer set from MHD_get_timeout() lets MHD close idle
 * connections and finish work it has buffered. Only loopback addresses are
 * accepted: the counters say nothing secret, but an operator who wants them
 * elsewhere should put a proxy with TLS and authentication in front.
 */
#include "metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

/*
 * Parses "host:port" or "[v6]:port" into sa. Only loopback hosts are
 * accepted ("localhost" means 127.0.0.1). Returns 0, or -1 with *why set.
 */
static int
parse_listen(const char *listen, struct sockaddr_storage *sa, socklen_t *salen, const char **why)
{
	char host[64];
	const char *colon, *port;
	char *end;
	size_t hlen;
	long p;

	memset(sa, 0, sizeof(*sa));
	if (listen[0] == '[') {
		const char *close = strchr(listen, ']');

		if (close == NULL || close[1] != ':') {
			*why = "expected [address]:port";
			return -1;
		}
		hlen = (size_t)(close - listen - 1);
		if (hlen >= sizeof(host)) {
			*why = "the address is too long";
			return -1;
		}
		memcpy(host, listen + 1, hlen);
		port = close + 2;
	} else {
		if ((colon = strrchr(listen, ':')) == NULL) {
			*why = "expected host:port";
			return -1;
		}
		if (memchr(listen, ':', (size_t)(colon - listen)) != NULL) {
			*why = "write an IPv6 address in brackets: [::1]:port";
			return -1;
		}
		hlen = (size_t)(colon - listen);
		if (hlen >= sizeof(host)) {
			*why = "the host is too long";
			return -1;
		}
		memcpy(host, listen, hlen);
		port = colon + 1;
	}
	host[hlen] = '\0';
	if (port[0] < '0' || port[0] > '9') {
		*why = "the port is not a number";
		return -1;
	}
	errno = 0;
	p = strtol(port, &end, 10);
	if (*end != '\0' || errno != 0 || p < 0 || p > 65535) {
		*why = "the port is not a number from 0 to 65535";
		return -1;
	}
	if (listen[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;

		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) {
			*why = "not an IPv6 address";
			return -1;
		}
		if (!IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr)) {
			*why = "not a loopback address (only [::1] is accepted)";
			return -1;
		}
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)p);
		*salen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)sa;

		if (strcmp(host, "localhost") == 0)
			strcpy(host, "127.0.0.1");
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) {
			*why = "not an IPv4 address (write 127.0.0.1, not a host name)";
			return -1;
		}
		if ((ntohl(s4->sin_addr.s_addr) >> 24) != 127) {
			*why = "not a loopback address (only 127.0.0.0/8 and [::1] are accepted)";
			return -1;
		}
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)p);
		*salen = sizeof(*s4);
	}
	return 0;
}

int
metrics_listen_check(const char *listen, const char **why)
{
	struct sockaddr_storage sa;
	socklen_t salen;

	return parse_listen(listen, &sa, &salen, why);
}

#ifdef HAVE_MICROHTTPD

#include <poll.h>
#include <stdio.h>

#include <microhttpd.h>

/* Connections served at once; a scraper needs one. */
#define METRICS_MAX_CONNECTIONS 16
/* Seconds before an idle connection is closed. */
#define METRICS_TIMEOUT_S 10
/* Bytes of memory per connection (request headers must fit). */
#define METRICS_CONN_MEMORY (32 * 1024)
/* Longest wait between two MHD_run() calls while MHD asks for a timer. */
#define METRICS_MAX_TIMER_MS 60000

struct metrics {
	struct loop *loop;        /* the loop it runs on */
	struct MHD_Daemon *mhd;   /* the server */
	int epfd;                 /* MHD's epoll descriptor, watched by the loop */
	uint64_t timer;           /* the pending timer, or 0 */
	const struct stats *st;   /* what /metrics exports (not owned) */
	metrics_health_fn health; /* what /healthz asks; NULL: always healthy */
	void *arg;                /* its argument */
	char where[64];           /* "127.0.0.1:9464", for log lines */
};

/* MHD's own messages go to our log. */
__attribute__((format(printf, 2, 0))) static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_warnx("metrics: %s", msg);
}

/* Queues a response of status with body (copied) and the usual headers. */
static enum MHD_Result
reply(struct MHD_Connection *c, unsigned status, const char *ctype, const char *body, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

#if MHD_VERSION >= 0x00097701
	r = MHD_create_response_from_buffer_copy(len, body);
#else
	r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
#endif
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	static const char text_plain[] = "text/plain; charset=utf-8";
	struct metrics *m = cls;
	struct buf body;
	enum MHD_Result ret;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	/*
	 * Answered on the first call, before any request body is read: MHD
	 * then discards the body and closes the connection if it must.
	 */
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, text_plain, "method not allowed\n",
		             strlen("method not allowed\n"));
	if (strcmp(url, "/metrics") == 0) {
		buf_init(&body);
		stats_prometheus(m->st, &body);
		ret = reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
		            body.data ? body.data : "", body.len);
		buf_free(&body);
		return ret;
	}
	if (strcmp(url, "/healthz") == 0) {
		buf_init(&body);
		if (m->health == NULL || m->health(m->arg, &body)) {
			buf_free(&body);
			return reply(c, MHD_HTTP_OK, text_plain, "ok\n", 3);
		}
		{
			struct buf text;

			buf_init(&text);
			buf_printf(&text, "unhealthy: %s\n", body.data ? body.data : "");
			ret = reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, text_plain, text.data, text.len);
			buf_free(&text);
		}
		buf_free(&body);
		return ret;
	}
	return reply(c, MHD_HTTP_NOT_FOUND, text_plain, "not found\n", 10);
}

static void on_timer(void *arg);

/* Lets MHD do its work, then sets the timer it asks for. */
static void
metrics_run(struct metrics *m)
{
	MHD_UNSIGNED_LONG_LONG to;

	MHD_run(m->mhd);
	loop_timer_cancel(m->loop, m->timer);
	m->timer = 0;
	if (MHD_get_timeout(m->mhd, &to) == MHD_YES) {
		if (to > METRICS_MAX_TIMER_MS)
			to = METRICS_MAX_TIMER_MS;
		m->timer = loop_timer(m->loop, (uint64_t)to, on_timer, m);
	}
}

static void
on_timer(void *arg)
{
	struct metrics *m = arg;

	m->timer = 0; /* the loop has dropped it */
	metrics_run(m);
}

static void
on_epoll(void *arg, int fd, short revents)
{
	(void)fd;
	(void)revents;
	metrics_run(arg);
}

struct metrics *
metrics_start(struct loop *l, const char *listen, const struct stats *st, metrics_health_fn health,
              void *arg)
{
	struct sockaddr_storage sa;
	socklen_t salen;
	const union MHD_DaemonInfo *info;
	struct metrics *m;
	const char *why;
	unsigned flags;
	char esc[128];

	if (listen == NULL || parse_listen(listen, &sa, &salen, &why) == -1) {
		log_warnx("metrics: refusing to listen on \"%s\": %s",
		          listen ? log_escape(listen, strlen(listen), esc, sizeof(esc)) : "(null)",
		          listen ? why : "no address");
		return NULL;
	}
	m = xcalloc(1, sizeof(*m));
	m->loop = l;
	m->st = st;
	m->health = health;
	m->arg = arg;
	m->epfd = -1;
	/* No MHD_USE_INTERNAL_POLLING_THREAD: MHD_run() is called from our loop. */
	flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	if (sa.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	m->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, m, MHD_OPTION_EXTERNAL_LOGGER,
	                          mhd_log, NULL, /* first, so that it sees everything */
	                          MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	                          MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_MAX_CONNECTIONS,
	                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_TIMEOUT_S,
	                          MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)METRICS_CONN_MEMORY,
	                          MHD_OPTION_END);
	if (m->mhd == NULL) {
		log_warnx("metrics: cannot listen on %s (in use, or not available here)",
		          log_escape(listen, strlen(listen), esc, sizeof(esc)));
		free(m);
		return NULL;
	}
	info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_FLAGS);
	if (info != NULL && (info->flags & MHD_USE_INTERNAL_POLLING_THREAD)) {
		log_warnx("metrics: libmicrohttpd started a thread of its own; not serving");
		MHD_stop_daemon(m->mhd);
		free(m);
		return NULL;
	}
	info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL || info->epoll_fd < 0) {
		log_warnx("metrics: libmicrohttpd gave no epoll descriptor; not serving");
		MHD_stop_daemon(m->mhd);
		free(m);
		return NULL;
	}
	m->epfd = info->epoll_fd;
	info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_BIND_PORT);
	if (sa.ss_family == AF_INET6)
		snprintf(m->where, sizeof(m->where), "[::1]:%u", info ? (unsigned)info->port : 0u);
	else {
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, a, sizeof(a));
		snprintf(m->where, sizeof(m->where), "%s:%u", a, info ? (unsigned)info->port : 0u);
	}
	loop_add_fd(l, m->epfd, POLLIN, on_epoll, m);
	metrics_run(m);
	log_info("metrics: serving /metrics and /healthz on http://%s", m->where);
	return m;
}

void
metrics_stop(struct metrics *m)
{
	if (m == NULL)
		return;
	loop_del_fd(m->loop, m->epfd);
	loop_timer_cancel(m->loop, m->timer);
	MHD_stop_daemon(m->mhd);
	free(m);
}

#else /* !HAVE_MICROHTTPD */

struct metrics {
	int unused; /* never created */
};

struct metrics *
metrics_start(struct loop *l, const char *listen, const struct stats *st, metrics_health_fn health,
              void *arg)
{
	(void)l;
	(void)st;
	(void)health;
	(void)arg;
	log_warnx("metrics: not serving %s: faqbot was built without libmicrohttpd",
	          listen ? listen : "");
	return NULL;
}

void
metrics_stop(struct metrics *m)
{
	(void)m;
}

#endif
