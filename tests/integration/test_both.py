"""Both transports in one process: a Matrix account (on the test homeserver)
and an IRC network (InspIRCd), sharing the intents, the room rules and the
safety escalation: an emergency on IRC alerts the moderator room on Matrix."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "irc"))

from harness import wait_until  # noqa: E402
from ircenv import Client as IrcClient  # noqa: E402
from ircenv import IrcNetwork  # noqa: E402
from matrixenv import BOT, MatrixTestCase, bot_config  # noqa: E402
from mxclient import Client  # noqa: E402
from test_irc import SKIP  # noqa: E402  (installs the IRC servers when it may)


@unittest.skipIf(SKIP, f"the IRC server cannot be installed: {SKIP}")
class BothTransports(MatrixTestCase):
    def setUp(self):
        super().setUp()
        self.net = IrcNetwork().start()
        self.addCleanup(self.net.close)
        self.mod = Client(self.hs.url)
        self.mod.login("mod", "modpass")
        self.modroom = self.mod.create_room(name="Moderators", invite=[BOT])
        self.irc_people = []

    def tearDown(self):
        for c in self.irc_people:
            c.close()
        super().tearDown()

    def start_both(self):
        cfg = bot_config(self.hs.url)
        cfg["transport"] = ["matrix", "irc"]
        cfg["irc"] = {"server": "localhost", "port": self.net.port,
                      "tls_ca_file": self.net.cert, "nick": "faqbot",
                      "channels": ["#support"], "burst": 3, "rate_ms": 200,
                      "backoff_max_ms": 1000}
        cfg["moderation"] = {"room": self.modroom}
        bot = self.start_bot(cfg)
        bot.wait_log("irc: joined #support", timeout=20)
        wait_until(lambda: BOT in self.mod.joined_members(self.modroom), 20,
                   what="the bot to join the moderator room")
        return bot

    def irc_person(self, nick):
        c = IrcClient(self.net, nick)
        c.join("#support")
        self.irc_people.append(c)
        return c

    def test_one_process_answers_on_both_and_irc_emergencies_reach_matrix_moderators(self):
        bot = self.start_both()
        room = self.support_room(bot)
        # Matrix: a question gets its answer.
        q = self.patient.send_text(room, "what is palliative care?")
        self.assertIn("comfort", self.wait_reply(room, q)["content"]["body"])
        # IRC, same process and intents: the same question gets the same answer.
        person = self.irc_person("ircpatient")
        time.sleep(0.5)
        person.drain()
        person.say("#support", "what is palliative care?")
        got = person.collect_from("faqbot")
        self.assertIn("comfort", " ".join(m.params[-1] for m in got))
        # An emergency on IRC: the safety answer there, an alert in the Matrix
        # moderator room naming the IRC channel.
        person.drain()
        person.say("#support", "my husband just collapsed and is not breathing")
        got = person.collect_from("faqbot")
        self.assertIn("emergency", " ".join(m.params[-1] for m in got).lower())

        def alert():
            return [e for e in self.ctl.events(self.modroom)
                    if e.get("sender") == BOT and "Safety alert" in
                    e.get("content", {}).get("body", "")]
        found = wait_until(alert, 15, what="the alert in the Matrix moderator room")
        body = found[0]["content"]["body"]
        self.assertIn("#support", body)
        self.assertIn("emergency", body)
        # No more of the patient's words than needed.
        self.assertNotIn("collapsed", body)
        self.assertNotIn("husband", body)


if __name__ == "__main__":
    unittest.main(verbosity=2)
