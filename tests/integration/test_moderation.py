"""Safety floods, the moderator room and who may give commands, direct
chats and display names: what one person, a kick or a changed room must not
be able to do to the bot, on the test homeserver."""
import re
import time
import unittest
import urllib.parse

from harness import wait_until
from matrixenv import BOT, MOD, PATIENT, RoomsTestCase
from mxclient import Client

CRISIS = "i just want it all to end for good"


class SafetyFlood(RoomsTestCase):
    def test_one_person_in_crisis_gets_one_answer_and_the_moderators_one_follow_up(self):
        bot = self.start(moderation={"room": self.modroom, "alert_every_s": 2})
        other = self.mod.create_room(name="Other", invite=[BOT])
        bot.wait_log(f"joined {other}", timeout=15)
        time.sleep(1)
        flood = [self.patient.send_text(self.support, f"{CRISIS} ({i})") for i in range(30)]
        # Someone else's emergency elsewhere is answered at once, not after a flood.
        em = self.mod.send_text(other, "my husband collapsed and is not breathing")
        self.assertIn("emergency", self.body(self.wait_reply(other, em)).lower())
        self.wait_reply(self.support, flood[0])

        def continued():
            return [e for e in self.bot_messages(self.modroom)
                    if "Safety alert (crisis), continued" in self.body(e)]

        def counted():
            return sum(int(re.search(r"(\d+) more message", self.body(e)).group(1))
                       for e in continued())
        wait_until(lambda: counted() >= 29, 20, what="the follow-up alerts")
        self.assertEqual(counted(), 29)
        self.assertIn(flood[-1], urllib.parse.unquote(self.body(continued()[-1])))
        answered = [q for q in flood if self.replies_to(self.support, q)]
        self.assertEqual(answered, [flood[0]])
        first = [e for e in self.bot_messages(self.modroom)
                 if "Safety alert (crisis)**" in e["content"].get("formatted_body", "")
                 or ("Safety alert (crisis) in" in self.body(e))]
        self.assertEqual(len(first), 1, [self.body(e) for e in first])
        self.assertEqual(self.metric("faqbot_safety_repeats_total"), 29)
        bot.wait_log("counted for the moderators", timeout=5)

    def test_refusals_count_against_the_flood_limit(self):
        self.start(policy={"user_rate_per_min": 3})
        cmds = [self.patient.send_text(self.support, "!faq stats") for _ in range(20)]
        em = self.mod.send_text(self.support, "my husband collapsed and is not breathing")
        self.wait_reply(self.support, em)
        marker = self.mod.send_text(self.support, "what is immunotherapy?")
        self.wait_reply(self.support, marker)
        replies = [r for q in cmds for r in self.replies_to(self.support, q)]
        refusals = [r for r in replies if "only moderators" in self.body(r)]
        told = [r for r in replies if "wait a moment" in self.body(r)]
        self.assertEqual(len(refusals), 3)
        self.assertEqual(len(told), 1)
        self.assertEqual(len(replies), 4)


class ModeratorRoom(RoomsTestCase):
    def test_losing_the_moderator_room_is_an_error_everywhere(self):
        bot = self.start(moderation={"room": self.modroom, "users": [MOD]})
        self.assertEqual(self.metric("faqbot_moderator_room_joined"), 1)
        self.assertEqual(self.healthz()[0], 200)
        self.mod.kick(self.modroom, BOT, reason="oops")
        at = bot.wait_log("not in the moderator room", timeout=15)
        self.assertIn(" error: ", bot.log()[at - 1])
        self.assertIn(f"kicked by {MOD}", bot.log()[at - 1])
        self.assertEqual(self.metric("faqbot_moderator_room_joined"), 0)
        status, body = self.healthz()
        self.assertEqual(status, 503)
        self.assertIn("not in the moderator room", body)
        # An alert that cannot go is an error and a count, not silence.
        q = self.patient.send_text(self.support, CRISIS)
        self.wait_reply(self.support, q)
        bot.wait_log("cannot reach the moderators", timeout=10)
        self.assertEqual(self.metric("faqbot_safety_alerts_undelivered_total"), 1)
        # A listed moderator asks in a direct chat: the stats say it too.
        dm = self.mod.create_room(invite=[BOT], is_direct=True)
        bot.wait_log(f"joined {dm}", timeout=15)
        time.sleep(1)
        c = self.mod.send_text(dm, "!faq stats")
        stats = self.body(self.wait_reply(dm, c))
        self.assertIn("not in the moderator room", stats)
        # Invited back: all is well again.
        self.mod.invite(self.modroom, BOT)
        bot.wait_log("in the moderator room", timeout=15, start=at)
        wait_until(lambda: self.metric("faqbot_moderator_room_joined") == 1, 15,
                   what="the gauge to come back")
        wait_until(lambda: self.healthz()[0] == 200, 15, what="/healthz to be 200 again")

    def test_a_moderator_kicked_from_the_moderator_room_loses_command_rights(self):
        self.ctl.register("mod2", "mod2pass")
        mod2 = Client(self.hs.url)
        mod2.login("mod2", "mod2pass")
        self.mod.invite(self.modroom, "@mod2:localhost")
        mod2.join(self.modroom)
        self.mod.set_power_level(self.modroom, "@mod2:localhost", 50)
        bot = self.start(matrix={"invite_allow": [PATIENT, MOD, "@mod2:localhost"]})
        dm = mod2.create_room(invite=[BOT], is_direct=True)
        bot.wait_log(f"joined {dm}", timeout=15)
        time.sleep(1)
        c = mod2.send_text(dm, f"!faq pause {self.support}")
        self.assertIn("Paused", self.body(self.wait_reply(dm, c)))
        c = mod2.send_text(dm, f"!faq resume {self.support}")
        self.wait_reply(dm, c)
        self.mod.kick(self.modroom, "@mod2:localhost")
        time.sleep(1)
        c = mod2.send_text(dm, f"!faq pause {self.support}")
        self.assertIn("only moderators", self.body(self.wait_reply(dm, c)))
        q = self.patient.send_text(self.support, "what is immunotherapy?")
        self.wait_reply(self.support, q)


class DirectChats(RoomsTestCase):
    def test_a_direct_chat_is_direct_only_while_it_has_two_members(self):
        bot = self.start(moderation={"room": "", "users": [PATIENT]})
        dm = self.patient.create_room(invite=[BOT], is_direct=True)
        bot.wait_log(f"joined {dm}", timeout=15)
        time.sleep(1)
        chatter = self.patient.send_text(dm, "good morning, lovely weather today")
        self.wait_reply(dm, chatter)  # in a direct chat everything is for the bot
        c = self.patient.send_text(dm, "!faq stats")
        self.assertIn("Answers", self.body(self.wait_reply(dm, c)))
        self.patient.invite(dm, MOD)
        self.mod.join(dm)
        time.sleep(1)
        chatter = self.patient.send_text(dm, "good morning again, lovely weather")
        c = self.patient.send_text(dm, "!faq stats")
        self.assertIn("moderator room only", self.body(self.wait_reply(dm, c)))
        q = self.patient.send_text(dm, "what is immunotherapy?")
        self.wait_reply(dm, q)
        self.assertEqual(self.replies_to(dm, chatter), [])


class DisplayNames(RoomsTestCase):
    def test_names_are_per_room_and_a_long_one_replaces_the_old(self):
        self.patient.set_displayname("Robin")
        bot = self.start()
        # A name set for one room only: not used in another.
        self.patient.put_state(self.mention, "m.room.member",
                               {"membership": "join", "displayname": "Robin (helpdesk)"},
                               PATIENT)
        time.sleep(1)
        q = self.patient.send_text(self.support, "should I stop my chemo?")
        reply = self.body(self.wait_reply(self.support, q))
        self.assertTrue(reply.startswith("Robin, that is"), reply[:80])
        # Over 255 bytes: it replaces the old name, cut (the answer shows its start).
        long_name = "Rosalind " + "x" * 300
        self.patient.put_state(self.support, "m.room.member",
                               {"membership": "join", "displayname": long_name}, PATIENT)
        time.sleep(1)
        q = self.patient.send_text(self.support, "should I stop my chemo?")
        reply = self.body(self.wait_reply(self.support, q))
        self.assertTrue(reply.startswith("Rosalind xxx"), reply[:80])
        self.assertNotIn("Robin", reply)
        del bot


if __name__ == "__main__":
    unittest.main(verbosity=2)
