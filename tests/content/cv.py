#!/usr/bin/env python3
"""Runs `faqbot test --cv ...` (the command after --), prints its table, and
fails when the figures of "both" (the rules, then the model: what the bot
does) fall past the floors given.

usage: cv.py [--min-coverage C] [--min-answered A] [--max-alarm-rate R]
             [--max-flag-rate F] -- FAQBOT test --cv K|files [options...]
"""
import argparse
import subprocess
import sys


def main():
    argv = sys.argv[1:]
    if "--" not in argv:
        sys.exit(__doc__)
    cut = argv.index("--")
    ap = argparse.ArgumentParser()
    ap.add_argument("--min-coverage", type=float, default=0.0)
    ap.add_argument("--min-answered", type=float, default=0.0)
    ap.add_argument("--max-alarm-rate", type=float, default=1.0)
    ap.add_argument("--max-flag-rate", type=float, default=1.0)
    a = ap.parse_args(argv[:cut])
    out = subprocess.run(argv[cut + 1:], capture_output=True, text=True)
    print(out.stdout, end="")
    print(out.stderr, end="", file=sys.stderr)
    if out.returncode != 0:
        print(f"FAILED: the cross-validation exited {out.returncode}")
        return 1
    both = [l for l in out.stdout.splitlines() if l.startswith("both ")]
    if len(both) != 1:
        print("FAILED: no \"both\" line in the output")
        return 1
    # accuracy, false answers, safety recall, answered, coverage, alarm rate, flag rate
    f = [float(x) for x in both[0].split()[1:]]
    bad = []
    if f[4] < a.min_coverage:
        bad.append(f"safety coverage {f[4]:.3f} < {a.min_coverage}")
    if f[3] < a.min_answered:
        bad.append(f"safety answered {f[3]:.3f} < {a.min_answered}")
    if f[5] > a.max_alarm_rate:
        bad.append(f"alarm rate {f[5]:.3f} > {a.max_alarm_rate}")
    if f[6] > a.max_flag_rate:
        bad.append(f"flag rate {f[6]:.3f} > {a.max_flag_rate}")
    if bad:
        print("FAILED: " + "; ".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
