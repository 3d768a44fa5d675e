/*
 * The configuration table and the loader. One table lists every option
 * with its type, bounds, default and help; the loader, the --help-config
 * text and the defaults all come from it.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json.h"
#include "log.h"
#include "metrics.h"
#include "match.h"
#include "util.h"

enum cfg_type {
	CFG_BOOL,      /* int */
	CFG_INT,       /* long */
	CFG_DOUBLE,    /* double */
	CFG_STRING,    /* char * */
	CFG_SECRET,    /* char *, never printed */
	CFG_LIST,      /* struct strlist */
	CFG_ENUM,      /* int, index into choices */
	CFG_CONTACTS,  /* the contacts object */
	CFG_ROOMS,     /* the rooms object */
	CFG_TRANSPORT, /* "matrix", "irc" or a list of them */
};

struct cfg_option {
	const char *name;    /* dotted path in the JSON file */
	enum cfg_type type;  /* how to read it */
	double min;          /* least value; strings: characters (0 allows ""); lists: entries */
	double max;          /* greatest value; strings: characters; lists: entries */
	const char *def;     /* default, as text (lists comma-separated) */
	size_t off;          /* offset in struct config */
	const char *choices; /* for CFG_ENUM: '|'-separated */
	const char *env;     /* environment variable for secrets */
	const char *help;    /* one line for --help-config and the example file */
};

#define O(f) offsetof(struct config, f)
#define STR_(x) #x
#define STR(x)  STR_(x)

static const struct cfg_option options[] = {
    {"intents_dir", CFG_STRING, 0, 4096, "", O(intents_dir), NULL, NULL,
     "directory of intent files; empty: the set built into the binary"},
    {"responses_dir", CFG_STRING, 0, 4096, "", O(responses_dir), NULL, NULL,
     "directory of response files; empty: the set built into the binary"},
    {"labelled_dir", CFG_STRING, 0, 4096, "", O(labelled_dir), NULL, NULL,
     "directory of labelled messages (*.tsv) the model learns from; empty: \"labelled\" "
     "beside intents_dir, or the set built into the binary"},
    {"state_dir", CFG_STRING, 0, 4096, "", O(state_dir), NULL, NULL,
     "state kept across restarts; empty: $STATE_DIRECTORY (systemd) or ./state"},
    {"transport", CFG_TRANSPORT, 0, 0, "matrix", O(transports), NULL, NULL,
     "\"matrix\", \"irc\", or [\"matrix\", \"irc\"] for both in one process"},

    {"log.level", CFG_ENUM, 0, 0, "info", O(log_level), "error|warn|info|debug", NULL,
     "least important level logged"},
    {"log.chat_text", CFG_BOOL, 0, 0, "false", O(log_chat_text), NULL, NULL,
     "allow patients' words in debug logs (off: only their length is logged)"},

    {"match.threshold", CFG_DOUBLE, 0, 10, "0.5", O(threshold), NULL, NULL,
     "points an intent needs before the bot answers"},
    {"match.ambiguity_margin", CFG_DOUBLE, 0, 5, "0.15", O(margin), NULL, NULL,
     "when the top two intents are closer than this, the bot asks which was meant"},
    {"match.match_limit", CFG_INT, 1000, 10000000, "100000", O(match_limit), NULL, NULL,
     "PCRE2 match limit for one pattern on one message (stops runaway patterns)"},
    {"match.depth_limit", CFG_INT, 10, 100000, "1000", O(depth_limit), NULL, NULL,
     "PCRE2 depth limit for one pattern on one message"},
    {"match.jit", CFG_BOOL, 0, 0, "true", O(jit), NULL, NULL,
     "compile patterns with the PCRE2 JIT (off: the interpreter, e.g. under valgrind)"},
    {"match.bot_names", CFG_LIST, 1, 64, "faqbot", O(bot_names), NULL, NULL,
     "names the bot answers to when addressed (\"faqbot: ...\")"},

    {"model.enabled", CFG_BOOL, 0, 0, "true", O(model), NULL, NULL,
     "learn from the labelled messages and use the model behind the rules"},
    {"model.answer_threshold", CFG_DOUBLE, 0.05, 1, STR(MATCH_MODEL_ANSWER), O(model_answer), NULL,
     NULL, "when no rule answered, the model's best intent answers from this probability"},
    {"model.safety_answer_threshold", CFG_DOUBLE, 0.05, 1, STR(MATCH_MODEL_ALERT),
     O(model_safety_answer), NULL, NULL,
     "the model's P(emergency or crisis) from which it gives the safety answer and alerts "
     "the moderators, whatever the rules said"},
    {"model.safety_alert_threshold", CFG_DOUBLE, 0.01, 1, STR(MATCH_MODEL_FLAG),
     O(model_safety_alert), NULL, NULL,
     "below the safety answer threshold, from this P(emergency or crisis) the moderators "
     "get a silent alert and nothing is said in the room"},

    {"responses.allow_drafts", CFG_BOOL, 0, 0, "false", O(allow_drafts), NULL, NULL,
     "send responses still awaiting clinical review (for a demo only)"},
    {"responses.disclaimer", CFG_STRING, 0, 1000,
     "This is general information, not medical advice. Please talk with your own care "
     "team about your situation.",
     O(disclaimer), NULL, NULL, "appended to every medical answer (Markdown)"},
    {"responses.locale", CFG_STRING, 2, 16, "en", O(locale), NULL, NULL,
     "locale of rooms that do not set one"},
    {"responses.max_grade", CFG_DOUBLE, 0, 20, "8", O(max_grade), NULL, NULL,
     "lint warns when a response reads above this school grade (Flesch-Kincaid)"},
    {"responses.draft_notice", CFG_STRING, 0, 500,
     "_(Draft answer awaiting clinical review, shown because drafts are allowed.)_",
     O(draft_notice), NULL, NULL, "appended to a draft when drafts are allowed"},
    {"responses.fallback", CFG_STRING, 1, 1000,
     "Sorry, I don't have an answer for that. I only know common questions about "
     "metastatic cancer. Please ask the moderators, or your care team. I have saved "
     "the question so the moderators can add an answer.",
     O(fallback), NULL, NULL, "reply when the bot was addressed but found no answer (Markdown)"},

    {"contacts", CFG_CONTACTS, 0, 0, NULL, O(contacts), NULL, NULL,
     "per locale: emergency, oncology, crisis, moderators, crisis_text (optional), verified "
     "(YYYY-MM-DD)"},
    {"safety.contacts_max_age_days", CFG_INT, 1, 3650, "180", O(contacts_max_age_days), NULL, NULL,
     "lint warns when contacts were verified longer ago than this"},
    {"safety.alert_notice", CFG_STRING, 0, 500,
     "The moderators of this room have been told, so that a person can reach out to "
     "you.",
     O(alert_notice), NULL, NULL, "added to a crisis answer when moderators were alerted"},

    {"rooms", CFG_ROOMS, 0, 0, NULL, O(rooms), NULL, NULL,
     "per room (or \"default\"): answer (auto|mention), locale, disclaimer, intents, "
     "paused"},
    {"policy.command_prefix", CFG_STRING, 1, 16, "!faq", O(command_prefix), NULL, NULL,
     "prefix that addresses the bot and starts moderator commands"},
    {"policy.cooldown_s", CFG_INT, 0, 86400, "600", O(cooldown_s), NULL, NULL,
     "the same answer is not repeated in a room within this many seconds"},
    {"policy.user_rate_per_min", CFG_INT, 1, 100000, "5", O(user_rate_per_min), NULL, NULL,
     "most answers to one user per minute"},
    {"policy.room_rate_per_min", CFG_INT, 1, 100000, "20", O(room_rate_per_min), NULL, NULL,
     "most answers in one room per minute"},
    {"policy.choice_timeout_s", CFG_INT, 10, 3600, "300", O(choice_timeout_s), NULL, NULL,
     "how long an answer of \"1\" or \"2\" to \"did you mean\" is accepted"},
    {"policy.safety_repeat_s", CFG_INT, 0, 86400, "300", O(safety_repeat_s), NULL, NULL,
     "after a safety answer, the same person's safety messages in that room are not answered "
     "again for this many seconds (the moderators hear of them); 0: answer each"},

    {"moderation.room", CFG_STRING, 0, 255, "", O(moderator_room), NULL, NULL,
     "room (id) that gets safety alerts and takes moderator commands"},
    {"moderation.users", CFG_LIST, 0, 256, "", O(moderators), NULL, NULL,
     "users who may give commands whatever their power level"},
    {"moderation.power_level", CFG_INT, 0, 100, "50", O(moderator_power), NULL, NULL,
     "power level in the moderator room that allows commands"},
    {"moderation.alert_every_s", CFG_INT, 1, 3600, "60", O(alert_every_s), NULL, NULL,
     "further safety messages of one person in one room are reported in one follow-up "
     "alert at most this often"},
    {"moderation.watch_files", CFG_BOOL, 0, 0, "true", O(watch_files), NULL, NULL,
     "reload when files in the intents or responses directory change"},
    {"metrics.listen", CFG_STRING, 0, 64, "", O(metrics_listen), NULL, NULL,
     "loopback address:port for /metrics and /healthz, e.g. 127.0.0.1:9464; empty: off"},

    {"matrix.homeserver", CFG_STRING, 0, 1024, "", O(mx_homeserver), NULL, NULL,
     "base URL of the homeserver, e.g. https://matrix.example.org"},
    {"matrix.user_id", CFG_STRING, 0, 255, "", O(mx_user_id), NULL, NULL,
     "the bot's account, e.g. @faqbot:example.org"},
    {"matrix.password", CFG_SECRET, 0, 1024, "", O(mx_password), NULL, "FAQBOT_MATRIX_PASSWORD",
     "password for login (or use password_file, or the env)"},
    {"matrix.password_file", CFG_STRING, 0, 4096, "", O(mx_password_file), NULL, NULL,
     "file holding the password; must not be readable by group or others"},
    {"matrix.access_token", CFG_SECRET, 0, 4096, "", O(mx_access_token), NULL,
     "FAQBOT_MATRIX_ACCESS_TOKEN", "access token, instead of a password"},
    {"matrix.access_token_file", CFG_STRING, 0, 4096, "", O(mx_access_token_file), NULL, NULL,
     "file holding the access token; must not be readable by group or others"},
    {"matrix.device_name", CFG_STRING, 1, 128, "faqbot", O(mx_device_name), NULL, NULL,
     "device display name given at login"},
    {"matrix.sync_timeout_ms", CFG_INT, 1000, 120000, "30000", O(mx_sync_timeout_ms), NULL, NULL,
     "long-poll timeout of /sync"},
    {"matrix.request_timeout_ms", CFG_INT, 5000, 600000, "60000", O(mx_request_timeout_ms), NULL,
     NULL, "a request (other than the long-poll wait) taking longer fails"},
    {"matrix.max_body_bytes", CFG_INT, 65536, 268435456, "16777216", O(mx_max_body_bytes), NULL,
     NULL, "largest server reply accepted; larger ones are dropped and retried"},
    {"matrix.max_message_bytes", CFG_INT, 64, 65536, "4096", O(mx_max_message_bytes), NULL, NULL,
     "longer messages (IRC too) get no FAQ answer; they are still read for safety"},
    {"matrix.backoff_max_ms", CFG_INT, 1000, 3600000, "60000", O(mx_backoff_max_ms), NULL, NULL,
     "cap of the exponential backoff after errors"},
    {"matrix.ignored_users", CFG_LIST, 0, 1024, "", O(mx_ignored_users), NULL, NULL,
     "users never answered (other bots, bridges)"},
    {"matrix.invite_allow", CFG_LIST, 0, 1024, "", O(mx_invite_allow), NULL, NULL,
     "invites accepted from these users (@u:server) or servers (:server); others "
     "declined"},
    {"matrix.safety_dms", CFG_BOOL, 0, 0, "true", O(mx_safety_dms), NULL, NULL,
     "join a direct chat from anyone else too, for the safety answers only (at most 100)"},

    {"irc.server", CFG_STRING, 0, 255, "", O(irc_server), NULL, NULL, "IRC server host"},
    {"irc.port", CFG_INT, 1, 65535, "6697", O(irc_port), NULL, NULL, "IRC server port"},
    {"irc.tls", CFG_BOOL, 0, 0, "true", O(irc_tls), NULL, NULL, "connect with TLS"},
    {"irc.tls_verify", CFG_BOOL, 0, 0, "true", O(irc_tls_verify), NULL, NULL,
     "verify the server's certificate (turn off only for tests)"},
    {"irc.tls_ca_file", CFG_STRING, 0, 4096, "", O(irc_tls_ca_file), NULL, NULL,
     "CA certificates to verify the server with; empty: the system's"},
    {"irc.nick", CFG_STRING, 1, 30, "faqbot", O(irc_nick), NULL, NULL, "nick wanted"},
    {"irc.username", CFG_STRING, 1, 30, "faqbot", O(irc_username), NULL, NULL, "user name"},
    {"irc.realname", CFG_STRING, 1, 100, "faqbot, an information bot", O(irc_realname), NULL, NULL,
     "real name"},
    {"irc.sasl_user", CFG_STRING, 0, 100, "", O(irc_sasl_user), NULL, NULL,
     "SASL PLAIN account; empty: no SASL"},
    {"irc.password", CFG_SECRET, 0, 1024, "", O(irc_password), NULL, "FAQBOT_IRC_PASSWORD",
     "SASL password"},
    {"irc.password_file", CFG_STRING, 0, 4096, "", O(irc_password_file), NULL, NULL,
     "file holding the SASL password; must not be readable by group or others"},
    {"irc.channels", CFG_LIST, 0, 256, "", O(irc_channels), NULL, NULL,
     "channels to join, \"#chan\" or \"#chan key\""},
    {"irc.notice", CFG_BOOL, 0, 0, "true", O(irc_notice), NULL, NULL,
     "reply with NOTICE (false: PRIVMSG)"},
    {"irc.private", CFG_BOOL, 0, 0, "false", O(irc_private), NULL, NULL,
     "give FAQ answers in private messages (safety answers go out there always)"},
    {"irc.burst", CFG_INT, 1, 20, "4", O(irc_burst), NULL, NULL,
     "lines sent at once before the rate applies"},
    {"irc.rate_ms", CFG_INT, 100, 10000, "1000", O(irc_rate_ms), NULL, NULL,
     "then one line per this many milliseconds"},
    {"irc.ping_s", CFG_INT, 10, 600, "60", O(irc_ping_s), NULL, NULL,
     "idle seconds before a PING lag check"},
    {"irc.backoff_max_ms", CFG_INT, 1000, 3600000, "300000", O(irc_backoff_max_ms), NULL, NULL,
     "cap of the reconnect backoff"},
    {NULL, 0, 0, 0, NULL, 0, NULL, NULL, NULL},
};

#undef O

void
strlist_add(struct strlist *l, const char *s)
{
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = xstrdup(s);
}

void
strlist_free(struct strlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int
strlist_has(const struct strlist *l, const char *s)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return 1;
	return 0;
}

static void *
field(struct config *cfg, const struct cfg_option *o)
{
	return (char *)cfg + o->off;
}

/* Characters (UTF-8 sequences) in s: the unit the bounds and messages use. */
static size_t
utf8_length(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* Is the length of string s within the bounds of string option o? */
static int
length_ok(const char *s, const struct cfg_option *o)
{
	size_t n = utf8_length(s);

	return n >= (size_t)o->min && n <= (size_t)o->max;
}

/*
 * The number v as written in the file ("1.5", "2e-1"), so that a message
 * quotes what the admin typed rather than a rounding of it; into buf.
 */
static void
number_text(const struct json_doc *doc, const cJSON *v, char *buf, size_t size)
{
	const char *p = doc->text + json_doc_offset(doc, v);
	size_t n = 0;

	while (n + 1 < size && p[n] && strchr("+-.0123456789eE", p[n]) != NULL)
		n++;
	if (n == 0) {
		snprintf(buf, size, "%g", v->valuedouble);
		return;
	}
	memcpy(buf, p, n);
	buf[n] = '\0';
}

static int
enum_index(const char *choices, const char *s)
{
	const char *p = choices, *q;
	int i = 0;
	size_t n = strlen(s);

	while (*p) {
		q = strchr(p, '|');
		if (q == NULL)
			q = p + strlen(p);
		if ((size_t)(q - p) == n && memcmp(p, s, n) == 0)
			return i;
		i++;
		p = *q ? q + 1 : q;
	}
	return -1;
}

static void
contacts_free(struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->ncontacts; i++) {
		free(cfg->contacts[i].locale);
		free(cfg->contacts[i].emergency);
		free(cfg->contacts[i].oncology);
		free(cfg->contacts[i].crisis);
		free(cfg->contacts[i].crisis_text);
		free(cfg->contacts[i].moderators);
	}
	free(cfg->contacts);
	cfg->contacts = NULL;
	cfg->ncontacts = 0;
}

static void
rooms_free(struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->nrooms; i++) {
		free(cfg->rooms[i].id);
		free(cfg->rooms[i].locale);
		free(cfg->rooms[i].disclaimer);
		strlist_free(&cfg->rooms[i].intents);
	}
	free(cfg->rooms);
	cfg->rooms = NULL;
	cfg->nrooms = 0;
}

/* The contacts every install starts with: true anywhere, if general. */
static void
contacts_default(struct config *cfg)
{
	cfg->contacts = xcalloc(1, sizeof(*cfg->contacts));
	cfg->ncontacts = 1;
	cfg->contacts[0].locale = xstrdup("en");
	cfg->contacts[0].emergency = xstrdup("your local emergency number (for example 112 in "
	                                     "Europe, 911 in the US and Canada, 999 in the UK)");
	cfg->contacts[0].oncology = xstrdup("your oncology team's urgent or 24-hour line");
	cfg->contacts[0].crisis = xstrdup("a crisis line, for example 988 in the US and Canada "
	                                  "(call or text), or Samaritans on 116 123 in the UK "
	                                  "and Ireland");
	cfg->contacts[0].crisis_text = xstrdup("988 in the US and Canada, or SHOUT to 85258 in "
	                                       "the UK");
	cfg->contacts[0].moderators = xstrdup("the moderators of this room");
	cfg->contacts[0].verified = -1;
}

static void
set_default(struct config *cfg, const struct cfg_option *o)
{
	void *f = field(cfg, o);
	const char *p, *q;

	switch (o->type) {
	case CFG_BOOL:
		*(int *)f = strcmp(o->def, "true") == 0;
		break;
	case CFG_INT:
		*(long *)f = strtol(o->def, NULL, 10);
		break;
	case CFG_DOUBLE:
		*(double *)f = strtod(o->def, NULL);
		break;
	case CFG_STRING:
	case CFG_SECRET:
		free(*(char **)f);
		*(char **)f = xstrdup(o->def);
		break;
	case CFG_LIST:
		strlist_free(f);
		for (p = o->def; *p; p = *q ? q + 1 : q) {
			q = strchr(p, ',');
			if (q == NULL)
				q = p + strlen(p);
			{
				char *s = xstrndup(p, (size_t)(q - p));
				strlist_add(f, s);
				free(s);
			}
		}
		break;
	case CFG_ENUM:
		*(int *)f = enum_index(o->choices, o->def);
		break;
	case CFG_CONTACTS:
		contacts_free(cfg);
		contacts_default(cfg);
		break;
	case CFG_ROOMS:
		rooms_free(cfg);
		break;
	case CFG_TRANSPORT:
		*(int *)f = CFG_TRANSPORT_MATRIX;
		break;
	}
}

void
config_defaults(struct config *cfg)
{
	const struct cfg_option *o;

	memset(cfg, 0, sizeof(*cfg));
	for (o = options; o->name; o++)
		set_default(cfg, o);
}

void
config_free(struct config *cfg)
{
	const struct cfg_option *o;

	if (cfg == NULL)
		return;
	for (o = options; o->name; o++) {
		void *f = field(cfg, o);

		switch (o->type) {
		case CFG_STRING:
		case CFG_SECRET:
			if (o->type == CFG_SECRET && *(char **)f)
				memset(*(char **)f, 0, strlen(*(char **)f));
			free(*(char **)f);
			*(char **)f = NULL;
			break;
		case CFG_LIST:
			strlist_free(f);
			break;
		case CFG_CONTACTS:
			contacts_free(cfg);
			break;
		case CFG_ROOMS:
			rooms_free(cfg);
			break;
		default:
			break;
		}
	}
}

static const struct cfg_option *
option_find(const char *name)
{
	const struct cfg_option *o;

	for (o = options; o->name; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

/* Is path a section (a prefix of some option followed by '.')? */
static int
is_section(const char *path)
{
	const struct cfg_option *o;
	size_t n = strlen(path);

	for (o = options; o->name; o++)
		if (strncmp(o->name, path, n) == 0 && o->name[n] == '.')
			return 1;
	return 0;
}

int
config_is_top_key(const char *key)
{
	return option_find(key) != NULL || is_section(key);
}

/* The closest option or section name to path, for "did you mean". */
static const char *
closest(const char *path)
{
	static char best[128];
	const struct cfg_option *o;
	size_t bd = 4, d, n;
	const char *dot;

	best[0] = '\0';
	for (o = options; o->name; o++) {
		d = util_edit_distance(path, o->name);
		if (d < bd) {
			bd = d;
			snprintf(best, sizeof(best), "%s", o->name);
		}
		/* also each section prefix */
		for (dot = strchr(o->name, '.'); dot; dot = strchr(dot + 1, '.')) {
			n = (size_t)(dot - o->name);
			if (n >= sizeof(best))
				continue;
			{
				char sec[128];

				memcpy(sec, o->name, n);
				sec[n] = '\0';
				d = util_edit_distance(path, sec);
				if (d < bd) {
					bd = d;
					snprintf(best, sizeof(best), "%s", sec);
				}
			}
		}
	}
	return best[0] ? best : NULL;
}

/* Reads a secret file; refuses files readable by group or others. */
static char *
read_secret_file(const char *path, char **err)
{
	struct stat st;
	char *s;
	size_t n;

	if (stat(path, &st) == -1) {
		*err = xasprintf("cannot read secret file %s: %s", path, strerror(errno));
		return NULL;
	}
	if (st.st_mode & 077) {
		*err = xasprintf("secret file %s can be read by group or others (mode %03o); "
		                 "chmod 600 it",
		                 path, (unsigned)(st.st_mode & 0777));
		return NULL;
	}
	if ((s = file_read(path, 8192, &n)) == NULL) {
		*err = xasprintf("cannot read secret file %s: %s", path, strerror(errno));
		return NULL;
	}
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		s[--n] = '\0';
	if (n == 0) {
		free(s);
		*err = xasprintf("secret file %s is empty", path);
		return NULL;
	}
	return s;
}

static int
load_contacts(struct config *cfg, const struct json_doc *doc, const cJSON *obj,
              struct diag_list *diags)
{
	/* The first four are required, in the order of the loop below. */
	static const char *const keys[] = {"emergency",   "oncology", "crisis",  "moderators",
	                                   "crisis_text", "verified", "comment", NULL};
	const cJSON *loc, *x;
	int errors = 0;
	size_t i;

	if (!cJSON_IsObject(obj)) {
		json_diag(doc, diags, DIAG_ERROR, obj,
		          "\"contacts\" must be an object of locales, not %s", json_type_name(obj));
		return 1;
	}
	contacts_free(cfg);
	for (loc = obj->child; loc; loc = loc->next) {
		struct cfg_contacts c = {0};

		if (strcmp(loc->string, "comment") == 0)
			continue;
		if (!cJSON_IsObject(loc)) {
			json_diag(doc, diags, DIAG_ERROR, loc,
			          "contacts for \"%s\" must be an object, not %s", loc->string,
			          json_type_name(loc));
			errors++;
			continue;
		}
		errors += json_check_keys(doc, diags, loc, "contacts", keys);
		c.locale = xstrdup(loc->string);
		c.verified = -1;
		for (i = 0; i < 4; i++) {
			char **dst = i == 0   ? &c.emergency
			             : i == 1 ? &c.oncology
			             : i == 2 ? &c.crisis
			                      : &c.moderators;

			x = cJSON_GetObjectItemCaseSensitive(loc, keys[i]);
			if (x == NULL) {
				json_diag(doc, diags, DIAG_ERROR, loc,
				          "contacts for \"%s\" need \"%s\"", loc->string, keys[i]);
				errors++;
				*dst = xstrdup("");
			} else if (!cJSON_IsString(x) || x->valuestring[0] == '\0') {
				json_diag(doc, diags, DIAG_ERROR, x,
				          "\"%s\" must be a non-empty string", keys[i]);
				errors++;
				*dst = xstrdup("");
			} else {
				*dst = xstrdup(x->valuestring);
			}
		}
		/* Optional: a locale without a text line leaves it out. */
		x = cJSON_GetObjectItemCaseSensitive(loc, "crisis_text");
		if (x == NULL) {
			c.crisis_text = xstrdup("");
		} else if (!cJSON_IsString(x) || x->valuestring[0] == '\0') {
			json_diag(doc, diags, DIAG_ERROR, x,
			          "\"crisis_text\" must be a non-empty string (leave it out when "
			          "there is no crisis text line)");
			errors++;
			c.crisis_text = xstrdup("");
		} else {
			c.crisis_text = xstrdup(x->valuestring);
		}
		x = cJSON_GetObjectItemCaseSensitive(loc, "verified");
		/* lint's warning about the date points here */
		json_doc_linecol(doc, x ? json_doc_offset(doc, x) : json_doc_key_offset(doc, loc),
		                 &c.line, &c.col);
		if (x != NULL) {
			if (!cJSON_IsString(x) ||
			    (c.verified = date_parse_days(x->valuestring)) < 0) {
				json_diag(doc, diags, DIAG_ERROR, x,
				          "\"verified\" must be a date written YYYY-MM-DD");
				errors++;
			}
		}
		cfg->contacts =
		    xreallocarray(cfg->contacts, cfg->ncontacts + 1, sizeof(*cfg->contacts));
		cfg->contacts[cfg->ncontacts++] = c;
	}
	if (cfg->ncontacts == 0) {
		json_diag(doc, diags, DIAG_ERROR, obj, "\"contacts\" needs at least one locale");
		contacts_default(cfg);
		errors++;
	}
	return errors;
}

static int
load_rooms(struct config *cfg, const struct json_doc *doc, const cJSON *obj,
           struct diag_list *diags)
{
	static const char *const keys[] = {"answer", "locale",  "disclaimer", "intents",
	                                   "paused", "comment", NULL};
	const cJSON *r, *x, *e;
	int errors = 0;

	if (!cJSON_IsObject(obj)) {
		json_diag(doc, diags, DIAG_ERROR, obj,
		          "\"rooms\" must be an object of room ids (or \"default\"), not %s",
		          json_type_name(obj));
		return 1;
	}
	rooms_free(cfg);
	for (r = obj->child; r; r = r->next) {
		struct cfg_room room = {0};

		if (strcmp(r->string, "comment") == 0)
			continue;
		if (!cJSON_IsObject(r)) {
			json_diag(doc, diags, DIAG_ERROR, r,
			          "room \"%s\" must be an object, not %s", r->string,
			          json_type_name(r));
			errors++;
			continue;
		}
		errors += json_check_keys(doc, diags, r, "a room", keys);
		room.id = xstrdup(r->string);
		room.answer = -1;
		room.paused = -1;
		if ((x = cJSON_GetObjectItemCaseSensitive(r, "answer")) != NULL) {
			if (cJSON_IsString(x) && strcmp(x->valuestring, "auto") == 0)
				room.answer = CFG_ANSWER_AUTO;
			else if (cJSON_IsString(x) && strcmp(x->valuestring, "mention") == 0)
				room.answer = CFG_ANSWER_MENTION;
			else {
				json_diag(doc, diags, DIAG_ERROR, x,
				          "\"answer\" must be \"auto\" or \"mention\"");
				errors++;
			}
		}
		if ((x = cJSON_GetObjectItemCaseSensitive(r, "locale")) != NULL) {
			/* a room's locale has the bounds of responses.locale */
			const struct cfg_option *lo = option_find("responses.locale");

			if (!cJSON_IsString(x)) {
				json_diag(doc, diags, DIAG_ERROR, x,
				          "\"locale\" must be a string, not %s", json_type_name(x));
				errors++;
			} else if (!length_ok(x->valuestring, lo)) {
				json_diag(doc, diags, DIAG_ERROR, x,
				          "\"locale\" must be %.0f to %.0f characters", lo->min,
				          lo->max);
				errors++;
			} else {
				room.locale = xstrdup(x->valuestring);
			}
		}
		if ((x = cJSON_GetObjectItemCaseSensitive(r, "disclaimer")) != NULL) {
			if (!cJSON_IsString(x)) {
				json_diag(doc, diags, DIAG_ERROR, x,
				          "\"disclaimer\" must be a string");
				errors++;
			} else {
				room.disclaimer = xstrdup(x->valuestring);
			}
		}
		if ((x = cJSON_GetObjectItemCaseSensitive(r, "paused")) != NULL) {
			if (!cJSON_IsBool(x)) {
				json_diag(doc, diags, DIAG_ERROR, x,
				          "\"paused\" must be true or false");
				errors++;
			} else {
				room.paused = cJSON_IsTrue(x);
			}
		}
		if ((x = cJSON_GetObjectItemCaseSensitive(r, "intents")) != NULL) {
			if (!cJSON_IsArray(x)) {
				json_diag(
				    doc, diags, DIAG_ERROR, x,
				    "\"intents\" must be an array of intent ids (or \"prefix.*\")");
				errors++;
			} else {
				cJSON_ArrayForEach(e, x)
				{
					if (!cJSON_IsString(e)) {
						json_diag(doc, diags, DIAG_ERROR, e,
						          "an intent id must be a string");
						errors++;
					} else {
						strlist_add(&room.intents, e->valuestring);
					}
				}
			}
		}
		cfg->rooms = xreallocarray(cfg->rooms, cfg->nrooms + 1, sizeof(*cfg->rooms));
		cfg->rooms[cfg->nrooms++] = room;
	}
	return errors;
}

static int
transport_bit(const cJSON *v)
{
	if (cJSON_IsString(v) && strcmp(v->valuestring, "matrix") == 0)
		return CFG_TRANSPORT_MATRIX;
	if (cJSON_IsString(v) && strcmp(v->valuestring, "irc") == 0)
		return CFG_TRANSPORT_IRC;
	return 0;
}

static int
load_value(struct config *cfg, const struct json_doc *doc, const struct cfg_option *o,
           const cJSON *v, struct diag_list *diags)
{
	void *f = field(cfg, o);
	const cJSON *e;
	char num[32];

	switch (o->type) {
	case CFG_BOOL:
		if (!cJSON_IsBool(v)) {
			json_diag(doc, diags, DIAG_ERROR, v, "%s must be true or false, not %s",
			          o->name, json_type_name(v));
			return 1;
		}
		*(int *)f = cJSON_IsTrue(v);
		return 0;
	case CFG_INT:
		if (!cJSON_IsNumber(v)) {
			json_diag(doc, diags, DIAG_ERROR, v, "%s must be a whole number, not %s",
			          o->name, json_type_name(v));
			return 1;
		}
		if (v->valuedouble != floor(v->valuedouble)) {
			/* "not a number" would be wrong: it is one, with a fraction */
			number_text(doc, v, num, sizeof(num));
			json_diag(doc, diags, DIAG_ERROR, v, "%s must be a whole number, not %s",
			          o->name, num);
			return 1;
		}
		if (v->valuedouble < o->min || v->valuedouble > o->max) {
			json_diag(doc, diags, DIAG_ERROR, v, "%s must be from %.0f to %.0f",
			          o->name, o->min, o->max);
			return 1;
		}
		*(long *)f = (long)v->valuedouble;
		return 0;
	case CFG_DOUBLE:
		if (!cJSON_IsNumber(v)) {
			json_diag(doc, diags, DIAG_ERROR, v, "%s must be a number, not %s", o->name,
			          json_type_name(v));
			return 1;
		}
		if (v->valuedouble < o->min || v->valuedouble > o->max) {
			json_diag(doc, diags, DIAG_ERROR, v, "%s must be from %g to %g", o->name,
			          o->min, o->max);
			return 1;
		}
		*(double *)f = v->valuedouble;
		return 0;
	case CFG_STRING:
	case CFG_SECRET:
		if (!cJSON_IsString(v)) {
			json_diag(doc, diags, DIAG_ERROR, v, "%s must be a string, not %s", o->name,
			          json_type_name(v));
			return 1;
		}
		/* an empty string is too short too: min 0 is how "" is allowed */
		if (!length_ok(v->valuestring, o)) {
			json_diag(doc, diags, DIAG_ERROR, v, "%s must be %.0f to %.0f characters",
			          o->name, o->min, o->max);
			return 1;
		}
		free(*(char **)f);
		*(char **)f = xstrdup(v->valuestring);
		return 0;
	case CFG_LIST:
		if (!cJSON_IsArray(v)) {
			json_diag(doc, diags, DIAG_ERROR, v,
			          "%s must be an array of strings, not %s", o->name,
			          json_type_name(v));
			return 1;
		}
		strlist_free(f);
		cJSON_ArrayForEach(e, v)
		{
			if (!cJSON_IsString(e)) {
				json_diag(doc, diags, DIAG_ERROR, e,
				          "an entry of %s must be a string, not %s", o->name,
				          json_type_name(e));
				return 1;
			}
			/* "" would name nobody, or match every name */
			if (e->valuestring[strspn(e->valuestring, " \t\r\n")] == '\0') {
				json_diag(doc, diags, DIAG_ERROR, e,
				          "an entry of %s must not be empty", o->name);
				return 1;
			}
			strlist_add(f, e->valuestring);
		}
		if (((struct strlist *)f)->n < (size_t)o->min ||
		    ((struct strlist *)f)->n > (size_t)o->max) {
			json_diag(doc, diags, DIAG_ERROR, v, "%s must have %.0f to %.0f entries",
			          o->name, o->min, o->max);
			return 1;
		}
		return 0;
	case CFG_ENUM:
		if (!cJSON_IsString(v) || enum_index(o->choices, v->valuestring) < 0) {
			json_diag(doc, diags, DIAG_ERROR, v, "%s must be one of %s", o->name,
			          o->choices);
			return 1;
		}
		*(int *)f = enum_index(o->choices, v->valuestring);
		return 0;
	case CFG_CONTACTS:
		return load_contacts(cfg, doc, v, diags);
	case CFG_ROOMS:
		return load_rooms(cfg, doc, v, diags);
	case CFG_TRANSPORT: {
		int bits = 0, bit;

		if (cJSON_IsString(v)) {
			if ((bits = transport_bit(v)) == 0)
				goto bad_transport;
		} else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) {
			cJSON_ArrayForEach(e, v)
			{
				if ((bit = transport_bit(e)) == 0) {
					v = e;
					goto bad_transport;
				}
				bits |= bit;
			}
		} else {
			goto bad_transport;
		}
		*(int *)f = bits;
		return 0;
	bad_transport:
		json_diag(doc, diags, DIAG_ERROR, v,
		          "transport must be \"matrix\", \"irc\" or a list of them");
		return 1;
	}
	}
	return 0;
}

/*
 * Loads the options in obj (the section prefix, "" at the top). where[i]
 * is set to the value that options[i] was taken from, so that what is
 * checked after the walk (secret files) can still point at its place.
 */
static int
load_object(struct config *cfg, const struct json_doc *doc, const cJSON *obj, const char *prefix,
            const cJSON **where, struct diag_list *diags)
{
	const struct cfg_option *o;
	const cJSON *c;
	char path[256];
	const char *hint;
	int errors = 0, e;

	for (c = obj->child; c; c = c->next) {
		if (strcmp(c->string, "comment") == 0 || c->string[0] == '_')
			continue; /* "comment" and "_anything" are notes for people */
		snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", c->string);
		if ((o = option_find(path)) != NULL) {
			if ((e = load_value(cfg, doc, o, c, diags)) == 0)
				where[o - options] = c;
			errors += e;
		} else if (is_section(path)) {
			if (!cJSON_IsObject(c)) {
				json_diag(doc, diags, DIAG_ERROR, c,
				          "\"%s\" must be an object of options, not %s", path,
				          json_type_name(c));
				errors++;
			} else {
				errors += load_object(cfg, doc, c, path, where, diags);
			}
		} else if ((hint = closest(path)) != NULL) {
			json_diag_key(doc, diags, DIAG_ERROR, c,
			              "unknown option \"%s\" (did you mean \"%s\"?)", path, hint);
			errors++;
		} else {
			json_diag_key(doc, diags, DIAG_ERROR, c, "unknown option \"%s\"", path);
			errors++;
		}
	}
	return errors;
}

/* Each secret, and the option that may name a file holding it instead. */
static const struct {
	const char *secret; /* a CFG_SECRET option (its env is the fallback) */
	const char *file;   /* the CFG_STRING option with the file's path */
} secret_files[] = {
    {"matrix.password", "matrix.password_file"},
    {"matrix.access_token", "matrix.access_token_file"},
    {"irc.password", "irc.password_file"},
};

/*
 * Resolves secrets given as files or in the environment. A problem with a
 * file is reported at the option that named it (where[], from
 * load_object()), so doc must still be alive.
 */
static int
load_secrets(struct config *cfg, const struct json_doc *doc, const cJSON *const *where,
             struct diag_list *diags)
{
	const struct cfg_option *so, *fo;
	const cJSON *at;
	char **value, *v, *err;
	const char *path, *e;
	size_t i;
	int errors = 0;

	for (i = 0; i < NELEM(secret_files); i++) {
		so = option_find(secret_files[i].secret);
		fo = option_find(secret_files[i].file);
		value = field(cfg, so);
		path = *(char **)field(cfg, fo);
		at = where[fo - options];
		if (path[0]) {
			if ((*value)[0])
				err = xasprintf("%s is given both in the file and as %s: keep one",
				                so->name, fo->name);
			else if ((v = read_secret_file(path, &err)) != NULL) {
				free(*value);
				*value = v;
				continue;
			}
			/* a path is only ever set from the file, so at is known */
			if (at)
				json_diag(doc, diags, DIAG_ERROR, at, "%s", err);
			else
				diag_add(diags, DIAG_ERROR, doc->file, 0, 0, "%s", err);
			free(err);
			errors++;
		} else if ((*value)[0] == '\0' && (e = getenv(so->env)) != NULL && *e) {
			free(*value);
			*value = xstrdup(e);
		}
	}
	return errors;
}

/* Nicks longer than this are refused by some servers (RFC 2812; ngircd's default). */
#define CFG_SHORTEST_NICKLEN 9

/*
 * Checks of values that need the whole file read: the metrics address as
 * the daemon reads it, a nick too long for some servers, and (mode: the
 * file's permissions, 0 for a string) secrets written in a file that group
 * or others can read. Reported at the option's place; returns the errors.
 */
static int
check_values(struct config *cfg, const struct json_doc *doc, const cJSON *const *where,
             unsigned mode, struct diag_list *diags)
{
	const struct cfg_option *o;
	const char *why;
	size_t i;
	int errors = 0;

	o = option_find("metrics.listen");
	if (cfg->metrics_listen[0] && metrics_listen_check(cfg->metrics_listen, &why) == -1) {
		if (where[o - options])
			json_diag(doc, diags, DIAG_ERROR, where[o - options], "metrics.listen: %s",
			          why);
		else
			diag_add(diags, DIAG_ERROR, doc->file, 0, 0, "metrics.listen: %s", why);
		errors++;
	}
#ifndef HAVE_MICROHTTPD
	if (cfg->metrics_listen[0] && where[o - options])
		json_diag(doc, diags, DIAG_WARNING, where[o - options],
		          "metrics.listen is set, but faqbot was built without libmicrohttpd: "
		          "nothing will be served");
#endif
	o = option_find("irc.nick");
	if ((cfg->transports & CFG_TRANSPORT_IRC) && where[o - options] &&
	    utf8_length(cfg->irc_nick) > CFG_SHORTEST_NICKLEN)
		json_diag(doc, diags, DIAG_WARNING, where[o - options],
		          "irc.nick is %zu characters: some servers allow only %d (RFC 2812, "
		          "ngircd's default); there the bot cuts it to the server's NICKLEN",
		          utf8_length(cfg->irc_nick), CFG_SHORTEST_NICKLEN);
	for (i = 0; mode & 077 && i < NELEM(secret_files); i++) {
		const struct cfg_option *so = option_find(secret_files[i].secret);

		if (where[so - options] == NULL || (*(char **)field(cfg, so))[0] == '\0')
			continue;
		json_diag(doc, diags, DIAG_WARNING, where[so - options],
		          "%s is written in this file, which group or others can read (mode "
		          "%03o): put it in %s (a file only the bot can read) or in $%s, or "
		          "chmod 600 this file",
		          so->name, mode & 0777, secret_files[i].file, so->env);
	}
	return errors;
}

/* Loads text (from a file of the given mode, or 0 for a string) over cfg. */
static int
load_text(struct config *cfg, const char *name, const char *text, unsigned mode,
          struct diag_list *diags)
{
	const cJSON *where[NELEM(options)] = {0}; /* where each option was read */
	struct json_doc doc;
	int errors;

	if (json_doc_parse(&doc, name, text, strlen(text), diags) == -1) {
		json_doc_free(&doc);
		return -1;
	}
	if (!cJSON_IsObject(doc.root)) {
		json_diag(&doc, diags, DIAG_ERROR, doc.root,
		          "the configuration must be a JSON object, not %s",
		          json_type_name(doc.root));
		json_doc_free(&doc);
		return -1;
	}
	errors = load_object(cfg, &doc, doc.root, "", where, diags);
	errors += load_secrets(cfg, &doc, where, diags);
	errors += check_values(cfg, &doc, where, mode, diags);
	json_doc_free(&doc);
	return errors ? -1 : 0;
}

int
config_load_string(struct config *cfg, const char *name, const char *text, struct diag_list *diags)
{
	return load_text(cfg, name, text, 0, diags);
}

int
config_load(struct config *cfg, const char *file, struct diag_list *diags)
{
	struct stat st;
	char *text;
	size_t len;
	int rc;

	if ((text = file_read(file, 1 << 20, &len)) == NULL) {
		diag_add(diags, DIAG_ERROR, file, 0, 0, "cannot read: %s",
		         errno == EFBIG ? "larger than 1 MiB" : strerror(errno));
		return -1;
	}
	if (strlen(text) != len) {
		diag_add(diags, DIAG_ERROR, file, 0, 0, "NUL byte in file");
		free(text);
		return -1;
	}
	/* A secret written in it is only as private as its mode. */
	rc = load_text(cfg, file, text, stat(file, &st) == 0 ? (unsigned)st.st_mode : 0, diags);
	free(text);
	return rc;
}

const struct cfg_contacts *
config_contacts(const struct config *cfg, const char *locale)
{
	size_t i;

	for (i = 0; locale && i < cfg->ncontacts; i++)
		if (strcmp(cfg->contacts[i].locale, locale) == 0)
			return &cfg->contacts[i];
	for (i = 0; i < cfg->ncontacts; i++)
		if (strcmp(cfg->contacts[i].locale, "en") == 0)
			return &cfg->contacts[i];
	return cfg->ncontacts ? &cfg->contacts[0] : NULL;
}

void
config_room(const struct config *cfg, const char *room, struct cfg_room *out)
{
	const struct cfg_room *def = NULL, *r = NULL;
	size_t i;

	for (i = 0; i < cfg->nrooms; i++) {
		if (strcmp(cfg->rooms[i].id, "default") == 0)
			def = &cfg->rooms[i];
		else if (room && strcmp(cfg->rooms[i].id, room) == 0)
			r = &cfg->rooms[i];
	}
	memset(out, 0, sizeof(*out));
	out->id = (char *)(room ? room : "default");
	out->answer = CFG_ANSWER_AUTO;
	out->locale = cfg->locale;
	out->disclaimer = cfg->disclaimer;
	out->paused = 0;
	for (i = 0; i < 2; i++) {
		const struct cfg_room *x = i == 0 ? def : r;

		if (x == NULL)
			continue;
		if (x->answer >= 0)
			out->answer = x->answer;
		if (x->locale)
			out->locale = x->locale;
		if (x->disclaimer)
			out->disclaimer = x->disclaimer;
		if (x->paused >= 0)
			out->paused = x->paused;
		if (x->intents.n)
			out->intents = x->intents;
	}
}

void
config_check(const struct config *cfg, const char *file, long today, struct diag_list *diags)
{
	size_t i;

	if (cfg->model && cfg->model_safety_alert > cfg->model_safety_answer)
		diag_add(diags, DIAG_WARNING, file, 0, 0,
		         "model.safety_alert_threshold (%.2f) is above "
		         "model.safety_answer_threshold (%.2f): no silent alert can go out",
		         cfg->model_safety_alert, cfg->model_safety_answer);

	for (i = 0; i < cfg->ncontacts; i++) {
		const struct cfg_contacts *c = &cfg->contacts[i];

		if (c->verified < 0)
			diag_add(
			    diags, DIAG_WARNING, file, c->line, c->col,
			    "contacts for \"%s\" have no \"verified\" date: check the numbers for "
			    "your region and set it",
			    c->locale);
		else if (today - c->verified > cfg->contacts_max_age_days)
			diag_add(
			    diags, DIAG_WARNING, file, c->line, c->col,
			    "contacts for \"%s\" were last verified %ld days ago (more than %ld): "
			    "check the numbers and update \"verified\"",
			    c->locale, today - c->verified, cfg->contacts_max_age_days);
	}
	/* a named _file that could not be read was reported by the loader, at its place */
	if ((cfg->transports & CFG_TRANSPORT_MATRIX) && cfg->mx_homeserver[0] &&
	    cfg->mx_access_token[0] == '\0' && cfg->mx_password[0] == '\0' &&
	    cfg->mx_password_file[0] == '\0' && cfg->mx_access_token_file[0] == '\0')
		diag_add(diags, DIAG_ERROR, file, 0, 0,
		         "matrix needs a password or an access token (in the file, a _file, or "
		         "FAQBOT_MATRIX_PASSWORD / FAQBOT_MATRIX_ACCESS_TOKEN)");
	if ((cfg->transports & CFG_TRANSPORT_MATRIX) && cfg->mx_homeserver[0] &&
	    cfg->mx_user_id[0] == '\0' && cfg->mx_access_token[0] == '\0')
		diag_add(diags, DIAG_ERROR, file, 0, 0, "matrix.user_id is needed to log in");
	if ((cfg->transports & CFG_TRANSPORT_IRC) && cfg->irc_server[0] == '\0')
		diag_add(diags, DIAG_ERROR, file, 0, 0,
		         "transport includes irc but irc.server is empty");
	if ((cfg->transports & CFG_TRANSPORT_IRC) && cfg->irc_sasl_user[0] &&
	    cfg->irc_password[0] == '\0' && cfg->irc_password_file[0] == '\0')
		diag_add(diags, DIAG_ERROR, file, 0, 0,
		         "irc.sasl_user is set but there is no irc.password (or _file, or "
		         "FAQBOT_IRC_PASSWORD)");
}

void
config_print_help(FILE *fp)
{
	static const char *tname[] = {"bool",   "integer",         "number", "string",
	                              "secret", "list of strings", "choice", "object",
	                              "object", "string or list"};
	const struct cfg_option *o;

	for (o = options; o->name; o++) {
		fprintf(fp, "%s (%s", o->name, tname[o->type]);
		if (o->type == CFG_INT || o->type == CFG_DOUBLE)
			fprintf(fp, ", %g to %g", o->min, o->max);
		if (o->type == CFG_STRING || o->type == CFG_SECRET)
			fprintf(fp, ", %g to %g characters", o->min, o->max);
		if (o->type == CFG_LIST)
			fprintf(fp, ", %g to %g entries", o->min, o->max);
		if (o->type == CFG_ENUM)
			fprintf(fp, ": %s", o->choices);
		if (o->def && o->type != CFG_SECRET)
			fprintf(fp, ", default \"%s\"", o->def);
		if (o->env)
			fprintf(fp, ", or $%s", o->env);
		fprintf(fp, ")\n    %s\n", o->help);
	}
}

char *
config_state_dir(const struct config *cfg)
{
	const char *e = getenv("STATE_DIRECTORY");

	if (cfg->state_dir && cfg->state_dir[0])
		return xstrdup(cfg->state_dir);
	if (e && *e) {
		const char *colon = strchr(e, ':');

		return colon ? xstrndup(e, (size_t)(colon - e)) : xstrdup(e);
	}
	return xstrdup("state");
}
