/*
 * What a moderator sees for a broken file: a table of broken intent files
 * and response files, each with every error it must produce, exactly as
 * `faqbot lint` prints it (file:line:col: severity: message). Each file is
 * written into a scratch set next to a good intent file and a good
 * response, loaded with kb_load, and the errors compared; the load must
 * fail, since a broken set never replaces a working one. Each load runs in
 * a child process, so that a crash (or a sanitizer report) fails its case
 * and not the whole table.
 *
 * Intent files are written with ' for " (columns are unchanged) unless the
 * case is marked raw; "\\\\" in C is one backslash in the regex. An
 * expected message ending in '*' is compared up to the '*' only: the place
 * and the start of the message are fixed, the wording after is free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "diag.h"
#include "helpers.h"
#include "kb.h"
#include "util.h"

#define MAX_WANT 3

struct broken_case {
	const char *name;
	const char *file;           /* path in the set: "intents/x.json" or "responses/b.md" */
	const char *text;           /* its contents */
	size_t len;                 /* 0: strlen(text) */
	int raw;                    /* 1: no ' -> " conversion */
	const char *want[MAX_WANT]; /* every error, in the order found */
};

/* The good part of every set: one intent, and the two safety intents a set must have. */
static const char base_intents[] = "{\n"
                                   "  \"intents\": [\n"
                                   "    {\"id\": \"a\", \"patterns\": [\"\\\\bhospice\\\\b\"]}\n"
                                   "  ]\n"
                                   "}\n";
static const char base_response[] = "---\nid: a\ntype: info\nstatus: draft\n---\nAn answer.\n";
static const char safety_intents[] =
    "{\n"
    "  \"intents\": [\n"
    "    {\"id\": \"safety.emergency\", \"priority\": 100, \"needs_question\": false,\n"
    "     \"patterns\": [\"\\\\bcollapsed\\\\b\"]},\n"
    "    {\"id\": \"safety.crisis\", \"priority\": 100, \"needs_question\": false,\n"
    "     \"patterns\": [\"\\\\bend it all\\\\b\"]}\n"
    "  ]\n"
    "}\n";
static const char emergency_response[] =
    "---\nid: safety.emergency\ntype: safety\nstatus: draft\n---\nCall {{contacts.emergency}}.\n";
static const char crisis_response[] =
    "---\nid: safety.crisis\ntype: safety\nstatus: draft\n---\nCall {{contacts.crisis}}.\n";

static const struct broken_case cases[] = {
    /* --- JSON syntax ----------------------------------------------------- */
    {"a missing comma between members", "intents/x.json",
     "{\n"
     "  'intents': [\n"
     "    {\n"
     "      'id': 'x'\n"
     "      'patterns': ['\\\\bx\\\\b']\n"
     "    }\n"
     "  ]\n"
     "}\n",
     .want =
         {"intents/x.json:5:7: error: expected ',' between members (is a comma missing at the end "
          "of the line before?)"}},
    {"a missing comma between array elements", "intents/x.json",
     "{'intents': [{'id': 'x', 'patterns': ['\\\\bx\\\\b' '\\\\by\\\\b']}]}",
     .want = {"intents/x.json:1:49: error: expected ',' between array elements"}},
    {"a trailing comma in an object", "intents/x.json",
     "{\n"
     "  'intents': [\n"
     "    {\n"
     "      'id': 'x',\n"
     "      'patterns': ['\\\\bx\\\\b'],\n"
     "    }\n"
     "  ]\n"
     "}\n",
     .want = {"intents/x.json:5:30: error: trailing comma before '}'"}},
    {"a trailing comma in an array", "intents/x.json",
     "{'intents': [{'id': 'x', 'patterns': ['\\\\bx\\\\b',]}]}",
     .want = {"intents/x.json:1:48: error: trailing comma before ']'"}},
    {"a string not closed on its line", "intents/x.json",
     "{\n"
     "  'intents': [\n"
     "    {'id': 'x,\n"
     "     'patterns': ['\\\\bx\\\\b']}\n"
     "  ]\n"
     "}\n",
     .want = {"intents/x.json:3:15: error: string is not closed before the end of the line"}},
    {"a string never closed", "intents/x.json", "{'intents': [{'id': 'x",
     .want = {"intents/x.json:1:21: error: string is never closed"}},
    {"single quotes around a key", "intents/x.json", "{'intents': []}", .raw = 1,
     .want = {"intents/x.json:1:2: error: expected a key in double quotes"}},
    {"single quotes around a value", "intents/x.json", "{\"intents\": [{\"id\": 'x'}]}", .raw = 1,
     .want = {"intents/x.json:1:21: error: strings take double quotes, not single quotes"}},
    {"a comment before the object", "intents/x.json", "// kidney intents\n{'intents': []}\n",
     .want = {"intents/x.json:1:1: error: JSON has no comments (use a \"comment\" key instead)"}},
    {"a comment line inside an object", "intents/x.json",
     "{\n"
     "  // kidney intents\n"
     "  'intents': []\n"
     "}\n",
     .want = {"intents/x.json:2:3: error: JSON has no comments (use a \"comment\" key instead)"}},
    {"a block comment after a member", "intents/x.json",
     "{\n"
     "  'intents': [], /* none yet */\n"
     "  'comment': 'x'\n"
     "}\n",
     .want = {"intents/x.json:2:18: error: JSON has no comments (use a \"comment\" key instead)"}},
    {"invalid UTF-8", "intents/x.json", "{\n  'intents': [{'id': 'caf\xe9'}]\n}\n",
     .want = {"intents/x.json:2:26: error: invalid UTF-8 (save the file as UTF-8)"}},
    {"a NUL byte", "intents/x.json", "{'intents': []}\0", .len = 16,
     .want = {"intents/x.json:1:16: error: NUL byte in file"}},
    {"an empty file", "intents/x.json", "", .want = {"intents/x.json:1:1: error: file is empty"}},
    {"a file of blank lines", "intents/x.json", "\n\n  \n",
     .want = {"intents/x.json:1:1: error: file is empty"}},
    {"nesting too deep", "intents/x.json",
     "{'comment': [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]"
     "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
     .want = {"intents/x.json:1:77: error: nested too deeply"}},
    {"text after the end", "intents/x.json", "{'intents': []}\n}\n",
     .want = {"intents/x.json:2:1: error: unexpected text after the end of the JSON value"}},
    {"a bad escape (a regex backslash not doubled)", "intents/x.json",
     "{'intents': [{'id': 'x', 'patterns': ['\\d+']}]}",
     .want =
         {"intents/x.json:1:40: error: invalid escape in string (in a regex, write \\\\ for one "
          "backslash)"}},
    {"a short \\u escape", "intents/x.json", "{'intents': [{'id': 'x\\u12'}]}",
     .want = {"intents/x.json:1:23: error: \\u must be followed by four hex digits"}},
    {"a lone surrogate escape", "intents/x.json", "{'intents': [{'id': 'x\\ud800'}]}",
     .want = {"intents/x.json:1:23: error: *"}},
    {"a missing value", "intents/x.json", "{'intents': }",
     .want = {"intents/x.json:1:13: error: expected a value (string, number, object, array, true, "
              "false or null)"}},
    {"the file ends early", "intents/x.json", "{'intents': [",
     .want = {"intents/x.json:1:14: error: unexpected end of file: a value is missing"}},

    /* --- keys and types -------------------------------------------------- */
    {"an unknown key in an intent, with a suggestion", "intents/x.json",
     "{\n"
     "  'intents': [\n"
     "    {'id': 'x', 'paterns': ['\\\\bx\\\\b']}\n"
     "  ]\n"
     "}\n",
     .want = {"intents/x.json:3:17: error: unknown key \"paterns\" in an intent (did you mean "
              "\"patterns\"?)"}},
    {"an unknown top-level key", "intents/x.json", "{'intent': []}",
     .want = {"intents/x.json:1:2: error: unknown key \"intent\" in an intent file (did you mean "
              "\"intents\"?)"}},
    {"an unknown key in keywords", "intents/x.json",
     "{'intents': [{'id': 'x', 'keywords': {'al': [['x']]}}]}",
     .want =
         {"intents/x.json:1:39: error: unknown key \"al\" in keywords (did you mean \"all\"?)"}},
    {"an unknown key with nothing close", "intents/x.json",
     "{'intents': [{'id': 'x', 'patterns': ['x'], 'zzzzzzzz': 1}]}",
     .want = {"intents/x.json:1:45: error: unknown key \"zzzzzzzz\" in an intent"}},
    {"the file is an array", "intents/x.json", "[]",
     .want =
         {"intents/x.json:1:1: error: an intent file must hold an object with \"intents\" (and/or "
          "\"synonyms\", \"vocabulary\", \"classes\"), not an array"}},
    {"intents is an object", "intents/x.json", "{'intents': {}}",
     .want = {"intents/x.json:1:13: error: \"intents\" must be an array, not an object"}},
    {"an intent is a string", "intents/x.json", "{'intents': ['x']}",
     .want = {"intents/x.json:1:14: error: an intent must be an object, not a string"}},
    {"no id", "intents/x.json", "{'intents': [{'patterns': ['x']}]}",
     .want = {"intents/x.json:1:14: error: intent has no \"id\""}},
    {"an id with capitals", "intents/x.json", "{'intents': [{'id': 'Kidney.Cure'}]}",
     .want = {"intents/x.json:1:21: error: \"id\" must be a string of a-z, 0-9, '.', '_' and '-'"}},
    {"a number for an id", "intents/x.json", "{'intents': [{'id': 5}]}",
     .want = {"intents/x.json:1:21: error: \"id\" must be a string of a-z, 0-9, '.', '_' and '-'"}},
    {"priority in words", "intents/x.json",
     "{'intents': [{'id': 'x', 'patterns': ['x'], 'priority': 'high'}]}",
     .want =
         {"intents/x.json:1:57: error: \"priority\" must be a whole number from -1000 to 1000"}},
    {"a fractional priority", "intents/x.json",
     "{'intents': [{'id': 'x', 'patterns': ['x'], 'priority': 1.5}]}",
     .want =
         {"intents/x.json:1:57: error: \"priority\" must be a whole number from -1000 to 1000"}},
    {"needs_question as a string", "intents/x.json",
     "{'intents': [{'id': 'x', 'patterns': ['x'], 'needs_question': 'no'}]}",
     .want =
         {"intents/x.json:1:63: error: \"needs_question\" must be true or false, not a string"}},
    {"min_score out of range", "intents/x.json",
     "{'intents': [{'id': 'x', 'patterns': ['x'], 'min_score': 11}]}",
     .want = {"intents/x.json:1:58: error: \"min_score\" must be a number from 0 to 10"}},
    {"a long title", "intents/x.json",
     "{'intents': [{'id': 'x', 'patterns': ['x'], 'title': '"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'}]"
     "}",
     .want =
         {"intents/x.json:1:54: error: \"title\" must be a short string (at most 80 characters)"}},
    {"patterns as a string", "intents/x.json", "{'intents': [{'id': 'x', 'patterns': 'x'}]}",
     .want = {"intents/x.json:1:38: error: \"patterns\" must be an array, not a string"}},
    {"not_patterns as a string", "intents/x.json",
     "{'intents': [{'id': 'x', 'patterns': ['x'], 'not_patterns': 'y'}]}",
     .want = {"intents/x.json:1:61: error: \"not_patterns\" must be an array, not a string"}},
    {"a pattern as a number", "intents/x.json", "{'intents': [{'id': 'x', 'patterns': ['x', 5]}]}",
     .want =
         {"intents/x.json:1:44: error: pattern 2 must be a string (or an object with \"regex\"), "
          "not a number"}},
    {"a pattern object without regex", "intents/x.json",
     "{'intents': [{'id': 'x', 'patterns': [{'weight': 2}]}]}",
     .want = {"intents/x.json:1:39: error: pattern 1: \"regex\" is missing"}},
    {"a pattern weight in words", "intents/x.json",
     "{'intents': [{'id': 'x', 'patterns': [{'regex': 'x', 'weight': 'high'}]}]}",
     .want = {"intents/x.json:1:64: error: pattern 1: weight must be a number from 0 to 10"}},
    {"keywords as an array", "intents/x.json",
     "{'intents': [{'id': 'x', 'patterns': ['x'], 'keywords': []}]}",
     .want =
         {"intents/x.json:1:57: error: \"keywords\" must be an object with \"all\", \"any\" and "
          "\"none\", not an array"}},
    {"a keyword as a number", "intents/x.json",
     "{'intents': [{'id': 'x', 'patterns': ['x'], 'keywords': {'any': ['a', 3]}}]}",
     .want = {"intents/x.json:1:71: error: a keyword must be a non-empty string, not a number"}},
    {"examples as a string", "intents/x.json",
     "{'intents': [{'id': 'x', 'patterns': ['x'], 'examples': 'is x?'}]}",
     .want =
         {"intents/x.json:1:57: error: \"examples\" must be an array of strings, not a string"}},
    {"a synonym list as a string", "intents/x.json", "{'synonyms': {'stage 4': 'stage iv'}}",
     .want =
         {"intents/x.json:1:26: error: synonyms of \"stage 4\" must be an array of strings, not a "
          "string"}},
    {"a variant mapped twice", "intents/x.json",
     "{'synonyms': {'metastatic': ['mets'], 'secondary': ['mets']}}",
     .want = {"intents/x.json:1:53: error: variant \"mets\" already maps to \"metastatic\""}},
    {"a short vocabulary word", "intents/x.json", "{'vocabulary': ['chemo']}",
     .want = {"intents/x.json:1:17: error: vocabulary word \"chemo\" is shorter than 6 letters: "
              "near-misses of short words are too often other words"}},
    {"a class inside a class", "intents/x.json", "{'classes': {'a': ['@b']}}",
     .want = {"intents/x.json:1:20: error: classes cannot contain other classes (\"@b\")"}},
    {"a class name with capitals", "intents/x.json", "{'classes': {'Cure': ['cure']}}",
     .want = {"intents/x.json:1:14: error: class name \"Cure\": use only a-z, 0-9 and _"}},

    /* --- regexes ----------------------------------------------------------- */
    {"a missing parenthesis, at its offset", "intents/x.json",
     "{\n"
     "  'intents': [\n"
     "    {'id': 'x', 'patterns': ['\\\\bok\\\\b', '\\\\bcure(s|d\\\\b']}\n"
     "  ]\n"
     "}\n",
     .want = {"intents/x.json:3:57: error: pattern 2: missing closing parenthesis at offset 12"}},
    {"a quantifier out of order, at its offset", "intents/x.json",
     "{'intents': [{'id': 'x', 'patterns': ['\\\\bscan{2,1}']}]}",
     .want =
         {"intents/x.json:1:51: error: pattern 1: numbers out of order in {} quantifier at offset "
          "10"}},
    {"an unclosed class, in a not_pattern", "intents/x.json",
     "{'intents': [{'id': 'x', 'patterns': ['x'], 'not_patterns': ['[abc']}]}",
     .want =
         {"intents/x.json:1:67: error: not_pattern 1: missing terminating ] for character class at "
          "offset 4"}},
    {"an error after an @{class}, at its offset in the pattern as written", "intents/x.json",
     "{'classes': {'cure': ['curable', 'cured']},\n"
     " 'intents': [{'id': 'x', 'patterns': ['@{cure} (?<']}]}",
     .want = {"intents/x.json:2:51: error: pattern 1: subpattern name expected at offset 11"}},
    {"an unknown class in a pattern", "intents/x.json",
     "{'intents': [{'id': 'x', 'patterns': ['\\\\b@{cur}\\\\b']}]}",
     .want = {"intents/x.json:1:43: error: pattern 1: unknown class \"cur\""}},
    {"an @{ never closed", "intents/x.json", "{'intents': [{'id': 'x', 'patterns': ['a @{cure']}]}",
     .want = {"intents/x.json:1:42: error: pattern 1: \"@{\" without a closing \"}\""}},
    {"an empty pattern", "intents/x.json", "{'intents': [{'id': 'x', 'patterns': ['']}]}",
     .want = {"intents/x.json:1:39: error: pattern 1 is empty: it would match every message"}},
    {"a pattern matching the empty message", "intents/x.json",
     "{'intents': [{'id': 'x', 'patterns': ['\\\\bok\\\\b', 'x*']}]}",
     .want =
         {"intents/x.json:1:51: error: pattern 2 matches an empty message, so it would match every "
          "message"}},
    {"a pattern matching the empty string inside every message", "intents/x.json",
     "{'intents': [{'id': 'x', 'response': 'a', 'patterns': ['\\\\b']}]}",
     .want = {"intents/x.json:1:56: error: pattern 1 *"}},
    {"a single backslash before b (a JSON backspace: the pattern can never match)",
     "intents/x.json", "{'intents': [{'id': 'x', 'response': 'a', 'patterns': ['\\bcure\\b']}]}",
     .want = {"intents/x.json:1:56: error: pattern 1 *"}},
    {"an unknown class in keywords", "intents/x.json",
     "{'intents': [{'id': 'x', 'keywords': {'all': [['@cur']]}}]}",
     .want = {"intents/x.json:1:48: error: unknown class \"cur\""}},

    /* --- across files ----------------------------------------------------- */
    {"an unknown response", "intents/x.json",
     "{\n"
     "  'intents': [\n"
     "    {'id': 'x', 'response': 'nope', 'patterns': ['x']}\n"
     "  ]\n"
     "}\n",
     .want =
         {"intents/x.json:3:5: error: intent \"x\" answers with response \"nope\", which does not "
          "exist"}},
    {"a duplicate id in another file", "intents/x.json",
     "{\n"
     "  'intents': [\n"
     "    {'id': 'a', 'patterns': ['x']}\n"
     "  ]\n"
     "}\n",
     .want = {"intents/x.json:3:5: error: duplicate intent id \"a\" (first defined at "
              "intents/base.json:3:5)"}},
    {"an intent with neither patterns nor keywords", "intents/x.json",
     "{'intents': [{'id': 'x', 'title': 'x'}]}",
     .want = {"intents/x.json:1:14: error: intent \"x\" has no patterns and no \"all\" keywords: "
              "it can "
              "never match"}},
    {"an intent with only any-of keywords", "intents/x.json",
     "{'intents': [{'id': 'x', 'keywords': {'any': ['hope']}}]}",
     .want = {"intents/x.json:1:14: error: intent \"x\" has no patterns and no \"all\" keywords: "
              "it can "
              "never match"}},

    /* --- response files ------------------------------------------------------ */
    {"a response without a header", "responses/b.md", "Hello.\n", .raw = 1,
     .want =
         {"responses/b.md:1:1: error: a response starts with a \"---\" line, then its header (id, "
          "type, status, reviewed_by, reviewed_on, review_by, sources, locale), then \"---\""}},
    {"a header never closed", "responses/b.md", "---\nid: b\ntype: info\n", .raw = 1,
     .want = {"responses/b.md:1:1: error: the header is not closed by a \"---\" line"}},
    {"a header never closed, with a body", "responses/b.md",
     "---\nid: b\ntype: info\n\nHello there.\n", .raw = 1,
     .want = {"responses/b.md:5:1: error: expected \"key: value\" in the header",
              "responses/b.md:1:1: error: the header is not closed by a \"---\" line"}},
    {"an unknown header key", "responses/b.md",
     "---\nid: b\ntype: info\nreviewer: Dr X\n---\nHello.\n", .raw = 1,
     .want =
         {"responses/b.md:4:1: error: unknown header key \"reviewer\" (known: id, type, status, "
          "reviewed_by, reviewed_on, review_by, sources, locale)"}},
    {"a date the other way round", "responses/b.md",
     "---\nid: b\ntype: info\nstatus: draft\nreviewed_on: 02/11/2026\n---\nHello.\n", .raw = 1,
     .want = {"responses/b.md:5:1: error: reviewed_on must be a date written YYYY-MM-DD, not "
              "\"02/11/2026\""}},
    {"a date that does not exist", "responses/b.md",
     "---\nid: b\ntype: info\nreview_by: 2026-02-30\n---\nHello.\n", .raw = 1,
     .want = {"responses/b.md:4:1: error: review_by must be a date written YYYY-MM-DD, not "
              "\"2026-02-30\""}},
    {"a misspelt status", "responses/b.md",
     "---\nid: b\ntype: info\nstatus: aproved\n---\nHello.\n", .raw = 1,
     .want = {"responses/b.md:4:1: error: status must be draft or approved, not \"aproved\""}},
    {"an unknown type", "responses/b.md", "---\nid: b\ntype: medical\n---\nHello.\n", .raw = 1,
     .want = {"responses/b.md:3:1: error: type must be faq, safety or info, not \"medical\""}},
    {"a bad id", "responses/b.md", "---\nid: Palliative Care\ntype: info\n---\nHello.\n", .raw = 1,
     .want = {"responses/b.md:2:1: error: id must be a-z, 0-9, '.', '_' and '-'"}},
    {"no id", "responses/b.md", "---\ntype: info\n---\nHello.\n", .raw = 1,
     .want = {"responses/b.md:1:1: error: the header has no id"}},
    {"approved without a reviewer", "responses/b.md",
     "---\nid: b\ntype: info\nstatus: approved\nreviewed_on: 2026-01-01\nreview_by: "
     "2027-01-01\n---\nHello.\n",
     .raw = 1, .want = {"responses/b.md:4:1: error: an approved response needs reviewed_by*"}},
    {"review_by before reviewed_on", "responses/b.md",
     "---\nid: b\ntype: info\nstatus: approved\nreviewed_by: Dr B\nreviewed_on: 2026-01-01\n"
     "review_by: 2025-06-01\n---\nHello.\n",
     .raw = 1, .want = {"responses/b.md:7:1: error: review_by must come after reviewed_on"}},
    {"a faq without sources", "responses/b.md",
     "---\nid: b\ntype: faq\nstatus: draft\n---\n"
     "Hello.\n",
     .raw = 1, .want = {"responses/b.md:3:1: error: a medical (faq) answer must name its sources"}},
    {"a source list item under another key", "responses/b.md",
     "---\nid: b\ntype: info\nlocale: en\n  - seeds/x.txt\n---\nHello.\n", .raw = 1,
     .want = {"responses/b.md:5:1: error: a \"- \" list item belongs under \"sources:\""}},
    {"an unknown placeholder", "responses/b.md",
     "---\nid: b\ntype: info\n---\nHello.\n\nThank you {{nmae}}, and bye.\n", .raw = 1,
     .want = {"responses/b.md:7:11: error: unknown placeholder {{nmae}} (known: {{name}}, "
              "{{contacts.emergency}}, {{contacts.oncology}}, {{contacts.crisis}}, "
              "{{contacts.crisis_text}}, {{contacts.moderators}}, {{capture.NAME}}; *"}},
    {"a section of an unknown placeholder", "responses/b.md",
     "---\nid: b\ntype: info\n---\nHi.{{#contacts.sms}} Text us.{{/contacts.sms}}\n", .raw = 1,
     .want = {"responses/b.md:5:4: error: unknown placeholder {{#contacts.sms}} *",
              "responses/b.md:5:30: error: unknown placeholder {{/contacts.sms}} *"}},
    {"a section not closed", "responses/b.md",
     "---\nid: b\ntype: info\n---\nCall.\n{{#contacts.crisis_text}}\nText "
     "{{contacts.crisis_text}}.\n",
     .raw = 1,
     .want = {"responses/b.md:6:1: error: {{#contacts.crisis_text}} is not closed (add "
              "{{/contacts.crisis_text}})"}},
    {"a section closed by another name", "responses/b.md",
     "---\nid: b\ntype: info\n---\n{{#name}}Hi {{name}}.\n{{/contacts.crisis}}\n", .raw = 1,
     .want = {"responses/b.md:6:1: error: {{/contacts.crisis}} closes the section {{#name}} "
              "opened on line 5"}},
    {"a section closed twice", "responses/b.md",
     "---\nid: b\ntype: info\n---\n{{^name}}Hello.{{/name}}{{/name}}\n", .raw = 1,
     .want = {"responses/b.md:5:25: error: {{/name}} closes no section"}},
    {"a placeholder not closed", "responses/b.md",
     "---\nid: b\ntype: info\n---\nCall {{contacts.crisis now.\n", .raw = 1,
     .want = {"responses/b.md:5:6: error: \"{{\" without a closing \"}}\" on the same line"}},
    {"an empty body", "responses/b.md", "---\nid: b\ntype: info\n---\n\n\n", .raw = 1,
     .want = {"responses/b.md:5:1: error: the response has no text"}},
    {"a body of blank lines with spaces", "responses/b.md",
     "---\nid: b\ntype: info\n---\n\n  \n\t\n", .raw = 1,
     .want = {"responses/b.md:5:1: error: the response has no text"}},
    {"invalid UTF-8 in a response", "responses/b.md",
     "---\nid: b\ntype: info\n---\nCaf\xe9 and tea.\n", .raw = 1,
     .want = {"responses/b.md:5:4: error: *"}},
};

/* Writes the base set and the case's file into dir. */
static void
write_case(const char *dir, const struct broken_case *c)
{
	size_t len = c->len ? c->len : strlen(c->text);
	char *text, *p;

	tmp_write(dir, "intents/base.json", base_intents);
	tmp_write(dir, "intents/safety.json", safety_intents);
	tmp_write(dir, "responses/a.md", base_response);
	tmp_write(dir, "responses/safety.emergency.md", emergency_response);
	tmp_write(dir, "responses/safety.crisis.md", crisis_response);
	text = xstrndup(c->text, len);
	if (!c->raw)
		for (p = text; p < text + len; p++)
			if (*p == '\'')
				*p = '"';
	tmp_write_len(dir, c->file, text, len);
	free(text);
}

/*
 * In a child process: loads the set in dir and writes "loaded\n" or
 * "refused\n", then every error formatted, one a line, with the scratch
 * directory taken off the file names.
 */
static void
load_case(void *arg, int fd)
{
	const char *dir = arg;
	char ipath[128], rpath[128];
	const char *ip[1], *rp[1];
	struct kb_source src = {0};
	struct diag_list d;
	struct kb *kb;
	size_t i, dl = strlen(dir);

	snprintf(ipath, sizeof(ipath), "%s/intents", dir);
	snprintf(rpath, sizeof(rpath), "%s/responses", dir);
	ip[0] = ipath;
	rp[0] = rpath;
	src.intent_paths = ip;
	src.nintent = 1;
	src.response_paths = rp;
	src.nresponse = 1;
	src.partial = 0;
	diag_list_init(&d);
	kb = kb_load(&src, &d);
	fd_puts(fd, kb != NULL ? "loaded\n" : "refused\n");
	kb_free(kb);
	for (i = 0; i < d.n; i++) {
		char *s, *p;

		if (d.d[i].sev != DIAG_ERROR)
			continue;
		s = diag_format(&d.d[i]);
		while ((p = strstr(s, dir)) != NULL && p[dl] == '/')
			memmove(p, p + dl + 1, strlen(p + dl + 1) + 1);
		fd_puts(fd, s);
		fd_puts(fd, "\n");
		free(s);
	}
	diag_list_free(&d);
}

/*
 * Runs one case: the errors go to got (one a line), *loaded says whether
 * the set loaded; returns -1 (with why) when loading crashed.
 */
static int
run_case(const struct broken_case *c, char *got, size_t gotsz, int *loaded, char *why,
         size_t whylen)
{
	char dir[64], out[16384];
	int rc;

	tmp_dir(dir);
	write_case(dir, c);
	rc = run_in_child(load_case, dir, out, sizeof(out), why, whylen);
	tmp_remove(dir);
	*loaded = strncmp(out, "loaded\n", 7) == 0;
	snprintf(got, gotsz, "%s", strchr(out, '\n') ? strchr(out, '\n') + 1 : "");
	return rc;
}

/* Does line (up to '\n') equal want, or start with it when want ends in '*'? */
static int
line_matches(const char *line, size_t len, const char *want)
{
	size_t wl = strlen(want);

	if (wl > 0 && want[wl - 1] == '*')
		return len >= wl - 1 && memcmp(line, want, wl - 1) == 0;
	return len == wl && memcmp(line, want, wl) == 0;
}

/* Compares the errors got (one a line) with want; returns 1 when they agree. */
static int
errors_match(const char *got, const char *const *want)
{
	const char *p = got, *nl;
	size_t k;

	for (k = 0; k < MAX_WANT && want[k]; k++) {
		nl = strchr(p, '\n');
		if (nl == NULL || !line_matches(p, (size_t)(nl - p), want[k]))
			return 0;
		p = nl + 1;
	}
	return *p == '\0';
}

/* Checks one case; returns 0 when loading it crashed. */
static int
check_case(const struct broken_case *c)
{
	char got[16384], why[128];
	int loaded;
	size_t k;

	if (run_case(c, got, sizeof(got), &loaded, why, sizeof(why)) == -1) {
		CHECK(0, "%s: loading %s", c->name, why);
		return 0;
	}
	CHECK(!loaded, "%s: the set loaded despite the broken file", c->name);
	if (!errors_match(got, c->want)) {
		char w[4096] = "";

		for (k = 0; k < MAX_WANT && c->want[k]; k++) {
			strncat(w, c->want[k], sizeof(w) - strlen(w) - 2);
			strcat(w, "\n");
		}
		CHECK(0, "%s:\n  got:\n%s  want:\n%s", c->name, got, w);
	}
	return 1;
}

/* Loads a case in this process, for LeakSanitizer's check at exit. */
static void
load_in_process(const struct broken_case *c)
{
	char dir[64];
	int fd = open("/dev/null", O_WRONLY);

	tmp_dir(dir);
	write_case(dir, c);
	load_case(dir, fd);
	close(fd);
	tmp_remove(dir);
}

static void
test_broken_files(void **state)
{
	size_t i;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(cases); i++)
		/*
		 * Children end with _exit(), unseen by LeakSanitizer: what loaded
		 * without crashing is loaded again here, so that a leak on an
		 * error path shows at the end of this program.
		 */
		if (check_case(&cases[i]))
			load_in_process(&cases[i]);
	CHECK_END();
}

/* The base set alone loads: the errors above come from the broken files. */
static void
test_base_set_loads(void **state)
{
	static const struct broken_case good = {
	    .name = "good",
	    .file = "intents/x.json",
	    .text = "{'intents': [{'id': 'x', 'response': 'a', 'patterns': ['x']}]}",
	};
	char got[16384], why[128];
	int loaded;

	(void)state;
	if (run_case(&good, got, sizeof(got), &loaded, why, sizeof(why)) == -1)
		fail_msg("loading the base set %s", why);
	if (!loaded || got[0])
		fail_msg("the base set does not load:\n%s", got);
}

/*
 * A keyword or class member with no words ("!!!", an emoji) is reported
 * with its place, and reading it must not touch memory the loader does not
 * own.
 */
static void
test_keywords_without_words(void **state)
{
	static const struct broken_case kw[] = {
	    {"a keyword of punctuation", "intents/x.json",
	     "{'intents': [{'id': 'x', 'patterns': ['x'], 'keywords': {'any': ['!!!']}}]}",
	     .want = {"intents/x.json:1:66: error: keyword \"!!!\" has no words"}},
	    {"an emoji keyword", "intents/x.json",
	     "{'intents': [{'id': 'x', 'patterns': ['x'], 'keywords': {'none': "
	     "['\xf0\x9f\x91\x8d']}}]}",
	     .want = {"intents/x.json:1:67: error: keyword \"\xf0\x9f\x91\x8d\" has no words"}},
	    {"a class member of punctuation", "intents/x.json",
	     "{'classes': {'c': ['ok', '...']}, 'intents': [{'id': 'x', 'response': 'a',"
	     " 'patterns': ['x'], 'keywords': {'all': ['@c']}}]}",
	     .want = {"intents/x.json:1:26: error: *"}},
	};
	size_t i;

	(void)state;
	check_begin();
	for (i = 0; i < NELEM(kw); i++)
		check_case(&kw[i]);
	CHECK_END();
}

/* load_case with a deadline: a load that blocks ends the child with SIGALRM. */
static void
load_case_bounded(void *arg, int fd)
{
	alarm(10);
	load_case(arg, fd);
}

/* In a child: loads the set in dir and writes every diagnostic (any severity). */
static void
load_case_all(void *arg, int fd)
{
	const char *dir = arg;
	char ipath[128], rpath[128];
	const char *ip[1] = {ipath}, *rp[1] = {rpath};
	struct kb_source src = {.intent_paths = ip, .nintent = 1, .response_paths = rp, .nresponse = 1};
	struct diag_list d;
	struct kb *kb;
	size_t i;

	alarm(10);
	snprintf(ipath, sizeof(ipath), "%s/intents", dir);
	snprintf(rpath, sizeof(rpath), "%s/responses", dir);
	diag_list_init(&d);
	kb = kb_load(&src, &d);
	fd_puts(fd, kb != NULL ? "loaded\n" : "refused\n");
	kb_free(kb);
	for (i = 0; i < d.n; i++) {
		char *line = diag_format(&d.d[i]);

		fd_puts(fd, line);
		fd_puts(fd, "\n");
		free(line);
	}
	diag_list_free(&d);
}

/*
 * A FIFO, a socket-like file or a directory named like an intent or a
 * response file is skipped with a warning; the load neither blocks on it
 * (a FIFO opened for reading waits for a writer) nor fails.
 */
static void
test_non_regular_files_are_skipped_without_blocking(void **state)
{
	static const struct broken_case good = {
	    .name = "good",
	    .file = "intents/x.json",
	    .text = "{'intents': [{'id': 'x', 'response': 'a', 'patterns': ['x']}]}",
	};
	char dir[64], path[256], out[16384], why[128];

	(void)state;
	tmp_dir(dir);
	write_case(dir, &good);
	snprintf(path, sizeof(path), "%s/intents/pipe.json", dir);
	if (mkfifo(path, 0600) == -1)
		fail_msg("mkfifo: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/responses/pipe.md", dir);
	if (mkfifo(path, 0600) == -1)
		fail_msg("mkfifo: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/intents/sub.json", dir);
	if (mkdir(path, 0700) == -1)
		fail_msg("mkdir: %s", strerror(errno));
	if (run_in_child(load_case_all, dir, out, sizeof(out), why, sizeof(why)) == -1) {
		tmp_remove(dir);
		fail_msg("loading a set with a FIFO in it %s", why);
	}
	tmp_remove(dir);
	if (strncmp(out, "loaded\n", 7) != 0)
		fail_msg("the set did not load:\n%s", out);
	if (!has(out, "intents/pipe.json: warning: not a regular file") ||
	    !has(out, "responses/pipe.md: warning: not a regular file") ||
	    !has(out, "intents/sub.json: warning: not a regular file"))
		fail_msg("no warning about the FIFOs and the directory:\n%s", out);
}

/* A FIFO named as the set itself is an error, given at once. */
static void
test_a_fifo_named_as_the_set_is_an_error(void **state)
{
	char dir[64], path[256], out[4096], why[128];

	(void)state;
	tmp_dir(dir);
	snprintf(path, sizeof(path), "%s/intents", dir);
	if (mkfifo(path, 0600) == -1)
		fail_msg("mkfifo: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/responses", dir);
	if (mkdir(path, 0700) == -1)
		fail_msg("mkdir: %s", strerror(errno));
	if (run_in_child(load_case_bounded, dir, out, sizeof(out), why, sizeof(why)) == -1) {
		tmp_remove(dir);
		fail_msg("loading a FIFO %s", why);
	}
	tmp_remove(dir);
	if (strncmp(out, "refused\n", 8) != 0 ||
	    !has(out, "intents: error: not a regular file"))
		fail_msg("a FIFO as the intents is not refused clearly:\n%s", out);
}

/*
 * A set without the safety intents never loads (a reload keeps the old set,
 * the check fails): emergencies would get no answer. Nor with them silent.
 */
static void
test_a_set_without_the_safety_intents_is_refused(void **state)
{
	static const struct broken_case good = {
	    .name = "good",
	    .file = "intents/x.json",
	    .text = "{'intents': [{'id': 'x', 'response': 'a', 'patterns': ['x']}]}",
	};
	static const struct broken_case silent = {
	    .name = "silent",
	    .file = "intents/safety.json",
	    .text = "{'intents': [{'id': 'safety.emergency', 'silent': true, 'patterns': ['x']},"
	            " {'id': 'safety.crisis', 'patterns': ['y']}]}",
	};
	char dir[64], path[256], out[16384], why[128];

	(void)state;
	check_begin();
	tmp_dir(dir);
	write_case(dir, &good);
	snprintf(path, sizeof(path), "%s/intents/safety.json", dir);
	unlink(path);
	if (run_in_child(load_case, dir, out, sizeof(out), why, sizeof(why)) == -1)
		CHECK(0, "loading %s", why);
	tmp_remove(dir);
	CHECK(strncmp(out, "refused\n", 8) == 0, "a set without safety intents loaded:\n%s", out);
	CHECK(has(out, "error: the set has no intent \"safety.emergency\"") &&
	          has(out, "error: the set has no intent \"safety.crisis\""),
	      "no error for the missing safety intents:\n%s", out);

	tmp_dir(dir);
	write_case(dir, &silent);
	if (run_in_child(load_case, dir, out, sizeof(out), why, sizeof(why)) == -1)
		CHECK(0, "loading %s", why);
	tmp_remove(dir);
	CHECK(strncmp(out, "refused\n", 8) == 0 &&
	          has(out, "intents/safety.json:1:14: error: intent \"safety.emergency\" must not "
	                   "be silent"),
	      "a silent safety intent is not refused:\n%s", out);
	CHECK_END();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_base_set_loads),
	    cmocka_unit_test(test_broken_files),
	    cmocka_unit_test(test_keywords_without_words),
	    cmocka_unit_test(test_non_regular_files_are_skipped_without_blocking),
	    cmocka_unit_test(test_a_fifo_named_as_the_set_is_an_error),
	    cmocka_unit_test(test_a_set_without_the_safety_intents_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
