#!/usr/bin/env python3
"""Checks the sources of the shipped responses (see docs/responses.md).

usage: sources.py RESPONSES_DIR [--today YYYY-MM-DD]

Every medical (faq) response cites at least one source that is not a seed
article: the seeds are undated and give no references, so they are
background only. Every source that is not a seed, in any response, holds
what a reader needs to check it again:

  - who published it and what it is (text before the address),
  - its address: an http(s) URL, or https://doi.org/... for a paper,
  - the day it was checked: "checked YYYY-MM-DD", a real date, not after
    today.

A seed is named by its path under seeds/. "none (...)" stands for no
medical facts, and is allowed only in info and safety responses.

Prints every problem as FILE:LINE: message and exits 1 when there is any.
"""
import argparse
import datetime
import os
import re
import sys

ADDRESS = re.compile(r"https?://\S+")
CHECKED = re.compile(r"\bchecked (\d{4}-\d{2}-\d{2})\b")
SEED = re.compile(r"^seeds/\S+\.txt\b")


def header(path):
    """The header lines of a response as (line number, text), and its type."""
    lines, kind = [], None
    with open(path, encoding="utf-8") as f:
        text = f.read().split("\n")
    if not text or text[0].strip() != "---":
        return lines, kind
    for n, line in enumerate(text[1:], 2):
        if line.strip() == "---":
            break
        lines.append((n, line))
        if line.startswith("type:"):
            kind = line.split(":", 1)[1].strip()
    return lines, kind


def sources(lines):
    """The source entries as (line number, text)."""
    out, inside = [], False
    for n, line in lines:
        s = line.strip()
        if re.match(r"^[a-z_]+:", s):
            inside = s.startswith("sources:")
            rest = s.split(":", 1)[1].strip() if inside else ""
            if rest:
                out.append((n, rest))
        elif inside and s.startswith("- "):
            out.append((n, s[2:].strip()))
    return out


def check(path, today):
    problems = []
    lines, kind = header(path)
    entries = sources(lines)
    name = os.path.basename(path)
    authoritative = 0
    for n, src in entries:
        where = f"{path}:{n}"
        if SEED.match(src):
            continue
        if src.startswith("none"):
            if kind == "faq":
                problems.append(f"{where}: a medical (faq) answer cannot have \"none\" as a source")
            continue
        authoritative += 1
        address = ADDRESS.search(src)
        if address is None:
            problems.append(f"{where}: no address (an http(s) URL, or https://doi.org/...): {src[:60]}")
        elif address.start() < 3:
            problems.append(f"{where}: say who published the source and what it is, before its address")
        m = CHECKED.search(src)
        if m is None:
            problems.append(f"{where}: no \"checked YYYY-MM-DD\" date: {src[:60]}")
            continue
        try:
            day = datetime.date.fromisoformat(m.group(1))
        except ValueError:
            problems.append(f"{where}: \"{m.group(1)}\" is not a date")
            continue
        if day > today:
            problems.append(f"{where}: checked {day}, which is after today ({today})")
    if kind == "faq" and authoritative == 0:
        problems.append(f"{path}:1: {name}: a medical answer needs at least one source that is "
                        "not a seed (the seeds are undated and give no references)")
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--today", type=datetime.date.fromisoformat, default=datetime.date.today())
    a = ap.parse_args()
    problems, count = [], 0
    for fn in sorted(os.listdir(a.dir)):
        if fn.endswith(".md"):
            count += 1
            problems += check(os.path.join(a.dir, fn), a.today)
    for p in problems:
        print(p)
    print(f"{count} responses, {len(problems)} problem(s) with their sources")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
