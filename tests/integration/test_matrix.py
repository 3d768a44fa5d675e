"""The bot on Matrix, scenario by scenario, against the test homeserver."""
import json
import os
import shutil
import signal
import time
import unittest

from harness import SCALE, Bot, wait_until
from matrixenv import BOT, MOD, PATIENT, MatrixTestCase, bot_config, is_reply_to
from mxclient import Client


class Answers(MatrixTestCase):
    def test_question_gets_the_right_reply_threaded_mentioning_the_asker(self):
        bot = self.start_bot()
        room = self.support_room(bot)
        root = self.patient.send_text(room, "hello all, new here")
        q = self.patient.send_text(room, "what does palliative care mean?", thread_root=root,
                                   reply_to=None)
        reply = self.wait_reply(room, q)
        c = reply["content"]
        self.assertEqual(c["msgtype"], "m.notice")
        self.assertEqual(c["m.relates_to"]["rel_type"], "m.thread")
        self.assertEqual(c["m.relates_to"]["event_id"], root)
        self.assertEqual(c["m.relates_to"]["m.in_reply_to"]["event_id"], q)
        self.assertEqual(c["m.mentions"]["user_ids"], [PATIENT])
        self.assertIn("comfort", c["body"])
        self.assertIn("not medical advice", c["body"])  # the disclaimer
        self.assertEqual(c["format"], "org.matrix.custom.html")
        self.assertIn("<p>", c["formatted_body"])
        self.assertIn(PATIENT, c["formatted_body"])  # the mention pill
        # Outside a thread: a plain rich reply.
        q2 = self.patient.send_text(room, "can kidney cancer be cured if it spreads?")
        c2 = self.wait_reply(room, q2)["content"]
        self.assertNotIn("rel_type", c2["m.relates_to"])
        self.assertIn("kidney", c2["body"].lower())

    def test_chatter_gets_no_reply(self):
        bot = self.start_bot()
        room = self.support_room(bot)
        chatter = [self.patient.send_text(room, t) for t in
                   ("good morning everyone", "how did your scan go Mike?",
                    "just finished my 4th round of keytruda, feeling ok today")]
        marker = self.patient.send_text(room, "what is immunotherapy?")
        self.wait_reply(room, marker)
        for ev in chatter:
            self.assertEqual(self.replies_to(room, ev), [])

    def test_emergency_gets_the_safety_answer(self):
        bot = self.start_bot()
        room = self.support_room(bot)
        q = self.patient.send_text(room, "my dad just collapsed and is not breathing")
        c = self.wait_reply(room, q)["content"]
        self.assertIn("emergency", c["body"].lower())
        self.assertIn("112", c["body"])  # the default contacts from config
        self.assertEqual(c["m.mentions"]["user_ids"], [PATIENT])


class Backlog(MatrixTestCase):
    def test_backlog_is_not_answered_on_first_start(self):
        # The bot's account is already in a room with questions in it.
        botc = Client(self.hs.url)
        botc.login("faqbot", "botpass")
        room = self.patient.create_room(name="Old", invite=[BOT])
        botc.join(room)
        old = self.patient.send_text(room, "what is targeted therapy?")
        # A room it is invited to later, with questions before its join.
        room2 = self.patient.create_room(name="New", invite=[BOT])
        old2 = self.patient.send_text(room2, "what is a clinical trial?")
        bot = self.start_bot()
        wait_until(lambda: BOT in self.patient.joined_members(room2), 20,
                   what="the bot to join the new room")
        new = self.patient.send_text(room, "what is targeted therapy?")
        new2 = self.patient.send_text(room2, "what is a clinical trial?")
        self.wait_reply(room, new)
        self.wait_reply(room2, new2)
        self.assertEqual(self.replies_to(room, old), [])
        self.assertEqual(self.replies_to(room2, old2), [])


class Invites(MatrixTestCase):
    def test_an_invite_from_a_stranger_is_declined(self):
        bot = self.start_bot()
        stranger = Client(self.hs.url)
        stranger.login("stranger", "strangerpass")
        room = stranger.create_room(name="Spam", invite=[BOT])
        bot.wait_log(f"declined the invite to {room}", timeout=15)
        members = stranger.members(room)
        states = {e["state_key"]: e["content"]["membership"] for e in members}
        self.assertEqual(states.get(BOT), "leave")
        self.assertNotIn(BOT, stranger.joined_members(room))


class DirectChats(MatrixTestCase):
    def test_a_direct_chat_from_anyone_gets_safety_answers_only(self):
        workdir = os.path.join(self.tmp, "bot")
        os.makedirs(workdir)
        cfg = bot_config(self.hs.url)
        bot = self.start_bot(cfg, workdir=workdir)
        stranger = Client(self.hs.url)
        stranger.login("stranger", "strangerpass")
        room = stranger.create_room(invite=[BOT], is_direct=True, preset="trusted_private_chat")
        bot.wait_log(f"invite to {room} from @stranger:localhost: accepting a direct chat for "
                     "safety answers only", timeout=15)
        wait_until(lambda: BOT in stranger.joined_members(room), 20, what="the bot to join")
        bot.wait_log(f"joined {room}", timeout=10)
        q = stranger.send_text(room, "I can't do this anymore, I want to kill myself")
        self.assertIn("crisis line", self.wait_reply(room, q)["content"]["body"])
        faq = stranger.send_text(room, "what is palliative care?")
        marker = stranger.send_text(room, "my dad just collapsed and is not breathing")
        self.wait_reply(room, marker)
        self.assertEqual(self.replies_to(room, faq), [])
        # It stays a chat for safety answers only after a restart.
        bot.stop()
        bot = self.start_bot(cfg, workdir=workdir)
        faq = stranger.send_text(room, "what does immunotherapy do?")
        marker = stranger.send_text(room, "I want to end my life")
        self.wait_reply(room, marker)
        self.assertEqual(self.replies_to(room, faq), [])
        self.assertFalse(os.path.exists(os.path.join(workdir, "state", "unanswered.jsonl")))

    def test_with_safety_dms_off_a_strangers_direct_chat_is_declined(self):
        cfg = bot_config(self.hs.url)
        cfg["matrix"]["safety_dms"] = False
        bot = self.start_bot(cfg)
        stranger = Client(self.hs.url)
        stranger.login("stranger", "strangerpass")
        room = stranger.create_room(invite=[BOT], is_direct=True, preset="trusted_private_chat")
        bot.wait_log(f"declined the invite to {room}", timeout=15)


class Ignored(MatrixTestCase):
    def test_notices_edits_encrypted_ignored_and_huge_messages_get_no_reply(self):
        cfg = bot_config(self.hs.url)
        cfg["matrix"]["ignored_users"] = [MOD]
        cfg["matrix"]["max_message_bytes"] = 2000
        bot = self.start_bot(cfg)
        room = self.support_room(bot)
        mod = Client(self.hs.url)
        mod.login("mod", "modpass")
        self.patient.invite(room, MOD)
        mod.join(room)
        skipped = [
            self.patient.send_text(room, "what is immunotherapy?", msgtype="m.notice"),
            self.patient.send_text(room, "* what is immunotherapy?", extra_content={
                "m.new_content": {"msgtype": "m.text", "body": "what is immunotherapy?"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": "$x:localhost"}}),
            self.patient.send_event(room, "m.room.encrypted", {
                "algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AAAA",
                "session_id": "s", "device_id": "D", "sender_key": "k"}),
            mod.send_text(room, "what is immunotherapy?"),
            self.patient.send_text(room, "what is immunotherapy? " + "x" * 3000),
        ]
        marker = self.patient.send_text(room, "what is a checkpoint inhibitor?")
        self.wait_reply(room, marker)
        for ev in skipped:
            self.assertEqual(self.replies_to(room, ev), [], ev)
        bot.wait_log("pantalaimon", timeout=5)
        bot.wait_log("max_message_bytes", timeout=5)


class Restarts(MatrixTestCase):
    def test_restart_mid_conversation_no_duplicate_nothing_lost(self):
        work = self.tmp + "/bot"
        os.mkdir(work)
        bot = self.start_bot(workdir=work)
        room = self.support_room(bot)
        q1 = self.patient.send_text(room, "what is hormone therapy?")
        self.wait_reply(room, q1)
        # A reply held up by a slow server when SIGTERM arrives.
        self.ctl.add_fault("/send/", "slow", method="PUT", user=BOT, delay_ms=4000)
        q2 = self.patient.send_text(room, "what is oligometastatic disease?")
        bot.wait_log("answered oligometastatic", timeout=10)
        rc, took = bot.stop()
        self.assertEqual(rc, 0)
        self.assertLess(took, 2.0 * SCALE)  # the issue: within 2 s (stretched under valgrind)
        # Said while the bot was down.
        q3 = self.patient.send_text(room, "what is maintenance chemo?")
        bot2 = self.start_bot(workdir=work)
        for q in (q2, q3):
            self.wait_reply(room, q, timeout=20)
        time.sleep(2)  # time for any duplicate to show up
        for q in (q1, q2, q3):
            self.assertEqual(len(self.replies_to(room, q)), 1, q)
        # kill -9 right after the server took a reply, before the bot heard back.
        self.ctl.add_fault("/send/", "slow", method="PUT", user=BOT, delay_ms=3000,
                           phase="after")
        q4 = self.patient.send_text(room, "what is car-t therapy?")
        wait_until(lambda: self.replies_to(room, q4), 10, what="the reply to reach the server")
        bot2.kill9()
        self.bots.remove(bot2)
        bot2.cleanup = lambda: None
        bot3 = self.start_bot(workdir=work)
        q5 = self.patient.send_text(room, "what are the side effects of immunotherapy?")
        self.wait_reply(room, q5, timeout=20)
        time.sleep(2)
        self.assertEqual(len(self.replies_to(room, q4)), 1)
        self.assertEqual(len(self.replies_to(room, q5)), 1)
        del bot3

    def test_a_question_buried_in_a_busy_room_while_down_is_answered(self):
        # More messages than the sync filter's timeline limit (50) arrive
        # while the bot is down: its next sync is "limited", and the bot
        # must fetch what it left out with /messages.
        work = self.tmp + "/bot"
        os.mkdir(work)
        bot = self.start_bot(workdir=work)
        room = self.support_room(bot)
        q0 = self.patient.send_text(room, "what is palliative care?")
        self.wait_reply(room, q0)
        rc, _ = bot.stop()
        self.assertEqual(rc, 0)
        early = self.patient.send_text(room, "what is hormone therapy?")
        for i in range(70):
            self.patient.send_text(room, f"thanks everyone, catching up on the news {i}")
        late = self.patient.send_text(room, "what is oligometastatic disease?")
        seq = self.ctl.last_seq()
        # The first page fails: the bot retries it, and still moves on only after.
        self.ctl.add_fault("/messages", "500", method="GET", user=BOT)
        bot2 = self.start_bot(workdir=work)
        for q in (early, late):
            self.wait_reply(room, q, timeout=20)
        time.sleep(2)  # time for any duplicate to show up
        for q in (q0, early, late):
            self.assertEqual(len(self.replies_to(room, q)), 1, q)
        pages = [r for r in self.ctl.requests(since=seq)[0] if "/messages" in r["path"]]
        self.assertGreaterEqual(len(pages), 2, "the gap was not fetched again after a 500")
        self.assertEqual(pages[0]["status"], 500)
        self.assertEqual(pages[0]["path"], pages[1]["path"])
        bot2.wait_log("left out messages in 1 room", timeout=5)
        # Chatter in the gap got no answer.
        bot_msgs = [e for e in self.ctl.events(room)
                    if e.get("sender") == BOT and e.get("type") == "m.room.message"]
        self.assertEqual(len(bot_msgs), 3)

    def test_sigterm_during_long_poll_exits_zero_within_two_seconds(self):
        bot = self.start_bot()
        self.support_room(bot)
        time.sleep(1.0)  # the bot is now waiting in a long-poll
        rc, took = bot.stop(signal.SIGTERM)
        self.assertEqual(rc, 0)
        self.assertLess(took, 2.0 * SCALE)  # the issue: within 2 s (stretched under valgrind)
        self.assertTrue(os.path.exists(os.path.join(bot.state, "matrix.json")))
        self.bots.remove(bot)
        bot.cleanup()


class Faults(MatrixTestCase):
    def test_rate_limited_reply_arrives_after_the_wait(self):
        bot = self.start_bot()
        room = self.support_room(bot)
        seq = self.ctl.last_seq()
        self.ctl.add_fault("/send/", "429", method="PUT", user=BOT, retry_after_ms=1500)
        q = self.patient.send_text(room, "what is palliative care?")
        self.wait_reply(room, q, timeout=15)
        puts = [r for r in self.ctl.requests(since=seq, method="PUT")[0]
                if "/send/" in r["path"] and r["user"] == BOT]
        self.assertGreaterEqual(len(puts), 2)
        self.assertEqual(puts[0]["status"], 429)
        self.assertEqual(puts[0]["path"], puts[1]["path"])  # the same transaction id
        self.assertGreaterEqual(puts[1]["time"] - puts[0]["time"], 1.4)

    def test_twenty_seconds_down_then_recovers(self):
        bot = self.start_bot()
        room = self.support_room(bot)
        self.hs.restart(downtime_s=20)
        q = self.patient.send_text(room, "what is biomarker testing?")
        self.wait_reply(room, q, timeout=20)
        self.assertTrue(any("retrying" in l for l in bot.log()))

    def test_malformed_wrong_type_huge_and_5xx_replies_are_survived(self):
        cfg = bot_config(self.hs.url)
        cfg["matrix"]["max_body_bytes"] = 1 << 20
        bot = self.start_bot(cfg)
        room = self.support_room(bot)
        for kind, extra in (("malformed", {}), ("wrong_type", {}), ("500", {}), ("502", {}),
                            ("drop", {}), ("huge", {"size": 3 << 20})):
            self.ctl.add_fault("/sync", kind, user=BOT, **extra)
        # The faults hit the syncs after the one in flight; wait until all were served.
        wait_until(lambda: all(f["remaining"] == 0 for f in self.ctl.faults()), 60,
                   what="every fault to be served")
        bot.wait_log("malformed reply", timeout=5)
        bot.wait_log("larger than the configured maximum", timeout=5)
        q = self.patient.send_text(room, "what is the survival rate for metastatic cancer?")
        self.wait_reply(room, q, timeout=30)
        self.assertIsNone(bot.proc.poll())

    def test_unknown_token_logs_in_again(self):
        bot = self.start_bot()
        room = self.support_room(bot)
        self.ctl.add_fault("/sync", "unknown_token", user=BOT)
        # The sync in flight ends with the next event; the one after is refused.
        self.patient.send_text(room, "hello")
        bot.wait_log("logging in again", timeout=40)
        bot.wait_log("logged in as", timeout=10, start=bot.wait_log("logging in again"))
        q = self.patient.send_text(room, "what is remission?")
        self.wait_reply(room, q, timeout=20)

    def test_a_late_refusal_of_the_old_token_keeps_the_new_one(self):
        # Two replies in flight with one token. One is refused at once, so the
        # bot logs in again; the other is refused 1 s later, while the bot
        # checks its new token (whoami, slowed to 2 s). That refusal is about
        # the old token: the bot must keep the new one and go on answering
        # (found by tests/bench/soak.py: it synced with no token for ever).
        bot = self.start_bot()
        room = self.support_room(bot)
        self.ctl.add_fault(r"/send/", "slow", method="PUT", user=BOT, delay_ms=1000)
        self.ctl.add_fault(r"/send/", "unknown_token", method="PUT", user=BOT)
        self.ctl.add_fault(r"/account/whoami", "slow", user=BOT, delay_ms=2000)
        q1 = self.patient.send_text(room, "what is palliative care?")
        q2 = self.patient.send_text(room, "what is targeted therapy?")
        bot.wait_log("logging in again", timeout=20)
        self.wait_reply(room, q1, timeout=20)
        self.wait_reply(room, q2, timeout=20)
        q3 = self.patient.send_text(room, "what is remission?")
        self.wait_reply(room, q3, timeout=20)
        self.assertFalse([l for l in bot.log() if "M_MISSING_TOKEN" in l])

    def test_rejected_token_without_password_stops_with_a_clear_message(self):
        cfg = bot_config(self.hs.url)
        del cfg["matrix"]["password"]
        cfg["matrix"]["access_token"] = "not-a-valid-token"
        b = Bot(cfg).start()
        try:
            rc = b.proc.wait(20)
        finally:
            b.cleanup()
        self.assertEqual(rc, 1)
        self.assertTrue(any("no password is configured" in l for l in b.log()))


class Reload(MatrixTestCase):
    def test_sighup_with_a_broken_edit_keeps_the_old_set(self):
        src = os.environ.get("FAQBOT_SOURCE")
        idir = os.path.join(self.tmp, "intents")
        rdir = os.path.join(self.tmp, "responses")
        shutil.copytree(os.path.join(src, "intents"), idir)
        shutil.copytree(os.path.join(src, "responses"), rdir)
        cfg = bot_config(self.hs.url, intents_dir=idir, responses_dir=rdir)
        cfg["moderation"] = {"watch_files": False}
        bot = self.start_bot(cfg)
        room = self.support_room(bot)
        with open(os.path.join(idir, "care.json"), "a") as f:
            f.write("\n{ broken")
        start = len(bot.log())
        bot.proc.send_signal(signal.SIGHUP)
        at = bot.wait_log("reload (SIGHUP) failed", timeout=10, start=start)
        # The lint lines follow the headline (slowly under valgrind).
        wait_until(lambda: any("care.json:" in l and "error" in l for l in bot.log()[at:]),
                   10, what="the lint error for care.json in the log")
        q = self.patient.send_text(room, "what is palliative care?")
        self.wait_reply(room, q)


if __name__ == "__main__":
    unittest.main(verbosity=2)
