/*
 * The seam between the chat networks and the core (OpenSMTPD's ioev.h is
 * the model): a transport turns its protocol into tp_msg events for the
 * core, and sends the tp_out messages the core gives it. The core never
 * knows which network it is on; a transport never decides what to answer.
 */
#ifndef FAQBOT_TRANSPORT_H
#define FAQBOT_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* What an edited message is to the core (tp_msg.edit). */
enum tp_edit {
	TP_EDIT_NONE,       /* not an edit */
	TP_EDIT_UNANSWERED, /* an edit of a recent message that got no reply: read it afresh */
	TP_EDIT_ANSWERED,   /* an edit of a message that got a reply: only safety counts */
};

/* A message someone wrote, as the core sees it. Valid during the call. */
struct tp_msg {
	const char *room;	  /* room id (Matrix) or channel / nick (IRC) */
	const char *sender;	  /* user id or nick */
	const char *sender_name;  /* display name; may equal sender */
	const char *text;	  /* the message body, UTF-8 (checked by the core) */
	size_t len;		  /* its length */
	const char *event_id;	  /* the event (Matrix), or NULL */
	const char *reply_to;	  /* the event to reply to when not event_id (an edit's original) */
	const char *thread_root;  /* the thread it is in (Matrix), or NULL */
	int addressed;		  /* mention, a reply to the bot, or a private message */
	int direct;		  /* a private message (IRC query, Matrix DM) */
	enum tp_edit edit;	  /* an edit, and of what */
	int safety_only;	  /* only a safety answer may go out (FAQ answers are off here) */
	uint64_t received_ns;	  /* when the transport received it (monotonic) */
};

/* A message the core wants sent. Valid during the call: copy what you keep. */
struct tp_out {
	const char *room;	  /* where */
	const char *plain;	  /* plain text */
	const char *html;	  /* HTML, or NULL (IRC ignores it) */
	const char *reply_to;	  /* event answered (Matrix), or NULL */
	const char *thread_root;  /* the thread to stay in, or NULL */
	const char *mention;	  /* user id or nick to mention, or NULL */
	const char *mention_name; /* their display name, for the plain text */
	const char *key;	  /* idempotency key: the same key is sent at most once */
	int notice;		  /* bot-style notice (m.notice, IRC NOTICE) */
	int urgent;		  /* a safety answer or alert: sent before anything else, never dropped */
	int named;		  /* plain already addresses the person by name: no "name: " before it */
	uint64_t received_ns;	  /* when the question arrived, for latency figures */
};

struct transport {
	const char *name;	/* "matrix", "irc" */
	void *impl;		/* the transport's own state */
	/* Queues out for sending (retried until it succeeds or cannot); 0 or -1. */
	int (*send)(void *impl, const struct tp_out *out);
	/* user's power level in room, or -1 when unknown (IRC: op = 50). */
	int (*power_level)(void *impl, const char *room, const char *user);
	/* Appends a link to event_id in room that people can click; 0, or -1. */
	int (*link)(void *impl, const char *room, const char *event_id, struct buf *out);
	/* Does this transport serve room (a Matrix room the bot is in, a configured IRC channel)? */
	int (*has_room)(void *impl, const char *room);
	/* Is user a joined member of room now? 1, 0, or -1 when it is not known. */
	int (*member)(void *impl, const char *room, const char *user);
};

#endif
