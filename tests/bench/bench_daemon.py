#!/usr/bin/env python3
"""The daemon's own figures, against the test homeserver on 127.0.0.1:

  - the latency the bot adds (a message received -> its reply handed to the
    network), p50 and p99, from the bot's own histogram;
  - the end-to-end round trip seen by a patient (send -> reply synced);
  - resident memory after N messages (VmRSS, VmHWM);
  - CPU used while idle in a long-poll.

It prints figures; it never passes or fails on a timing.

usage: bench_daemon.py [--messages 10000] [--rooms 4] [--roundtrips 200]
(FAQBOT names the binary, default build/faqbot: use a Release build.)
"""
import argparse
import os
import random
import re
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
sys.path.insert(0, os.path.join(SOURCE, "tests", "homeserver"))
os.environ.setdefault("FAQBOT", os.path.join(SOURCE, "build", "faqbot"))

from harness import Bot, free_port, wait_until  # noqa: E402
from matrixenv import BOT, USERS, bot_config, is_reply_to  # noqa: E402
from mxclient import Client, HomeserverProcess  # noqa: E402

QUESTIONS = [
    "what is palliative care?", "can kidney cancer be cured if it spreads?",
    "how does immunotherapy work", "what does NED mean", "what is targeted therapy?",
    "is stage 4 cancer curable", "what are the side effects of immunotherapy?",
    "how do i join a clinical trial", "what is hormone therapy for prostate cancer",
    "does palliative care mean giving up", "what is oligometastatic disease",
]
CHATTER = ["good morning everyone", "thanks all, feeling a bit better today",
           "scan day tomorrow, fingers crossed", "lol the coffee here is awful"]


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    return None


def proc_cpu_ms(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


def histogram(text, name):
    """Cumulative buckets of a Prometheus histogram: [(le, count)]."""
    out = []
    for m in re.finditer(name + r'_bucket\{le="([^"]+)"\} (\d+)', text):
        le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
        out.append((le, int(m.group(2))))
    return sorted(out)


def quantile(buckets, q):
    """The q quantile by linear interpolation inside the bucket."""
    total = buckets[-1][1]
    if total == 0:
        return None
    rank = q * total
    prev_le, prev_c = 0.0, 0
    for le, c in buckets:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_c) / max(1, c - prev_c))
        prev_le, prev_c = le, c
    return buckets[-1][0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--rooms", type=int, default=4)
    ap.add_argument("--roundtrips", type=int, default=200)
    ap.add_argument("--idle", type=float, default=10.0)
    a = ap.parse_args()
    rnd = random.Random(7)

    hs = HomeserverProcess(USERS).start()
    bot = None
    try:
        patient = Client(hs.url)
        patient.login("patient", "patientpass")
        port = free_port()
        cfg = bot_config(hs.url)
        cfg["log"] = {"level": "info"}
        cfg["policy"] = {"cooldown_s": 0, "user_rate_per_min": 100000, "room_rate_per_min": 100000}
        cfg["metrics"] = {"listen": f"127.0.0.1:{port}"}
        bot = Bot(cfg).start()
        bot.wait_log("connected to", timeout=30)
        rooms = []
        for i in range(a.rooms):
            r = patient.create_room(name=f"bench{i}", invite=[BOT])
            wait_until(lambda r=r: BOT in patient.joined_members(r), 30, what="join")
            rooms.append(r)
        time.sleep(1)
        pid = bot.proc.pid
        rss0 = proc_status(pid, "VmRSS")

        # Round trips, one at a time.
        rtts = []
        patient.mark()
        for i in range(a.roundtrips):
            room = rooms[i % len(rooms)]
            t0 = time.monotonic()
            ev = patient.send_text(room, rnd.choice(QUESTIONS))
            patient.wait_for(is_reply_to(ev), 15)
            rtts.append(time.monotonic() - t0)

        base = f"http://127.0.0.1:{port}/metrics"
        # The bot's own latency while messages come one at a time.
        h_rt = histogram(urllib.request.urlopen(base, timeout=5).read().decode(),
                         "faqbot_reply_latency_seconds")

        # Load: messages as fast as one client sends them.
        sent_q = 0
        t0 = time.monotonic()
        for i in range(a.messages):
            if rnd.random() < 0.6:
                text = rnd.choice(QUESTIONS)
                sent_q += 1
            else:
                text = rnd.choice(CHATTER)
            patient.send_text(rooms[i % len(rooms)], text)
        send_s = time.monotonic() - t0

        def answered():
            text = urllib.request.urlopen(base, timeout=5).read().decode()
            return sum(int(float(v)) for v in
                       re.findall(r'faqbot_answers_total\{[^}]*\} (\S+)', text))
        wait_until(lambda: answered() >= a.roundtrips + sent_q, 600, step=0.5,
                   what="every question answered")
        load_s = time.monotonic() - t0
        rss_handed = proc_status(pid, "VmRSS")
        # Answers handed to the network may still wait in the bot's queue:
        # wait until the server holds every one of them.
        ctl = hs.control()

        def delivered():
            return sum(1 for r in rooms for e in ctl.events(r)
                       if e.get("sender") == BOT and e.get("type") == "m.room.message")
        wait_until(lambda: delivered() >= a.roundtrips + sent_q, 900, step=1.0,
                   what="every reply delivered")
        deliver_s = time.monotonic() - t0
        time.sleep(2)  # the queue's deferred save and trim
        rss = proc_status(pid, "VmRSS")
        hwm = proc_status(pid, "VmHWM")
        # VmRSS = RssFile (pages of the binary and the shared libraries,
        # shared with other processes) + RssAnon (the bot's own heap, stacks,
        # JIT code) + RssShmem.
        rss_file = proc_status(pid, "RssFile")
        rss_anon = proc_status(pid, "RssAnon")

        # Idle: no messages, the bot waits in its long-poll.
        time.sleep(2)
        c0 = proc_cpu_ms(pid)
        time.sleep(a.idle)
        idle_ms = proc_cpu_ms(pid) - c0

        metrics = urllib.request.urlopen(base, timeout=5).read().decode()
        h = histogram(metrics, "faqbot_reply_latency_seconds")
        # The flood alone: the whole run's buckets less the round trips'.
        rt = dict(h_rt)
        h_flood = [(le, c - rt.get(le, 0)) for le, c in h]
        rtts.sort()
        n = len(rtts)
        print(f"faqbot daemon benchmark ({a.messages} messages over {a.rooms} rooms, "
              f"{sent_q} questions; test homeserver in Python on 127.0.0.1)")
        print("  added latency (received -> reply handed to the network), from the bot's "
              "histogram:")
        for what, hh in ((f"one message at a time ({h_rt[-1][1]} replies)", h_rt),
                         (f"under the flood ({h_flood[-1][1]} replies; a message waits for "
                          "the ones before it in its sync batch)", h_flood)):
            print(f"    {what}:")
            print(f"      p50 {quantile(hh, 0.5) * 1e3:.3f} ms   p99 {quantile(hh, 0.99) * 1e3:.3f} ms"
                  f"   (share under 1 ms: {dict(hh).get(0.001, 0) / max(1, hh[-1][1]) * 100:.1f} %)")
        print(f"  end-to-end round trip (patient sends -> reply synced), {n} samples:")
        print(f"    p50 {rtts[n // 2] * 1e3:.1f} ms   p99 {rtts[min(n - 1, int(n * 0.99))] * 1e3:.1f} ms")
        print(f"  load: {a.messages} messages sent in {send_s:.1f} s, all questions answered "
              f"after {load_s:.1f} s, every reply on the server after {deliver_s:.1f} s")
        print(f"  memory: RSS {rss0 / 1024:.1f} MB before, {rss_handed / 1024:.1f} MB when the "
              f"last answer was queued, {rss / 1024:.1f} MB once all were delivered "
              f"(peak {hwm / 1024:.1f} MB)")
        print(f"    of which {rss_file / 1024:.1f} MB binary and shared libraries (RssFile), "
              f"{rss_anon / 1024:.1f} MB the bot's own memory (RssAnon)")
        print(f"  idle: {idle_ms:.0f} ms of CPU in {a.idle:.0f} s waiting in a long-poll")
        if os.environ.get("FAQBOT", "").find("build-test") >= 0:
            print("  (a sanitizer build: figures are not representative)")
    finally:
        if bot:
            bot.stop()
            bot.cleanup()
        hs.stop()


if __name__ == "__main__":
    main()
