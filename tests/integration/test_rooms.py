"""Room profiles, safety escalation and moderators, on the test homeserver."""
import os
import re
import shutil
import subprocess
import time
import unittest
import urllib.parse
import urllib.request

from harness import FAQBOT, free_port, wait_until
from matrixenv import BOT, MOD, PATIENT, RoomsTestCase
from mxclient import Client


class Modes(RoomsTestCase):
    def test_mention_only_room_ignores_unaddressed_questions_but_answers_emergencies(self):
        bot = self.start()
        q1 = self.patient.send_text(self.mention, "what does palliative care mean?")
        q2 = self.patient.send_text(self.mention, "!faq what is immunotherapy?")
        q3 = self.patient.send_text(self.mention, "faqbot: what is a clinical trial?")
        q4 = self.patient.send_text(self.mention, "what is targeted therapy?", extra_content={
            "m.mentions": {"user_ids": [BOT]}})
        for q in (q2, q3, q4):
            self.wait_reply(self.mention, q)
        self.assertEqual(self.replies_to(self.mention, q1), [])
        em = self.patient.send_text(self.mention, "my husband had a seizure and won't wake up")
        reply = self.wait_reply(self.mention, em)
        self.assertIn("emergency", self.body(reply).lower())
        # The moderators are told: where and who, with a link, not the patient's words.
        alert = self.wait_bot_message(self.modroom, lambda e: "Safety alert" in self.body(e))
        self.assertIn("https://matrix.to/#/", self.body(alert))
        self.assertIn(PATIENT, self.body(alert))
        self.assertNotIn("seizure", self.body(alert))
        self.assertEqual(len(self.replies_to(self.mention, em)), 1)

    def test_crisis_answer_says_the_moderators_were_told(self):
        self.start()
        q = self.patient.send_text(self.support, "i just want it all to end for good")
        reply = self.wait_reply(self.support, q)
        self.assertIn("moderators of this room have been told", self.body(reply))
        self.wait_bot_message(self.modroom, lambda e: "Safety alert (crisis)" in self.body(e))


class Policy(RoomsTestCase):
    def test_cooldown_holds_and_points_back_to_the_earlier_answer(self):
        self.start(policy={"cooldown_s": 600})
        q1 = self.patient.send_text(self.support, "what is palliative care?")
        first = self.wait_reply(self.support, q1)
        q2 = self.mod.send_text(self.support, "what does palliative care mean?")
        second = self.wait_reply(self.support, q2)
        self.assertIn("I answered this here", self.body(second))
        self.assertIn(first["event_id"], urllib.parse.unquote(self.body(second)))
        self.assertNotIn("comfort", self.body(second))
        # Another question is answered in full.
        q3 = self.patient.send_text(self.support, "what is immunotherapy?")
        self.assertIn("immune", self.body(self.wait_reply(self.support, q3)).lower())

    def test_did_you_mean_dialogue_completes(self):
        self.start()
        q = self.patient.send_text(self.support, "what is targeted therapy and hormone therapy")
        choice = self.wait_reply(self.support, q)
        self.assertIn("did you mean", self.body(choice).lower())
        self.assertIn("1.", self.body(choice))
        self.assertIn("2.", self.body(choice))
        self.assertIn("hormone", self.body(choice).lower())
        which = "2" if self.body(choice).lower().index("hormone") > self.body(choice).index("2.") else "1"
        a = self.patient.send_text(self.support, which)
        answer = self.wait_reply(self.support, a)
        self.assertIn("hormone", self.body(answer).lower())
        self.assertIn("estrogen", self.body(answer).lower())
        # Someone else's "1" does not take the patient's choice.
        again = self.patient.send_text(self.support, "what is targeted therapy and hormone therapy")
        self.wait_reply(self.support, again)
        other = self.mod.send_text(self.support, "1")
        time.sleep(2)
        self.assertEqual(self.replies_to(self.support, other), [])

    def test_flood_limit_per_user_is_said_once(self):
        bot = self.start(policy={"user_rate_per_min": 2})
        qs = [self.patient.send_text(self.support, t) for t in
              ("what is palliative care?", "what is immunotherapy?", "what is a clinical trial?",
               "what is targeted therapy?")]
        self.wait_reply(self.support, qs[1])
        # The first question held back is told why, once; the next gets nothing.
        told = self.wait_reply(self.support, qs[2])
        self.assertIn("I answer at most 2 questions a minute; please wait a moment",
                      self.body(told))
        self.assertNotIn("targeted", self.body(told).lower())
        # Safety ignores the limit, and is never told to wait.
        em = self.patient.send_text(self.support, "i can't breathe")
        self.assertNotIn("wait a moment", self.body(self.wait_reply(self.support, em)))
        self.assertEqual(self.replies_to(self.support, qs[3]), [])
        self.assertEqual(len([l for l in bot.log() if "flood limit" in l]), 2)


class Moderators(RoomsTestCase):
    def test_commands_from_a_non_moderator_are_refused(self):
        self.start()
        c = self.patient.send_text(self.modroom, "!faq stats")
        self.assertIn("only moderators", self.body(self.wait_reply(self.modroom, c)))
        c2 = self.mod.send_text(self.modroom, "!faq stats")
        self.assertIn("Answers", self.body(self.wait_reply(self.modroom, c2)))

    def test_why_pause_resume_and_unanswered_commands(self):
        self.start()
        c = self.mod.send_text(self.modroom, "!faq why can kidney cancer be cured if it spreads?")
        why = self.body(self.wait_reply(self.modroom, c))
        self.assertIn("kidney.cure_if_spread", why)
        self.assertIn("normalised", why)
        c = self.mod.send_text(self.modroom, f"!faq pause {self.support}")
        self.assertIn("Paused", self.body(self.wait_reply(self.modroom, c)))
        q = self.patient.send_text(self.support, "what is immunotherapy?")
        em = self.patient.send_text(self.support, "he collapsed and is unconscious")
        self.wait_reply(self.support, em)
        self.assertEqual(self.replies_to(self.support, q), [])
        c = self.mod.send_text(self.modroom, f"!faq resume {self.support}")
        self.wait_reply(self.modroom, c)
        q = self.patient.send_text(self.support, "what is immunotherapy?")
        self.wait_reply(self.support, q)
        u = self.patient.send_text(self.support, "!faq where can I park my car? call me on 07700 900123")
        self.assertIn("moderators", self.body(self.wait_reply(self.support, u)))
        c = self.mod.send_text(self.modroom, "!faq unanswered 5")
        listing = self.body(self.wait_reply(self.modroom, c))
        self.assertIn("park", listing)
        self.assertNotIn("900123", listing)


class Reloads(RoomsTestCase):
    def test_a_broken_edit_keeps_the_bot_answering_and_the_moderators_see_the_error(self):
        src = os.environ.get("FAQBOT_SOURCE")
        idir = os.path.join(self.tmp, "intents")
        rdir = os.path.join(self.tmp, "responses")
        shutil.copytree(os.path.join(src, "intents"), idir)
        shutil.copytree(os.path.join(src, "responses"), rdir)
        bot = self.start(intents_dir=idir, responses_dir=rdir,
                         moderation={"room": self.modroom, "watch_files": True})
        path = os.path.join(idir, "care.json")
        with open(path) as f:
            good = f.read()
        broken = good.replace('"patterns": [', '"patterns": [ "(unclosed", ', 1)
        with open(path, "w") as f:
            f.write(broken)
        alert = self.wait_bot_message(self.modroom, lambda e: "Reload failed" in self.body(e))
        self.assertRegex(self.body(alert), r"care\.json:\d+:\d+: error: pattern 1: missing closing parenthesis")
        q = self.patient.send_text(self.support, "what is palliative care?")
        self.assertIn("comfort", self.body(self.wait_reply(self.support, q)))
        start = len(bot.log())
        with open(path, "w") as f:
            f.write(good)
        bot.wait_log("reloaded (files changed)", timeout=10, start=start)


class Metrics(RoomsTestCase):
    def test_metrics_count_what_happened(self):
        self.start()
        for t in ("what is palliative care?", "what does palliative care mean?",
                  "i can't breathe properly"):
            q = self.patient.send_text(self.support, t)
            self.wait_reply(self.support, q)
        u = self.patient.send_text(self.support, "!faq what colour is the sky")
        self.wait_reply(self.support, u)
        base = f"http://127.0.0.1:{self.metrics_port}"
        text = urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()
        def value(name):
            m = re.search(r"^" + re.escape(name) + r" (\S+)$", text, re.M)
            return float(m.group(1)) if m else None
        self.assertEqual(value('faqbot_answers_total{intent="palliative.care"}'), 2)
        self.assertEqual(value('faqbot_answers_total{intent="safety.emergency"}'), 1)
        self.assertEqual(value('faqbot_safety_alerts_total{intent="safety.emergency"}'), 1)
        self.assertEqual(value("faqbot_unanswered_total"), 1)
        self.assertGreaterEqual(value("faqbot_reply_latency_seconds_count"), 3)
        health = urllib.request.urlopen(base + "/healthz", timeout=5)
        self.assertEqual(health.status, 200)


class UnansweredReport(RoomsTestCase):
    def test_the_report_groups_similar_questions_and_redacts(self):
        bot = self.start()
        for t in ("!faq where do I park at the hospital? my email is jo@example.org",
                  "!faq where can I park near the hospital",
                  "!faq is there parking at the hospital on 12/03/2026",
                  "!faq how do I get a wig on the NHS"):
            q = self.patient.send_text(self.support, t)
            self.wait_reply(self.support, q)
        out = subprocess.run([FAQBOT, "unanswered", "--state", bot.state], capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertNotIn("jo@example.org", out.stdout)
        self.assertNotIn("12/03/2026", out.stdout)
        lines = out.stdout
        park = lines.find("park")
        wig = lines.find("wig")
        self.assertTrue(park != -1 and wig != -1, lines)
        self.assertLess(park, wig)  # the bigger group comes first
        self.assertRegex(lines, r"\b3\b")  # three questions in the parking group


if __name__ == "__main__":
    unittest.main(verbosity=2)
