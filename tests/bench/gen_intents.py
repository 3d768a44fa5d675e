#!/usr/bin/env python3
"""Generates intent sets and message streams for the matcher benchmarks.

A generated set is what BENCHMARKS.md describes: per intent 3 regexes, a
keyword list, 8 examples (and 3 counter-examples, so that `faqbot lint`
is clean), written as faqbot intent files with a matching response for each
intent, plus a stream of messages, one per line (60% paraphrases of the
examples, 40% chatter). Everything comes from a fixed seed: the same
arguments give the same bytes, and a smaller set is the first N intents of
a larger one.

Each intent is about one thing (a modifier and a noun, "wireless router")
and one facet of it (a family of words, "warranty|guarantee"), and it has a
family of verbs ("renew|extend|prolong"). Those are drawn from vocabularies
so that literals vary between intents, while nouns, modifiers and facets
each recur in many intents, as they do in a real FAQ. Every pair (modifier,
noun), (noun, facet) and (modifier, facet) belongs to one intent only, so an
example can only be won by its own intent. The regexes look like the ones
moderators write: word alternations, \\b, optional words, .* gaps and
(?:\\w+ ){0,3} gaps.

Words that the shipped lexicon rewrites (synonym variants), or would
"correct" to a vocabulary word, are left out of every vocabulary, so the
generated text reads the same after normalisation.

Usage:
  gen_intents.py --intents N --out DIR [--messages 10000] [--seed 1]
                 [--lexicon intents/lexicon.json | --no-lexicon] [--per-file 25]
      writes DIR/lexicon.json, DIR/gen_NNN.json (25 intents a file),
      DIR/safety.json (the two safety intents every set must have),
      DIR/<id>.md (one response per intent) and DIR/messages.txt.
  gen_intents.py --from intents/ --out DIR [--messages 10000] [--seed 1]
      writes only DIR/messages.txt: paraphrases of the examples of an
      existing set (the shipped one), and the same chatter.
"""

import argparse
import glob
import json
import os
import random
import re
import shutil
import sys

# Intents per JSON file: files of about the size of the largest shipped one
# (~30 KB). faqbot refuses files over 1 MiB. --per-file changes it.
PER_FILE = 25

NOUNS = """
appointment voucher parking locker badge wristband pharmacy pillbox inhaler
thermometer wheelchair walker stairlift mattress pillow blanket kettle fridge
freezer microwave toaster heater radiator boiler thermostat shower bathtub
toilet faucet drain gutter chimney window curtain carpet sofa wardrobe drawer
bookcase desk lamp bulb socket charger battery cable router modem printer
scanner monitor keyboard laptop tablet headset speaker camera doorbell padlock
fence hedge lawn garden greenhouse shed garage driveway bicycle scooter trailer
caravan taxi ferry ticket passport visa licence permit pension mortgage invoice
receipt deposit tenancy landlord council library museum gym sauna canteen menu
recipe lunchbox bottle flask mug teapot saucepan oven grill blender juicer
dishwasher dryer hoover broom mop bucket ladder drill hammer spanner toolbox
wallpaper tile grout fuse meter parcel courier postbox envelope stamp calendar
diary notebook backpack suitcase umbrella raincoat jacket glove scarf helmet
boot sandal slipper wristwatch bracelet necklace wallet purse coupon membership
subscription newsletter podcast playlist album guitar piano violin drum easel
kiln loom tent hammock compass lantern torch kayak canoe paddle surfboard
skateboard trampoline aquarium hamster kitten parrot tortoise
""".split()

MODIFIERS = """
spare portable electric wireless folding antique wooden plastic metal leather
cotton woollen digital automatic vintage secondhand rechargeable waterproof
outdoor indoor weekend weekday monthly annual weekly nightly morning evening
holiday student senior junior premium basic deluxe compact oversized
lightweight cordless solar hybrid diesel petrol vegan organic frozen bamboo
marble granite copper brass silver golden crimson turquoise lavender emerald
scarlet ivory charcoal striped spotted padded quilted insulated reusable
disposable refillable magnetic adjustable detachable foldable stackable heated
scented unscented tinted frosted polished brushed rustic modern classic retro
nordic alpine coastal tropical urban rural communal shared visiting overnight
temporary permanent backup loaner courtesy complimentary discounted prepaid
contactless smart analogue ceramic glass steel aluminium titanium velvet linen
denim suede rubber foam wicker rattan
""".split()

# Facet families: the words of one family are alternatives in one regex.
FACETS = [
    f.split()
    for f in """
warranty guarantee|refund reimbursement|deadline cutoff|price cost fee
delivery shipping|installation setup|repairs fixing|cleaning washing
storage|insurance|recycling disposal|availability stock|booking reservation
cancellation|collection pickup|instructions manual|safety hazard|noise rattle
smell odour|size dimensions|weight heaviness|colour shade|runtime
password pin|login account|opening hours timetable|queue waiting list
discount offer|upgrades|exchange|inspection checkup|certificate paperwork
allergy allergen|ingredients|temperature|leak leaking|crack cracked|rust rusty
mould mildew|paint finish|lock key|alarm siren|signal reception
charging|subtitle captions|volume loudness|parts|assembly
rental leasing|payslip|lost property|damage damaged|complaint feedback
accessibility ramp|translation interpreter|loyalty card|giftwrap
reward points|road works|diversion|lighting|ventilation airflow
heating bill|water pressure|wiring|reading|energy rating|calibration
""".replace("\n", "|").split("|")
    if f.strip()
]

VERBS = [
    v.split(",")
    for v in """
renew,extend,prolong|cancel,stop,terminate|book,reserve,schedule
return,send back,give back|replace,swap out,change|clean,wash,scrub
repair,fix,mend|register,sign up,enrol|pay for,settle,cover|collect,pick up,fetch
order,buy,get hold of|install,set up,fit|recycle,dispose of,throw away
move,relocate,shift|borrow,rent,hire|unlock,open,access|transfer,hand over,pass on
insure,protect,safeguard|upgrade,improve,update|measure,weigh,gauge
report,flag,complain about|store,keep,stow|share,lend,split|check,inspect,test
label,mark,tag|pack,wrap,box up|charge,power,top up|adjust,tune,calibrate
""".replace("\n", "|").split("|")
    if v.strip()
]

PARTICLES = {"back", "up", "out", "of", "for", "on", "over", "away", "hold"}

DETS = ["the", "my", "our", "a"]
QWORDS = ["how", "where", "when"]
AUX = ["do", "can", "should", "could"]
SUBJ = ["i", "we"]
PREPS = ["for", "on", "of", "with", "about"]

# Chatter: everyday talk in a support group, no topic words.
CHATTER_WORDS = """
thanks everyone lovely morning evening afternoon tired today yesterday tomorrow
weekend sunny rainy cold warm coffee tea breakfast dinner family friends kids
grandkids sister brother husband wife partner dog cat walk sleep feeling better
worse okay fine great hugs love support group chat hello hi welcome back news
match football telly film knitting baking cake biscuits garden
flowers birds beach drive shopping town weather forecast snow wind
hope cheers bless strength positive vibes sending thinking everyone here
""".split()

CHATTER = [
    "thanks everyone for the kind words",
    "good morning all, hope you slept well",
    "how is everyone doing today?",
    "sending hugs to all of you",
    "just back from a walk with the dog",
    "did anyone watch the match last night?",
    "lovely weather here today for once",
    "feeling a bit tired after yesterday but okay",
    "welcome to the group, glad you found us",
    "my sister says hello to everyone",
    "has anyone tried that new cafe in town",
    "what is everyone having for dinner tonight?",
    "happy birthday Margaret! have a lovely day",
    "lol that made me laugh",
    "thinking of you all this week",
    "anyone else up this early?",
    "the kids are driving me mad today haha",
    "baked a cake for the grandkids this afternoon",
    "thank you so much, that really helps",
    "hope the weekend is kind to everyone",
    "ok",
    "thanks!",
    "yes same here",
    "morning",
    "night all x",
]


def load_lexicon_words(path):
    """Words the lexicon rewrites or that could be corrected to its vocabulary."""
    if not path:
        return set(), []
    with open(path, encoding="utf-8") as f:
        lx = json.load(f)
    rewritten = set()
    # Phrases are rewritten only whole, and ours never hold one; single words
    # are rewritten wherever they stand (canonical forms are kept out too, so
    # the generated set does not drift into the shipped one's topics).
    for canon, variants in lx.get("synonyms", {}).items():
        for v in [canon] + list(variants):
            if " " not in v:
                rewritten.add(v)
    vocab = [w for w in lx.get("vocabulary", []) if isinstance(w, str)]
    return rewritten, vocab


def osa(a, b, cap):
    """Optimal string alignment distance, as lexicon.c computes it."""
    if abs(len(a) - len(b)) > cap:
        return cap + 1
    prev2, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
        prev2, prev = prev, cur
    return prev[len(b)]


def clashes(word, rewritten, vocab):
    """True when normalisation could change word (see lexicon_correct)."""
    for w in word.split():
        if w in rewritten or w in vocab:
            return True
        if len(w) < 6:
            continue
        for v in vocab:
            if v[0] != w[0]:
                continue
            cap = 1 if (len(v) < 9 or len(w) < 9) else 2
            if osa(w, v, cap) <= cap:
                return True
    return False


def plural(n):
    if n.endswith(("s", "x", "ch", "sh", "z")):
        return n + "es"
    if n.endswith("y") and n[-2] not in "aeiou":
        return n[:-1] + "ies"
    return n + "s"


def alt(words):
    """A regex alternation of literal words (no metacharacters in our words)."""
    return words[0] if len(words) == 1 else "(?:" + "|".join(words) + ")"


# Alternations as moderators write them: every form that people use.
DET_OPT = r"(?:(?:the|my|our|a|an|his|her|their|this|that|your|these|those) )?"
Q_ALT = "(?:how|where|when|who|what|why)"
AUX_ALT = "(?:do|does|can|could|should|would|will|must|shall|may)"
SUBJ_ALT = "(?:i|we|you|they|he|she|one|people)"
PREP_ALT = "(?:for|on|of|with|about|regarding|from|under|in|at)"


def inflect(v):
    """A verb's forms (the first word of a phrasal verb is inflected)."""
    w, _, rest = v.partition(" ")
    rest = " " + rest if rest else ""
    if w.endswith("e"):
        forms = [w, w + "s", w + "d", w[:-1] + "ing"]
    elif w.endswith("y") and w[-2] not in "aeiou":
        forms = [w, w[:-1] + "ies", w[:-1] + "ied", w + "ing"]
    elif w.endswith(("s", "x", "ch", "sh", "z")):
        forms = [w, w + "es", w + "ed", w + "ing"]
    else:
        forms = [w, w + "s", w + "ed", w + "ing"]
    return [f + rest for f in forms]


def facet_forms(f):
    """A facet word and its plural, where it has one."""
    if f.endswith(("ing", "s", "ness")) or " " in f:
        return [f]
    return [f, plural(f)]


def make_patterns(it):
    N = "(?:%s|%s)" % (it.n, it.np)
    M = it.m
    F = alt([x for f in it.f for x in facet_forms(f)])
    V = alt([x for v in it.v for x in inflect(v)])
    s1, s2, s3 = it.shapes
    # 1: a question about doing something to the thing (mod + noun)
    p1 = [
        r"\b%s %s %s %s %s%s %s\b" % (Q_ALT, AUX_ALT, SUBJ_ALT, V, DET_OPT, M, N),
        r"\b(?:is it|would it be|is there a way|is there any way|will it be|could it be|"
        r"is it still) (?:possible |ok |okay |safe |easy |allowed |wise )?to %s %s%s %s\b"
        % (V, DET_OPT, M, N),
        r"\bwhat %s %s (?:\w+ ){0,2}to %s %s%s %s\b" % (AUX_ALT, SUBJ_ALT, V, DET_OPT, M, N),
    ][s1]
    # 2: the noun and the facet, with a gap (noun + facet)
    p2 = [
        r"\b%s\b.*\b%s\b" % (N, F),
        r"\b%s\b.*\b%s\b" % (F, N),
        r"\b%s (?:\w+ ){0,4}%s\b" % (N, F),
    ][s2]
    # 3: the facet of a kind of thing (mod + facet)
    p3 = [
        r"\b%s (?:\w+ ){0,3}%s %s%s\b" % (F, PREP_ALT, DET_OPT, M),
        r"\b%s (?:\w+ )?%s\b" % (M, F),
        r"\b(?:any|what|which|the|is there|are there|how much|how long|who does) %s\b"
        r"(?:\s\w+){0,6}\s%s\b" % (F, M),
    ][s3]
    return [p1, p2, p3]


class Vocab:
    """The word pools, without the words normalisation would change."""

    def __init__(self, rewritten, vocab):
        vs = set(vocab)

        def keep(ws):
            return [w for w in ws if not clashes(w, rewritten, vs)]

        self.nouns = keep(NOUNS)
        self.mods = keep(MODIFIERS)
        self.facets = [f for f in (keep(f) for f in FACETS) if f]
        self.verbs = [v for v in (keep(v) for v in VERBS) if len(v) >= 2]
        self.chatter_words = keep(CHATTER_WORDS)
        # No word may be in two pools, or twice in one: an example must name
        # its own intent only. Particles of phrasal verbs are the exception.
        seen = {}
        for pool, ws in (("noun", self.nouns), ("modifier", self.mods),
                         ("facet", [w for f in self.facets for w in f]),
                         ("verb", [w for v in self.verbs for w in v])):
            for w in ws:
                for part in w.split():
                    if part in PARTICLES:
                        continue
                    if part in seen:
                        sys.exit("gen_intents: %r is both a %s and a %s"
                                 % (part, seen[part], pool))
                    seen[part] = pool
        self.topic = set(self.nouns) | set(self.mods) | {
            w for f in self.facets for w in f}


class Intent:
    """One generated intent: its words, id and patterns."""


def make_intents(n, voc, rng):
    """n intents with unique (mod, noun), (noun, facet), (mod, facet) pairs."""
    used_mn, used_nf, used_mf = set(), set(), set()
    out = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 200 * n + 10000:
            sys.exit("gen_intents: vocabulary too small for %d intents" % n)
        m = rng.choice(voc.mods)
        nn = rng.choice(voc.nouns)
        fi = rng.randrange(len(voc.facets))
        if (m, nn) in used_mn or (nn, fi) in used_nf or (m, fi) in used_mf:
            continue
        used_mn.add((m, nn))
        used_nf.add((nn, fi))
        used_mf.add((m, fi))
        it = Intent()
        it.num = len(out)
        it.m, it.n, it.np = m, nn, plural(nn)
        it.f = voc.facets[fi]
        it.v = rng.choice(voc.verbs)
        it.id = "gen.%04d.%s_%s" % (it.num, m, nn)
        it.shapes = (rng.randrange(3), rng.randrange(3), rng.randrange(3))
        it.patterns = make_patterns(it)
        out.append(it)
    return out


def det(rng, word):
    d = rng.choice(DETS)
    if d == "a" and word[0] in "aeiou":
        d = "an"
    return d


def example(it, rng, k):
    """A question about it; k picks the template (some match p1, some p2, p3)."""
    v = rng.choice(it.v)
    f = rng.choice(it.f)
    n = it.n if rng.random() < 0.7 else it.np
    m = it.m
    d = det(rng, m)
    q, a, s = rng.choice(QWORDS), rng.choice(AUX), rng.choice(SUBJ)
    t = [
        "%s %s %s %s %s %s %s?" % (q, a, s, v, d, m, n),
        "%s %s %s %s %s %s %s %s?" % (q, a, s, v, d, m, n, f),
        "is it possible to %s %s %s %s" % (v, d, m, n),
        "what do %s need to %s %s %s %s?" % (s, v, d, m, n),
        "what is the %s on %s %s %s?" % (f, d, m, n),
        "is there any %s for %s %s %s?" % (f, d, m, n),
        "does %s %s %s come with %s?" % (d, m, n, f),
        "who handles %s for %s %s %s?" % (f, d, m, it.np),
        "%s %s %s, how does that work?" % (m, n, f),
        "can someone explain the %s of %s %s %s?" % (f, d, m, n),
        "quick question: how long does %s take for %s %s %s?" % (f, d, m, n),
        "any idea about %s on %s %s?" % (f, m, it.np),
        "would it be ok to %s %s %s %s?" % (v, d, m, n),
        "which %s do you get with the %s %s?" % (f, m, n),
    ]
    return t[k % len(t)]


def normalise(s):
    """Roughly faqbot's normalisation, for checking our own examples."""
    s = s.lower()
    s = re.sub(r"(?<=\w)'(?=\w)", "", s)
    s = s.replace("?", " ? ")
    s = re.sub(r"[^\w? ]+", " ", s)
    return " ".join(s.split())


def matches(it, text):
    t = normalise(text)
    return any(re.search(p, t) for p in it.patterns)


def make_examples(it, rng):
    exs, seen = [], set()
    k0 = rng.randrange(100)
    for k in range(200):
        if len(exs) == 8:
            break
        e = example(it, rng, k0 + k)
        if e in seen or not matches(it, e):
            continue
        seen.add(e)
        exs.append(e)
    if len(exs) < 8:
        sys.exit("gen_intents: cannot make 8 examples for %s" % it.id)
    return exs


def counter_examples(it, rng):
    f = rng.choice(it.f)
    return [
        "our %s %s %s sorted itself out today, thanks all" % (it.m, it.n, f),
        "the %s %s in the hall looks great now" % (it.m, it.n),
        "we finally got the %s for my %s %s last week" % (f, it.m, it.n),
    ]


def intent_json(it, rng):
    return {
        "id": it.id,
        "title": "%s %s: %s" % (it.m, it.n, it.f[0]),
        "patterns": it.patterns,
        "keywords": {
            "all": [[it.n, it.np], list(it.f)],
            "any": [it.m] + it.v[:2],
        },
        "examples": make_examples(it, rng),
        "counter_examples": counter_examples(it, rng),
    }


RESPONSE = """---
id: {id}
type: faq
status: draft
reviewed_by:
reviewed_on:
review_by:
sources:
  - generated by tests/bench/gen_intents.py
locale: en
---
This is the answer about the {f} of a {m} {n}. It is short and plain.

Ask the team if you want to know more.
"""


# Every set must have the two safety intents (faqbot refuses one without
# them). Their words are in no vocabulary above, so the stream never
# reaches them; they are written once, in safety.json, whatever N is.
SAFETY = {
    "topic": "the safety intents every set must have",
    "intents": [
        {
            "id": "safety.emergency",
            "title": "an emergency",
            "priority": 100,
            "needs_question": False,
            "patterns": ["\\b(?:collapsed|unconscious|(?:not|isnt) breathing)\\b"],
            "examples": ["my dad collapsed", "she is unconscious", "he is not breathing",
                         "mum just collapsed in the kitchen", "he collapsed at home",
                         "my wife is unconscious", "my son is not breathing properly",
                         "grandad collapsed"],
            "counter_examples": ["breathing exercises help me", "i was conscious the whole time",
                                 "the shelf collapsed lol"],
            "keywords": {"none": ["shelf", "exercises"]},
        },
        {
            "id": "safety.crisis",
            "title": "a crisis",
            "priority": 100,
            "needs_question": False,
            "patterns": ["\\b(?:end my life|kill myself|want to die)\\b"],
            "examples": ["i want to end my life", "i want to kill myself",
                         "some days i want to die", "i think i will end my life",
                         "i could kill myself", "honestly i want to die",
                         "thinking of how to end my life", "i want to die now"],
            "counter_examples": ["the film about end of life care", "i laughed so much",
                                 "my life is busy"],
        },
    ],
}

SAFETY_RESPONSE = """---
id: {id}
type: safety
status: draft
locale: en
---
Please call {{{{contacts.{contact}}}}} now.
"""


# --- the message stream --------------------------------------------------

PREFIXES = ["", "", "", "", "hi all, ", "hello! ", "sorry if this is a silly question but ",
            "morning everyone. ", "quick one: ", "hi, ", "can i ask, ", "um ",
            "this might have been asked before but "]
SUFFIXES = ["", "", "", "", " thanks", " thanks in advance", " cheers", " x", " :)", "!!",
            " anyone?", " thank you so much", " 🙏"]
FILLERS = ["actually", "really", "please", "still", "just", "even", "ever"]


def decorate(msg, rng):
    """A paraphrase: greetings, fillers, case and punctuation of real chat."""
    words = msg.split()
    r = rng.random()
    if r < 0.25 and len(words) > 3:
        i = rng.randrange(1, len(words))
        words.insert(i, rng.choice(FILLERS))
    elif r < 0.35 and len(words) > 3:
        # a word dropped: some paraphrases no longer match, as in life
        del words[rng.randrange(1, len(words))]
    msg = " ".join(words)
    r = rng.random()
    if r < 0.3:
        msg = msg[:1].upper() + msg[1:]
    elif r < 0.35:
        msg = msg.upper()
    elif r < 0.45:
        msg = " ".join(w.capitalize() if rng.random() < 0.3 else w for w in msg.split())
    if rng.random() < 0.2:
        msg = msg.rstrip("?") + rng.choice(["??", "", " ?", "?!"])
    return rng.choice(PREFIXES) + msg + rng.choice(SUFFIXES)


def chatter(rng, voc):
    r = rng.random()
    if r < 0.45:
        return rng.choice(CHATTER)
    if r < 0.75:
        # mentions one topic word, so patterns become candidates and fail
        w = rng.choice(sorted(voc.topic)) if voc else rng.choice(CHATTER_WORDS)
        return rng.choice([
            "the %s at the clinic was broken again lol" % w,
            "finally got the %s sorted, what a week" % w,
            "my husband keeps going on about the %s" % w,
            "%s? no idea sorry" % w,
            "we talked about %s at the meeting, was good" % w,
        ])
    if r < 0.97:
        n = rng.randint(3, 25)
        return " ".join(rng.choice(CHATTER_WORDS) for _ in range(n))
    # a long message now and then: someone's week, in full
    return " ".join(rng.choice(CHATTER) for _ in range(rng.randint(6, 20)))


def write_stream(path, nmsg, para, voc, rng):
    """para(rng) gives a paraphrase; 60% of the lines are paraphrases."""
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(nmsg):
            if rng.random() < 0.6:
                msg = decorate(para(rng), rng)
            else:
                msg = chatter(rng, voc)
            f.write(msg.replace("\n", " ") + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--intents", type=int, help="number of intents to generate")
    ap.add_argument("--from", dest="src", help="paraphrase the examples of this set")
    ap.add_argument("--out", required=True, help="output directory (replaced)")
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--lexicon", default=os.path.join(here, "..", "..", "intents",
                                                      "lexicon.json"))
    ap.add_argument("--no-lexicon", action="store_true")
    ap.add_argument("--per-file", type=int, default=PER_FILE, help="intents per JSON file")
    a = ap.parse_args()
    if (a.intents is None) == (a.src is None):
        ap.error("give --intents N or --from DIR")
    if a.intents is not None and not 1 <= a.intents <= 5000:
        ap.error("--intents must be from 1 to 5000")
    if not 1 <= a.per_file <= 500:
        ap.error("--per-file must be from 1 to 500")
    if not 0 <= a.messages <= 1000000:
        ap.error("--messages must be from 0 to 1000000")
    lexicon = None if a.no_lexicon else a.lexicon

    if os.path.isdir(a.out):
        shutil.rmtree(a.out)
    os.makedirs(a.out)

    rewritten, vocab = load_lexicon_words(lexicon)
    voc = Vocab(rewritten, vocab)

    if a.src:
        examples = []
        for p in sorted(glob.glob(os.path.join(a.src, "*.json"))):
            with open(p, encoding="utf-8") as f:
                for it in json.load(f).get("intents", []):
                    examples.extend(it.get("examples", []))
        if not examples:
            sys.exit("gen_intents: no examples in %s" % a.src)
        rng = random.Random(a.seed)
        write_stream(os.path.join(a.out, "messages.txt"), a.messages,
                     lambda r: r.choice(examples), voc, rng)
        print("gen_intents: %s: %d messages from %d examples of %s"
              % (a.out, a.messages, len(examples), a.src))
        return

    # The intents come from their own generator, so the first N are the same
    # whatever N is; examples and the stream from others.
    intents = make_intents(a.intents, voc, random.Random(a.seed))
    erng = random.Random(a.seed * 7919 + 1)
    if lexicon:
        shutil.copy(lexicon, os.path.join(a.out, "lexicon.json"))
    for start in range(0, len(intents), a.per_file):
        chunk = intents[start:start + a.per_file]
        doc = {"topic": "generated for benchmarks: intents %d to %d"
                        % (start, start + len(chunk) - 1),
               "intents": [intent_json(it, erng) for it in chunk]}
        with open(os.path.join(a.out, "gen_%03d.json" % (start // a.per_file)), "w",
                  encoding="utf-8") as f:
            json.dump(doc, f, indent=1, ensure_ascii=False)
            f.write("\n")
    for it in intents:
        with open(os.path.join(a.out, it.id + ".md"), "w", encoding="utf-8") as f:
            f.write(RESPONSE.format(id=it.id, f=it.f[0], m=it.m, n=it.n))
    with open(os.path.join(a.out, "safety.json"), "w", encoding="utf-8") as f:
        json.dump(SAFETY, f, indent=1)
        f.write("\n")
    for sid, contact in (("safety.emergency", "emergency"), ("safety.crisis", "crisis")):
        with open(os.path.join(a.out, sid + ".md"), "w", encoding="utf-8") as f:
            f.write(SAFETY_RESPONSE.format(id=sid, contact=contact))

    srng = random.Random(a.seed * 104729 + 2)

    def para(r):
        it = r.choice(intents)
        return example(it, r, r.randrange(1000))

    write_stream(os.path.join(a.out, "messages.txt"), a.messages, para, voc, srng)
    npat = sum(len(it.patterns) for it in intents)
    print("gen_intents: %s: %d intents, %d patterns, %d messages (vocabulary: %d nouns, "
          "%d modifiers, %d facets, %d verb families)"
          % (a.out, len(intents), npat, a.messages, len(voc.nouns), len(voc.mods),
             len(voc.facets), len(voc.verbs)))


if __name__ == "__main__":
    main()
