/*
 * The metrics endpoint: Prometheus text on GET /metrics and a health check
 * on GET /healthz, served by libmicrohttpd on a loopback address, driven by
 * the event loop (no thread of its own).
 */
#ifndef FAQBOT_METRICS_H
#define FAQBOT_METRICS_H

#include "loop.h"
#include "stats.h"

struct metrics;

/*
 * Returns 1 when the bot is healthy (its transports are connected, it is in
 * the moderator room); else 0, with the reasons appended to why.
 */
typedef int (*metrics_health_fn)(void *arg, struct buf *why);

/*
 * Serves on listen ("127.0.0.1:9464" or "[::1]:9464"; only loopback
 * addresses are accepted). Returns NULL, with a log line, when the address
 * is not loopback, malformed or in use, or when built without
 * libmicrohttpd.
 */
struct metrics *metrics_start(struct loop *l, const char *listen, const struct stats *st,
    metrics_health_fn health, void *arg);

/*
 * Checks listen as metrics_start() reads it (so that the configuration
 * check refuses what the daemon would): 0, or -1 with *why set to a
 * static message.
 */
int metrics_listen_check(const char *listen, const char **why);
void metrics_stop(struct metrics *m);

#endif
