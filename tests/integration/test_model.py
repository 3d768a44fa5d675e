"""The learned layer in the running bot, on the test homeserver: a safety
message no rule catches gets the safety answer and an alert that says the
model raised it; a doubtful one gets only a silent alert in the moderator
room; a question no rule answers gets the model's answer.

The thresholds are set around what `faqbot classify` says of each message
with the same configuration, so that the tests hold whatever the model
learns from the shipped labelled messages."""
import json
import os
import shutil
import subprocess
import urllib.parse
import time
import unittest

from harness import FAQBOT, Bot, wait_until
from matrixenv import BOT, MOD, PATIENT, MatrixTestCase, bot_config
from mxclient import Client

# Candidates for each case; the first one `classify` reads as needed is used.
CRISIS = ["honestly nothing left worth staying alive for",
          "i dont wnat to live anymor whats the use",
          "there's no point me being here anymore, i've written my goodbyes",
          "everyone would be better off without me around, i've made my mind up"]
QUESTION = ["is it true some people get cured with the new drugs",
            "do the trial people pay for travel to the hospital?",
            "whats the point of a biopsy if they already know its cancer",
            "how long do people usually stay on the keytruda for, is there a set time?"]


class ModelTestCase(MatrixTestCase):
    def setUp(self):
        super().setUp()
        self.mod = Client(self.hs.url)
        self.mod.login("mod", "modpass")
        self.support = self.patient.create_room(name="Support", invite=[BOT, MOD])
        self.modroom = self.mod.create_room(name="Moderators", invite=[BOT])
        self.mod.join(self.support)

    def config(self, model):
        cfg = bot_config(self.hs.url)
        cfg["moderation"] = {"room": self.modroom}
        cfg["model"] = model
        return cfg

    def classify(self, cfg, messages):
        """What `faqbot classify` says of messages with cfg (thresholds included)."""
        path = f"{self.tmp}/classify.json"
        with open(path, "w") as f:
            json.dump({"model": cfg["model"], "responses": cfg["responses"]}, f)
        out = subprocess.run([FAQBOT, "classify", "-c", path], input="\n".join(messages) + "\n",
                             capture_output=True, text=True, check=True)
        return [json.loads(l) for l in out.stdout.splitlines()]

    def start(self, cfg):
        bot = self.start_bot(cfg)
        for room in (self.support, self.modroom):
            wait_until(lambda r=room: BOT in self.patient.joined_members(r)
                       if r == self.support else BOT in self.mod.joined_members(r), 20,
                       what="the bot to join")
        time.sleep(0.5)
        return bot

    def bot_messages(self, room):
        return [e for e in self.ctl.events(room)
                if e.get("type") == "m.room.message" and e.get("sender") == BOT]

    def wait_bot_message(self, room, pred, timeout=15):
        return wait_until(lambda: [e for e in self.bot_messages(room) if pred(e)], timeout,
                          what="a message from the bot")[0]

    @staticmethod
    def body(e):
        return e["content"]["body"]


class SafetyNet(ModelTestCase):
    def test_a_crisis_no_rule_catches_is_answered_and_the_alert_says_the_model_raised_it(self):
        probe = bot_config("http://unused")
        probe["model"] = {"enabled": False}
        rules = self.classify(probe, CRISIS)
        probe["model"] = {"enabled": True}
        both = self.classify(probe, CRISIS)
        pick = [(m, b["p_safety"]) for m, r, b in zip(CRISIS, rules, both)
                if r["intent"] is None and b["p_safety"] > 0.2]
        self.assertTrue(pick, f"no candidate that the rules miss and the model sees: {both}")
        msg, p = max(pick, key=lambda x: x[1])
        cfg = self.config({"safety_answer_threshold": round(p - 0.01, 3),
                           "safety_alert_threshold": 0.05})
        self.assertEqual(self.classify(cfg, [msg])[0]["by"], "model")
        self.start(cfg)
        q = self.patient.send_text(self.support, msg)
        reply = self.wait_reply(self.support, q)
        self.assertRegex(self.body(reply).lower(), r"crisis|emergency|samaritans|988|help")
        alert = self.wait_bot_message(self.modroom, lambda e: "Safety alert" in self.body(e))
        self.assertIn("learned model raised it", self.body(alert))
        self.assertIn("https://matrix.to/#/", self.body(alert))
        self.assertIn(PATIENT, self.body(alert))
        # The patient's words stay out of the moderator room.
        self.assertNotIn(msg[:20], self.body(alert))

    def test_a_doubtful_message_gets_a_silent_alert_and_no_reply_in_the_room(self):
        probe = bot_config("http://unused")
        probe["model"] = {"enabled": True}
        both = self.classify(probe, CRISIS)
        pick = [(m, b["p_safety"]) for m, b in zip(CRISIS, both)
                if (b["intent"] is None or b.get("by") == "model") and 0.05 < b["p_safety"] < 0.95]
        self.assertTrue(pick, f"no candidate the model is unsure of: {both}")
        msg, p = pick[0]
        cfg = self.config({"safety_answer_threshold": round(min(0.99, p + 0.02), 3),
                           "safety_alert_threshold": round(max(0.01, p - 0.02), 3)})
        got = self.classify(cfg, [msg])[0]
        self.assertEqual((got["intent"], got.get("flag")), (None, "safety"))
        bot = self.start(cfg)
        q = self.patient.send_text(self.support, msg)
        flag = self.wait_bot_message(
            self.modroom, lambda e: "Possible emergency or crisis, please read" in self.body(e))
        self.assertIn("https://matrix.to/#/", self.body(flag))
        self.assertIn(q, urllib.parse.unquote(self.body(flag)))
        self.assertNotIn(msg[:20], self.body(flag))
        bot.wait_log("possible emergency or crisis")
        # Nothing in the room: give the bot time to have said something.
        marker = self.patient.send_text(self.support, "what is palliative care?")
        self.wait_reply(self.support, marker)
        self.assertEqual(self.replies_to(self.support, q), [])
        self.assertEqual(len(self.bot_messages(self.support)), 1)


class Fallback(ModelTestCase):
    def test_a_question_no_rule_answers_gets_the_models_answer(self):
        probe = bot_config("http://unused")
        probe["model"] = {"enabled": False}
        rules = self.classify(probe, QUESTION)
        probe["model"] = {"enabled": True, "answer_threshold": 0.05}
        both = self.classify(probe, QUESTION)
        pick = [(m, b) for m, r, b in zip(QUESTION, rules, both)
                if r["intent"] is None and b.get("by") == "model"]
        self.assertTrue(pick, f"no question the model answers and the rules do not: {both}")
        msg, b = pick[0]
        cfg = self.config({"answer_threshold": 0.05})
        self.start(cfg)
        q = self.patient.send_text(self.support, msg)
        reply = self.wait_reply(self.support, q)
        self.assertNotIn("don't have an answer", self.body(reply))
        # Not a safety answer, and no alert for it.
        time.sleep(0.5)
        self.assertEqual([e for e in self.bot_messages(self.modroom)
                          if "alert" in self.body(e).lower()], [])


class Reload(ModelTestCase):
    def test_the_old_set_answers_until_the_new_model_is_trained(self):
        src = os.environ.get("FAQBOT_SOURCE") or os.path.join(os.path.dirname(__file__), "..", "..")
        work = os.path.join(self.tmp, "content")
        for d in ("intents", "responses", "labelled"):
            shutil.copytree(os.path.join(src, d), os.path.join(work, d))
        # A trainer that takes its time, so that the reload is seen waiting for it.
        trainer = os.path.join(self.tmp, "slow-trainer")
        with open(trainer, "w") as f:
            f.write("#!/bin/sh\nsleep 4\nexec %s \"$@\"\n" %
                    os.path.join(os.path.dirname(FAQBOT), "faqbot-train"))
        os.chmod(trainer, 0o700)
        cfg = self.config({"enabled": True})
        cfg["intents_dir"] = os.path.join(work, "intents")
        cfg["responses_dir"] = os.path.join(work, "responses")
        cfg["labelled_dir"] = os.path.join(work, "labelled")
        cfg["moderation"]["watch_files"] = False
        bot = Bot(cfg, env={"FAQBOT_TRAINER": trainer,
                            "FAQBOT_CACHE_DIR": os.path.join(self.tmp, "cache")})
        bot.start()
        self.bots.append(bot)
        bot.wait_log("connected to", timeout=60)
        for room in (self.support, self.modroom):
            wait_until(lambda r=room: BOT in self.mod.joined_members(r), 20,
                       what="the bot to join")
        q = self.patient.send_text(self.support, "what is palliative care?")
        self.assertNotIn("NEW ANSWER", self.body(self.wait_reply(self.support, q)))
        # New labelled messages (the model must learn again) and a new answer text.
        with open(os.path.join(work, "labelled", "more.tsv"), "w") as f:
            f.write("intent\tmessage\npalliative.care\tare palliative nurses only for the very end\n")
        path = os.path.join(work, "responses", "palliative.care.md")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.rstrip("\n") + " NEW ANSWER.\n")
        r = self.mod.send_text(self.modroom, "!faq reload")
        reply = self.wait_reply(self.modroom, r)
        self.assertIn("being trained", self.body(reply))
        # Meanwhile the old set answers, without a pause.
        q = self.patient.send_text(self.support, "does palliative care mean giving up?")
        self.assertNotIn("NEW ANSWER", self.body(self.wait_reply(self.support, q)))
        done = self.wait_bot_message(self.modroom,
                                     lambda e: "reloaded set is in use" in self.body(e), 60)
        self.assertIn("model trained", self.body(done))
        q = self.patient.send_text(self.support, "what does palliative care mean?")
        self.assertIn("NEW ANSWER", self.body(self.wait_reply(self.support, q)))


if __name__ == "__main__":
    unittest.main()
