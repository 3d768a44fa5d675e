/*
 * Text normalisation: what every message goes through before it is matched.
 *
 *  1. UTF-8 is checked; invalid bytes become U+FFFD (and then vanish as
 *     non-letters). Nothing in a message can make this fail.
 *  2. Letters are folded to lower case (Unicode simple case mapping);
 *     combining marks, zero-width and bidirectional control characters are
 *     dropped; apostrophes inside words are dropped ("what's" -> "whats").
 *  3. Words are runs of letters and digits; everything else (punctuation,
 *     emoji, symbols) separates words. A "?" is kept as a word of its own,
 *     because it says the message asks something. Each character is read
 *     as its compatibility form first (NFKC, by utf8proc: fullwidth "ｋ"
 *     as "k", "ﬁ" as "fi", mathematical letters as letters); a symbol
 *     whose form is letters ("™") is a word of its own.
 *  3b. With a lexicon, a word the lexicon does not know is read through
 *     what people do to words, when that gives a word of the lexicon's
 *     dictionary (lexicon_add_words(): the words the intent files use):
 *     a letter typed three times or more ("kiiiill", "sooo", "dieeee"),
 *     digits and symbols for letters ("k1ll", "mys3lf", "unc0nscious",
 *     "k!ll", "$uicide"), "2" between words ("want2die": "want to die"),
 *     and letters of another script that look like Latin ones (Unicode's
 *     confusables, by ICU's spoof checker: Cyrillic "кill"). A word that
 *     mixes scripts is read as Latin even when the result is no known
 *     word; letters typed three times are cut to one when nothing known
 *     comes of them. Numbers ("2 weeks", "stage 4", "4th", "5fu", "b17"),
 *     Roman numerals ("stage iii") and words the lexicon knows stay as
 *     they are. Such words carry TOK_DEOBFUSCATED.
 *  4. The lexicon (lexicon.h) rewrites words and phrases to one canonical
 *     form ("stage iv", "stage four" -> "stage 4"; "keytruda" ->
 *     "pembrolizumab") and corrects near-misses of its vocabulary
 *     ("imunotherapy" -> "immunotherapy").
 *  5. Features are computed from the words and the original letter case:
 *     does the message ask something, is it put to another member
 *     ("how did your scan go Mike?").
 *
 * The normalised text is the words joined by single spaces. Patterns in
 * intents are matched against it, so patterns stay short and general.
 */
#ifndef FAQBOT_TEXT_H
#define FAQBOT_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct lexicon;

/* Cap on the bytes of a message that are looked at; the rest is ignored.
 * The cut falls before a character the cap would split, so a valid
 * message stays valid. */
#define TEXT_MAX_INPUT 16384
/* Cap on the words kept. */
#define TEXT_MAX_TOKENS 1024
/* Most characters one character's compatibility mapping can give (U+FDFA gives 18). */
#define TEXT_COMPAT_MAX 18

enum text_token_flag {
	TOK_CAPITALISED = 1 << 0,  /* "Mike": first letter upper case, the rest lower */
	TOK_ALLCAPS = 1 << 1,      /* "NED", "CAN": every letter upper case */
	TOK_CLAUSE_START = 1 << 2, /* first word of the message or after . , ; : ! ? */
	TOK_REWRITTEN = 1 << 3,    /* produced by a lexicon synonym */
	TOK_CORRECTED = 1 << 4,    /* a spelling correction */
	TOK_QMARK = 1 << 5,        /* the word is "?" */
	TOK_HAS_ALPHA = 1 << 6,    /* holds at least one letter */
	TOK_AT = 1 << 7,           /* written right after an '@': a mention ("@Mark") */
	TOK_DEOBFUSCATED = 1 << 8, /* read through step 3b: "k1ll", "k!ll", "kiiill", "кill" */
};

struct text_token {
	uint32_t off;     /* start in the normalised text */
	uint32_t len;     /* length in the normalised text */
	uint32_t src_off; /* start of the original word(s) in the message */
	uint32_t src_len; /* their length in the message */
	uint32_t flags;   /* enum text_token_flag */
};

enum text_flag {
	TEXT_QUESTION = 1 << 0,     /* asks something: "?", a question word, a request */
	TEXT_TO_MEMBER = 1 << 1,    /* put to another member by name ("... Mike?") */
	TEXT_TO_BOT = 1 << 2,       /* addresses the bot by name */
	TEXT_INVALID_UTF8 = 1 << 3, /* invalid bytes were replaced */
	TEXT_TRUNCATED = 1 << 4,    /* longer than TEXT_MAX_INPUT or TEXT_MAX_TOKENS */
};

/* A normalised message. Reusable: text_normalise() resets it. */
struct text_norm {
	struct buf text;        /* the words joined by single spaces, NUL-terminated */
	struct text_token *tok; /* the words */
	size_t ntok;            /* how many */
	size_t captok;          /* allocated */
	uint32_t flags;         /* enum text_flag */
	const char *src;        /* the message as given (not owned; valid during the call) */
	size_t srclen;          /* its length */
	/* Scratch space reused from message to message. */
	struct buf raw;            /* words before the lexicon, NUL-separated */
	struct text_token *rawtok; /* those words (off/len into raw) */
	size_t nraw;               /* how many */
	size_t capraw;             /* allocated */
	struct buf fix;            /* step 3b: the words as read */
	struct text_token *fixtok; /* step 3b: those words */
	size_t nfix;               /* how many */
	size_t capfix;             /* allocated */
};

void text_norm_init(struct text_norm *n);
void text_norm_free(struct text_norm *n);

/*
 * Normalises msg (len bytes, any bytes at all) into out, using the lexicon
 * lx (may be NULL: no rewriting or correction). bot_names is a
 * NULL-terminated list of names the bot answers to (may be NULL). Never
 * fails.
 */
void text_normalise(const struct lexicon *lx, const char *const *bot_names, const char *msg,
                    size_t len, struct text_norm *out);

/*
 * Folds s (n bytes of UTF-8) to lower case with the same mapping as the
 * normaliser, without splitting words. Invalid bytes become U+FFFD. Returns
 * a new NUL-terminated string (caller frees); its length in *outlen if set.
 */
char *text_fold(const char *s, size_t n, size_t *outlen);

/*
 * Splits s into words exactly as the normaliser does (steps 1-3), without
 * the lexicon, and appends them to out joined by single spaces. Used to
 * bring keywords and synonyms to the form the normaliser produces.
 */
void text_words(const char *s, size_t n, struct buf *out);

/*
 * Decodes one UTF-8 character at s (n > 0 bytes available). Stores the code
 * point (U+FFFD for an invalid sequence) and returns the bytes consumed
 * (1 for an invalid byte). Rejects overlongs, surrogates and > U+10FFFF.
 */
size_t text_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Encodes cp as UTF-8 into out (4 bytes room); returns the length. */
size_t text_utf8_encode(uint32_t cp, char *out);

/* Returns 1 if s (n bytes) is valid UTF-8. */
int text_utf8_valid(const char *s, size_t n);

/*
 * A copy of s (NUL-terminated, any bytes) that is safe to show as plain
 * text inside the bot's own message: invalid bytes become U+FFFD, control
 * characters become spaces, and bidi overrides and isolates (U+202A-202E,
 * U+2066-2069), which would turn the text after them around, are dropped.
 * At most max bytes, never cut inside a character. Caller frees.
 */
char *text_display_safe(const char *s, size_t max);

/*
 * The text an HTML message body shows (Matrix's formatted_body): tags
 * dropped (a block tag such as <p>, <br> or <li> becomes a line break, an
 * inline one nothing, so "k<b>ill</b>" stays one word), the quoted
 * message of a reply (<mx-reply>) and comments left out, character
 * references decoded (&amp; &#39; &#x41; ...; a NUL becomes a space).
 * Never fails; returns a new NUL-terminated string (caller frees).
 */
char *text_html_plain(const char *html, size_t len);

/*
 * Does b say more than a: has it a word (as text_words() splits them) that
 * a does not have? For a formatted_body that shows people more than the
 * plain body the bot would read.
 */
int text_says_more(const char *a, size_t alen, const char *b, size_t blen);

/*
 * Estimates the US reading grade (Flesch-Kincaid) of plain English text:
 * 0.39 * words/sentences + 11.8 * syllables/words - 15.59. Returns 0 for
 * empty text.
 */
double text_reading_grade(const char *s, size_t n);

#endif
