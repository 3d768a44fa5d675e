/*
 * HTTP requests on the event loop; see http.h.
 */
#include "http.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "util.h"

struct http_req {
	struct loop_easy le;		/* first: the loop's completion hook */
	struct loop *loop;		/* where it runs */
	CURL *easy;			/* the transfer */
	struct curl_slist *headers;	/* request headers */
	char *body;			/* request body (owned) */
	struct buf resp;		/* response body */
	size_t max_body;		/* cap */
	int too_big;			/* the cap was hit */
	long retry_after_ms;		/* parsed Retry-After, or -1 */
	char errbuf[CURL_ERROR_SIZE];	/* curl's words */
	http_fn fn;			/* completion */
	void *arg;			/* its argument */
	uint64_t started;		/* monotonic ns */
};

static size_t
on_write(char *p, size_t size, size_t n, void *arg)
{
	struct http_req *r = arg;
	size_t len = size * n;

	if (r->resp.len + len > r->max_body) {
		r->too_big = 1;
		return 0;	/* aborts the transfer with CURLE_WRITE_ERROR */
	}
	buf_append(&r->resp, p, len);
	return len;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct http_req *r = arg;
	size_t len = size * n;
	char v[128];
	size_t i, k = 0;

	if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
		for (i = 12; i < len && (p[i] == ' ' || p[i] == '\t'); i++)
			;
		for (; i < len && p[i] != '\r' && p[i] != '\n' && k + 1 < sizeof(v); i++)
			v[k++] = p[i];
		v[k] = '\0';
		if (k > 0 && isdigit((unsigned char)v[0])) {
			long s = strtol(v, NULL, 10);

			if (s >= 0 && s < 86400)
				r->retry_after_ms = s * 1000;
		} else if (k > 0) {
			time_t t = curl_getdate(v, NULL);

			if (t > 0) {
				long d = (long)(t - time(NULL));

				r->retry_after_ms = d > 0 && d < 86400 ? d * 1000 : 0;
			}
		}
	}
	return len;
}

static void
req_free(struct http_req *r)
{
	curl_multi_remove_handle(loop_multi(r->loop), r->easy);
	curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	free(r->body);
	buf_free(&r->resp);
	free(r);
}

static void
on_done(struct loop_easy *e, CURLcode rc)
{
	struct http_req *r = (struct http_req *)e;
	struct http_resp resp = {0};

	resp.curl = rc;
	resp.retry_after_ms = r->retry_after_ms;
	resp.too_big = r->too_big;
	resp.seconds = (double)(now_ns() - r->started) / 1e9;
	if (rc == CURLE_OK)
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &resp.status);
	if (r->too_big)
		resp.error = "the reply is larger than the configured maximum";
	else if (rc != CURLE_OK)
		resp.error = r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc);
	else
		resp.error = "";
	if (r->too_big)
		buf_reset(&r->resp);
	if (r->resp.data == NULL)
		buf_puts(&r->resp, "");
	resp.body = r->resp.data;
	resp.len = r->resp.len;
	r->fn(r->arg, &resp);
	req_free(r);
}

struct http_req *
http_start(struct loop *l, const char *method, const char *url, const char *token,
    const char *body, long timeout_ms, size_t max_body, http_fn fn, void *arg)
{
	struct http_req *r = xcalloc(1, sizeof(*r));
	char *auth;

	r->le.done = on_done;
	r->loop = l;
	r->fn = fn;
	r->arg = arg;
	r->max_body = max_body;
	r->retry_after_ms = -1;
	r->started = now_ns();
	buf_init(&r->resp);
	if ((r->easy = curl_easy_init()) == NULL) {
		free(r);
		return NULL;
	}
	curl_easy_setopt(r->easy, CURLOPT_URL, url);
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, (char *)r);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "faqbot/" FAQBOT_VERSION);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(r->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(r->easy, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	r->headers = curl_slist_append(r->headers, "Accept: application/json");
	if (token != NULL && token[0]) {
		auth = xasprintf("Authorization: Bearer %s", token);
		r->headers = curl_slist_append(r->headers, auth);
		memset(auth, 0, strlen(auth));
		free(auth);
	}
	if (body != NULL) {
		r->body = xstrdup(body);
		r->headers = curl_slist_append(r->headers, "Content-Type: application/json");
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
	}
	/* No "Expect: 100-continue" round trip for our small bodies. */
	r->headers = curl_slist_append(r->headers, "Expect:");
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
	if (strcmp(method, "GET") != 0)
		curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method);
	if (curl_multi_add_handle(loop_multi(l), r->easy) != CURLM_OK) {
		curl_easy_cleanup(r->easy);
		curl_slist_free_all(r->headers);
		free(r->body);
		free(r);
		return NULL;
	}
	return r;
}

void
http_cancel(struct loop *l, struct http_req *r)
{
	(void)l;
	if (r != NULL)
		req_free(r);
}

void
http_escape(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
			buf_putc(b, (char)c);
		else {
			buf_putc(b, '%');
			buf_putc(b, hex[c >> 4]);
			buf_putc(b, hex[c & 15]);
		}
	}
}
