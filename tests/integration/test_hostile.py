"""Hostile input from the network, against the test homeserver: a 50 MB /sync
body, JSON nested 10,000 deep, malformed and mistyped replies, display names
full of HTML and Markdown, a message with 10,000 combining characters and
messages whose JSON escapes hold what no text should (NUL, noncharacters,
lone surrogates). After each, the bot must still answer, and its log must
show no sanitizer error (MatrixTestCase.tearDown checks that).

The homeserver's /_test/faults API gives the huge, malformed, wrong_type,
drop and slow replies. What it cannot send (10,000-deep JSON, lone
surrogates, which it cannot even serialise) comes from SyncProxy, a small
proxy between the bot and the homeserver that can replace the next /sync
replies with bodies of the test's choosing."""
import http.client
import json
import os
import re
import threading
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import wait_until
from matrixenv import BOT, PATIENT, MatrixTestCase, bot_config

MB = 1 << 20


class SyncProxy:
    """Forwards every request to upstream; replaces the next /sync replies with
    the bodies queued by replace_next_syncs(), where @SINCE@ stands for the
    since token of the request (so that an injected reply that the bot accepts
    keeps its place in the stream). Listens on 127.0.0.1 only."""

    def __init__(self, upstream):
        u = urllib.parse.urlsplit(upstream)
        self.host, self.port = u.hostname, u.port
        self.bodies = []
        self.served = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                url = urllib.parse.urlsplit(self.path)
                injected = None
                if url.path.endswith("/sync"):
                    with proxy.lock:
                        if proxy.bodies:
                            injected = proxy.bodies.pop(0)
                            proxy.served += 1
                if injected is not None:
                    since = urllib.parse.parse_qs(url.query).get("since", ["s0"])[0]
                    self._reply(200, injected.replace(b"@SINCE@", since.encode()),
                                "application/json")
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("authorization", "content-type", "accept")}
                conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=330)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    r = conn.getresponse()
                    data = r.read()
                    self._reply(r.status, data, r.getheader("Content-Type", "application/json"))
                except (OSError, http.client.HTTPException):
                    self.close_connection = True  # the upstream dropped it: so do we
                finally:
                    conn.close()

            def _reply(self, status, data, ctype):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _any

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # the bot hung up (a reply it dropped as too big, say)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def replace_next_syncs(self, *bodies):
        with self.lock:
            self.bodies.extend(bodies)

    def pending(self):
        with self.lock:
            return len(self.bodies)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def deep(depth, objects=False):
    """A JSON value nested depth deep."""
    if objects:
        return '{"a":' * depth + "1" + "}" * depth
    return "[" * depth + "1" + "]" * depth


def sync_with_message(room, body_json, event_id="$injected:localhost"):
    """A /sync body carrying one message whose "body" is the raw JSON text body_json."""
    return ('{"next_batch": "@SINCE@", "rooms": {"join": {"%s": {"timeline": {"events": '
            '[{"type": "m.room.message", "sender": "%s", "event_id": "%s", '
            '"content": {"msgtype": "m.text", "body": %s}}]}}}}}'
            % (room, PATIENT, event_id, body_json)).encode()


def peak_rss_mb(pid):
    """VmHWM of a process, in MB (0 when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


class HostileTestCase(MatrixTestCase):
    def ask_and_wait(self, room, text="what is palliative care?", timeout=30):
        """Asks a question; returns the bot's reply (fails if none comes)."""
        q = self.patient.send_text(room, text)
        return self.wait_reply(room, q, timeout=timeout)


class HostileServer(HostileTestCase):
    def test_a_50mb_sync_body_is_dropped_and_the_bot_goes_on(self):
        cfg = bot_config(self.hs.url)
        cfg["matrix"]["max_body_bytes"] = MB
        bot = self.start_bot(cfg)
        room = self.support_room(bot)
        self.ask_and_wait(room)
        before = peak_rss_mb(bot.proc.pid)
        self.ctl.add_fault("/sync", "huge", user=BOT, size=50 * MB)
        self.patient.send_text(room, "hello")  # ends the long-poll in flight
        wait_until(lambda: all(f["remaining"] == 0 for f in self.ctl.faults()), 60,
                   what="the 50 MB reply to be served")
        bot.wait_log("larger than the configured maximum", timeout=10)
        self.ask_and_wait(room, "what is immunotherapy?")
        after = peak_rss_mb(bot.proc.pid)
        # The body is dropped at the 1 MB cap; it is never held whole.
        self.assertLess(after - before, 40, f"peak RSS grew from {before} to {after} MB")
        self.assertIsNone(bot.proc.poll())

    def test_malformed_wrong_type_drop_and_slow_replies_are_survived(self):
        cfg = bot_config(self.hs.url)
        cfg["matrix"]["request_timeout_ms"] = 5000
        bot = self.start_bot(cfg)
        room = self.support_room(bot)
        for kind, extra in (("malformed", {}), ("wrong_type", {}), ("drop", {}),
                            ("slow", {"delay_ms": 1500}), ("huge", {"size": 50 * MB})):
            self.ctl.add_fault("/sync", kind, user=BOT, **extra)
        self.patient.send_text(room, "hello")
        wait_until(lambda: all(f["remaining"] == 0 for f in self.ctl.faults()), 90,
                   what="every fault to be served")
        bot.wait_log("malformed reply", timeout=10)
        self.ask_and_wait(room, "what is targeted therapy?")

    def test_json_nested_10000_deep_from_the_server(self):
        proxy = SyncProxy(self.hs.url)
        self.addCleanup(proxy.stop)
        bot = self.start_bot(bot_config(proxy.url))
        room = self.support_room(bot)
        start = len(bot.log())
        proxy.replace_next_syncs(
            deep(10000).encode(),
            deep(10000, objects=True).encode(),
            ('{"next_batch": "@SINCE@", "rooms": %s}' % deep(10000, objects=True)).encode(),
            sync_with_message(room, '"x", "deep": %s' % deep(10000)),
            ('{"next_batch": %s}' % deep(10000)).encode())
        self.patient.send_text(room, "hello")  # ends the long-poll in flight
        wait_until(lambda: proxy.pending() == 0, 90, what="the deep bodies to be served")
        bot.wait_log("malformed reply", timeout=10, start=start)
        self.ask_and_wait(room)

    def test_lone_surrogates_and_numbers_for_strings_from_the_server(self):
        proxy = SyncProxy(self.hs.url)
        self.addCleanup(proxy.stop)
        bot = self.start_bot(bot_config(proxy.url))
        room = self.support_room(bot)
        start = len(bot.log())
        proxy.replace_next_syncs(
            # cJSON refuses lone surrogates: the whole body is malformed.
            sync_with_message(room, r'"what is \ud800 palliative care? \udfff"'),
            sync_with_message(room, r'"\udbff\u0041 what is hospice?"'),
            # Numbers (and worse) where strings belong.
            sync_with_message(room, "12345"),
            ('{"next_batch": 1, "rooms": {"join": {"%s": {"timeline": {"events": '
             '[{"type": 1, "sender": 2, "event_id": 3, "content": 4}]}}}}}' % room).encode(),
            ('{"next_batch": "@SINCE@", "rooms": {"join": {"%s": {"timeline": {"events": '
             '[{"type": "m.room.message", "sender": ["%s"], "event_id": {}, '
             '"content": {"msgtype": 1, "body": null}}], "state": 7}}}}}'
             % (room, PATIENT)).encode())
        self.patient.send_text(room, "hello")
        wait_until(lambda: proxy.pending() == 0, 90, what="the bodies to be served")
        bot.wait_log("malformed reply", timeout=10, start=start)
        self.ask_and_wait(room, "what is remission?")
        self.assertIsNone(bot.proc.poll())


# U+202A-202E and U+2066-2069, as response_md_escape() drops them.
NO_BIDI = dict.fromkeys([*range(0x202a, 0x202f), *range(0x2066, 0x206a)])


class HostilePeople(HostileTestCase):
    NAMES = [
        '<script>alert("x")</script> <b>Bold</b>',
        "**Dr. Strong** _em_ [click](javascript:alert(1)) ![i](https://evil.example/t.png)",
        "    <img src=x onerror=alert(1)> `code` # Heading",
        "&amp; &lt;b&gt; \u202eevil\u202c <!-- c -->",
    ]

    def test_display_names_come_out_escaped(self):
        bot = self.start_bot()
        room = self.support_room(bot)
        for name in self.NAMES:
            self.patient.request("PUT", "/profile/%s/displayname" % PATIENT,
                                 {"displayname": name})
            # The bot learns the name from the member event in its next sync.
            q = self.patient.send_text(room, "should I stop my chemo?")
            c = self.wait_reply(room, q)["content"]
            html, plain = c["formatted_body"], c["body"]
            # The answer addresses the person by name ({{name}}), once: no
            # "name: " before it; the rest is the vetted answer's own markup.
            self.assertIn(", that is a question", html, f"{name!r}: {html}")
            rest = html.split(", that is a question", 1)[0]
            tags = set(re.findall(r"<(/?[A-Za-z][A-Za-z0-9]*)", rest))
            self.assertLessEqual(tags, {"p"}, f"{name!r} made markup: {html}")
            self.assertNotIn("<!--", rest, f"{name!r}: {html}")
            if "<" in name:
                self.assertIn("&lt;", html, f"{name!r}: {html}")
            # Plain text carries the name as written, except that bidi
            # embeddings, overrides and isolates are dropped: they would
            # reorder the vetted answer around the name.
            shown = name.strip().translate(NO_BIDI)
            self.assertTrue(plain.startswith(shown + ", that is a question"),
                            f"{name!r} does not start the plain text: {plain[:200]!r}")
            self.assertEqual(plain.count(shown), 1, f"{name!r} twice: {plain[:200]!r}")
            self.assertFalse(set(map(ord, plain)) & set(NO_BIDI),
                             f"{name!r} left a bidi control in the answer: {plain[:200]!r}")
            self.assertEqual(c["m.mentions"]["user_ids"], [PATIENT])

    def test_10000_combining_characters_and_hostile_escapes_in_messages(self):
        bot = self.start_bot()
        room = self.support_room(bot)
        # Over matrix.max_message_bytes (20 KB): ignored, with a log line.
        self.patient.send_text(room, "what is palliative care? e" + "\u0301" * 10000)
        bot.wait_log("over matrix.max_message_bytes", timeout=15)
        # Under the cap: combining marks are dropped, the question answered.
        self.ask_and_wait(room, "what is pallia" + "\u0301" * 1500 + "tive care?")
        # Escapes the homeserver relays: NUL, noncharacters, bidi overrides,
        # a byte-order mark, C1 controls. (It cannot relay a lone surrogate:
        # that is test_lone_surrogates_and_numbers_for_strings_from_the_server.)
        for text in ("what is palliative care?\u0000 and after the NUL",
                     "\ufffe\uffff\U0010ffff what is hospice? \ufdd0",
                     "\u202ewhat is immunotherapy?\u202c",
                     "\ufeff\u0085\u009b31m what is remission?\u0007"):
            self.ask_and_wait(room, text)
        self.ask_and_wait(room, "what is targeted therapy?")
        self.assertIsNone(bot.proc.poll())


if __name__ == "__main__":
    unittest.main()
