/*
 * Logging on stderr, one line per event, journald-friendly: under systemd
 * (JOURNAL_STREAM set) each line carries a <N> priority prefix, otherwise a
 * UTC time stamp and the level. Every line is made safe as a whole (control
 * characters, line separators and bidi controls escaped), so that nothing
 * passed in, such as a room name from a server, can start a line of its own.
 * Chat text is never logged as is: log_chat() escapes it, and returns a
 * placeholder unless the admin allowed chat text.
 * Tokens and passwords must never be passed to these functions.
 */
#ifndef FAQBOT_LOG_H
#define FAQBOT_LOG_H

#include <stddef.h>
#include <stdnoreturn.h>

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Sets the level and whether patients' words may appear (at debug level). */
void log_init(enum log_level level, int chat_text);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info" or "debug"; returns -1 when unknown. */
int log_level_parse(const char *s);

/* Something that stops the bot doing its job (a safety alert that cannot go out). */
void log_errorx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* adds strerror */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* adds strerror */
noreturn void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Makes chat text safe to log: control characters, quotes and backslashes
 * escaped, cut at about 200 bytes. Unless chat text logging is on, returns
 * "[N bytes]" instead. Writes into buf (size len) and returns buf.
 */
const char *log_chat(const char *text, char *buf, size_t len);

/* Escapes any string for a log line (no redaction); returns buf. */
const char *log_escape(const char *text, size_t textlen, char *buf, size_t len);

#endif
