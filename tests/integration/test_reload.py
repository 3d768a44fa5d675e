"""Reloading intents and responses while the bot serves, and what an admin can
leave in their directories by mistake: a FIFO, a set without the safety
intents, a directory swapped in by a deploy; and the signals."""
import json
import os
import re
import shutil
import signal
import subprocess
import time
import unittest

from harness import FAQBOT, SOURCE, wait_until
from matrixenv import MatrixTestCase, bot_config

EMERGENCY = "my dad just collapsed and is not breathing"


class ReloadTestCase(MatrixTestCase):
    def copy_set(self, name="set"):
        """A copy of the shipped intents and responses; returns (intents, responses)."""
        base = os.path.join(self.tmp, name)
        idir, rdir = os.path.join(base, "intents"), os.path.join(base, "responses")
        shutil.copytree(os.path.join(SOURCE, "intents"), idir)
        shutil.copytree(os.path.join(SOURCE, "responses"), rdir)
        return idir, rdir

    def config(self, idir, rdir, watch=False):
        cfg = bot_config(self.hs.url, intents_dir=idir, responses_dir=rdir)
        cfg["moderation"] = {"watch_files": watch}
        # Each emergency below is answered, however close to the one before.
        cfg["policy"]["safety_repeat_s"] = 0
        return cfg

    def assert_safety_answered(self, room):
        q = self.patient.send_text(room, EMERGENCY)
        self.assertIn("emergency", self.wait_reply(room, q)["content"]["body"].lower())


class Fifo(ReloadTestCase):
    def test_a_fifo_in_the_intents_directory_neither_hangs_the_start_nor_a_reload(self):
        idir, rdir = self.copy_set()
        os.mkfifo(os.path.join(idir, "zz-stray.json"))
        bot = self.start_bot(self.config(idir, rdir))
        self.assertTrue(any("zz-stray.json" in l and "not a regular file" in l
                            for l in bot.log()))
        room = self.support_room(bot)
        self.assert_safety_answered(room)
        # Another one, in the responses, then a reload: it goes through.
        os.mkfifo(os.path.join(rdir, "zz-stray.md"))
        start = len(bot.log())
        bot.proc.send_signal(signal.SIGHUP)
        bot.wait_log("reloaded (SIGHUP)", timeout=10, start=start)
        self.assert_safety_answered(room)
        rc, took = bot.stop()
        self.assertEqual(rc, 0)
        self.assertLess(took, 5)

    def test_lint_and_the_check_do_not_wait_on_a_fifo(self):
        idir, rdir = self.copy_set()
        os.mkfifo(os.path.join(idir, "zz-stray.json"))
        out = subprocess.run([FAQBOT, "lint", idir, rdir], capture_output=True, text=True,
                             timeout=60)
        self.assertIn("zz-stray.json: warning: not a regular file", out.stdout)
        self.assertEqual(out.returncode, 0, out.stdout)


class SafetyIntentsRequired(ReloadTestCase):
    def test_a_reload_without_the_safety_intents_keeps_the_old_set(self):
        idir, rdir = self.copy_set()
        bot = self.start_bot(self.config(idir, rdir, watch=True))
        room = self.support_room(bot)
        # The usual slip: the file moved out of the directory.
        start = len(bot.log())
        os.rename(os.path.join(idir, "safety.json"), os.path.join(self.tmp, "safety.json"))
        at = bot.wait_log("reload (files changed) failed", timeout=15, start=start)
        wait_until(lambda: any('no intent "safety.emergency"' in l for l in bot.log()[at - 1:]),
                   10, what="the error naming the missing safety intent")
        self.assert_safety_answered(room)
        # SIGHUP says the same, and the old set still answers.
        start = len(bot.log())
        bot.proc.send_signal(signal.SIGHUP)
        bot.wait_log("reload (SIGHUP) failed", timeout=10, start=start)
        self.assert_safety_answered(room)

    def test_the_check_and_lint_fail_without_the_safety_intents(self):
        idir, rdir = self.copy_set()
        os.unlink(os.path.join(idir, "safety.json"))
        cfg = self.config(idir, rdir)
        path = os.path.join(self.tmp, "faqbot.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        os.chmod(path, 0o600)
        out = subprocess.run([FAQBOT, "run", "-c", path, "--check"], capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn('error: the set has no intent "safety.crisis"', out.stdout)
        self.assertNotIn("configuration OK", out.stdout)
        out = subprocess.run([FAQBOT, "lint", idir, rdir], capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(out.returncode, 1)
        self.assertIn('error: the set has no intent "safety.emergency"', out.stdout)
        # The daemon does not start on such a set.
        b = self.start_bot(cfg, wait_sync=False)
        wait_until(lambda: b.proc.poll() is not None, 20, what="the bot to refuse to start")
        self.assertEqual(b.proc.returncode, 1)


class Watch(ReloadTestCase):
    def set_answer(self, rdir, marker):
        """Rewrites the palliative care answer to say marker."""
        path = os.path.join(rdir, "palliative.care.md")
        with open(path) as f:
            text = f.read()
        head, _, _ = text.rpartition("---\n")
        with open(path + ".tmp", "w") as f:
            f.write(head + "---\nPalliative care answer " + marker + ".\n")
        os.rename(path + ".tmp", path)

    def asked(self, room):
        q = self.patient.send_text(room, "what is palliative care?")
        return self.wait_reply(room, q)["content"]["body"]

    def test_edits_after_the_directory_is_swapped_are_picked_up(self):
        idir, rdir = self.copy_set()
        bot = self.start_bot(self.config(idir, rdir, watch=True))
        room = self.support_room(bot)
        # The usual deploy: a new copy next to the old, then two renames.
        new = rdir + ".new"
        shutil.copytree(rdir, new)
        self.set_answer(new, "ALPHA")
        start = len(bot.log())
        os.rename(rdir, rdir + ".old")
        os.rename(new, rdir)
        bot.wait_log("reloaded (files changed)", timeout=15, start=start)
        self.assertIn("ALPHA", self.asked(room))
        # And an edit in the directory that came in is seen too.
        start = len(bot.log())
        self.set_answer(rdir, "BRAVO")
        bot.wait_log("reloaded (files changed)", timeout=15, start=start)
        self.assertIn("BRAVO", self.asked(room))
        # A symlink repointed (ln -sfn) works the same way.
        for name in ("v1", "v2"):
            shutil.copytree(rdir, os.path.join(self.tmp, name))
        link = os.path.join(self.tmp, "current")
        os.symlink(os.path.join(self.tmp, "v1"), link)
        bot.stop()
        cfg = self.config(idir, link, watch=True)
        bot = self.start_bot(cfg)
        room = self.support_room(bot, name="Support 2")
        self.set_answer(os.path.join(self.tmp, "v2"), "CHARLIE")
        start = len(bot.log())
        os.symlink(os.path.join(self.tmp, "v2"), link + ".tmp")
        os.rename(link + ".tmp", link)
        bot.wait_log("reloaded (files changed)", timeout=15, start=start)
        self.assertIn("CHARLIE", self.asked(room))
        start = len(bot.log())
        self.set_answer(os.path.join(self.tmp, "v2"), "DELTA")
        bot.wait_log("reloaded (files changed)", timeout=15, start=start)
        self.assertIn("DELTA", self.asked(room))


    def test_labelled_messages_beside_the_intents_are_watched_too(self):
        idir, rdir = self.copy_set()
        bot = self.start_bot(self.config(idir, rdir, watch=True))
        self.support_room(bot)

        def learnt(line):
            return int(re.search(r"the model learnt from (\d+) messages", bot.log()[line - 1]).group(1))

        # A moderator adds the labelled directory the bot did not have at the start
        # (it learnt from the set built in)...
        ldir = os.path.join(os.path.dirname(idir), "labelled")
        os.mkdir(ldir + ".tmp")
        shutil.copy(os.path.join(SOURCE, "labelled", "traps.tsv"), ldir + ".tmp")
        start = len(bot.log())
        os.rename(ldir + ".tmp", ldir)
        first = learnt(bot.wait_log("reloaded (files changed)", timeout=120, start=start))
        # ...and then adds a message to one of its files: the model learns it.
        start = len(bot.log())
        with open(os.path.join(ldir, "traps.tsv"), "a") as f:
            f.write("safety.crisis\tI have been giving my pills away to the neighbours\n")
        self.assertEqual(learnt(bot.wait_log("reloaded (files changed)", timeout=120, start=start)),
                         first + 1)


class Signals(ReloadTestCase):
    def test_sigusr1_and_sigusr2_log_a_status_and_do_not_stop_the_bot(self):
        bot = self.start_bot()
        room = self.support_room(bot)
        for sig, name in ((signal.SIGUSR1, "SIGUSR1"), (signal.SIGUSR2, "SIGUSR2")):
            start = len(bot.log())
            bot.proc.send_signal(sig)
            bot.wait_log(name + ": status:", timeout=10, start=start)
            self.assertIsNone(bot.proc.poll())
        self.assert_safety_answered(room)
        self.assertTrue(os.path.exists(os.path.join(bot.state, "stats.json")))
        rc, _ = bot.stop()
        self.assertEqual(rc, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
