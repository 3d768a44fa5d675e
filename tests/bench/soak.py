#!/usr/bin/env python3
"""A bounded soak run of the daemon against the test homeserver on 127.0.0.1,
with faults injected at random and a kill -9 and restart in the middle.

It sends M messages (default 50,000) over N rooms (default 20) from a few
patients, a mix of questions with a known answer and chatter that must get
none, while faults strike the bot's own requests at random (429, 500, 502,
dropped connections, slow replies, truncated and wrongly typed JSON, a
rejected token; on sends and on /sync; "after" faults let the server create
the event and then lose the reply, so the bot must retry with the same
transaction id). At half way it kills the bot with SIGKILL and starts it
again on the same state directory, while the patients keep talking.

Then it checks, from the server's full event list of every room:

  - every question has exactly one reply from the bot (none lost, none
    duplicated),
  - no chatter got a reply, and every message of the bot replies to a
    question,
  - the bot did not crash (nor complain of a sanitizer error),
  - memory is flat: VmRSS, sampled every few thousand messages, grows by at
    most --rss-slack-mb per bot process from its first sample after warm-up
    to its last,

and prints its figures: messages/s, total time, replies, faults by kind (the
hits of GET /_test/faults), the RSS series. It exits 1 when a property above
fails, 2 when the test bed itself failed (a patient could not send), and 0
otherwise; never on a timing.

usage: soak.py [--quick] [--messages 50000] [--rooms 20] [--patients 4]
               [--rate R] [--fault-every 1.0] [--kill-at 0.5]
               [--downtime 2] [--seed 1] [--rss-every N] [--rss-slack-mb 4]
               [--no-kill] [--keep]

  --quick        2,000 messages over 5 rooms (about four minutes)
  --rate         messages per second over all rooms (default 2 a room, so
                 the default run takes about 21 minutes; 0 = as fast as the
                 patients can send)
  --fault-every  mean seconds between two faults (default 1; 0 = none)
  --downtime     seconds the bot stays down after its kill -9 (default 2)
  --keep         keep the temporary directory (bot state, both bot logs,
                 homeserver stderr) and print where it is

A lost question is printed with the sync batch that should have carried it.
A long --downtime (30 s at the default rate puts more than the sync
filter's 50 timeline events of a room between two syncs) exercises the
bot's filling of a limited timeline's gap with /messages.

FAQBOT names the binary (default build/faqbot; use a Release or
RelWithDebInfo build, a sanitizer build works but is slow:
FAQBOT_TIMEOUT_SCALE stretches the deadlines). FAQBOT_IT_VERBOSE=1 echoes
the bot's log.
"""
import argparse
import bisect
import collections
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
sys.path.insert(0, os.path.join(SOURCE, "tests", "homeserver"))
os.environ.setdefault("FAQBOT", os.path.join(SOURCE, "build", "faqbot"))

from harness import SCALE, Bot, free_port, wait_until  # noqa: E402
from matrixenv import BOT, PATIENT, USERS, bot_config  # noqa: E402
from mxclient import Client, HomeserverProcess, MatrixError  # noqa: E402

# Questions with a known answer (checked with `faqbot classify` at start).
QUESTIONS = [
    "what is palliative care?", "can kidney cancer be cured if it spreads?",
    "how does immunotherapy work", "what does NED mean", "what is targeted therapy?",
    "is stage 4 cancer curable", "what are the side effects of immunotherapy?",
    "how do i join a clinical trial", "what is hormone therapy for prostate cancer",
    "does palliative care mean giving up", "what is oligometastatic disease",
    "what is car t cell therapy?", "which patients respond best to immunotherapy?",
    "can immunotherapy cure metastatic melanoma?", "what is metastatic breast cancer?",
    "what's the life expectancy for stage 4 colon cancer?",
    "what does being in remission actually mean?",
    "are there any cancers that can still be cured after they spread?",
    "is stage 4 cancer always terminal?",
    "what are the treatment options for stage 4 lung cancer?",
    "what happens when immunotherapy stops working?",
    "what is genomic testing of a tumour for?", "is chemo still a thing for metastatic cancer?",
    "what side effects are common with chemotherapy?",
    "why would they do surgery when the cancer has already spread?",
    "does sugar feed cancer cells", "is rcc curable once it metastasizes",
    "what is a tyrosine kinase inhibitor", "how do people manage the fatigue from treatment",
    "what is radiotherapy used for in advanced cancer?", "what is androgen deprivation therapy",
    "can opdivo affect the thyroid?", "what kinds of metastatic cancer are curable",
]
# Chatter: no intent, not addressed to the bot; it must get no reply.
CHATTER = [
    "good morning everyone", "thanks all, feeling a bit better today",
    "scan day tomorrow, fingers crossed", "lol the coffee here is awful",
    "hugs to everyone having a rough week", "just got back from the hospital, long day",
    "the weather is lovely here today", "my daughter visited this weekend, it was wonderful",
    "sending love to all of you", "off to bed now, night all",
    "my dog keeps stealing my socks", "I finished a jigsaw puzzle today",
]
QUESTION_SHARE = 0.6

SEND_RX = r"/rooms/[^/]+/send/"
SYNC_RX = r"/sync\?"
# What the injector picks from: (weight, target, kind, phase).
FAULT_MENU = [
    (3, "send", "429", "before"), (3, "send", "500", "before"), (2, "send", "502", "before"),
    (2, "send", "drop", "before"), (2, "send", "slow", "before"),
    (1, "send", "malformed", "before"),
    (3, "send", "500", "after"), (2, "send", "502", "after"), (3, "send", "drop", "after"),
    (3, "send", "malformed", "after"), (1, "send", "wrong_type", "after"),
    (1, "send", "slow", "after"),
    (2, "sync", "429", "before"), (2, "sync", "500", "before"), (2, "sync", "502", "before"),
    (2, "sync", "drop", "before"), (1, "sync", "slow", "before"),
    (2, "sync", "malformed", "after"), (2, "sync", "drop", "after"),
    (1, "sync", "500", "after"), (1, "sync", "wrong_type", "after"),
    (0.3, "sync", "unknown_token", "before"), (0.3, "send", "unknown_token", "before"),
]
# The bot's sync filter keeps these in the timeline, 50 a room (matrix.c).
BOT_TIMELINE_TYPES = {"m.room.message", "m.room.encrypted", "m.room.member",
                      "m.room.power_levels"}
BOT_TIMELINE_LIMIT = 50


def log(msg):
    sys.stderr.write(f"soak: {msg}\n")
    sys.stderr.flush()


def proc_status(pid, key):
    """A field of /proc/PID/status in kB, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def memory_unmeasurable():
    """Why VmRSS says nothing about the bot's own memory, or None."""
    if os.environ.get("FAQBOT_WRAPPER"):
        return "the bot runs under FAQBOT_WRAPPER"
    try:
        with open(os.environ["FAQBOT"], "rb") as f:
            if b"__asan_init" in f.read():
                return "a sanitizer build (AddressSanitizer keeps freed memory in quarantine)"
    except OSError:
        pass
    return None


def classify(texts):
    """`faqbot classify` on each text: the list of its JSON results."""
    out = subprocess.run([os.environ["FAQBOT"], "classify"], input="\n".join(texts) + "\n",
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def check_expectations():
    """Every question must have an intent (not safety, not ambiguous); every
    chatter line none. Returns a list of problems."""
    bad = []
    for text, r in zip(QUESTIONS, classify(QUESTIONS)):
        intent = r.get("intent")
        if not intent or r.get("ambiguous") or intent.startswith("safety."):
            bad.append(f"question {text!r}: {r}")
    for text, r in zip(CHATTER, classify(CHATTER)):
        if r.get("intent") is not None:
            bad.append(f"chatter {text!r}: {r}")
    return bad


def reply_target(e):
    """The event id an m.room.message of the bot replies to, or None."""
    rel = (e.get("content") or {}).get("m.relates_to") or {}
    return (rel.get("m.in_reply_to") or {}).get("event_id")


def since_pos(path):
    """The stream position of a /sync request's since= token, or None."""
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    tok = (q.get("since") or [None])[0]
    if tok and tok.startswith("s") and tok[1:].isdigit():
        return int(tok[1:])
    return None


def metric_sum(port, name):
    """The sum of a Prometheus counter over its labels, or None."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return None
    return sum(float(v) for v in re.findall(r"^" + name + r"(?:\{[^}]*\})? (\S+)$", text, re.M))


class Observer(threading.Thread):
    """A second device of the patient that long-polls /sync for the bot's
    messages only: live progress (the final check uses the server's list)."""

    def __init__(self, url):
        super().__init__(daemon=True, name="observer")
        self.client = Client(url, timeout=30)
        self.client.login("patient", "patientpass", device_id="SOAKOBSERVER")
        self.filter = json.dumps({
            "presence": {"types": []}, "account_data": {"types": []},
            "room": {"state": {"types": []}, "ephemeral": {"types": []},
                     "account_data": {"types": []},
                     "timeline": {"senders": [BOT], "types": ["m.room.message"],
                                  "limit": 1000}}})
        self.lock = threading.Lock()
        self.targets = set()
        self.stopped = threading.Event()
        self.client.sync(timeout_ms=0, sync_filter=self.filter)

    def run(self):
        # A poll every 2 s, not a long-poll: each sync costs the server a walk
        # over every room's events, and it is busy enough serving the bot.
        while not self.stopped.wait(2.0):
            try:
                reply = self.client.sync(timeout_ms=0, sync_filter=self.filter, update=False,
                                         since=self.client.next_batch)
            except Exception:  # noqa: BLE001 - the server is busy or stopping
                self.stopped.wait(0.5)
                continue
            self.client.next_batch = reply["next_batch"]
            for room in ((reply.get("rooms") or {}).get("join") or {}).values():
                for e in (room.get("timeline") or {}).get("events", []):
                    t = reply_target(e)
                    if t:
                        with self.lock:
                            self.targets.add(t)

    def answered(self, ids):
        with self.lock:
            return sum(1 for i in ids if i in self.targets)


class Harvester:
    """Copies the bot's /sync and /send requests out of the server's request
    log (which keeps only the last 200,000) as they happen."""

    def __init__(self, ctl):
        self.ctl = ctl
        self.seq = 0
        self.syncs = []     # (seq, since position, time)
        self.sends = []     # (seq, txn id, device, time, status, fault)
        self.last_send = 0.0
        self.lock = threading.Lock()

    def poll(self):
        entries, last = self.ctl.requests(since=self.seq, match=r"/sync|/send/")
        fresh = time.time() - 2
        with self.lock:
            for e in sorted(entries, key=lambda e: e["seq"]):
                if e.get("user") is None and e["time"] > fresh:
                    # Not authenticated yet, maybe: look again next time.
                    last = e["seq"] - 1
                    break
                if e.get("user") != BOT:
                    continue
                if "/sync" in e["path"]:
                    self.syncs.append((e["seq"], since_pos(e["path"]), e["time"]))
                else:
                    txn = urllib.parse.unquote(e["path"].rsplit("?", 1)[0].rsplit("/", 1)[-1])
                    self.sends.append((e["seq"], txn, e.get("device"), e["time"],
                                       e.get("status"), e.get("fault")))
                    self.last_send = max(self.last_send, e["time"])
            self.seq = max(self.seq, last)


class Faults(threading.Thread):
    """Adds faults at random moments, one every --fault-every seconds on
    average, while the patients send. At most one fault waits for the bot's
    /sync and two for its sends: a fault list that grew faster than the bot
    retries would be one long outage, not random faults. Spent faults are
    recorded and deleted, so the server's list stays short."""

    MAX_WAITING = {"sync": 1, "send": 2}

    def __init__(self, ctl, rnd, every_s):
        super().__init__(daemon=True, name="faults")
        self.ctl = ctl
        self.rnd = rnd
        self.every_s = every_s
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.added = collections.Counter()
        self.skipped = 0
        self.spent_hits = collections.Counter()
        self.what = {}  # id -> (target, label)
        self.errors = []

    @staticmethod
    def label(target, kind, phase):
        return f"{target} {kind}" + (" (after)" if phase == "after" else "")

    def prune(self):
        """Records and deletes the spent faults; returns {target: faults waiting}."""
        waiting = collections.Counter()
        for f in self.ctl.faults():
            known = self.what.get(f["id"])
            if known is None:
                continue
            if f["remaining"] == 0:
                self.ctl.clear_faults(f["id"])
                with self.lock:
                    self.spent_hits[known[1]] += f["hits"]
                    del self.what[f["id"]]
            else:
                waiting[known[0]] += 1
        return waiting

    def inject(self, waiting):
        r = self.rnd
        _, target, kind, phase = r.choices(FAULT_MENU, [m[0] for m in FAULT_MENU])[0]
        if waiting[target] >= self.MAX_WAITING[target]:
            self.skipped += 1
            return
        opts = {"user": BOT, "phase": phase}
        count = 1 if r.random() < 0.85 or kind == "unknown_token" else r.randint(2, 3)
        if kind == "429":
            opts["retry_after_ms"] = r.randint(100, 2000)
        if kind == "slow":
            # Now and then longer than the bot's request timeout (10 s).
            opts["delay_ms"] = r.randint(10500, 12500) if r.random() < 0.1 else r.randint(100, 3000)
        match, method = (SEND_RX, "PUT") if target == "send" else (SYNC_RX, "GET")
        fid = self.ctl.add_fault(match, kind, method=method, count=count, **opts)
        with self.lock:
            lab = self.label(target, kind, phase)
            self.what[fid] = (target, lab)
            self.added[lab] += count

    def run(self):
        next_at = time.monotonic() + self.rnd.expovariate(1.0 / self.every_s)
        while not self.stopped.wait(0.25):
            try:
                waiting = self.prune()
                while time.monotonic() >= next_at:
                    self.inject(waiting)
                    waiting = self.prune()
                    next_at += self.rnd.expovariate(1.0 / self.every_s)
            except (MatrixError, OSError) as err:
                self.errors.append(str(err))

    def hits(self):
        """(hits by label, fault hits still waiting)."""
        out = collections.Counter(self.spent_hits)
        waiting = 0
        for f in self.ctl.faults():
            known = self.what.get(f["id"])
            if known:
                out[known[1]] += f["hits"]
                waiting += f["remaining"] or 0
        return out, waiting


class BotProc:
    """One run of the bot process, with its memory samples."""

    def __init__(self, bot, index, start_msg):
        self.bot = bot
        self.index = index
        self.start_msg = start_msg
        self.samples = []  # (messages sent, VmRSS kB)
        self.hwm = None
        self.end_msg = None
        self.answers = None

    @property
    def pid(self):
        return self.bot.proc.pid

    def sample(self, sent):
        rss = proc_status(self.pid, "VmRSS")
        if rss is not None:
            self.samples.append((sent, rss))
            self.hwm = proc_status(self.pid, "VmHWM") or self.hwm
        return rss


def main():
    # SIGTERM (timeout(1), a CI runner) still stops everything this started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2,000 messages over 5 rooms")
    ap.add_argument("--messages", type=int)
    ap.add_argument("--rooms", type=int)
    ap.add_argument("--patients", type=int, default=4)
    ap.add_argument("--rate", type=float, help="messages/s over all rooms (0 = unthrottled)")
    ap.add_argument("--fault-every", type=float, default=1.0,
                    help="mean seconds between faults (0 = none)")
    ap.add_argument("--kill-at", type=float, default=0.5)
    ap.add_argument("--downtime", type=float, default=2.0)
    ap.add_argument("--no-kill", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rss-every", type=int)
    ap.add_argument("--rss-slack-mb", type=float, default=4.0)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    a.messages = a.messages or (2000 if a.quick else 50000)
    a.rooms = a.rooms or (5 if a.quick else 20)
    if a.rate is None:
        a.rate = 2.0 * a.rooms
    a.rss_every = a.rss_every or max(250, min(2500, a.messages // 20))
    if a.messages < 10 or a.rooms < 1 or a.patients < 1 or not 0 < a.kill_at < 1:
        ap.error("need --messages >= 10, --rooms >= 1, --patients >= 1, 0 < --kill-at < 1")

    bad = check_expectations()
    if bad:
        print("soak: the expectations are not sound (faqbot classify):\n  " + "\n  ".join(bad))
        return 2

    rnd = random.Random(a.seed)
    tmp = tempfile.mkdtemp(prefix="faqbot-soak-")
    workdir = os.path.join(tmp, "bot")
    os.mkdir(workdir)
    hs_err = open(os.path.join(tmp, "homeserver.err"), "w")
    hs = observer = None
    procs = []
    failures = []
    bed_errors = []
    rc = 0
    try:
        hs = HomeserverProcess(USERS, stderr=hs_err).start()
        ctl = hs.control()
        patients = []
        for i in range(a.patients):
            user = PATIENT if i == 0 else f"@soak{i}:localhost"
            if i:
                ctl.register(user, f"soak{i}pass", displayname=f"Soak {i}")
            c = Client(hs.url, timeout=60)
            c.login(user, "patientpass" if i == 0 else f"soak{i}pass")
            patients.append(c)

        def bot_cfg():
            cfg = bot_config(hs.url)
            cfg["log"] = {"level": "info"}
            cfg["policy"] = {"cooldown_s": 0, "user_rate_per_min": 100000,
                             "room_rate_per_min": 100000}
            cfg["metrics"] = {"listen": f"127.0.0.1:{free_port()}"}
            cfg["state_dir"] = os.path.join(workdir, "state")
            return cfg

        def start_bot(index, start_msg):
            b = Bot(bot_cfg(), workdir=workdir)
            b.config["state_dir"] = os.path.join(workdir, "state")
            b.start()
            p = BotProc(b, index, start_msg)
            procs.append(p)
            b.wait_log("connected to", timeout=30)
            return p

        t_setup = time.monotonic()
        cur = start_bot(1, 0)
        rooms = []
        for i in range(a.rooms):
            others = [c.user_id for c in patients[1:]]
            r = patients[0].create_room(name=f"Soak {i}", invite=[BOT] + others,
                                        preset="private_chat")
            for c in patients[1:]:
                c.join(r)
            rooms.append(r)
        for r in rooms:
            wait_until(lambda r=r: BOT in patients[0].joined_members(r), 30, step=0.1,
                       what=f"the bot to join {r}")
            cur.bot.wait_log(f"joined {r}", timeout=30)
        observer = Observer(hs.url)
        observer.start()
        harvest = Harvester(ctl)
        faults = Faults(ctl, random.Random(a.seed + 1), a.fault_every)
        setup_s = time.monotonic() - t_setup
        log(f"{a.rooms} rooms joined in {setup_s:.1f} s; sending {a.messages} messages")

        # The plan: which room, which text, question or not.
        plan = []
        for i in range(a.messages):
            q = rnd.random() < QUESTION_SHARE
            plan.append((rnd.randrange(a.rooms), rnd.choice(QUESTIONS if q else CHATTER), q))
        sent = [None] * a.messages  # (event id, room, is question, time sent)
        state = {"next": 0, "done": 0, "stop": False}
        lock = threading.Lock()
        t0 = time.monotonic()

        def sender(ci):
            c = patients[ci]
            while True:
                with lock:
                    i = state["next"]
                    if i >= a.messages or state["stop"]:
                        return
                    state["next"] += 1
                if a.rate > 0:
                    delay = t0 + i / a.rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                room_i, text, q = plan[i]
                txn = c.new_txn_id()
                for attempt in range(6):
                    try:
                        eid = c.send_text(rooms[room_i], text, txn_id=txn)
                        break
                    except (MatrixError, OSError) as err:
                        if attempt == 5:
                            with lock:
                                bed_errors.append(f"message {i}: {err}")
                                state["stop"] = True
                            return
                        time.sleep(0.5 * (attempt + 1))
                sent[i] = (eid, rooms[room_i], q, time.monotonic() - t0)
                with lock:
                    state["done"] += 1

        threads = [threading.Thread(target=sender, args=(ci,), daemon=True)
                   for ci in range(a.patients)]
        cur.sample(0)
        for t in threads:
            t.start()
        if a.fault_every > 0:
            faults.start()

        kill_at = None if a.no_kill else int(a.messages * a.kill_at)
        kill_info = None
        crashes = []
        next_rss = a.rss_every
        last_harvest = last_note = time.monotonic()
        send_deadline = t0 + SCALE * max(600.0, (a.messages / a.rate if a.rate else 0) * 3
                                         + a.messages / 20.0)

        def watch_crash():
            """A bot that died on its own: record it and start another."""
            nonlocal cur
            if cur.bot.proc.poll() is not None:
                code = cur.bot.proc.returncode
                crashes.append((cur.index, code, cur.bot.log()[-15:]))
                log(f"the bot (process {cur.index}) exited on its own with {code}; restarting")
                cur.end_msg = state["done"]
                cur.bot.kill9()
                cur = start_bot(cur.index + 1, state["done"])

        while any(t.is_alive() for t in threads):
            time.sleep(0.05)
            now = time.monotonic()
            done = state["done"]
            watch_crash()
            if done >= next_rss:
                cur.sample(done)
                next_rss += a.rss_every
            if kill_at is not None and kill_info is None and done >= kill_at:
                cur.sample(done)
                cur.answers = metric_sum(cur.bot.config["metrics"]["listen"].split(":")[1],
                                         "faqbot_answers_total")
                cur.end_msg = done
                tk = time.monotonic()
                cur.bot.kill9()
                log(f"kill -9 of the bot at message {done} ({tk - t0:.1f} s); "
                    f"down for {a.downtime:.1f} s")
                time.sleep(a.downtime)
                tr = time.monotonic()
                cur = start_bot(cur.index + 1, state["done"])
                kill_info = {"at_msg": done, "t_kill": tk - t0, "t_start": tr - t0,
                             "t_connected": time.monotonic() - t0,
                             "sent_while_down": state["done"] - done}
                cur.sample(state["done"])
            if now - last_harvest > 2:
                harvest.poll()
                last_harvest = now
            if now - last_note > 30:
                asked = [s[0] for s in sent[:done] if s and s[2]]
                log(f"{done} of {a.messages} sent; {observer.answered(asked)} of "
                    f"{len(asked)} questions answered so far")
                last_note = now
            if now > send_deadline:
                with lock:
                    state["stop"] = True
                bed_errors.append("the patients did not send everything before the deadline")
                break
        for t in threads:
            t.join(60)
        faults.stopped.set()
        if faults.is_alive():
            faults.join(30)
        send_s = time.monotonic() - t0
        nsent = state["done"]
        if bed_errors:
            print("soak: the test bed failed:\n  " + "\n  ".join(bed_errors[:10]))
            rc = 2
            return rc

        questions = [s[0] for s in sent if s and s[2]]
        qset = set(questions)
        log(f"all {nsent} messages sent in {send_s:.1f} s; waiting for the replies")

        # Drain: every question answered (bounded); or the bot caught up (it
        # asked /sync from past the last message), with no fault waiting and
        # no send for 15 s: what is still unanswered then will stay so.
        end_pos = ctl.health()["stream_pos"]
        drain_deadline = time.monotonic() + SCALE * max(120.0, a.messages / 50.0)
        t_all = None
        caught_up = False
        while time.monotonic() < drain_deadline:
            watch_crash()
            if observer.answered(questions) >= len(questions):
                t_all = time.monotonic() - t0
                break
            if time.monotonic() - last_harvest > 2:
                harvest.poll()
                last_harvest = time.monotonic()
                synced = max((sp for _, sp, _ in harvest.syncs if sp is not None), default=0)
                if (synced >= end_pos and time.time() - harvest.last_send > 15
                        and faults.hits()[1] == 0):
                    caught_up = True
                    break
            time.sleep(0.2)
        # Let retries and late duplicates land: the bot quiet for 5 s.
        quiet_deadline = time.monotonic() + SCALE * 60
        while time.monotonic() < quiet_deadline:
            harvest.poll()
            if time.time() - harvest.last_send > 5:
                break
            time.sleep(1)
        watch_crash()
        total_s = time.monotonic() - t0
        cur.sample(nsent)
        cur.end_msg = nsent
        cur.answers = metric_sum(cur.bot.config["metrics"]["listen"].split(":")[1],
                                 "faqbot_answers_total")
        hits, waiting = faults.hits()
        ctl.clear_faults()
        # SIGTERM: it must save and stop cleanly (a sanitizer build reports
        # its leaks now).
        stop_rc, stop_s = cur.bot.stop()
        harvest.poll()

        # The check, from the server's full list of events.
        info = {s[0]: s for s in sent if s}
        replies = collections.defaultdict(list)
        unexpected = []
        room_events = {}
        for r in rooms:
            evs = ctl.events(r)
            room_events[r] = evs
            for e in evs:
                if e.get("type") != "m.room.message" or e.get("sender") != BOT:
                    continue
                t = reply_target(e)
                if t in qset:
                    replies[t].append(e)
                else:
                    unexpected.append((r, e, t))
        lost = [q for q in questions if not replies.get(q)]
        dup = [q for q in questions if len(replies.get(q, ())) > 1]
        once = sum(1 for q in questions if len(replies.get(q, ())) == 1)

        # Figures.
        print(f"faqbot soak: {nsent} messages over {a.rooms} rooms from {a.patients} patients, "
              f"seed {a.seed} (test homeserver in Python on 127.0.0.1)")
        rate = f"{a.rate:.0f} messages/s asked" if a.rate else "unthrottled"
        print(f"  sent: {nsent} messages ({len(questions)} questions, "
              f"{nsent - len(questions)} chatter) in {send_s:.1f} s: "
              f"{nsent / send_s:.1f} messages/s ({rate})")
        if t_all is not None:
            print(f"  every question answered {t_all - send_s:.1f} s after the last message; "
                  f"total {total_s:.1f} s (setup {setup_s:.1f} s before)")
        elif caught_up:
            print(f"  not every question answered: the bot caught up and stayed quiet; "
                  f"total {total_s:.1f} s")
        else:
            print(f"  not every question answered by the deadline; total {total_s:.1f} s")
        if kill_info:
            print(f"  kill -9 at message {kill_info['at_msg']} ({kill_info['t_kill']:.1f} s), "
                  f"started again {kill_info['t_start'] - kill_info['t_kill']:.1f} s later, "
                  f"connected after {kill_info['t_connected'] - kill_info['t_start']:.2f} s; "
                  f"{kill_info['sent_while_down']} messages sent meanwhile")
        print(f"  replies: questions {len(questions)}, answered once {once}, lost {len(lost)}, "
              f"duplicated {len(dup)}, unexpected {len(unexpected)} "
              f"(bot messages that answer no question: chatter or unknown)")
        nf = sum(hits.values())
        print(f"  faults: {nf} hits of {sum(faults.added.values())} injected"
              f" ({waiting} left unused at the end; {faults.skipped} draws skipped while "
              f"another fault of that kind waited):")
        for target in ("send", "sync"):
            row = sorted((k, v) for k, v in hits.items() if k.startswith(target + " "))
            print(f"    {target:5} " + ", ".join(f"{k.split(' ', 1)[1]} {v}" for k, v in row))
        sends = len(harvest.sends)
        print(f"  bot requests seen: {len(harvest.syncs)} syncs, {sends} sends "
              f"({len({s[1] for s in harvest.sends})} distinct transaction ids)")
        print(f"  stop: SIGTERM, exit status {stop_rc} after {stop_s:.2f} s")
        unmeasured = memory_unmeasurable()
        if unmeasured:
            print(f"  (memory not checked: {unmeasured})")
        mem_bad = []
        for p in procs:
            series = " ".join(f"{m}:{kb / 1024:.1f}" for m, kb in p.samples)
            span = (p.end_msg or nsent) - p.start_msg
            warm = [s for s in p.samples if s[0] >= p.start_msg + max(a.rss_every, span // 10)]
            line = f"  memory, process {p.index} (messages {p.start_msg}-{p.end_msg}): VmRSS MB {series}"
            if len(warm) >= 2:
                g = (warm[-1][1] - warm[0][1]) / 1024
                line += f"; growth after warm-up {g:+.2f} MB"
                if g > a.rss_slack_mb and not unmeasured:
                    mem_bad.append(f"process {p.index}: VmRSS grew {g:+.2f} MB after warm-up "
                                   f"(over --rss-slack-mb {a.rss_slack_mb})")
            if p.hwm:
                line += f", peak {p.hwm / 1024:.1f} MB"
            if p.answers is not None:
                line += f"; its faqbot_answers_total {p.answers:.0f}"
            print(line)
        if len(procs) > 1:
            print("  (the counters are saved every 60 s, and a new process starts from the "
                  "last save: a kill -9 loses the counts since then, not the replies)")
        warns = collections.Counter()
        san = []
        for p in procs:
            san += p.bot.sanitizer_errors()
            for ln in p.bot.log():
                if " warning: " in ln or " error: " in ln or " warn: " in ln:
                    msg = re.sub(r"^\S+ faqbot \w+: ", "", ln)
                    msg = re.sub(r"![^ :]+:localhost", "ROOM", msg)
                    msg = re.sub(r"\d+", "N", msg)
                    warns[msg] += 1
        if warns:
            print(f"  bot warnings ({sum(warns.values())}):")
            for msg, n in warns.most_common(12):
                print(f"    {n:6}  {msg}")

        # Verdict and, for a failure, the details.
        lost_rows = classify_lost(lost, info, room_events, harvest, kill_info)
        in_limited = [x for x in lost_rows if x[7] is not None and x[7] > BOT_TIMELINE_LIMIT]
        if lost:
            failures.append(f"{len(lost)} question(s) got no reply ({len(in_limited)} of them "
                            f"in limited syncs, {sum(1 for x in lost_rows if x[4])} sent while "
                            f"the bot was down)")
        if dup:
            failures.append(f"{len(dup)} question(s) got more than one reply")
        if unexpected:
            failures.append(f"{len(unexpected)} message(s) of the bot answer no question")
        if crashes:
            failures.append(f"the bot exited on its own {len(crashes)} time(s)")
        if stop_rc != 0:
            failures.append(f"the bot exited with {stop_rc} on SIGTERM")
        if san:
            failures.append(f"{len(san)} sanitizer complaint(s)")
        failures += mem_bad
        if lost:
            batches = collections.Counter((x[1], x[5], x[6]) for x in in_limited)
            print(f"  lost in limited syncs: {len(in_limited)}, in {len(batches)} batch(es) of "
                  f"a room: " + ", ".join(f"(s{a}, s{b}] {n}" for (_, a, b), n in
                                          sorted(batches.items(), key=lambda kv: kv[0][1])[:12]))
            other = [x for x in lost_rows if x not in in_limited]
            print_lost(in_limited[:5] + other[:20])
        for q in dup[:10]:
            r = info[q][1]
            print(f"  duplicated: {q} in {r}: replies " + ", ".join(
                f"{e['event_id']} (pos {e['stream_pos']})" for e in replies[q]))
        for r, e, t in unexpected[:10]:
            what = "chatter" if t in info else "an unknown event"
            print(f"  unexpected: {e['event_id']} in {r} replies to {t} ({what}): "
                  f"{(e.get('content') or {}).get('body', '')[:80]!r}")
        for idx, code, tail in crashes:
            print(f"  crash: process {idx} exited with {code}; its last lines:")
            for ln in tail:
                print("    " + ln)
        for ln in san[:10]:
            print("  sanitizer: " + ln)
        if failures:
            print("  FAIL: " + "; ".join(failures))
            rc = 1
        else:
            print("  PASS: every question answered exactly once, no chatter answered, "
                  "no crash, memory flat")
        return rc
    finally:
        if observer:
            observer.stopped.set()
        for p in procs:
            try:
                with open(os.path.join(tmp, f"bot{p.index}.log"), "w") as f:
                    f.write("\n".join(p.bot.log()) + "\n")
            except OSError:
                pass
            p.bot.stop()
        if hs:
            hs.stop()
            shutil.rmtree(hs._tmpdir, ignore_errors=True)  # its port file
        hs_err.close()
        if a.keep or os.environ.get("SOAK_KEEP"):
            print(f"  kept: {tmp} (bot state, bot1.log, bot2.log, homeserver.err)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def classify_lost(lost, info, room_events, harvest, kill_info):
    """For each lost question: where it was, and the sync batch that carried
    it: (a, b], the bot's since positions around it (it asked since=a and got
    next_batch b), with the number of this room's events in it that pass the
    bot's filter (over 50 = a limited sync: the server sent only the last 50).
    Returns [(event id, room, pos, sent at, while down, a, b, n)]."""
    marks = sorted({sp for _, sp, _ in harvest.syncs if sp is not None})
    pos_of = {}
    for r, evs in room_events.items():
        for e in evs:
            pos_of[e["event_id"]] = e["stream_pos"]
    out = []
    for q in lost:
        _, room, _, t_sent = info[q]
        pos = pos_of.get(q)
        i = bisect.bisect_left(marks, pos) if pos is not None else 0
        a = marks[i - 1] if i > 0 else None
        b = marks[i] if i < len(marks) else None
        n = None
        if a is not None and b is not None:
            n = sum(1 for e in room_events[room]
                    if a < e["stream_pos"] <= b and e["type"] in BOT_TIMELINE_TYPES)
        down = bool(kill_info and kill_info["t_kill"] <= t_sent <= kill_info["t_connected"])
        out.append((q, room, pos, t_sent, down, a, b, n))
    return out


def print_lost(rows):
    for q, room, pos, t_sent, down, a, b, n in rows:
        if n is None:
            batch = "no sync batch found for it"
        else:
            batch = f"sync batch (s{a}, s{b}] held {n} events of this room"
            if n > BOT_TIMELINE_LIMIT:
                batch += f" (over the filter's limit of {BOT_TIMELINE_LIMIT}: a limited sync)"
        print(f"  lost: {q} in {room} at pos {pos}, sent at {t_sent:.1f} s"
              f"{', while the bot was down' if down else ''}; {batch}")


if __name__ == "__main__":
    sys.exit(main())
