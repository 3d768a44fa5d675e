#!/usr/bin/env python3
# A copy of the project's evaluation scorer (../shared/eval/score.py), kept here
# because ../shared is not part of a clone: the content tests score the
# shipped set with it. Keep the two the same.
"""Score a classifier against a labelled message set.

usage: score.py SET.tsv -- COMMAND [ARG ...]

SET.tsv has a header `intent<TAB>message`; intent is a catalog id or `null`.
COMMAND reads one message per line on stdin and writes one JSON object per
line on stdout, in the same order, with at least the key "intent" (a string
id, or null when it would not answer). `faqbot classify` is such a command.
An optional key "flag": "safety" says that the message, though not answered
with a safety intent, would be sent to the moderators as a possible
emergency or crisis (a silent alert). It counts toward safety coverage.

Prints the figures, then the misses, and exits 0. With --min-accuracy,
--max-false-answers, --min-safety-recall it exits 1 when a figure falls short.
"""
import argparse
import json
import subprocess
import sys
import time
from collections import Counter

SAFETY = {"safety.emergency", "safety.crisis"}


def load(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header != ["intent", "message"]:
            sys.exit(f"{path}: header must be 'intent<TAB>message'")
        for n, line in enumerate(f, 2):
            line = line.rstrip("\n")
            if not line:
                continue
            intent, _, message = line.partition("\t")
            rows.append((None if intent == "null" else intent, message, n))
    return rows


def classify(cmd, messages):
    t0 = time.monotonic()
    out = subprocess.run(cmd, input="\n".join(messages) + "\n", capture_output=True,
                         text=True, encoding="utf-8")
    elapsed = time.monotonic() - t0
    if out.returncode != 0:
        sys.exit(f"classifier exited {out.returncode}: {out.stderr.strip()[:500]}")
    lines = [l for l in out.stdout.splitlines() if l.strip()]
    if len(lines) != len(messages):
        sys.exit(f"classifier printed {len(lines)} lines for {len(messages)} messages")
    objs = [json.loads(l) for l in lines]
    return [o.get("intent") for o in objs], [o.get("flag") == "safety" for o in objs], elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("set")
    ap.add_argument("--min-accuracy", type=float)
    ap.add_argument("--max-false-answers", type=float)
    ap.add_argument("--min-safety-recall", type=float)
    ap.add_argument("--min-safety-answered", type=float,
                    help="safety messages given a safety answer, either kind")
    ap.add_argument("--min-safety-coverage", type=float,
                    help="safety messages answered with either safety intent or flagged")
    ap.add_argument("--max-alarm-rate", type=float,
                    help="non-safety messages answered with a safety intent, as a fraction")
    ap.add_argument("--max-flag-rate", type=float,
                    help="non-safety messages flagged to the moderators, as a fraction")
    ap.add_argument("--quiet", action="store_true", help="figures only, no misses")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        sys.exit("usage: score.py SET.tsv -- COMMAND [ARG ...]")
    rows = load(a.set)
    got, flagged, elapsed = classify(cmd, [m for _, m, _ in rows])

    inscope = [(e, g) for (e, _, _), g in zip(rows, got) if e is not None]
    nulls = [g for (e, _, _), g in zip(rows, got) if e is None]
    safety = [(e, g) for (e, _, _), g in zip(rows, got) if e in SAFETY]
    accuracy = sum(e == g for e, g in inscope) / max(1, len(inscope))
    false_answers = sum(g is not None for g in nulls) / max(1, len(nulls))
    safety_recall = sum(e == g for e, g in safety) / max(1, len(safety))
    false_alarms = sum(g in SAFETY for (e, _, _), g in zip(rows, got) if e not in SAFETY)
    non_safety = sum(e not in SAFETY for e, _, _ in rows)
    alarm_rate = false_alarms / max(1, non_safety)
    answered = sum(g in SAFETY for (e, _, _), g in zip(rows, got) if e in SAFETY)
    safety_answered = answered / max(1, len(safety))
    covered = sum(g in SAFETY or f for (e, _, _), g, f in zip(rows, got, flagged) if e in SAFETY)
    safety_coverage = covered / max(1, len(safety))
    flags = sum(f and g not in SAFETY for (e, _, _), g, f in zip(rows, got, flagged) if e not in SAFETY)
    flag_rate = flags / max(1, non_safety)

    print(f"messages        {len(rows)}  ({len(inscope)} in scope, {len(nulls)} null)")
    print(f"accuracy        {accuracy:.3f}  (in-scope messages given their intent)")
    print(f"false answers   {false_answers:.3f}  (null messages that got an answer)")
    print(f"safety recall   {safety_recall:.3f}  ({len(safety)} emergency/crisis messages)")
    print(f"safety answered {safety_answered:.3f}  (given a safety answer, emergency or crisis)")
    print(f"safety coverage {safety_coverage:.3f}  (answered with a safety intent, or flagged to moderators)")
    print(f"safety alarms   {false_alarms}  ({alarm_rate:.3f} of non-safety messages sent to a safety intent)")
    print(f"silent flags    {flags}  ({flag_rate:.3f} of non-safety messages flagged to moderators)")
    print(f"wall time       {elapsed:.2f} s for the whole batch")
    if not a.quiet:
        misses = Counter()
        for (e, m, n), g, f in zip(rows, got, flagged):
            if e != g:
                misses[(e, g)] += 1
                fl = " (flagged)" if f else ""
                print(f"  miss line {n}: want {e or 'null'}, got {g or 'null'}{fl}: {m[:120]}")
    short = []
    if a.min_accuracy is not None and accuracy < a.min_accuracy:
        short.append("accuracy")
    if a.max_false_answers is not None and false_answers > a.max_false_answers:
        short.append("false answers")
    if a.min_safety_recall is not None and safety_recall < a.min_safety_recall:
        short.append("safety recall")
    if a.min_safety_answered is not None and safety_answered < a.min_safety_answered:
        short.append("safety answered")
    if a.min_safety_coverage is not None and safety_coverage < a.min_safety_coverage:
        short.append("safety coverage")
    if a.max_alarm_rate is not None and alarm_rate > a.max_alarm_rate:
        short.append("alarm rate")
    if a.max_flag_rate is not None and flag_rate > a.max_flag_rate:
        short.append("flag rate")
    print(f"score: accuracy {accuracy:.3f} false_answers {false_answers:.3f} "
          f"safety_recall {safety_recall:.3f} answered {safety_answered:.3f} coverage {safety_coverage:.3f} "
          f"alarm_rate {alarm_rate:.3f} flag_rate {flag_rate:.3f}" + (f" SHORT: {', '.join(short)}" if short else ""))
    sys.exit(1 if short else 0)


if __name__ == "__main__":
    main()
