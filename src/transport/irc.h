/*
 * The IRC transport: a native client (TLS with certificate verification by
 * default, SASL PLAIN, nick collision handling, channels with keys,
 * PING/PONG and a lag check, reconnect with capped backoff and jitter, and
 * rejoin), with a token-bucket flood control so the server never kicks the
 * bot, and replies as NOTICE (or PRIVMSG) split at the 512-byte line limit
 * on UTF-8 and word boundaries.
 */
#ifndef FAQBOT_IRC_H
#define FAQBOT_IRC_H

#include "bot.h"
#include "config.h"
#include "loop.h"
#include "transport.h"

struct irc;

/* An IRC client for cfg reporting to b; nothing happens until irc_start(). */
struct irc *irc_new(struct loop *l, const struct config *cfg, struct bot *b);
void irc_free(struct irc *c);
struct transport *irc_transport(struct irc *c);
void irc_start(struct irc *c);
/* Sends QUIT (best effort) and closes; returns at once. */
void irc_stop(struct irc *c);
/* 1 when registered and the last lag check was answered. */
int irc_healthy(const struct irc *c);

#endif
