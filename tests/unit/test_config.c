/*
 * Unit tests for config.c: the defaults (and that they agree with the
 * matcher's), every option type read from JSON, the errors an admin gets
 * with their file:line:col (bounds, types, unknown keys with "did you
 * mean"), secrets from files (refused when group or others can read them)
 * and from the environment, and how a room's profile is merged over
 * "default".
 *
 * Configuration texts are written with ' for " (see cfg_json()).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "config.h"
#include "diag.h"
#include "helpers.h"
#include "match.h"
#include "util.h"

/* ' becomes ", so that configurations stay readable here (caller frees). */
static char *
cfg_json(const char *s)
{
	char *j = xstrdup(s), *p;

	for (p = j; *p; p++)
		if (*p == '\'')
			*p = '"';
	return j;
}

/* Loads text over the defaults into c; returns config_load_string's result. */
static int
load(struct config *c, struct diag_list *d, const char *text)
{
	char *j = cfg_json(text);
	int rc;

	config_defaults(c);
	diag_list_init(d);
	rc = config_load_string(c, "faqbot.json", j, d);
	free(j);
	return rc;
}

/* The first diagnostic, formatted (caller frees), or "" when there is none. */
static char *
first_diag(const struct diag_list *d)
{
	return d->n ? diag_format(&d->d[0]) : xstrdup("");
}

/* --- defaults ------------------------------------------------------------- */

static void
test_defaults(void **state)
{
	struct config c;
	struct diag_list d;
	struct match_opts mo;
	const struct cfg_contacts *en;

	(void)state;
	check_begin();
	config_defaults(&c);
	match_opts_default(&mo);
	/* what the matcher uses without a config is what the config defaults to */
	CHECK(c.threshold == mo.threshold, "threshold %g vs matcher %g", c.threshold, mo.threshold);
	CHECK(c.margin == mo.margin, "margin %g vs matcher %g", c.margin, mo.margin);
	CHECK(c.match_limit == mo.match_limit, "match_limit %ld vs %ld", c.match_limit,
	      mo.match_limit);
	CHECK(c.depth_limit == mo.depth_limit, "depth_limit %ld vs %ld", c.depth_limit,
	      mo.depth_limit);
	/* as documented */
	CHECK(c.threshold == 0.5 && c.margin == 0.15, "threshold and margin (docs/intents.md)");
	CHECK(c.allow_drafts == 0, "drafts are not sent by default");
	CHECK(c.bot_names.n == 1 && strcmp(c.bot_names.v[0], "faqbot") == 0, "bot_names");
	CHECK_STR(c.locale, "en", "responses.locale");
	CHECK_STR(c.command_prefix, "!faq", "policy.command_prefix");
	CHECK(c.max_grade == 8, "responses.max_grade %g", c.max_grade);
	CHECK(c.transports == CFG_TRANSPORT_MATRIX, "transport");
	CHECK(c.irc_port == 6697 && c.irc_tls && c.irc_tls_verify, "irc TLS on 6697");
	CHECK(c.log_chat_text == 0, "patients' words are not logged by default");
	CHECK(c.nrooms == 0, "no rooms");
	CHECK(c.disclaimer && has(c.disclaimer, "not medical advice"), "disclaimer");
	CHECK(c.mx_password && c.mx_password[0] == '\0', "no password");
	en = config_contacts(&c, "en");
	CHECK(en != NULL && c.ncontacts == 1 && strcmp(en->locale, "en") == 0, "contacts for en");
	if (en) {
		CHECK(en->emergency[0] && en->oncology[0] && en->crisis[0] && en->moderators[0] &&
		          en->crisis_text[0],
		      "every default contact is filled");
		CHECK(has(en->crisis, "988 in the US and Canada (call or text)"),
		      "the default crisis line says 988 takes texts: %s", en->crisis);
		CHECK(en->verified == -1, "default contacts are not verified");
	}
	CHECK(config_contacts(&c, "de") == en, "other locales fall back to en");
	config_free(&c);

	/* an empty file changes nothing */
	CHECK(load(&c, &d, "{}") == 0 && d.n == 0, "{} is refused");
	CHECK(c.threshold == 0.5 && strcmp(c.command_prefix, "!faq") == 0, "{} changed defaults");
	config_free(&c);
	diag_list_free(&d);
	CHECK_END();
}

/* --- every option type ----------------------------------------------------- */

typedef void (*cfg_check_fn)(const struct config *c);

static void
chk_bool(const struct config *c)
{
	CHECK(c->allow_drafts == 1 && c->irc_tls == 0, "bools");
}

static void
chk_int(const struct config *c)
{
	CHECK(c->cooldown_s == 0 && c->irc_port == 6667 && c->match_limit == 10000000,
	      "ints: %ld %ld %ld", c->cooldown_s, c->irc_port, c->match_limit);
}

static void
chk_double(const struct config *c)
{
	CHECK(c->threshold == 0.75 && c->margin == 1.0 && c->max_grade == 20, "doubles: %g %g %g",
	      c->threshold, c->margin, c->max_grade);
}

static void
chk_string(const struct config *c)
{
	CHECK_STR(c->disclaimer, "Ask your own team.", "responses.disclaimer");
	CHECK_STR(c->intents_dir, "/srv/faqbot/intents", "intents_dir");
	CHECK_STR(c->command_prefix, "!help", "policy.command_prefix");
}

static void
chk_prefix_utf8(const struct config *c)
{
	CHECK(strlen(c->command_prefix) == 32, "policy.command_prefix: %zu bytes",
	      strlen(c->command_prefix));
}

static void
chk_list(const struct config *c)
{
	CHECK(c->bot_names.n == 2 && strlist_has(&c->bot_names, "faqbot") &&
	          strlist_has(&c->bot_names, "helper"),
	      "match.bot_names");
	CHECK(c->irc_channels.n == 2 && strcmp(c->irc_channels.v[1], "#b key") == 0,
	      "irc.channels");
	CHECK(c->moderators.n == 0, "an empty list");
}

static void
chk_enum(const struct config *c)
{
	CHECK(c->log_level == 3, "log.level debug is the 4th choice, got %d", c->log_level);
}

static void
chk_contacts(const struct config *c)
{
	const struct cfg_contacts *de = config_contacts(c, "de"), *fr = config_contacts(c, "fr");

	CHECK(c->ncontacts == 2, "%zu locales", c->ncontacts);
	CHECK(de && strcmp(de->locale, "de") == 0 && strcmp(de->emergency, "112") == 0,
	      "contacts for de");
	CHECK(de && de->verified == date_parse_days("2026-01-15"), "verified date");
	CHECK(fr && strcmp(fr->locale, "en") == 0, "fr falls back to en");
	CHECK(fr && fr->verified == -1, "en has no verified date");
	/* crisis_text is optional: given for de, left out for en */
	CHECK(de && strcmp(de->crisis_text, "0800 111 0 111 per SMS") == 0, "de's crisis_text");
	CHECK(fr && fr->crisis_text && fr->crisis_text[0] == '\0', "en has no crisis_text");
}

static void
chk_contacts_no_en(const struct config *c)
{
	const struct cfg_contacts *x = config_contacts(c, "fr");

	CHECK(x && strcmp(x->locale, "de") == 0, "without en, the first locale is used");
}

static void
chk_rooms(const struct config *c)
{
	CHECK(c->nrooms == 2, "%zu rooms", c->nrooms);
	if (c->nrooms == 2) {
		CHECK_STR(c->rooms[0].id, "default", "first room");
		CHECK(c->rooms[1].answer == CFG_ANSWER_MENTION && c->rooms[1].paused == 1 &&
		          c->rooms[1].intents.n == 2,
		      "room settings");
	}
}

static void
chk_transport_irc(const struct config *c)
{
	CHECK(c->transports == CFG_TRANSPORT_IRC, "transport irc");
}

static void
chk_transport_both(const struct config *c)
{
	CHECK(c->transports == (CFG_TRANSPORT_IRC | CFG_TRANSPORT_MATRIX), "both transports");
}

static void
chk_notes(const struct config *c)
{
	CHECK(c->threshold == 0.6, "options next to notes are read");
}

static const struct {
	const char *name;
	const char *json;
	cfg_check_fn fn;
} type_cases[] = {
    {"bool", "{'responses': {'allow_drafts': true}, 'irc': {'tls': false}}", chk_bool},
    {"int",
     "{'policy': {'cooldown_s': 0}, 'irc': {'port': 6667},"
     " 'match': {'match_limit': 10000000}}",
     chk_int},
    {"double",
     "{'match': {'threshold': 0.75, 'ambiguity_margin': 1},"
     " 'responses': {'max_grade': 20}}",
     chk_double},
    {"string",
     "{'responses': {'disclaimer': 'Ask your own team.'},"
     " 'intents_dir': '/srv/faqbot/intents', 'policy': {'command_prefix': '!help'}}",
     chk_string},
    {"string of 16 characters in 32 bytes",
     "{'policy': {'command_prefix': '\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
     "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9'}}",
     chk_prefix_utf8},
    {"list",
     "{'match': {'bot_names': ['faqbot', 'helper']}, 'irc': {'channels': ['#a', '#b "
     "key']}, 'moderation': {'users': []}}",
     chk_list},
    {"enum", "{'log': {'level': 'debug'}}", chk_enum},
    {"contacts",
     "{'contacts': {'en': {'emergency': '999', 'oncology': 'the ward', 'crisis': '116 123',"
     " 'moderators': 'the mods'}, 'de': {'emergency': '112', 'oncology': 'die Station',"
     " 'crisis': '0800 111 0 111', 'crisis_text': '0800 111 0 111 per SMS',"
     " 'moderators': 'die Moderatoren', 'verified': '2026-01-15'}}}",
     chk_contacts},
    {"contacts without en",
     "{'contacts': {'de': {'emergency': '112', 'oncology': 'x', 'crisis': 'y',"
     " 'moderators': 'z'}}}",
     chk_contacts_no_en},
    {"rooms",
     "{'rooms': {'default': {'answer': 'auto'}, '!r:example.org': {'answer': 'mention',"
     " 'paused': true, 'intents': ['care.*', 'safety.crisis']}}}",
     chk_rooms},
    {"transport string", "{'transport': 'irc'}", chk_transport_irc},
    {"transport list", "{'transport': ['matrix', 'irc']}", chk_transport_both},
    {"notes for people",
     "{'comment': 'x', '_old': {'anything': 1},"
     " 'match': {'comment': 'y', 'threshold': 0.6}}",
     chk_notes},
};

static void
test_option_types(void **state)
{
	struct config c;
	struct diag_list d;
	size_t i;
	char *msg;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(type_cases); i++) {
		int rc = load(&c, &d, type_cases[i].json);

		msg = first_diag(&d);
		if (CHECK(rc == 0 && d.n == 0, "%s: refused: %s", type_cases[i].name, msg))
			type_cases[i].fn(&c);
		free(msg);
		config_free(&c);
		diag_list_free(&d);
	}
	CHECK_END();
}

/* --- errors with their place ---------------------------------------------- */

static const struct {
	const char *json;
	const char *want; /* the first diagnostic, formatted */
} error_cases[] = {
    {"{'match': {'threshold': 11}}", "faqbot.json:1:25: error: match.threshold must be from 0 "
                                     "to 10"},
    {"{'match': {'threshold': -0.1}}", "faqbot.json:1:25: error: match.threshold must be from "
                                       "0 to 10"},
    {"{\n  'match': {\n    'threshold': 11\n  }\n}",
     "faqbot.json:3:18: error: match.threshold must be from 0 to 10"},
    {"{'match': {'match_limit': 999}}", "faqbot.json:1:27: error: match.match_limit must be "
                                        "from 1000 to 10000000"},
    {"{'policy': {'cooldown_s': 86401}}", "faqbot.json:1:27: error: policy.cooldown_s must be "
                                          "from 0 to 86400"},
    {"{'irc': {'port': 0}}", "faqbot.json:1:18: error: irc.port must be from 1 to 65535"},
    {"{'match': {'match_limit': '100'}}", "faqbot.json:1:27: error: match.match_limit must be a "
                                          "whole number, not a string"},
    {"{'responses': {'allow_drafts': 'true'}}",
     "faqbot.json:1:32: error: responses.allow_drafts must be true or false, not a string"},
    {"{'match': {'threshold': '0.5'}}", "faqbot.json:1:25: error: match.threshold must be a "
                                        "number, not a string"},
    {"{'log': {'level': 'verbose'}}", "faqbot.json:1:19: error: log.level must be one of "
                                      "error|warn|info|debug"},
    {"{'policy': {'command_prefix': '!averyveryverylong'}}",
     "faqbot.json:1:31: error: policy.command_prefix must be 1 to 16 characters"},
    {"{'policy': {'command_prefix': ''}}",
     "faqbot.json:1:31: error: policy.command_prefix must be 1 to 16 characters"},
    {"{'irc': {'nick': ''}}", "faqbot.json:1:18: error: irc.nick must be 1 to 30 characters"},
    {"{'responses': {'locale': ''}}",
     "faqbot.json:1:26: error: responses.locale must be 2 to 16 characters"},
    {"{'responses': {'fallback': ''}}",
     "faqbot.json:1:28: error: responses.fallback must be 1 to 1000 characters"},
    /* characters, as the message says, not bytes: 17 of them, 34 bytes */
    {"{'policy': {'command_prefix': '\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
     "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9'}}",
     "faqbot.json:1:31: error: policy.command_prefix must be 1 to 16 characters"},
    {"{'match': {'match_limit': 1.5}}", "faqbot.json:1:27: error: match.match_limit must be a "
                                        "whole number, not 1.5"},
    {"{'match': {'match_limit': 25e-1}}", "faqbot.json:1:27: error: match.match_limit must be "
                                          "a whole number, not 25e-1"},
    {"{'rooms': {'!a:b': {'locale': ''}}}",
     "faqbot.json:1:31: error: \"locale\" must be 2 to 16 characters"},
    {"{'responses': {'disclaimer': 5}}",
     "faqbot.json:1:30: error: responses.disclaimer must be a string, not a number"},
    {"{'match': {'bot_names': 'faqbot'}}", "faqbot.json:1:25: error: match.bot_names must be "
                                           "an array of strings, not a string"},
    {"{'match': {'bot_names': []}}", "faqbot.json:1:25: error: match.bot_names must have 1 to "
                                     "64 entries"},
    {"{'match': {'bot_names': ['a', 3]}}", "faqbot.json:1:31: error: an entry of "
                                           "match.bot_names must be a string, not a number"},
    {"{'match': {'bot_names': ['faqbot', '']}}", "faqbot.json:1:36: error: an entry of "
                                                 "match.bot_names must not be empty"},
    {"{'irc': {'channels': [' ']}}", "faqbot.json:1:23: error: an entry of "
                                     "irc.channels must not be empty"},
    {"{'transport': 'xmpp'}", "faqbot.json:1:15: error: transport must be \"matrix\", \"irc\" "
                              "or a list of them"},
    {"{'transport': ['matrix', 'xmpp']}", "faqbot.json:1:26: error: transport must be "
                                          "\"matrix\", \"irc\" or a list of them"},
    {"{'contacts': {'en': {'emergency': '112'}}}",
     "faqbot.json:1:21: error: contacts for \"en\" need \"oncology\""},
    {"{'contacts': {'en': {'emergency': '', 'oncology': 'a', 'crisis': 'b', 'moderators': "
     "'c'}}}",
     "faqbot.json:1:35: error: \"emergency\" must be a non-empty string"},
    {"{'contacts': {'en': {'emergency': '1', 'oncology': 'a', 'crisis': 'b', 'moderators': "
     "'c', 'verified': '2026-13-01'}}}",
     "faqbot.json:1:103: error: \"verified\" must be a date written YYYY-MM-DD"},
    {"{'contacts': {}}", "faqbot.json:1:14: error: \"contacts\" needs at least one locale"},
    {"{'contacts': {'en': {'emergency': '1', 'oncology': 'a', 'crisis': 'b', 'moderators': "
     "'c', 'crisis_text': ''}}}",
     "faqbot.json:1:106: error: \"crisis_text\" must be a non-empty string (leave it out when "
     "there is no crisis text line)"},
    {"{'contacts': {'en': {'emergency': '1', 'oncology': 'a', 'crisis': 'b', 'moderators': "
     "'c', 'crisis_txt': 'x'}}}",
     "faqbot.json:1:91: error: unknown key \"crisis_txt\" in contacts (did you mean "
     "\"crisis_text\"?)"},
    {"{'rooms': {'!a:b': {'answer': 'sometimes'}}}",
     "faqbot.json:1:31: error: \"answer\" must be \"auto\" or \"mention\""},
    {"{'rooms': {'!a:b': {'paused': 1}}}",
     "faqbot.json:1:31: error: \"paused\" must be true or false"},
    {"{'rooms': {'!a:b': {'intnets': []}}}",
     "faqbot.json:1:21: error: unknown key \"intnets\" in a room (did you mean \"intents\"?)"},
    {"{'match': 5}", "faqbot.json:1:11: error: \"match\" must be an object of options, not a "
                     "number"},
    {"{'match': {'treshold': 0.7}}",
     "faqbot.json:1:12: error: unknown option \"match.treshold\" (did you mean "
     "\"match.threshold\"?)"},
    {"{\n  'responses': {\n    'allow_draft': true\n  }\n}",
     "faqbot.json:3:5: error: unknown option \"responses.allow_draft\" (did you mean "
     "\"responses.allow_drafts\"?)"},
    {"{'matchh': {'threshold': 0.7}}",
     "faqbot.json:1:2: error: unknown option \"matchh\" (did you mean \"match\"?)"},
    {"{'zzzzzzzzzz': 1}", "faqbot.json:1:2: error: unknown option \"zzzzzzzzzz\""},
    {"[]", "faqbot.json:1:1: error: the configuration must be a JSON object, not an array"},
    /* at the comma, which is what to delete (the '}' may be lines below) */
    {"{'match': {'threshold': 0.5,}}", "faqbot.json:1:28: error: trailing comma before '}'"},
    /* what `run` would refuse to listen on, --check refuses too */
    {"{'metrics': {'listen': '0.0.0.0:9464'}}",
     "faqbot.json:1:24: error: metrics.listen: not a loopback address (only 127.0.0.0/8 and "
     "[::1] are accepted)"},
    {"{'metrics': {'listen': 'localhost'}}",
     "faqbot.json:1:24: error: metrics.listen: expected host:port"},
    {"{'metrics': {'listen': '127.0.0.1:http'}}",
     "faqbot.json:1:24: error: metrics.listen: the port is not a number"},
    {"{'metrics': {'listen': '::1:9464'}}",
     "faqbot.json:1:24: error: metrics.listen: write an IPv6 address in brackets: [::1]:port"},
    {"{'metrics': {'listen': '[::2]:9464'}}",
     "faqbot.json:1:24: error: metrics.listen: not a loopback address (only [::1] is accepted)"},
};

static void
test_errors(void **state)
{
	struct config c;
	struct diag_list d;
	size_t i;
	char *got;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(error_cases); i++) {
		int rc = load(&c, &d, error_cases[i].json);

		got = first_diag(&d);
		CHECK(rc == -1 && d.errors > 0, "%s: accepted", error_cases[i].json);
		CHECK_STR(got, error_cases[i].want, error_cases[i].json);
		free(got);
		config_free(&c);
		diag_list_free(&d);
	}
	CHECK_END();
}

/* A fraction where a whole number is needed: the message must not say "not a number". */
static void
test_fraction_for_integer(void **state)
{
	struct config c;
	struct diag_list d;

	(void)state;
	check_begin();
	CHECK(load(&c, &d, "{'match': {'match_limit': 1.5}}") == -1, "1.5 accepted");
	CHECK(d.n == 1 && has(d.d[0].msg, "whole number") && !has(d.d[0].msg, "not a number"),
	      "message: \"%s\"", d.n ? d.d[0].msg : "");
	config_free(&c);
	diag_list_free(&d);
	CHECK_END();
}

/* --- secrets ------------------------------------------------------------------- */

static void
test_secret_files(void **state)
{
	char dir[64], path[128], json[512], want[256];
	struct config c;
	struct diag_list d;

	(void)state;
	check_begin();
	tmp_dir(dir);
	snprintf(path, sizeof(path), "%s/password", dir);
	tmp_write(dir, "password", "s3cret pass\n");

	/* readable by the group: refused, and the message says what to do */
	chmod(path, 0640);
	snprintf(json, sizeof(json), "{'matrix': {'password_file': '%s'}}", path);
	CHECK(load(&c, &d, json) == -1, "a group-readable secret file is accepted");
	snprintf(want, sizeof(want),
	         "secret file %s can be read by group or others (mode 640); chmod 600 it", path);
	CHECK(d.n == 1 && strcmp(d.d[0].msg, want) == 0, "message \"%s\"", d.n ? d.d[0].msg : "");
	/* at the value of password_file: {"matrix": {"password_file": "... */
	CHECK(d.n == 1 && d.d[0].line == 1 && d.d[0].col == 30,
	      "the refusal is not at the option that named the file (%d:%d)",
	      d.n ? d.d[0].line : -1, d.n ? d.d[0].col : -1);
	CHECK(c.mx_password[0] == '\0', "the secret was read anyway");
	config_free(&c);
	diag_list_free(&d);

	/* readable by others only: refused too */
	chmod(path, 0604);
	CHECK(load(&c, &d, json) == -1, "an other-readable secret file is accepted");
	config_free(&c);
	diag_list_free(&d);

	/* 0600 and 0400: read, without the trailing newline */
	chmod(path, 0600);
	CHECK(load(&c, &d, json) == 0 && d.n == 0, "a 0600 secret file is refused");
	CHECK_STR(c.mx_password, "s3cret pass", "password from the file");
	config_free(&c);
	diag_list_free(&d);
	chmod(path, 0400);
	CHECK(load(&c, &d, json) == 0, "a 0400 secret file is refused");
	config_free(&c);
	diag_list_free(&d);
	chmod(path, 0600);

	/* the same secret in the file and in a _file: which one? refused */
	snprintf(json, sizeof(json), "{'matrix': {'password': 'x', 'password_file': '%s'}}", path);
	CHECK(load(&c, &d, json) == -1, "both a password and a password_file are accepted");
	CHECK(d.n == 1 && has(d.d[0].msg, "keep one"), "message \"%s\"", d.n ? d.d[0].msg : "");
	CHECK(d.n == 1 && d.d[0].line == 1 && d.d[0].col == 47, "\"keep one\" at %d:%d",
	      d.n ? d.d[0].line : -1, d.n ? d.d[0].col : -1);
	config_free(&c);
	diag_list_free(&d);

	/* empty and missing files */
	tmp_write(dir, "empty", "\n");
	snprintf(json, sizeof(json), "{'irc': {'password_file': '%s/empty'}}", dir);
	CHECK(load(&c, &d, json) == -1 && d.n == 1 && has(d.d[0].msg, "is empty"),
	      "an empty secret file: \"%s\"", d.n ? d.d[0].msg : "");
	config_free(&c);
	diag_list_free(&d);
	snprintf(json, sizeof(json), "{'matrix': {'access_token_file': '%s/missing'}}", dir);
	CHECK(load(&c, &d, json) == -1 && d.n == 1 && has(d.d[0].msg, "No such file"),
	      "a missing secret file: \"%s\"", d.n ? d.d[0].msg : "");
	config_free(&c);
	diag_list_free(&d);

	tmp_remove(dir);
	CHECK_END();
}

/*
 * A secret written in the configuration itself, when group or others can
 * read the file: a warning at the secret, at --check and at start. The same
 * file at 0600, or a secret given as a file, says nothing.
 */
static void
test_inline_secret_in_a_readable_file(void **state)
{
	char dir[64], path[128];
	struct config c;
	struct diag_list d;
	size_t i;
	int found;

	(void)state;
	check_begin();
	tmp_dir(dir);
	snprintf(path, sizeof(path), "%s/faqbot.json", dir);
	tmp_write(dir, "faqbot.json",
	          "{\n  \"matrix\": {\"password\": \"hunter2\"},\n"
	          "  \"irc\": {\"password\": \"swordfish\"}\n}\n");
	chmod(path, 0644);
	config_defaults(&c);
	diag_list_init(&d);
	CHECK(config_load(&c, path, &d) == 0, "a readable file with a secret is refused");
	CHECK(d.warnings == 2, "%zu warnings, not 2", d.warnings);
	for (i = 0, found = 0; i < d.n; i++) {
		char *line = diag_format(&d.d[i]);

		found += has(line, ":2:26: warning: matrix.password is written in this file, which "
		                   "group or others can read (mode 644): put it in "
		                   "matrix.password_file") ||
		         has(line, ":3:23: warning: irc.password is written in this file");
		CHECK(!has(line, "hunter2") && !has(line, "swordfish"), "a secret is shown: %s",
		      line);
		free(line);
	}
	CHECK(found == 2, "the warnings are not at the secrets");
	config_free(&c);
	diag_list_free(&d);

	chmod(path, 0640);
	config_defaults(&c);
	diag_list_init(&d);
	CHECK(config_load(&c, path, &d) == 0 && d.warnings == 2, "group-readable: no warning");
	config_free(&c);
	diag_list_free(&d);

	chmod(path, 0600);
	config_defaults(&c);
	diag_list_init(&d);
	CHECK(config_load(&c, path, &d) == 0 && d.n == 0, "a 0600 file warns");
	config_free(&c);
	diag_list_free(&d);

	/* No secret written in it: a world-readable file is as it should be. */
	tmp_write(dir, "faqbot.json", "{\"matrix\": {\"password\": \"\"}}\n");
	chmod(path, 0644);
	config_defaults(&c);
	diag_list_init(&d);
	CHECK(config_load(&c, path, &d) == 0 && d.n == 0, "a secret-free file warns");
	config_free(&c);
	diag_list_free(&d);
	tmp_remove(dir);
	CHECK_END();
}

/* A nick longer than 9 characters warns, when IRC is used: ngircd refuses it. */
static void
test_long_irc_nick(void **state)
{
	struct config c;
	struct diag_list d;
	char *got;

	(void)state;
	check_begin();
	CHECK(load(&c, &d, "{'transport': 'irc', 'irc': {'nick': 'faqbot-support'}}") == 0,
	      "a long nick is refused");
	got = first_diag(&d);
	CHECK_STR(got,
	          "faqbot.json:1:38: warning: irc.nick is 14 characters: some servers allow only 9 "
	          "(RFC 2812, ngircd's default); there the bot cuts it to the server's NICKLEN",
	          "the long nick");
	free(got);
	config_free(&c);
	diag_list_free(&d);
	CHECK(load(&c, &d, "{'transport': 'irc', 'irc': {'nick': 'faqbot123'}}") == 0 && d.n == 0,
	      "a 9-character nick warns");
	config_free(&c);
	diag_list_free(&d);
	CHECK(load(&c, &d, "{'irc': {'nick': 'faqbot-support'}}") == 0 && d.n == 0,
	      "a long nick warns when IRC is not used");
	config_free(&c);
	diag_list_free(&d);
	CHECK_END();
}

static void
test_secret_env(void **state)
{
	struct config c;
	struct diag_list d;

	(void)state;
	check_begin();
	setenv("FAQBOT_MATRIX_PASSWORD", "from-env", 1);
	setenv("FAQBOT_MATRIX_ACCESS_TOKEN", "token-env", 1);
	setenv("FAQBOT_IRC_PASSWORD", "irc-env", 1);
	CHECK(load(&c, &d, "{}") == 0, "{} refused");
	CHECK_STR(c.mx_password, "from-env", "FAQBOT_MATRIX_PASSWORD");
	CHECK_STR(c.mx_access_token, "token-env", "FAQBOT_MATRIX_ACCESS_TOKEN");
	CHECK_STR(c.irc_password, "irc-env", "FAQBOT_IRC_PASSWORD");
	config_free(&c);
	diag_list_free(&d);
	/* the file wins over the environment */
	CHECK(load(&c, &d, "{'matrix': {'password': 'from-file'}}") == 0, "refused");
	CHECK_STR(c.mx_password, "from-file", "file over environment");
	config_free(&c);
	diag_list_free(&d);
	/* an empty variable is no secret */
	setenv("FAQBOT_MATRIX_PASSWORD", "", 1);
	CHECK(load(&c, &d, "{}") == 0, "refused");
	CHECK_STR(c.mx_password, "", "empty FAQBOT_MATRIX_PASSWORD");
	config_free(&c);
	diag_list_free(&d);
	unsetenv("FAQBOT_MATRIX_PASSWORD");
	unsetenv("FAQBOT_MATRIX_ACCESS_TOKEN");
	unsetenv("FAQBOT_IRC_PASSWORD");
	CHECK_END();
}

/* --- rooms ------------------------------------------------------------------ */

static void
test_room_merge(void **state)
{
	static const char json[] =
	    "{'responses': {'disclaimer': 'Global.', 'locale': 'en'},"
	    " 'rooms': {"
	    "  'default': {'answer': 'mention', 'locale': 'de', 'paused': true,"
	    "              'intents': ['care.*']},"
	    "  '!a:x': {'answer': 'auto'},"
	    "  '!b:x': {'paused': false, 'disclaimer': 'Room B.', 'intents': ['safety.*', 'b']},"
	    "  '#irc': {'locale': 'fr'}}}";
	struct config c;
	struct diag_list d;
	struct cfg_room r;

	(void)state;
	check_begin();
	CHECK(load(&c, &d, json) == 0, "refused");

	/* a room not listed gets "default" over the global settings */
	config_room(&c, "!other:x", &r);
	CHECK(r.answer == CFG_ANSWER_MENTION && strcmp(r.locale, "de") == 0 && r.paused == 1 &&
	          strcmp(r.disclaimer, "Global.") == 0 && r.intents.n == 1,
	      "unlisted room");
	CHECK_STR(r.id, "!other:x", "id of an unlisted room");

	/* a room overrides what it sets and inherits the rest */
	config_room(&c, "!a:x", &r);
	CHECK(r.answer == CFG_ANSWER_AUTO, "!a:x answer");
	CHECK(strcmp(r.locale, "de") == 0 && r.paused == 1 && r.intents.n == 1,
	      "!a:x inherits locale, pause and intents from default");
	config_room(&c, "!b:x", &r);
	CHECK(r.paused == 0, "!b:x: paused false overrides default's true");
	CHECK_STR(r.disclaimer, "Room B.", "!b:x disclaimer");
	CHECK(r.intents.n == 2 && strcmp(r.intents.v[1], "b") == 0, "!b:x intents");
	CHECK(r.answer == CFG_ANSWER_MENTION, "!b:x inherits answer");
	config_room(&c, "#irc", &r);
	CHECK_STR(r.locale, "fr", "#irc locale");

	/* NULL: the default profile */
	config_room(&c, NULL, &r);
	CHECK_STR(r.id, "default", "NULL room");
	CHECK(r.answer == CFG_ANSWER_MENTION, "NULL room gets default's answer");
	config_free(&c);
	diag_list_free(&d);

	/* without any rooms: the global settings */
	CHECK(load(&c, &d, "{}") == 0, "refused");
	config_room(&c, "!a:x", &r);
	CHECK(r.answer == CFG_ANSWER_AUTO && r.paused == 0 && r.intents.n == 0 &&
	          strcmp(r.locale, "en") == 0 && r.disclaimer == c.disclaimer,
	      "no rooms configured");
	config_free(&c);
	diag_list_free(&d);
	CHECK_END();
}

/* --- files ------------------------------------------------------------------- */

static void
test_load_file(void **state)
{
	char dir[64], path[128];
	struct config c;
	struct diag_list d;

	(void)state;
	check_begin();
	tmp_dir(dir);
	snprintf(path, sizeof(path), "%s/faqbot.json", dir);
	tmp_write(dir, "faqbot.json", "{\n  \"match\": {\"threshold\": 0.8}\n}\n");
	config_defaults(&c);
	diag_list_init(&d);
	CHECK(config_load(&c, path, &d) == 0 && c.threshold == 0.8, "a file is not read");
	config_free(&c);
	diag_list_free(&d);

	tmp_write_len(dir, "faqbot.json", "{\"a\": \"x\0y\"}", 12);
	config_defaults(&c);
	diag_list_init(&d);
	CHECK(config_load(&c, path, &d) == -1 && d.n == 1 && has(d.d[0].msg, "NUL byte"),
	      "a NUL byte: \"%s\"", d.n ? d.d[0].msg : "");
	config_free(&c);
	diag_list_free(&d);

	snprintf(path, sizeof(path), "%s/missing.json", dir);
	config_defaults(&c);
	diag_list_init(&d);
	CHECK(config_load(&c, path, &d) == -1 && d.n == 1 &&
	          has(d.d[0].msg, "cannot read: No such file or directory"),
	      "a missing file: \"%s\"", d.n ? d.d[0].msg : "");
	config_free(&c);
	diag_list_free(&d);
	tmp_remove(dir);
	CHECK_END();
}

/* What lint says about a configuration beyond its syntax. */
static void
test_check(void **state)
{
	static const struct {
		const char *json;
		const char *today;
		const char *want; /* a piece of a diagnostic, or NULL for none */
	} cases[] = {
	    {"{}", "2026-01-01", "have no \"verified\" date"},
	    {"{'contacts': {'en': {'emergency': '1', 'oncology': 'a', 'crisis': 'b',"
	     " 'moderators': 'c', 'verified': '2025-01-01'}}}",
	     "2026-01-01", "last verified 365 days ago (more than 180)"},
	    {"{'contacts': {'en': {'emergency': '1', 'oncology': 'a', 'crisis': 'b',"
	     " 'moderators': 'c', 'verified': '2025-12-01'}}}",
	     "2026-01-01", NULL},
	    {"{'contacts': {'en': {'emergency': '1', 'oncology': 'a', 'crisis': 'b',"
	     " 'moderators': 'c', 'verified': '2025-12-01'}},"
	     " 'matrix': {'homeserver': 'https://m.example', 'user_id': '@b:m.example'}}",
	     "2026-01-01", "matrix needs a password or an access token"},
	    {"{'contacts': {'en': {'emergency': '1', 'oncology': 'a', 'crisis': 'b',"
	     " 'moderators': 'c', 'verified': '2025-12-01'}}, 'transport': 'irc'}",
	     "2026-01-01", "irc.server is empty"},
	};
	struct config c;
	struct diag_list d;
	size_t i, k;

	(void)state;
	check_begin();
	unsetenv("FAQBOT_MATRIX_PASSWORD");
	unsetenv("FAQBOT_MATRIX_ACCESS_TOKEN");
	for (i = 0; i < NELEM(cases); i++) {
		int found = 0;

		CHECK(load(&c, &d, cases[i].json) == 0, "case %zu refused", i);
		config_check(&c, "faqbot.json", date_parse_days(cases[i].today), &d);
		for (k = 0; k < d.n; k++)
			found |= cases[i].want && has(d.d[k].msg, cases[i].want);
		if (cases[i].want)
			CHECK(found, "case %zu: nothing says \"%s\"", i, cases[i].want);
		else
			CHECK(d.n == 0, "case %zu: unexpected \"%s\"", i, d.n ? d.d[0].msg : "");
		config_free(&c);
		diag_list_free(&d);
	}
	/* The date warnings point at the date, or at the locale that has none. */
	CHECK(load(&c, &d, cases[1].json) == 0, "dated contacts refused");
	config_check(&c, "faqbot.json", date_parse_days("2026-01-01"), &d);
	CHECK(d.n == 1 && d.d[0].line == 1 && d.d[0].col == 103,
	      "an old date is reported at 1:103, not at %d:%d", d.n ? d.d[0].line : -1,
	      d.n ? d.d[0].col : -1);
	config_free(&c);
	diag_list_free(&d);
	CHECK(load(&c, &d,
	           "{'contacts': {'en': {'emergency': '1', 'oncology': 'a', 'crisis': 'b',"
	           " 'moderators': 'c'}}}") == 0,
	      "undated contacts refused");
	config_check(&c, "faqbot.json", date_parse_days("2026-01-01"), &d);
	CHECK(d.n == 1 && d.d[0].line == 1 && d.d[0].col == 15,
	      "a missing date is reported at the locale, 1:15, not at %d:%d",
	      d.n ? d.d[0].line : -1, d.n ? d.d[0].col : -1);
	config_free(&c);
	diag_list_free(&d);
	CHECK_END();
}

/*
 * The shipped example (deploy/faqbot.example.json) loads as it is, except
 * for the credential it names, which only systemd provides: that refusal
 * is the only error, at the option that named the file. Its contacts are
 * checked then (by the date it gives), so nothing else is left to say.
 */
static void
test_example(void **state)
{
	static const char cred[] = "/run/credentials/faqbot.service/matrix-password";
	char path[1024];
	struct config c;
	struct diag_list d;
	struct stat st;
	int rc;

	(void)state;
	if (stat(cred, &st) == 0)
		skip(); /* under systemd the credential exists */
	check_begin();
	unsetenv("FAQBOT_MATRIX_PASSWORD");
	unsetenv("FAQBOT_MATRIX_ACCESS_TOKEN");
	snprintf(path, sizeof(path), "%s/deploy/faqbot.example.json", SOURCE_DIR);
	config_defaults(&c);
	diag_list_init(&d);
	rc = config_load(&c, path, &d);
	if (d.n != 1)
		diag_print(&d, stderr, DIAG_NOTE);
	CHECK(rc == -1 && d.n == 1, "%zu diagnostics for the example", d.n);
	CHECK(d.n >= 1 && has(d.d[0].msg, cred) && d.d[0].line > 1 && d.d[0].col > 1,
	      "the missing credential at its place: %d:%d: %s", d.n ? d.d[0].line : -1,
	      d.n ? d.d[0].col : -1, d.n ? d.d[0].msg : "");
	diag_list_free(&d);
	diag_list_init(&d);
	CHECK(c.ncontacts >= 1 && c.contacts[0].verified >= 0,
	      "the example's contacts have a date");
	if (c.ncontacts >= 1)
		config_check(&c, path, c.contacts[0].verified, &d);
	CHECK(d.n == 0, "lint says \"%s\" about the example", d.n ? d.d[0].msg : "");
	config_free(&c);
	diag_list_free(&d);
	CHECK_END();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),     cmocka_unit_test(test_option_types),
	    cmocka_unit_test(test_errors),       cmocka_unit_test(test_fraction_for_integer),
	    cmocka_unit_test(test_secret_files), cmocka_unit_test(test_secret_env),
	    cmocka_unit_test(test_room_merge),   cmocka_unit_test(test_load_file),
	    cmocka_unit_test(test_check),        cmocka_unit_test(test_example),
	    cmocka_unit_test(test_inline_secret_in_a_readable_file),
	    cmocka_unit_test(test_long_irc_nick),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
