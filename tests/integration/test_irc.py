"""The bot on IRC against a real IRC server: InspIRCd (with TLS from a
self-signed certificate, verified by the bot) and Atheme for SASL, both from
Debian, started here on 127.0.0.1. The people are small Python clients."""
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "irc"))

import ircenv  # noqa: E402
from harness import FAQBOT, Bot, wait_until  # noqa: E402
from ircenv import Client, IrcNetwork  # noqa: E402

IRC_PACKAGES = ["inspircd", "atheme-services", "openssl"]
SASL_PASSWORD = "correct-horse-battery-4711"


def ensure_servers():
    """Installs the servers when they are missing and we may; returns why not, or None."""
    why = ircenv.have_servers()
    if why is None:
        return None
    if os.geteuid() == 0 and os.path.exists("/usr/bin/apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        try:
            subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] +
                           IRC_PACKAGES, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=300)
            # Debian starts them as system services; the tests run their own.
            for svc in ("inspircd", "atheme-services"):
                subprocess.run(["service", svc, "stop"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=30)
        except (OSError, subprocess.SubprocessError):
            pass
        why = ircenv.have_servers()
    return why


SKIP = ensure_servers()

# A disclaimer that makes every answer long, with multibyte characters and one
# word longer than an IRC line (which must then be cut, between characters).
LONG_WORD = "\u00fc" * 120 + "\u65e5\u672c" * 40 + "end"
DISCLAIMER = ("This is general information, not medical advice \u2014 na\u00efve "
              "caf\u00e9 r\u00e9sum\u00e9 \u65e5\u672c\u8a9e\u306e\u6587\u7ae0 "
              "\U0001F600 emoji. " * 3 + LONG_WORD + " Please talk with your own care team.")


def bot_config(net, **irc):
    cfg = {
        "transport": "irc",
        "irc": {
            "server": "localhost",
            "port": net.port,
            "tls_ca_file": net.cert,
            "nick": "faqbot",
            "channels": ["#support"],
            "burst": 3,
            "rate_ms": 200,
            "backoff_max_ms": 1000,
            "ping_s": 10,
        },
        "responses": {"allow_drafts": True},
    }
    cfg["irc"].update(irc)
    return cfg


def expected_reply(bot, question, name="patient", room="#support"):
    """The plain text faqbot ask gives for question with the bot's config."""
    out = subprocess.run([FAQBOT, "ask", "-c", bot.config_path, "--room", room, "--name", name,
                          question], capture_output=True, text=True, timeout=60).stdout
    lines, inside = [], False
    for line in out.splitlines():
        if line.startswith("reply ("):
            inside = True
            continue
        if inside:
            if not line.startswith("  ") and line.strip():
                break
            lines.append(line[2:])
    return "\n".join(lines).strip()


def texts(msgs):
    return [m.params[-1] for m in msgs]


@unittest.skipIf(SKIP, f"the IRC server cannot be installed: {SKIP}")
class IrcTestCase(unittest.TestCase):
    services = False
    maxnick = 30

    @classmethod
    def setUpClass(cls):
        cls.net = IrcNetwork(services=cls.services, maxnick=cls.maxnick).start()

    @classmethod
    def tearDownClass(cls):
        cls.net.close()

    def setUp(self):
        self.bots = []
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        for b in self.bots:
            b.stop()
            log = "\n".join(b.log())
            self.assertEqual(b.sanitizer_errors(), [], log[-4000:])
            self.assertNotIn(SASL_PASSWORD, log)
            b.cleanup()

    def client(self, nick, **kw):
        c = Client(self.net, nick, **kw)
        self.clients.append(c)
        return c

    def start_bot(self, cfg=None, join="#support"):
        bot = Bot(cfg or bot_config(self.net)).start()
        self.bots.append(bot)
        if join:
            try:
                bot.wait_log(f"irc: joined {join}", timeout=20)
            except AssertionError:
                raise AssertionError("\n".join(bot.log()[-40:]) + "\n" + self.net.output())
        return bot

    def ask(self, who, channel, text, botnick="faqbot", **kw):
        who.drain()  # what came before is not the answer
        who.say(channel, text)
        return who.collect_from(botnick, **kw)


class Answers(IrcTestCase):
    def test_question_gets_the_answer_as_a_notice_mentioning_the_asker(self):
        bot = self.start_bot()
        patient = self.client("patient")
        patient.join("#support")
        got = self.ask(patient, "#support", "what does palliative care mean?")
        self.assertTrue(all(m.command == "NOTICE" for m in got), got)
        self.assertTrue(all(m.params[0] == "#support" for m in got), got)
        self.assertTrue(got[0].params[-1].startswith("patient: "), got[0])
        body = " ".join(texts(got))
        self.assertIn("comfort", body)
        self.assertIn("not medical advice", body)  # the disclaimer is kept
        self.assertTrue(all(len(m.raw) + 2 <= 512 for m in got))
        # Other people's chatter gets nothing; the bot is in the channel by name.
        self.assertIn("faqbot", patient.names("#support"))

    def test_emergency_in_a_channel_gets_the_safety_answer(self):
        self.start_bot()
        patient = self.client("patient")
        patient.join("#support")
        got = self.ask(patient, "#support", "my dad just collapsed and is not breathing")
        body = " ".join(texts(got))
        self.assertIn("emergency", body.lower())
        self.assertIn("112", body)

    def test_long_answer_arrives_complete_split_on_words_and_characters(self):
        cfg = bot_config(self.net)
        cfg["responses"]["disclaimer"] = DISCLAIMER
        bot = self.start_bot(cfg)
        patient = self.client("patient")
        patient.join("#support")
        question = "what does palliative care mean?"
        got = self.ask(patient, "#support", question, quiet=2.0)
        want = expected_reply(bot, question)
        self.assertIn(LONG_WORD, want)
        self.assertGreater(len(got), 4)
        for m in got:
            self.assertLessEqual(len(m.raw) + 2, 512, m.raw)  # + CR LF, as received
            m.raw.decode("utf-8")  # never a character cut in two
        lines = texts(got)
        self.assertTrue(lines[0].startswith("patient: "))
        lines[0] = lines[0][len("patient: "):]
        # Everything arrived, in order (line breaks and cuts only change spaces).
        self.assertEqual("".join("".join(lines).split()), "".join(want.split()))
        # Words were not cut, except the one longer than a line.
        words = set(want.split())
        for w in " ".join(lines).split():
            self.assertTrue(w in words or w in LONG_WORD, w)
        self.assertGreaterEqual(sum(1 for w in " ".join(lines).split() if w in LONG_WORD and
                                    w != LONG_WORD), 2)

    def test_notices_ctcp_and_private_messages_are_not_answered_by_default(self):
        self.start_bot()
        patient = self.client("patient")
        patient.join("#support")
        patient.send("NOTICE #support :what is immunotherapy?")
        patient.say("#support", "\x01ACTION wonders what immunotherapy is?\x01")
        patient.say("faqbot", "what is immunotherapy?")
        got = self.ask(patient, "#support", "what does palliative care mean?")
        self.assertIn("comfort", " ".join(texts(got)))
        self.assertNotIn("immunotherapy", " ".join(texts(got)).lower())
        self.assertTrue(all(m.params[0] == "#support" for m in got))

    def test_private_messages_when_allowed_over_plain_tcp(self):
        bot = self.start_bot(bot_config(self.net, private=True, notice=False, tls=False,
                                        port=self.net.plainport))
        self.assertTrue(any("irc.tls is off" in l for l in bot.log()))
        patient = self.client("patient")
        patient.say("faqbot", "what does palliative care mean?")
        got = patient.collect_from("faqbot")
        self.assertTrue(all(m.command == "PRIVMSG" and m.params[0] == "patient" for m in got))
        self.assertFalse(got[0].params[-1].startswith("patient:"))
        self.assertIn("comfort", " ".join(texts(got)))

    def test_channel_with_a_key(self):
        owner = self.client("owner")
        owner.join("#locked")
        owner.send("MODE #locked +k s3cret")
        owner.wait_for(lambda m: m.command == "MODE", what="the key to be set")
        # An IP address as the server: the certificate's IP entry is checked.
        cfg = bot_config(self.net, server="127.0.0.1", channels=["#support", "#locked s3cret"])
        self.start_bot(cfg, join="#locked")
        got = self.ask(owner, "#locked", "what does palliative care mean?")
        self.assertIn("comfort", " ".join(texts(got)))

    def test_channel_operators_are_moderators(self):
        mod = self.client("mod1")
        mod.join("#mods")  # the first in a channel is its operator
        cfg = bot_config(self.net, channels=["#support", "#mods"])
        cfg["moderation"] = {"room": "#mods"}
        self.start_bot(cfg, join="#mods")
        other = self.client("helper")
        other.join("#mods")
        got = self.ask(other, "#mods", "!faq stats")
        self.assertIn("only moderators", " ".join(texts(got)))
        got = self.ask(mod, "#mods", "!faq stats")
        self.assertNotIn("only moderators", " ".join(texts(got)))
        # Op given by MODE counts too.
        mod.send("MODE #mods +o helper")
        other.wait_for(lambda m: m.command == "MODE", what="the op to be given")
        time.sleep(0.3)
        got = self.ask(other, "#mods", "!faq stats")
        self.assertNotIn("only moderators", " ".join(texts(got)))
        # Kicked, it comes back after a delay.
        bot = self.bots[0]
        start = len(bot.log())
        mod.send("KICK #mods faqbot :testing")
        bot.wait_log("irc: kicked from #mods by mod1", timeout=5, start=start)
        bot.wait_log("irc: joined #mods", timeout=15, start=start)
        self.assertIn("faqbot", mod.names("#mods"))

    def test_an_untrusted_certificate_is_refused(self):
        cfg = bot_config(self.net)
        del cfg["irc"]["tls_ca_file"]  # the system's CAs do not know the test certificate
        bot = self.start_bot(cfg, join=None)
        bot.wait_log("is not trusted", timeout=15)
        self.assertFalse(any("registered on" in l for l in bot.log()))


class PriorityLane(IrcTestCase):
    def test_a_safety_answer_goes_before_the_answers_waiting_for_the_flood_limit(self):
        # One line a second, answers of many lines: a queue builds up.
        cfg = bot_config(self.net, burst=1, rate_ms=1000)
        cfg["responses"]["disclaimer"] = DISCLAIMER
        cfg["policy"] = {"user_rate_per_min": 600, "room_rate_per_min": 600, "cooldown_s": 0}
        bot = self.start_bot(cfg)
        patient = self.client("patient")
        patient.join("#support")
        helper = self.client("helper")
        helper.join("#support")
        emergency = "my husband collapsed and is not breathing"
        safety = " ".join(expected_reply(bot, emergency, name="helper").split())
        patient.drain()
        start = len(bot.log())
        for q in ("what does palliative care mean?", "what is immunotherapy?",
                  "what is a clinical trial?"):
            patient.say("#support", q)
        # All three answers are queued (and wait for the bucket) when the emergency comes.
        wait_until(lambda: len([l for l in bot.log()[start:] if "irc: answered" in l]) == 3,
                   30, what="the three answers to be queued")
        helper.say("#support", emergency)
        got = patient.collect_from("faqbot", quiet=4.0, timeout=120)
        kinds = []
        for m in got:
            line = m.params[-1]
            if line.startswith("helper: "):
                line = line[len("helper: "):]
            kinds.append("S" if " ".join(line.split()) in safety else "A")
        self.assertIn("S", kinds, texts(got))
        first = kinds.index("S")
        # The safety lines go together, and before the answers still waiting.
        self.assertEqual(kinds[first:first + kinds.count("S")], ["S"] * kinds.count("S"))
        self.assertGreaterEqual(kinds[first:].count("A"), 3, "".join(kinds))

    def test_refusals_count_against_the_flood_limit(self):
        cfg = bot_config(self.net, channels=["#support", "#mods"])
        cfg["moderation"] = {"room": "#mods"}
        cfg["policy"] = {"user_rate_per_min": 3}
        self.start_bot(cfg)
        pest = self.client("pest")
        pest.join("#support")
        pest.drain()
        for _ in range(10):
            pest.say("#support", "!faq stats")
        got = pest.collect_from("faqbot", quiet=3.0, timeout=60)
        body = texts(got)
        self.assertEqual(len([t for t in body if "only moderators" in t]), 3, body)
        self.assertEqual(len([t for t in body if "wait a moment" in t]), 1, body)


class Nick(IrcTestCase):
    def test_nick_collision_is_resolved_and_the_new_nick_is_answered(self):
        holder = self.client("faqbot")
        holder.join("#support")
        cfg = bot_config(self.net)
        cfg["rooms"] = {"default": {"answer": "mention"}}
        bot = self.start_bot(cfg)
        line = bot.log()[bot.wait_log("irc: registered on") - 1]
        newnick = line.rsplit(" as ", 1)[1]
        self.assertNotEqual(newnick, "faqbot")
        self.assertTrue(newnick.startswith("faqbot"))
        patient = self.client("patient")
        patient.join("#support")
        # Only questions addressed to it are answered in a "mention" room.
        patient.say("#support", "what is immunotherapy?")
        got = self.ask(patient, "#support", f"{newnick}: what does palliative care mean?",
                       botnick=newnick)
        body = " ".join(texts(got))
        self.assertIn("comfort", body)
        self.assertNotIn("immunotherap", body.lower())
        # The wanted nick comes back when it is free.
        start = len(bot.log())
        holder.close()
        self.clients.remove(holder)
        bot.wait_log("irc: the bot's nick is now faqbot", timeout=15, start=start)
        got = self.ask(patient, "#support", "faqbot, what is a clinical trial?")
        self.assertIn("research study", " ".join(texts(got)))


class ShortNicks(IrcTestCase):
    maxnick = 9  # ngircd's default, and RFC 2812's limit

    def test_a_nick_over_the_servers_limit_is_cut_to_fit(self):
        bot = self.start_bot(bot_config(self.net, nick="faqbot-support"))
        line = bot.log()[bot.wait_log("irc: registered on") - 1]
        self.assertTrue(line.endswith(" as faqbot-su"), line)
        patient = self.client("patient")
        patient.join("#support")
        got = self.ask(patient, "#support", "faqbot-su: what does palliative care mean?",
                       botnick="faqbot-su")
        self.assertIn("comfort", " ".join(texts(got)))
        # It does not go on asking for the long nick.
        time.sleep(1)
        self.assertFalse(any("NICK faqbot-support" in l or "still taken" in l
                             for l in bot.log()))

    def test_the_suffix_of_a_taken_nick_fits_too(self):
        holder = self.client("faqbot-su")
        holder.join("#support")
        bot = self.start_bot(bot_config(self.net, nick="faqbot-support"))
        line = bot.log()[bot.wait_log("irc: registered on") - 1]
        newnick = line.rsplit(" as ", 1)[1]
        self.assertLessEqual(len(newnick), 9, line)
        self.assertTrue(newnick.startswith("faqbot-"), line)
        self.assertNotEqual(newnick, "faqbot-su")


class Private(IrcTestCase):
    def test_a_private_crisis_is_answered_where_private_answers_are_off(self):
        mod = self.client("mod1")
        mod.join("#mods")
        cfg = bot_config(self.net, channels=["#support", "#mods"])
        cfg["moderation"] = {"room": "#mods"}
        self.start_bot(cfg, join="#mods")
        patient = self.client("patient")
        patient.say("faqbot", "I can't go on, I want to kill myself")
        got = patient.collect_from("faqbot")
        self.assertTrue(all(m.params[0] == "patient" for m in got), got)
        self.assertIn("Samaritans", " ".join(texts(got)))
        alert = mod.wait_for(lambda m: m.nick == "faqbot" and "Safety alert" in m.params[-1],
                             what="the moderators' alert")
        self.assertIn("private message", alert.params[-1])
        # Anything else stays unanswered in private.
        patient.drain()
        patient.say("faqbot", "what does palliative care mean?")
        self.assertEqual(patient.poll(2.0), [])

    def test_the_fallback_mentions_the_asker_as_answers_do(self):
        self.start_bot()
        patient = self.client("patient")
        patient.join("#support")
        got = self.ask(patient, "#support", "faqbot: how do I fix my bicycle chain?")
        self.assertTrue(got[0].params[-1].startswith("patient: "), got[0])
        self.assertIn("don't have an answer", " ".join(texts(got)))


class Banned(IrcTestCase):
    def test_a_ban_stops_the_joins_and_the_moderators_are_told(self):
        op = self.client("chanop")
        op.join("#support")  # the first in a channel is its operator
        op.join("#mods")
        cfg = bot_config(self.net, channels=["#support", "#mods"])
        cfg["moderation"] = {"room": "#mods"}
        bot = self.start_bot(cfg, join="#mods")
        bot.wait_log("irc: joined #support", timeout=15)
        start = len(bot.log())
        op.send("MODE #support +b faqbot!*@*")
        op.send("KICK #support faqbot :not here please")
        bot.wait_log("kicked from #support", timeout=10, start=start)
        at = bot.wait_log("banned from #support: the bot will not try to join it again",
                          timeout=20, start=start)
        told = op.wait_for(lambda m: m.nick == "faqbot" and m.params[0] == "#mods" and
                           "banned from #support" in m.params[-1], timeout=10,
                           what="the moderators to be told")
        self.assertIn("lift the ban", told.params[-1])
        # No more JOINs: the server would refuse each one with 474.
        time.sleep(12)
        refused = [l for l in bot.log()[start:] if "cannot join #support" in l]
        self.assertEqual(len(refused), 1, refused)
        self.assertFalse(any("will try to join #support again" in l for l in bot.log()[at:]))


class Reconnect(IrcTestCase):
    def test_the_bot_reconnects_and_rejoins_after_the_server_restarts(self):
        bot = self.start_bot()
        start = len(bot.log())
        self.net.stop()
        bot.wait_log("connecting again", timeout=15, start=start)
        time.sleep(1.5)  # a few failed attempts while it is down
        self.net.start()
        bot.wait_log("irc: joined #support", timeout=30, start=start)
        patient = self.client("patient")
        patient.join("#support")
        self.assertIn("faqbot", patient.names("#support"))
        got = self.ask(patient, "#support", "what does palliative care mean?")
        self.assertIn("comfort", " ".join(texts(got)))


    def test_an_unanswered_ping_makes_the_bot_reconnect(self):
        bot = self.start_bot(bot_config(self.net, ping_s=10))
        start = len(bot.log())
        self.net.ircd.send_signal(signal.SIGSTOP)  # the server hangs: no PONG
        try:
            bot.wait_log("no answer to PING in 10 s", timeout=30, start=start)
        finally:
            self.net.ircd.send_signal(signal.SIGCONT)
        bot.wait_log("irc: joined #support", timeout=30, start=start)


class Sasl(IrcTestCase):
    services = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.net.register_account("botacct", SASL_PASSWORD)

    def test_sasl_plain_login(self):
        cfg = bot_config(self.net, sasl_user="botacct", password=SASL_PASSWORD)
        bot = self.start_bot(cfg)
        bot.wait_log("SASL PLAIN login as botacct succeeded", timeout=5)
        patient = self.client("patient")
        patient.join("#support")
        got = self.ask(patient, "#support", "what does palliative care mean?")
        self.assertIn("comfort", " ".join(texts(got)))
        patient.send("WHOIS faqbot")
        m = patient.wait_for(lambda m: m.command == "330", what="WHOIS account")
        self.assertEqual(m.params[2], "botacct")

    def test_a_wrong_password_is_reported_clearly(self):
        cfg = bot_config(self.net, sasl_user="botacct", password="wrong-" + SASL_PASSWORD[::-1])
        bot = self.start_bot(cfg)
        i = bot.wait_log("SASL PLAIN login as botacct FAILED", timeout=5)
        self.assertIn("check irc.sasl_user and irc.password", bot.log()[i - 1])
        self.assertFalse(any(SASL_PASSWORD[::-1] in l for l in bot.log()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
