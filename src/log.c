/*
 * Log lines on stderr. See log.h for the contract.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enum log_level cur_level = LOG_LEVEL_INFO;
static int chat_allowed;

void
log_init(enum log_level level, int chat_text)
{
	cur_level = level;
	chat_allowed = chat_text;
}

enum log_level
log_get_level(void)
{
	return cur_level;
}

int
log_level_parse(const char *s)
{
	static const char *names[] = {"error", "warn", "info", "debug"};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

/*
 * Copies msg into out (size len) so that it stays one line and shows what
 * it says: C0 controls and DEL become \xHH, C1 controls (U+0080-009F),
 * line and paragraph separators and bidi controls become \uHHHH. Ids and
 * names from a server go into log lines, and a hostile one must not be
 * able to start a line of its own or turn one around.
 */
static void
line_safe(const char *msg, char *out, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)msg;
	size_t o = 0;

	for (; *p && o + 7 < len; p++) {
		unsigned cp = 0;

		if (*p < 0x20 || *p == 0x7f) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
			continue;
		}
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			cp = p[1];
		else if (p[0] == 0xe2 && p[1] == 0x80 && p[2] >= 0xa8 && p[2] <= 0xae)
			cp = 0x2000 | (p[2] & 0x3f); /* U+2028-202E */
		else if (p[0] == 0xe2 && p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)
			cp = 0x2040 | (p[2] & 0x3f); /* U+2066-2069 */
		if (cp == 0) {
			out[o++] = (char)*p;
			continue;
		}
		out[o++] = '\\';
		out[o++] = 'u';
		out[o++] = hex[(cp >> 12) & 15];
		out[o++] = hex[(cp >> 8) & 15];
		out[o++] = hex[(cp >> 4) & 15];
		out[o++] = hex[cp & 15];
		p += cp < 0x100 ? 1 : 2;
	}
	out[o] = '\0';
}

static void vlog(enum log_level level, int with_errno, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void
vlog(enum log_level level, int with_errno, const char *fmt, va_list ap)
{
	static const char *names[] = {"error", "warn", "info", "debug"};
	static const int prio[] = {3, 4, 6, 7};
	char msg[2048], safe[4096], stamp[32];
	int saved = errno;
	struct tm tm;
	time_t t;

	if (level > cur_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno) {
		size_t n = strlen(msg);
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(saved));
	}
	line_safe(msg, safe, sizeof(safe));
	if (getenv("JOURNAL_STREAM") != NULL) {
		fprintf(stderr, "<%d>%s\n", prio[level], safe);
	} else {
		t = time(NULL);
		gmtime_r(&t, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
		fprintf(stderr, "%s faqbot %s: %s\n", stamp, names[level], safe);
	}
	fflush(stderr);
	errno = saved;
}

#define LOGFN(name, level, err)                                                                    \
	void name(const char *fmt, ...)                                                            \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		vlog(level, err, fmt, ap);                                                         \
		va_end(ap);                                                                        \
	}

LOGFN(log_errorx, LOG_LEVEL_ERROR, 0)
LOGFN(log_warn, LOG_LEVEL_WARN, 1)
LOGFN(log_warnx, LOG_LEVEL_WARN, 0)
LOGFN(log_info, LOG_LEVEL_INFO, 0)
LOGFN(log_debug, LOG_LEVEL_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, 1, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

const char *
log_escape(const char *text, size_t textlen, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;
	unsigned char c;

	if (len == 0)
		return buf;
	for (i = 0; i < textlen && o + 5 < len; i++) {
		c = (unsigned char)text[i];
		if (c == '\\' || c == '"') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		} else {
			buf[o++] = (char)c;
		}
	}
	if (i < textlen && o + 4 <= len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

const char *
log_chat(const char *text, char *buf, size_t len)
{
	size_t n = text ? strlen(text) : 0;

	if (!chat_allowed) {
		snprintf(buf, len, "[%zu bytes]", n);
		return buf;
	}
	return log_escape(text ? text : "", n < 200 ? n : 200, buf, len);
}
