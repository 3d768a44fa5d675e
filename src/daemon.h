/*
 * The daemon behind `faqbot run`: one event loop driving the transports
 * (Matrix over libcurl's multi interface, IRC), signals, file watching and
 * the metrics endpoint, around the bot core.
 */
#ifndef FAQBOT_DAEMON_H
#define FAQBOT_DAEMON_H

/*
 * Runs the bot with the configuration file config. With check, validates
 * config, intents and responses, prints "configuration OK" or every
 * problem, and returns. Returns the process exit status.
 */
int daemon_main(const char *config, int check);

#endif
