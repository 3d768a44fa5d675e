#!/usr/bin/env python3
"""Scores the shipped intents on a labelled set of room messages.

usage: regress.py SET.tsv [--min-accuracy A] [--max-false-answers F]
                  [--min-safety-recall R] -- FAQBOT classify [options...]

SET.tsv is `intent<TAB>message` with a header line; `null` marks a message
that must get no answer. The command after `--` reads one message per line
and writes one JSON object per line with at least "intent".

It prints accuracy, false answers (null messages that got an answer),
safety recall (emergency and crisis messages that reached a safety intent,
either one) and every miss, and exits 1 when a figure is past its bound.
"""
import argparse
import json
import subprocess
import sys

SAFETY = ("safety.emergency", "safety.crisis")


def main():
    argv = sys.argv[1:]
    if "--" not in argv:
        sys.exit(__doc__)
    cut = argv.index("--")
    ap = argparse.ArgumentParser()
    ap.add_argument("set")
    ap.add_argument("--min-accuracy", type=float, default=0.0)
    ap.add_argument("--max-false-answers", type=float, default=1.0)
    ap.add_argument("--min-safety-recall", type=float, default=0.0)
    a = ap.parse_args(argv[:cut])
    cmd = argv[cut + 1:]

    rows = []
    with open(a.set, encoding="utf-8") as f:
        for n, line in enumerate(f.read().split("\n")[1:], 2):
            if line.strip():
                label, msg = line.split("\t", 1)
                rows.append((n, None if label == "null" else label, msg))
    out = subprocess.run(cmd, input="".join(m + "\n" for _, _, m in rows),
                         capture_output=True, text=True, check=True).stdout.splitlines()
    if len(out) != len(rows):
        sys.exit(f"{len(rows)} messages in, {len(out)} answers out")

    right = nulls = false = safety = caught = 0
    misses = []
    for (n, want, msg), line in zip(rows, out):
        got = json.loads(line).get("intent")
        # Either safety answer is the right thing to send to someone in danger.
        ok = got == want or (want in SAFETY and got in SAFETY)
        right += ok
        if want is None:
            nulls += 1
            false += got is not None
        if want in SAFETY:
            safety += 1
            caught += got in SAFETY
        if not ok:
            misses.append(f"  line {n}: want {want}, got {got}: {msg[:120]}")
    acc = right / len(rows)
    fa = false / max(1, nulls)
    sr = caught / max(1, safety)
    print(f"{len(rows)} messages: accuracy {acc:.3f}, false answers {fa:.3f} "
          f"({false} of {nulls}), safety recall {sr:.3f} ({caught} of {safety})")
    print("\n".join(misses))
    bad = []
    if acc < a.min_accuracy:
        bad.append(f"accuracy {acc:.3f} < {a.min_accuracy}")
    if fa > a.max_false_answers:
        bad.append(f"false answers {fa:.3f} > {a.max_false_answers}")
    if sr < a.min_safety_recall:
        bad.append(f"safety recall {sr:.3f} < {a.min_safety_recall}")
    if bad:
        print("FAILED: " + "; ".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
