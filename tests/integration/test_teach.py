"""Moderators teach the bot from what it missed, on the test homeserver:
`!faq teach` from the unanswered list and a reload, `!faq wrong`, a crisis
taught that takes effect at once, patients' reactions, the taught file
across a restart and `faqbot taught`."""
import json
import os
import subprocess
import time
import unittest

from harness import FAQBOT, wait_until
from matrixenv import BOT, MOD, PATIENT, MatrixTestCase, bot_config
from mxclient import Client

# Questions, a rewording of each, and what they are: the first pair that
# neither the rules nor the model answer today is taught.
QUESTIONS = [
    ("faqbot can my husband get the flu jab while hes on keytruda",
     "faqbot is the flu jab ok for my husband while on keytruda", "personal.advice"),
    ("faqbot does the marsden have an advice line for carers at night",
     "faqbot is there a night advice line for carers at the marsden", "treatment.warning_signs"),
    ("faqbot how do I get the blue badge for parking with cancer",
     "faqbot can you get a blue badge for parking if you have cancer", "personal.advice"),
]
# Crisis messages with no alarming word, and one close to each: the first
# pair with no safety answer today is taught.
CRISES = [
    ("faqbot put the good watch in an envelope for my son with the note",
     "the note for my son is in the envelope with the good watch"),
    ("faqbot the shed key is in the envelope with the letters for the kids",
     "the letters for the kids are in the envelope with the shed key"),
    ("faqbot labelled the freezer boxes so the kids know what is what",
     "the freezer boxes are labelled so the kids know what is what"),
    ("faqbot no need to renew the garden magazine after this month",
     "faqbot no need to renew my garden magazine after this month then"),
]


class TeachTestCase(MatrixTestCase):
    def setUp(self):
        super().setUp()
        self.mod = Client(self.hs.url)
        self.mod.login("mod", "modpass")
        self.support = self.patient.create_room(name="Support", invite=[BOT, MOD])
        self.modroom = self.mod.create_room(name="Moderators", invite=[BOT])
        self.mod.join(self.support)

    def config(self):
        cfg = bot_config(self.hs.url)
        cfg["moderation"] = {"room": self.modroom}
        return cfg

    def start(self, workdir=None):
        bot = self.start_bot(self.config(), workdir=workdir)
        wait_until(lambda: BOT in self.patient.joined_members(self.support), 20,
                   what="the bot to join the support room")
        wait_until(lambda: BOT in self.mod.joined_members(self.modroom), 20,
                   what="the bot to join the moderator room")
        time.sleep(0.5)
        return bot

    def bot_messages(self, room):
        return [e for e in self.ctl.events(room)
                if e.get("type") == "m.room.message" and e.get("sender") == BOT]

    def wait_bot_message(self, room, pred, timeout=15):
        return wait_until(lambda: [e for e in self.bot_messages(room) if pred(e)], timeout,
                          what="a message from the bot")[0]

    def command(self, text, timeout=15):
        """A moderator command in the moderator room; returns the bot's reply text."""
        q = self.mod.send_text(self.modroom, text)
        return self.wait_reply(self.modroom, q, timeout)["content"]["body"]

    def classify(self, messages):
        out = subprocess.run([FAQBOT, "classify"], input="\n".join(messages) + "\n",
                             capture_output=True, text=True, check=True)
        return [json.loads(l) for l in out.stdout.splitlines()]


class Teach(TeachTestCase):
    def pick(self, pairs, ok):
        for p in pairs:
            if all(ok(r) for r in self.classify(list(p[:2]))):
                return p
        self.fail(f"the test needs messages the bot misses today; every candidate is answered")

    def test_a_taught_question_is_answered_after_a_reload_and_the_file_survives(self):
        QUESTION, REWORDED, INTENT = self.pick(QUESTIONS, lambda r: r["intent"] is None)
        bot = self.start()
        q = self.patient.send_text(self.support, QUESTION)
        self.assertIn("don't have an answer", self.wait_reply(self.support, q)["content"]["body"])
        listing = self.command("!faq unanswered 5")
        self.assertIn("1. ", listing)
        self.assertIn(QUESTION.split()[-1], listing)
        # A label that is not an intent: "did you mean".
        self.assertIn(f"did you mean {INTENT}", self.command(f"!faq teach 1 {INTENT[:-1]}"))
        reply = self.command(f"!faq teach 1 {INTENT}")
        self.assertIn("Taught:", reply)
        self.assertIn(INTENT, reply)
        self.assertIn("next reload", reply)
        # Not yet: the model learns it at the reload.
        q = self.patient.send_text(self.support, REWORDED)
        self.assertIn("don't have an answer", self.wait_reply(self.support, q)["content"]["body"])
        self.assertIn("Reloaded", self.command("!faq reload"))
        self.wait_bot_message(self.modroom,
                              lambda e: "reloaded set is in use" in e["content"]["body"], 60)
        q = self.patient.send_text(self.support, REWORDED)
        taught_answer = self.wait_reply(self.support, q)["content"]["body"]
        self.assertNotIn("don't have an answer", taught_answer)
        bot.wait_log(f"answered {INTENT}")
        stats = self.command("!faq stats")
        self.assertIn("Taught by moderators: 1 message", stats)
        # The taught file survives a restart, and `faqbot taught` prints it.
        bot.stop()
        out = subprocess.run([FAQBOT, "taught", "--state", bot.state], capture_output=True,
                             text=True, check=True).stdout
        lines = out.splitlines()
        self.assertEqual(lines[0], "intent\tmessage")
        self.assertTrue(any(l.startswith("# taught by @mod:localhost on ") for l in lines), out)
        self.assertTrue(any(l.startswith(INTENT + "\t") and QUESTION.split()[-1] in l
                            for l in lines), out)
        again = self.start(workdir=bot.dir)
        q = self.patient.send_text(self.support, REWORDED + "?")
        self.assertEqual(self.wait_reply(self.support, q)["content"]["body"], taught_answer)
        self.assertIn("Taught by moderators: 1 message", self.command("!faq stats"))
        again.stop()

    def test_teaching_is_for_moderators_in_the_moderator_room(self):
        self.start()
        q = self.patient.send_text(self.support, "!faq teach 1 null")
        self.assertIn("only moderators", self.wait_reply(self.support, q)["content"]["body"])
        q = self.mod.send_text(self.support, "!faq teach 1 null")
        self.assertIn("moderator room only", self.wait_reply(self.support, q)["content"]["body"])
        self.assertIn("no entry 1", self.command("!faq teach 1 null"))

    def test_a_crisis_taught_takes_effect_at_once_for_messages_close_to_it(self):
        msg, close = self.pick(CRISES, lambda r: not (r["intent"] or "").startswith("safety.")
                               and r.get("flag") is None)
        self.start()
        q = self.patient.send_text(self.support, msg)
        self.wait_reply(self.support, q)
        self.command("!faq unanswered")
        reply = self.command("!faq teach 1 safety.crisis")
        self.assertIn("In effect now", reply)
        q = self.patient.send_text(self.support, close)
        body = self.wait_reply(self.support, q)["content"]["body"]
        self.assertRegex(body.lower(), r"crisis|samaritans|988|talk to someone")
        alert = self.wait_bot_message(self.modroom, lambda e: "Safety alert" in e["content"]["body"])
        self.assertIn("taught", alert["content"]["body"])

    def test_wrong_answers_and_reactions(self):
        bot = self.start()
        q = self.patient.send_text(self.support, "what does palliative care mean?")
        answer = self.wait_reply(self.support, q)
        # A 👎 from the patient: counted, and the question goes to the unanswered list.
        self.patient.send_event(self.support, "m.reaction", {"m.relates_to": {
            "rel_type": "m.annotation", "event_id": answer["event_id"], "key": "👎"}})
        self.mod.send_event(self.support, "m.reaction", {"m.relates_to": {
            "rel_type": "m.annotation", "event_id": answer["event_id"], "key": "👍🏽"}})
        bot.wait_log("a thumbs down for the answer palliative.care")
        bot.wait_log("a thumbs up for the answer palliative.care")
        listing = self.command("!faq unanswered")
        self.assertIn("palliative care", listing)
        self.assertIn("marked unhelpful", listing)
        self.assertIn("1 helpful, 1 unhelpful", self.command("!faq stats"))
        # `wrong` with a link to the answer, and the right intent.
        link = f"https://matrix.to/#/{self.support}/{answer['event_id']}"
        reply = self.command(f"!faq wrong {link} quality_of_life")
        self.assertIn("my answer palliative.care was wrong", reply)
        self.assertIn("quality_of_life", reply)
        self.assertIn("I do not have that message",
                      self.command("!faq wrong $nosuchevent:localhost"))


if __name__ == "__main__":
    unittest.main()
