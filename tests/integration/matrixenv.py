"""A Matrix test bed: the test homeserver, the patient and a moderator,
a support room, and faqbot configured against them; and a bed with a
support room, a mention-only room and a moderator room, with metrics."""
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from harness import Bot, free_port, wait_until
from mxclient import Client, HomeserverProcess

BOT = "@faqbot:localhost"
PATIENT = "@patient:localhost"
MOD = "@mod:localhost"
USERS = {BOT: "botpass", PATIENT: "patientpass", MOD: "modpass",
         "@stranger:localhost": "strangerpass"}


def bot_config(hs_url, **over):
    """A config for the bot against hs_url; keyword sections override."""
    cfg = {
        "matrix": {"homeserver": hs_url, "user_id": BOT, "password": "botpass",
                   "invite_allow": [PATIENT, MOD], "backoff_max_ms": 3000,
                   "sync_timeout_ms": 30000, "request_timeout_ms": 10000},
        "responses": {"allow_drafts": True},
        "policy": {"cooldown_s": 0, "user_rate_per_min": 600, "room_rate_per_min": 600},
        "log": {"level": "debug"},
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k].update(v)
        else:
            cfg[k] = v
    return cfg


def is_reply_to(event_id):
    """Predicate: a message from the bot replying to event_id."""
    def pred(e):
        c = e.get("content", {})
        return (e.get("type") == "m.room.message" and e.get("sender") == BOT and
                c.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == event_id)
    return pred


class MatrixTestCase(unittest.TestCase):
    """Starts a homeserver with state on disk; each test starts its bot."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="faqbot-mx-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.hs = HomeserverProcess(USERS, state_path=os.path.join(self.tmp, "hs.json"),
                                    stderr=subprocess.DEVNULL).start()
        self.addCleanup(self.hs.stop)
        self.ctl = self.hs.control()
        self.patient = Client(self.hs.url)
        self.patient.login("patient", "patientpass")
        self.bots = []

    def tearDown(self):
        errs = []
        for b in self.bots:
            b.stop()
            errs += b.sanitizer_errors()
            b.cleanup()
        self.assertEqual(errs, [], "sanitizer errors in the bot's log")

    def start_bot(self, cfg=None, workdir=None, wait_sync=True):
        """Starts faqbot (reusing workdir's state if given); waits for its first sync."""
        b = Bot(cfg or bot_config(self.hs.url), workdir=workdir)
        if workdir:
            b.config["state_dir"] = os.path.join(workdir, "state")
        b.start()
        self.bots.append(b)
        if wait_sync:
            b.wait_log("connected to", timeout=20)
        return b

    def support_room(self, bot, name="Support"):
        """The patient creates a room and invites the bot; returns it once joined."""
        room = self.patient.create_room(name=name, invite=[BOT], preset="private_chat")
        wait_until(lambda: BOT in self.patient.joined_members(room), 20,
                   what="the bot to join")
        # Let the bot's next sync include the room before we talk in it.
        bot.wait_log(f"joined {room}", timeout=10)
        return room

    def replies_to(self, room, event_id):
        """Every message of the bot in room that replies to event_id."""
        return [e for e in self.ctl.events(room) if is_reply_to(event_id)(e)]

    def wait_reply(self, room, event_id, timeout=15):
        """Waits for exactly one reply of the bot to event_id; returns it."""
        found = wait_until(lambda: self.replies_to(room, event_id), timeout,
                           what=f"a reply to {event_id}")
        return found[0]


class RoomsTestCase(MatrixTestCase):
    """A support room, a mention-only room and a moderator room."""

    def setUp(self):
        super().setUp()
        self.mod = Client(self.hs.url)
        self.mod.login("mod", "modpass")
        self.support = self.patient.create_room(name="Support", invite=[BOT, MOD])
        self.mention = self.patient.create_room(name="Helpdesk", invite=[BOT])
        self.modroom = self.mod.create_room(name="Moderators", invite=[BOT, PATIENT])
        self.mod.join(self.support)
        self.patient.join(self.modroom)
        self.metrics_port = free_port()

    def config(self, **over):
        cfg = bot_config(self.hs.url)
        cfg["rooms"] = {"default": {"answer": "auto"}, self.mention: {"answer": "mention"}}
        cfg["moderation"] = {"room": self.modroom}
        cfg["metrics"] = {"listen": f"127.0.0.1:{self.metrics_port}"}
        for k, v in over.items():
            if isinstance(v, dict) and isinstance(cfg.get(k), dict):
                cfg[k].update(v)
            else:
                cfg[k] = v
        return cfg

    def start(self, workdir=None, **over):
        bot = self.start_bot(self.config(**over), workdir=workdir)
        for room in (self.support, self.mention, self.modroom):
            wait_until(lambda r=room: BOT in self.patient.joined_members(r), 20,
                       what="the bot to join every room")
        time.sleep(0.5)
        return bot

    def bot_messages(self, room):
        return [e for e in self.ctl.events(room)
                if e.get("type") == "m.room.message" and e.get("sender") == BOT]

    def wait_bot_message(self, room, pred, timeout=15):
        return wait_until(lambda: [e for e in self.bot_messages(room) if pred(e)], timeout,
                          what="a message from the bot")[0]

    def body(self, e):
        return e["content"]["body"]

    def metric(self, name):
        """The value of one sample of /metrics (name with its labels), or None."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        m = re.search(r"^" + re.escape(name) + r" (\S+)$", text, re.M)
        return float(m.group(1)) if m else None

    def healthz(self):
        """(status, body) of /healthz."""
        url = f"http://127.0.0.1:{self.metrics_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
