/*
 * HTTP requests on the event loop (libcurl's multi interface): started,
 * then completed by a callback, never blocking. Bodies are capped; the
 * Retry-After header is parsed; every failure is described in words for
 * the log, with a class that says whether trying again can help.
 */
#ifndef FAQBOT_HTTP_H
#define FAQBOT_HTTP_H

#include <stddef.h>

#include <curl/curl.h>

#include "loop.h"

struct http_resp {
	long status;		/* HTTP status; 0 when no reply arrived */
	CURLcode curl;		/* CURLE_OK when a reply arrived */
	const char *error;	/* the failure in words, or "" */
	char *body;		/* the body, NUL-terminated (owned by the request) */
	size_t len;		/* its length */
	long retry_after_ms;	/* from a Retry-After header, or -1 */
	int too_big;		/* the body was larger than the cap and was dropped */
	double seconds;		/* how long the request took */
};

/* Called once when the request ends (not after http_cancel). */
typedef void (*http_fn)(void *arg, const struct http_resp *r);

struct http_req;

/*
 * Starts method (GET, POST, PUT) on url with an optional bearer token and
 * JSON body. timeout_ms bounds the whole transfer; bodies over max_body
 * bytes are dropped (too_big). Returns the request (valid until its
 * callback returns or it is cancelled), or NULL if curl refused to start.
 */
struct http_req *http_start(struct loop *l, const char *method, const char *url,
    const char *token, const char *body, long timeout_ms, size_t max_body, http_fn fn, void *arg);

/* Cancels a request; its callback is not called. NULL is ignored. */
void http_cancel(struct loop *l, struct http_req *r);

/* Appends s to b escaped for a URL path segment or query value. */
struct buf;
void http_escape(struct buf *b, const char *s);

#endif
