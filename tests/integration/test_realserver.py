"""The bot against what a real homeserver does, scenario by scenario: a
restart from a saved sync position, Synapse's message rate limit, an
outage, replies that quote, deleted and edited messages, names, log lines
and encrypted rooms. The test homeserver models each (see its README)."""
import os
import re
import time
import unittest
import urllib.parse

from harness import SCALE, wait_until
from matrixenv import BOT, PATIENT, RoomsTestCase
from mxclient import http_request, quote


def stream_pos(events, event_id):
    """The position of event_id in a room's event list (the order the server took them)."""
    for e in events:
        if e["event_id"] == event_id:
            return e["stream_pos"]
    raise AssertionError(f"{event_id} is not in the room")


class Restart(RoomsTestCase):
    def test_after_a_restart_alerts_go_out_and_moderators_are_known(self):
        # The first sync after a restart (from the saved position) carries no
        # state for the moderator room, where nothing happened meanwhile.
        work = self.tmp + "/bot"
        os.mkdir(work)
        bot = self.start(workdir=work)
        c = self.mod.send_text(self.modroom, "!faq stats")
        self.assertIn("Answers", self.body(self.wait_reply(self.modroom, c)))
        rc, _ = bot.stop()
        self.assertEqual(rc, 0)
        self.bots.remove(bot)
        self.start_bot(self.config(), workdir=work)
        time.sleep(1)
        q = self.patient.send_text(self.support, "i just want it all to end for good")
        self.wait_reply(self.support, q)
        alert = self.wait_bot_message(self.modroom, lambda e: "Safety alert" in self.body(e)
                                      and q in urllib.parse.unquote(self.body(e)))
        self.assertIn("crisis", self.body(alert))
        c = self.mod.send_text(self.modroom, "!faq stats")
        self.assertIn("Answers", self.body(self.wait_reply(self.modroom, c)))


class RateLimits(RoomsTestCase):
    def test_synapse_limits_pause_the_queue_replies_keep_order_and_safety_goes_first(self):
        # Synapse's defaults for the bot: a burst of 10, then one every 5 s.
        self.ctl.ratelimit(per_second=0.2, burst_count=10, users=[BOT])
        bot = self.start()
        other = self.patient.create_room(name="Second", invite=[BOT])
        bot.wait_log(f"joined {other}", timeout=15)
        time.sleep(1)
        texts = ["what is palliative care?", "what is immunotherapy?",
                 "what is a clinical trial?", "what is targeted therapy?",
                 "what is hormone therapy?", "what is remission?",
                 "what is oligometastatic disease?"]
        asked = []
        for t in texts:
            for room in (self.support, other):
                asked.append((room, self.patient.send_text(room, t)))
        bot.wait_log("limits how fast the bot may send", timeout=30)
        crisis = self.patient.send_text(other, "i just want it all to end for good")
        reply = self.wait_reply(other, crisis, timeout=30)
        alert = self.wait_bot_message(self.modroom, lambda e: "Safety alert" in self.body(e),
                                      timeout=30)
        for room, q in asked:
            self.wait_reply(room, q, timeout=120)
        events = {room: self.ctl.events(room) for room in (self.support, other, self.modroom)}
        # Safety first: of the answers still waiting when the crisis came, at most
        # the one already on its way went before the safety answer and the alert.
        at = stream_pos(events[other], crisis)
        later = [stream_pos(events[room], self.replies_to(room, q)[0]["event_id"])
                 for room, q in asked]
        later = [p for p in later if p > at]
        self.assertGreaterEqual(len(later), 3, "too little was waiting when the crisis came")
        for first in (stream_pos(events[other], reply["event_id"]),
                      stream_pos(events[self.modroom], alert["event_id"])):
            self.assertLessEqual(len([p for p in later if p < first]), 1,
                                 "answers went before the safety answer or the alert")
        # Each room's answers in the order of its questions, one each.
        for room in (self.support, other):
            mine = [q for r, q in asked if r == room]
            replies = [self.replies_to(room, q) for q in mine]
            self.assertTrue(all(len(r) == 1 for r in replies))
            order = [stream_pos(events[room], r[0]["event_id"]) for r in replies]
            self.assertEqual(order, sorted(order))
        # The queue waited instead of hammering: at most one 429 for each message
        # sent after the burst, not one per waiting reply every few seconds.
        sent = sum(1 for room in events for e in events[room]
                   if e["sender"] == BOT and e["type"] == "m.room.message")
        refused = self.ctl.ratelimit_state()["refused"]
        self.assertLessEqual(refused, sent - 10, f"{refused} requests were refused with 429")
        # And the log says so once, not once a request.
        said = [l for l in bot.log() if "429" in l or "rate limited" in l]
        self.assertLessEqual(len([l for l in said if " warn: " in l]), 1, said)

    def test_an_exempt_account_is_not_limited(self):
        # What docs/deploy.md tells the admin to do, with Synapse's admin API.
        self.ctl.ratelimit(per_second=0.2, burst_count=10)
        self.ctl.set_admin("mod")
        http_request(self.hs.url, "POST",
                     f"/_synapse/admin/v1/users/{quote(BOT)}/override_ratelimit",
                     {"messages_per_second": 0, "burst_count": 0},
                     token=self.mod.access_token)
        bot = self.start()
        qs = [self.patient.send_text(self.support, f"what is immunotherapy? ({i})")
              for i in range(6)]
        qs += [self.mod.send_text(self.support, f"what is palliative care? ({i})")
               for i in range(6)]
        for q in qs:
            self.wait_reply(self.support, q, timeout=30)
        self.assertEqual(self.ctl.ratelimit_state()["refused"], 0)
        self.assertFalse([l for l in bot.log() if "limits how fast" in l])


class Outage(RoomsTestCase):
    def test_back_within_seconds_of_the_server_and_unhealthy_meanwhile(self):
        # The default backoff (up to 60 s): while the server refuses
        # connections the bot probes every few seconds instead.
        bot = self.start(matrix={"backoff_max_ms": 60000})
        status, _ = self.healthz()
        self.assertEqual(status, 200)
        start = len(bot.log())
        self.hs.kill()
        status, body = wait_until(lambda: (lambda s: s if s[0] == 503 else None)(self.healthz()),
                                  15, what="/healthz to say 503")
        self.assertIn("cannot reach the homeserver", body)
        time.sleep(25 * min(SCALE, 2))
        self.hs.start()
        at = bot.wait_log("connected again after", timeout=15, start=start)
        waits = [int(m.group(1)) for l in bot.log()[start:at]
                 for m in [re.search(r"retrying in (\d+) ms", l)] if m]
        self.assertTrue(waits, "no retry was logged")
        self.assertLessEqual(max(waits), 5000, waits)
        wait_until(lambda: self.healthz()[0] == 200, 15, what="/healthz to say 200 again")
        q = self.patient.send_text(self.support, "what is biomarker testing?")
        self.wait_reply(self.support, q, timeout=20)


class ReplyFallbacks(RoomsTestCase):
    def test_the_quote_is_not_read_as_the_persons_words(self):
        self.start()
        # A question asked in reply to a member's chatter is a question.
        chatter = self.mod.send_text(self.support, "my scan was fine today")
        q = self.patient.send_text(self.support, "what is immunotherapy?", reply_to=chatter,
                                   fallback=True)
        self.assertIn("immune", self.body(self.wait_reply(self.support, q)).lower())
        # A follow-up in reply to the bot's answer is read on its own words.
        first = self.patient.send_text(self.support, "what is remission?")
        answer = self.wait_reply(self.support, first)
        follow = self.patient.send_text(self.support,
                                        "and what about survival, how long do people live?",
                                        reply_to=answer["event_id"], fallback=True)
        self.assertIn("How long people live", self.body(self.wait_reply(self.support, follow)))
        # Thanks in reply to the bot is not a question about what it quotes.
        thanks = self.patient.send_text(self.support, "thank you, that helps a lot",
                                        reply_to=answer["event_id"], fallback=True)
        marker = self.patient.send_text(self.support, "what is a clinical trial?")
        self.wait_reply(self.support, marker)
        for r in self.replies_to(self.support, thanks):
            self.assertNotIn("did you mean", self.body(r).lower())


class Redactions(RoomsTestCase):
    def test_a_question_deleted_before_its_answer_went_out_gets_none(self):
        bot = self.start()
        # The server holds the bot's sends back (429) while the patient deletes.
        self.ctl.add_fault("/send/", "429", method="PUT", user=BOT, retry_after_ms=4000)
        q = self.patient.send_text(self.support, "what is hormone therapy?")
        bot.wait_log("limits how fast", timeout=10)
        self.patient.redact(self.support, q)
        bot.wait_log("the answer is withdrawn", timeout=10)
        marker = self.patient.send_text(self.support, "what is palliative care?")
        self.wait_reply(self.support, marker, timeout=20)
        self.assertEqual(self.replies_to(self.support, q), [])
        self.assertFalse([e for e in self.bot_messages(self.support)
                          if "estrogen" in self.body(e).lower()])

    def test_a_sent_answer_to_a_deleted_question_is_redacted(self):
        self.start()
        q = self.patient.send_text(self.support, "what is hormone therapy?")
        answer = self.wait_reply(self.support, q)
        self.patient.redact(self.support, q)

        def redacted():
            e = [x for x in self.ctl.events(self.support) if x["event_id"] == answer["event_id"]]
            return e and "redacted_because" in e[0]["unsigned"]
        wait_until(redacted, 15, what="the answer to be redacted")
        events = self.ctl.events(self.support)
        redaction = [e for e in events if e["type"] == "m.room.redaction"
                     and e["sender"] == BOT]
        self.assertEqual(len(redaction), 1)
        self.assertEqual(redaction[0]["redacts"], answer["event_id"])

    def test_without_the_power_to_redact_the_answer_stays_and_that_is_logged(self):
        self.patient.set_power_levels(self.support, events={"m.room.redaction": 50})
        bot = self.start()
        q = self.patient.send_text(self.support, "what is hormone therapy?")
        answer = self.wait_reply(self.support, q)
        self.patient.redact(self.support, q)
        bot.wait_log("may not redact there", timeout=15)
        e = [x for x in self.ctl.events(self.support) if x["event_id"] == answer["event_id"]]
        self.assertNotIn("redacted_because", e[0]["unsigned"])


class Edits(RoomsTestCase):
    def test_an_edit_into_a_question_is_answered_once(self):
        self.start()
        first = self.patient.send_text(self.support, "hello everyone, good morning")
        marker = self.patient.send_text(self.support, "what is a clinical trial?")
        self.wait_reply(self.support, marker)
        self.assertEqual(self.replies_to(self.support, first), [])
        self.patient.edit(self.support, first, "what is immunotherapy?")
        reply = self.wait_reply(self.support, first)
        self.assertIn("immune", self.body(reply).lower())
        # Another edit of it, and an edit of an answered question: no more answers.
        self.patient.edit(self.support, first, "what is palliative care?")
        self.patient.edit(self.support, marker, "what is targeted therapy?")
        marker2 = self.patient.send_text(self.support, "what is remission?")
        self.wait_reply(self.support, marker2)
        self.assertEqual(len(self.replies_to(self.support, first)), 1)
        self.assertEqual(len(self.replies_to(self.support, marker)), 1)
        self.assertFalse([e for e in self.bot_messages(self.support)
                          if "comfort" in self.body(e).lower()])


class Names(RoomsTestCase):
    def test_one_address_per_reply(self):
        self.patient.set_displayname("Robin")
        self.start()
        q = self.patient.send_text(self.support, "should I stop my chemo?")
        reply = self.wait_reply(self.support, q)
        self.assertEqual(self.body(reply).count("Robin"), 1, self.body(reply))
        self.assertEqual(reply["content"]["m.mentions"]["user_ids"], [PATIENT])
        q = self.patient.send_text(self.support, "i just want it all to end for good")
        reply = self.wait_reply(self.support, q)
        self.assertEqual(self.body(reply).count("Robin"), 1, self.body(reply))


class LogLines(RoomsTestCase):
    def test_joining_a_busy_room_fetches_no_gap(self):
        bot = self.start()
        busy = self.patient.create_room(name="Busy", invite=[])
        for i in range(60):
            self.patient.send_text(busy, f"old chatter {i}")
        seq = self.ctl.last_seq()
        start = len(bot.log())
        self.patient.invite(busy, BOT)
        bot.wait_log(f"joined {busy}", timeout=15, start=start)
        q = self.patient.send_text(busy, "what is immunotherapy?")
        self.wait_reply(busy, q)
        self.assertFalse([l for l in bot.log()[start:] if "left out messages" in l])
        self.assertFalse([r for r in self.ctl.requests(since=seq)[0] if "/messages" in r["path"]])

    def test_an_encrypted_room_is_told_once_that_the_bot_cannot_read_it(self):
        work = self.tmp + "/bot"
        os.mkdir(work)
        bot = self.start(workdir=work)
        secret = self.patient.create_room(name="Secret", invite=[BOT], initial_state=[
            {"type": "m.room.encryption", "state_key": "",
             "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
        bot.wait_log(f"joined {secret}", timeout=15)
        ciphertext = {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AAAA",
                      "session_id": "s", "device_id": "D", "sender_key": "k"}
        self.patient.send_event(secret, "m.room.encrypted", ciphertext)
        note = self.wait_bot_message(secret, lambda e: "encrypted" in self.body(e))
        self.assertEqual(note["content"]["msgtype"], "m.notice")
        self.assertIn("112", self.body(note))  # whom to call in an emergency
        line = [l for l in bot.log() if "is encrypted" in l]
        self.assertTrue(line and "docs/deploy.md" in line[0] and "README" not in line[0], line)
        self.patient.send_event(secret, "m.room.encrypted", ciphertext)
        rc, _ = bot.stop()
        self.bots.remove(bot)
        bot2 = self.start_bot(self.config(), workdir=work)
        self.patient.send_event(secret, "m.room.encrypted", ciphertext)
        marker = self.patient.send_text(self.support, "what is immunotherapy?")
        self.wait_reply(self.support, marker)
        bot2.wait_log("is encrypted", timeout=10)
        notes = [e for e in self.bot_messages(secret) if "encrypted" in self.body(e)]
        self.assertEqual(len(notes), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
