#!/usr/bin/env python3
"""Self-test of the test homeserver: every endpoint and every fault kind.

Run:  python3 tests/homeserver/test_homeserver.py -v
"""

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from mxclient import (Client, Control, HomeserverProcess, MatrixError,  # noqa: E402
                      http_request, quote)

USERS = {"@faqbot:localhost": "botpass", "@patient:localhost": "patientpass",
         "@mod:localhost": "modpass"}
SERVER = None


def setUpModule():
    """Start one shared server for the API and fault tests."""
    global SERVER
    state = os.path.join(tempfile.mkdtemp(prefix="hs-selftest-"), "state.json")
    SERVER = HomeserverProcess(USERS, state_path=state).start()


def tearDownModule():
    """Stop the shared server; it must exit cleanly on SIGTERM."""
    code = SERVER.stop()
    assert code == 0, f"homeserver exit code {code}"


def is_message(sender=None, room=None, body=None):
    """Predicate factory for m.room.message events."""
    def predicate(event):
        """Match on type, sender, room and body."""
        return (event.get("type") == "m.room.message"
                and (sender is None or event["sender"] == sender)
                and (room is None or event["room_id"] == room)
                and (body is None or event["content"].get("body") == body))
    return predicate


def raw_request(port, method, path, body=b"", headers=None, conn=None):
    """One request over http.client (optionally on an existing connection)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    if own:
        conn.close()
    return resp, data


class Base(unittest.TestCase):
    """Logged-in clients for the bot, the patient and the moderator."""

    def setUp(self):
        """Reset faults and the log; log the three users in."""
        self.url = SERVER.url
        self.ctl = Control(self.url)
        self.ctl.reset()
        self.bot = Client(self.url)
        self.bot.login("faqbot", "botpass")
        self.patient = Client(self.url)
        self.patient.login("@patient:localhost", "patientpass")
        self.mod = Client(self.url)
        self.mod.login("mod", "modpass")

    def tearDown(self):
        """Leave no fault or outage behind."""
        self.ctl.reset()

    def shared_room(self, **kw):
        """Bot creates a room, invites patient and mod, both join; returns the id."""
        room = self.bot.create_room(name="Support", invite=[self.patient.user_id, self.mod.user_id], **kw)
        self.patient.join(room)
        self.mod.join(room)
        return room

    def assertMatrixError(self, status, errcode, fn, *args, **kw):
        """Assert that fn raises MatrixError with this status and errcode."""
        with self.assertRaises(MatrixError) as ctx:
            fn(*args, **kw)
        self.assertEqual(ctx.exception.status, status, ctx.exception)
        self.assertEqual(ctx.exception.errcode, errcode, ctx.exception)
        return ctx.exception


class AccountTests(Base):
    """Versions, login, tokens, logout, whoami, filters, profile, account data."""

    def test_versions_and_well_known(self):
        """GET /versions needs no auth and lists r0.6.1 and v1.1 .. v1.11."""
        versions = http_request(self.url, "GET", "/_matrix/client/versions")["versions"]
        for v in ["r0.6.1"] + [f"v1.{i}" for i in range(1, 12)]:
            self.assertIn(v, versions)
        wk = http_request(self.url, "GET", "/.well-known/matrix/client")
        self.assertIn("base_url", wk["m.homeserver"])
        caps = self.bot.request("GET", "/capabilities")
        self.assertIn("m.room_versions", caps["capabilities"])

    def test_login(self):
        """Password login: identifier forms, legacy user, errors, device ids."""
        c = Client(self.url)
        flows = c.request("GET", "/login", auth=False)["flows"]
        self.assertIn({"type": "m.login.password"}, flows)
        reply = c.login("@faqbot:localhost", "botpass", device_id="BOTDEVICE", display_name="faqbot")
        self.assertEqual(reply["user_id"], "@faqbot:localhost")
        self.assertEqual(reply["device_id"], "BOTDEVICE")
        self.assertEqual(reply["home_server"], "localhost")
        self.assertEqual(c.whoami(), {"user_id": "@faqbot:localhost", "device_id": "BOTDEVICE",
                                      "is_guest": False})
        again = Client(self.url).login("faqbot", "botpass", device_id="BOTDEVICE")
        self.assertEqual(again["device_id"], "BOTDEVICE")
        self.assertNotEqual(again["access_token"], reply["access_token"])
        legacy = http_request(self.url, "POST", "/_matrix/client/v3/login",
                              {"type": "m.login.password", "user": "patient",
                               "password": "patientpass"})
        self.assertEqual(legacy["user_id"], "@patient:localhost")
        self.assertTrue(legacy["device_id"])
        self.assertMatrixError(403, "M_FORBIDDEN", Client(self.url).login, "faqbot", "wrong")
        self.assertMatrixError(403, "M_FORBIDDEN", Client(self.url).login, "nobody", "x")
        self.assertMatrixError(400, "M_UNKNOWN", http_request, self.url, "POST",
                               "/_matrix/client/v3/login", {"type": "m.login.token", "token": "x"})

    def test_auth_errors_and_logout(self):
        """401 M_MISSING_TOKEN / M_UNKNOWN_TOKEN; query token; logout kills the token."""
        self.assertMatrixError(401, "M_MISSING_TOKEN", http_request, self.url, "GET",
                               "/_matrix/client/v3/account/whoami")
        err = self.assertMatrixError(401, "M_UNKNOWN_TOKEN", http_request, self.url, "GET",
                                     "/_matrix/client/v3/account/whoami", token="nope")
        self.assertIs(err.body["soft_logout"], False)
        via_query = http_request(self.url, "GET", "/_matrix/client/v3/account/whoami",
                                 query={"access_token": self.bot.access_token})
        self.assertEqual(via_query["user_id"], "@faqbot:localhost")
        c = Client(self.url)
        c.login("mod", "modpass")
        token = c.access_token
        c.logout()
        self.assertMatrixError(401, "M_UNKNOWN_TOKEN", http_request, self.url, "GET",
                               "/_matrix/client/v3/account/whoami", token=token)

    def test_r0_prefix_and_unknown_endpoint(self):
        """The r0 prefix reaches the same handlers; unknown paths are 404/405 M_UNRECOGNIZED."""
        who = self.bot.request("GET", "/account/whoami", prefix="/_matrix/client/r0")
        self.assertEqual(who["user_id"], "@faqbot:localhost")
        self.assertMatrixError(404, "M_UNRECOGNIZED", self.bot.request, "GET", "/no/such/thing")
        self.assertMatrixError(405, "M_UNRECOGNIZED", self.bot.request, "DELETE", "/account/whoami")

    def test_filters(self):
        """Upload/get a filter for yourself only; unknown id is 404."""
        definition = {"room": {"timeline": {"limit": 5, "types": ["m.room.message"]}}}
        fid = self.bot.upload_filter(definition)
        self.assertIsInstance(fid, str)
        self.assertEqual(self.bot.get_filter(fid), definition)
        self.assertMatrixError(403, "M_FORBIDDEN", self.bot.request, "POST",
                               f"/user/{quote('@patient:localhost')}/filter", {})
        self.assertMatrixError(403, "M_FORBIDDEN", self.patient.request, "GET",
                               f"/user/{quote('@faqbot:localhost')}/filter/{fid}")
        self.assertMatrixError(404, "M_NOT_FOUND", self.bot.get_filter, "999")
        self.assertMatrixError(400, "M_BAD_JSON", self.bot.upload_filter,
                               {"room": {"timeline": {"types": "m.room.message"}}})
        self.assertMatrixError(400, "M_INVALID_PARAM", self.bot.sync, sync_filter="12345",
                               update=False)

    def test_profile(self):
        """Display names: get/put, only for yourself, copied into member events."""
        room = self.shared_room()
        self.assertEqual(self.patient.get_displayname(), "patient")
        self.patient.mark()
        self.bot.set_displayname("FAQ Bot")
        self.assertEqual(self.patient.get_displayname("@faqbot:localhost"), "FAQ Bot")
        event = self.patient.wait_for(lambda e: e["type"] == "m.room.member"
                                      and e["state_key"] == "@faqbot:localhost", 5)
        self.assertEqual(event["content"], {"membership": "join", "displayname": "FAQ Bot"})
        self.assertEqual(event["unsigned"]["prev_content"]["displayname"], "faqbot")
        self.assertEqual(self.patient.joined_members(room)["@faqbot:localhost"]["display_name"],
                         "FAQ Bot")
        self.assertEqual(self.patient.request("GET", f"/profile/{quote('@faqbot:localhost')}"),
                         {"displayname": "FAQ Bot"})
        self.assertMatrixError(403, "M_FORBIDDEN", self.patient.request, "PUT",
                               f"/profile/{quote('@faqbot:localhost')}/displayname",
                               {"displayname": "evil"})
        self.assertMatrixError(404, "M_NOT_FOUND", self.patient.get_displayname, "@ghost:localhost")
        self.bot.set_displayname("faqbot")

    def test_account_data(self):
        """Global account data is stored and delivered by /sync once."""
        self.bot.mark()
        path = f"/user/{quote(self.bot.user_id)}/account_data/org.faqbot.state"
        self.bot.request("PUT", path, {"last": "$x"})
        self.assertEqual(self.bot.request("GET", path), {"last": "$x"})
        reply = self.bot.sync(timeout=2000, filter={"account_data": {"types": ["org.faqbot.*"]}})
        types = [e["type"] for e in reply["account_data"]["events"]]
        self.assertIn("org.faqbot.state", types)
        self.assertEqual(self.bot.sync()["account_data"]["events"], [])

    def test_register(self):
        """POST /_test/register creates a user who can log in; duplicates are refused."""
        name = f"@nurse{int(time.time() * 1000)}:localhost"
        self.assertEqual(self.ctl.register(name, "pw", "Nurse"), name)
        c = Client(self.url)
        c.login(name, "pw")
        self.assertEqual(c.get_displayname(), "Nurse")
        with self.assertRaises(MatrixError) as ctx:
            self.ctl.register(name, "pw")
        self.assertEqual(ctx.exception.errcode, "M_USER_IN_USE")


class RoomTests(Base):
    """Rooms, membership, sending, state, redactions, sync and pagination."""

    def test_create_invite_join(self):
        """createRoom events, invite_state, join by alias, members, state reads."""
        alias = f"support{int(time.time() * 1000)}"
        self.patient.mark()
        room = self.bot.create_room(name="Support", topic="Help", alias=alias,
                                    invite=[self.patient.user_id], is_direct=True)
        self.assertTrue(room.startswith("!") and room.endswith(":localhost"))
        invite = self.patient.wait_for_invite(5)
        self.assertEqual(invite, room)
        reply = self.patient.sync(since=None, update=False)
        state = reply["rooms"]["invite"][room]["invite_state"]["events"]
        types = {e["type"] for e in state}
        self.assertTrue({"m.room.create", "m.room.name", "m.room.join_rules",
                         "m.room.member"} <= types)
        member = [e for e in state if e["type"] == "m.room.member"][0]
        self.assertEqual(member["sender"], self.bot.user_id)
        self.assertEqual(member["state_key"], self.patient.user_id)
        self.assertEqual(member["content"]["membership"], "invite")
        self.assertIs(member["content"]["is_direct"], True)
        self.assertEqual(self.patient.resolve_alias(f"#{alias}:localhost"), room)
        self.assertEqual(self.patient.join(f"#{alias}:localhost"), room)
        self.assertIn(room, self.patient.joined_rooms())
        joined = self.bot.joined_members(room)
        self.assertEqual(set(joined), {self.bot.user_id, self.patient.user_id})
        self.assertEqual(self.bot.get_state(room, "m.room.name"), {"name": "Support"})
        self.assertEqual(self.bot.get_state(room, "m.room.topic"), {"topic": "Help"})
        self.assertEqual(self.bot.get_state(room, "m.room.join_rules"), {"join_rule": "invite"})
        self.assertEqual(self.bot.get_state(room, "m.room.canonical_alias"),
                         {"alias": f"#{alias}:localhost"})
        power = self.bot.get_power_levels(room)
        self.assertEqual(power["users"], {self.bot.user_id: 100})
        self.assertEqual((power["users_default"], power["events_default"], power["state_default"]),
                         (0, 0, 50))
        self.assertMatrixError(404, "M_NOT_FOUND", self.bot.get_state, room, "m.room.avatar")
        all_state = self.bot.room_state(room)
        self.assertEqual(all_state[0]["type"], "m.room.create")
        self.assertEqual(all_state[0]["content"]["room_version"], "11")
        members = self.bot.members(room)
        self.assertEqual({m["state_key"] for m in members}, {self.bot.user_id, self.patient.user_id})
        self.assertEqual(len(self.bot.members(room, membership="invite")), 0)
        # Everything created is in the unfiltered dump, in order.
        dump = self.ctl.events(room)
        self.assertEqual(dump[0]["type"], "m.room.create")
        self.assertEqual([e["stream_pos"] for e in dump], sorted(e["stream_pos"] for e in dump))
        self.assertMatrixError(400, "M_ROOM_IN_USE", self.bot.create_room, alias=alias)

    def test_join_rules_kick_leave(self):
        """Private rooms need an invite; public ones don't; kick, leave, decline."""
        private = self.bot.create_room(name="Private")
        self.assertMatrixError(403, "M_FORBIDDEN", self.patient.join, private)
        self.assertMatrixError(403, "M_FORBIDDEN", self.patient.send_text, private, "hi")
        self.assertMatrixError(404, "M_NOT_FOUND", self.patient.join, "#nope:localhost")
        public = self.bot.create_room(name="Public", preset="public_chat")
        self.assertEqual(self.patient.join(public), public)
        self.assertEqual(self.bot.get_state(public, "m.room.join_rules"), {"join_rule": "public"})
        # The patient cannot kick (needs 50); the bot can.
        self.mod.join(public)
        self.assertMatrixError(403, "M_FORBIDDEN", self.patient.kick, public, self.mod.user_id)
        self.patient.mark()
        self.bot.kick(public, self.patient.user_id, reason="bye")
        reply = self.patient.sync(timeout_ms=2000)
        self.assertIn(public, reply["rooms"]["leave"])
        leave_events = reply["rooms"]["leave"][public]["timeline"]["events"]
        self.assertEqual(leave_events[-1]["content"], {"membership": "leave", "reason": "bye"})
        self.assertEqual(leave_events[-1]["sender"], self.bot.user_id)
        self.assertMatrixError(403, "M_FORBIDDEN", self.patient.send_text, public, "hi")
        # Decline an invite with /leave.
        self.bot.invite(private, self.patient.user_id)
        self.patient.leave(private)
        self.assertEqual(self.bot.members(private, membership="leave")[0]["state_key"],
                         self.patient.user_id)
        self.assertMatrixError(403, "M_FORBIDDEN", self.patient.join, private)
        # Leaving a joined room.
        self.mod.leave(public)
        self.assertNotIn(public, self.mod.joined_rooms())
        self.assertMatrixError(404, "M_NOT_FOUND", self.bot.invite, public, "@ghost:localhost")
        self.bot.request("POST", f"/rooms/{quote(public)}/ban", {"user_id": self.mod.user_id})
        self.assertMatrixError(403, "M_FORBIDDEN", self.mod.join, public)
        self.bot.request("POST", f"/rooms/{quote(public)}/unban", {"user_id": self.mod.user_id})
        self.mod.join(public)

    def test_power_levels(self):
        """State changes check power levels; the bot can promote the moderator."""
        room = self.shared_room()
        self.assertMatrixError(403, "M_FORBIDDEN", self.patient.put_state, room,
                               "m.room.name", {"name": "hacked"})
        self.assertMatrixError(403, "M_FORBIDDEN", self.mod.set_power_level, room,
                               self.mod.user_id, 50)
        self.bot.set_power_level(room, self.mod.user_id, 50)
        self.mod.put_state(room, "m.room.name", {"name": "Renamed"})
        # The power_levels event itself needs 100 by default.
        self.assertMatrixError(403, "M_FORBIDDEN", self.mod.set_power_level, room,
                               self.patient.user_id, 10)
        levels = self.bot.get_power_levels(room)
        levels["events"]["m.room.power_levels"] = 50
        self.bot.put_state(room, "m.room.power_levels", levels)
        self.assertEqual(self.patient.get_state(room, "m.room.name"), {"name": "Renamed"})
        # 50 cannot give 100 nor demote the creator.
        self.assertMatrixError(403, "M_FORBIDDEN", self.mod.set_power_level, room,
                               self.patient.user_id, 100)
        self.assertMatrixError(403, "M_FORBIDDEN", self.mod.set_power_level, room,
                               self.bot.user_id, 0)
        self.mod.set_power_level(room, self.patient.user_id, 10)
        self.assertEqual(self.bot.get_power_levels(room)["users"][self.patient.user_id], 10)
        # events_default raised: the patient may no longer talk.
        self.bot.set_power_levels(room, events_default=20)
        self.assertMatrixError(403, "M_FORBIDDEN", self.patient.send_text, room, "hi")
        self.mod.send_text(room, "still fine")
        override = self.bot.create_room(power_level_content_override={"events_default": 5})
        self.assertEqual(self.bot.get_power_levels(override)["events_default"], 5)

    def test_send_txn_dedupe_and_transaction_id(self):
        """Same device + txn id: same event id, one event; unsigned.transaction_id for the sender only."""
        room = self.shared_room()
        self.patient.mark()
        self.bot.mark()
        first = self.bot.send_text(room, "hello", msgtype="m.notice", txn_id="txn-1")
        again = self.bot.send_text(room, "hello again", msgtype="m.notice", txn_id="txn-1")
        self.assertEqual(first, again)
        self.assertTrue(first.startswith("$") and first.endswith(":localhost"))
        notices = [e for e in self.ctl.events(room) if e["type"] == "m.room.message"]
        self.assertEqual([e["event_id"] for e in notices], [first])
        # The patient uses the same txn id: a different event.
        other = self.patient.send_text(room, "hi", txn_id="txn-1")
        self.assertNotEqual(other, first)
        # A new login (new device) of the bot with the same txn id: new event.
        bot2 = Client(self.url)
        bot2.login("faqbot", "botpass")
        self.assertNotEqual(bot2.send_text(room, "x", txn_id="txn-1"), first)
        mine = self.bot.wait_for(lambda e: e["event_id"] == first, 5)
        self.assertEqual(mine["unsigned"]["transaction_id"], "txn-1")
        self.assertNotIn("room_id", self.bot.sync(since=None, update=False)["rooms"]["join"][room]
                         ["timeline"]["events"][0])
        theirs = self.patient.wait_for(lambda e: e["event_id"] == first, 5)
        self.assertNotIn("transaction_id", theirs["unsigned"])
        self.assertEqual(theirs["content"], {"msgtype": "m.notice", "body": "hello"})
        self.assertEqual(theirs["sender"], self.bot.user_id)
        self.assertIsInstance(theirs["origin_server_ts"], int)
        # Threads and replies are passed through untouched.
        root = self.patient.send_text(room, "question")
        reply_id = self.bot.send_text(room, "answer", thread_root=root, reply_to=root,
                                      msgtype="m.notice")
        event = self.patient.wait_for(lambda e: e["event_id"] == reply_id, 5)
        self.assertEqual(event["content"]["m.relates_to"]["rel_type"], "m.thread")
        self.assertEqual(event["content"]["m.relates_to"]["event_id"], root)
        self.assertEqual(self.bot.request("GET", f"/rooms/{quote(room)}/event/{quote(reply_id)}")
                         ["content"]["body"], "answer")

    def test_sync_long_poll(self):
        """A waiting /sync returns as soon as an event arrives, else after timeout."""
        room = self.shared_room()
        self.bot.mark()
        started = time.monotonic()
        reply = self.bot.sync(timeout_ms=400)
        self.assertGreaterEqual(time.monotonic() - started, 0.35)
        self.assertEqual(reply["rooms"]["join"], {})
        timer = threading.Timer(0.3, self.patient.send_text, (room, "ping"))
        timer.start()
        started = time.monotonic()
        event = self.bot.wait_for(is_message(body="ping"), 10)
        elapsed = time.monotonic() - started
        timer.join()
        self.assertLess(elapsed, 3.0)
        self.assertEqual(event["room_id"], room)

    def test_sync_initial_limit_and_gap(self):
        """Initial sync: last 10 events, limited, state; incremental gaps are limited too."""
        room = self.shared_room()
        for i in range(15):
            self.patient.send_text(room, f"m{i}")
        reply = self.bot.sync(since=None, update=False)
        joined = reply["rooms"]["join"][room]
        bodies = [e["content"].get("body") for e in joined["timeline"]["events"]]
        self.assertEqual(bodies, [f"m{i}" for i in range(5, 15)])
        self.assertIs(joined["timeline"]["limited"], True)
        state_types = {e["type"] for e in joined["state"]["events"]}
        self.assertTrue({"m.room.create", "m.room.power_levels", "m.room.member",
                         "m.room.name"} <= state_types)
        self.assertEqual(joined["summary"]["m.joined_member_count"], 3)
        # Back-paginate from prev_batch to the older messages.
        older = self.bot.messages(room, "b", joined["timeline"]["prev_batch"], limit=5)
        self.assertEqual([e["content"]["body"] for e in older["chunk"]],
                         [f"m{i}" for i in range(4, -1, -1)])
        # Incremental: 12 new ones with limit 3 -> limited.
        since = reply["next_batch"]
        for i in range(12):
            self.patient.send_text(room, f"n{i}")
        flt = {"room": {"timeline": {"limit": 3}}}
        inc = self.bot.sync(since=since, sync_filter=flt, update=False)
        timeline = inc["rooms"]["join"][room]["timeline"]
        self.assertIs(timeline["limited"], True)
        self.assertEqual([e["content"]["body"] for e in timeline["events"]], ["n9", "n10", "n11"])
        full = self.bot.sync(since=inc["next_batch"], full_state=True, update=False)
        self.assertTrue(full["rooms"]["join"][room]["state"]["events"])

    def test_sync_filters(self):
        """types, not_types, senders, not_senders, rooms, not_rooms, state types, stored ids."""
        room = self.shared_room()
        other = self.shared_room()
        self.bot.mark()
        since = self.bot.next_batch
        self.patient.send_text(room, "from patient")
        self.mod.send_text(room, "from mod")
        self.patient.send_event(room, "org.example.custom", {"x": 1})
        self.patient.send_text(other, "elsewhere")

        def timeline(flt, room_id=room):
            """Timeline (type, sender) pairs of one room for a filter."""
            reply = self.bot.sync(since=since, sync_filter=flt, update=False)
            events = reply["rooms"]["join"].get(room_id, {}).get("timeline", {}).get("events", [])
            return [(e["type"], e["sender"]) for e in events]

        only_messages = timeline({"room": {"timeline": {"types": ["m.room.message"]}}})
        self.assertEqual([t for t, _ in only_messages], ["m.room.message"] * 2)
        self.assertEqual(timeline({"room": {"timeline": {"not_types": ["m.room.*"]}}}),
                         [("org.example.custom", self.patient.user_id)])
        self.assertEqual([s for _, s in timeline({"room": {"timeline": {
            "senders": [self.mod.user_id]}}})], [self.mod.user_id])
        self.assertNotIn(self.patient.user_id, [s for _, s in timeline(
            {"room": {"timeline": {"not_senders": [self.patient.user_id]}}})])
        self.assertEqual(timeline({"room": {"rooms": [other]}}), [])
        self.assertTrue(timeline({"room": {"rooms": [other]}}, other))
        self.assertEqual(timeline({"room": {"not_rooms": [room]}}), [])
        self.assertEqual(timeline({"room": {"timeline": {"limit": 1}}}),
                         [("org.example.custom", self.patient.user_id)])
        fid = self.bot.upload_filter({"room": {"timeline": {"types": ["org.example.custom"]},
                                               "state": {"types": ["m.room.name"]}},
                                      "presence": {"types": []}, "account_data": {"types": []}})
        self.assertEqual(timeline(fid), [("org.example.custom", self.patient.user_id)])
        initial = self.bot.sync(since=None, sync_filter=fid, update=False)
        state = initial["rooms"]["join"][room]["state"]["events"]
        self.assertEqual({e["type"] for e in state}, {"m.room.name"})
        self.assertEqual(initial["presence"]["events"], [])
        self.assertMatrixError(400, "M_INVALID_PARAM", self.bot.sync, sync_filter="{not json",
                               update=False)

    def test_sync_bad_since(self):
        """A malformed or future since token is 400 M_INVALID_PARAM."""
        self.assertMatrixError(400, "M_INVALID_PARAM", self.bot.sync, since="garbage", update=False)
        self.assertMatrixError(400, "M_INVALID_PARAM", self.bot.sync, since="s999999999",
                               update=False)

    def test_newly_joined_room_has_state(self):
        """A room joined after the since token comes with full state and history."""
        room = self.bot.create_room(name="Later", invite=[self.patient.user_id])
        self.bot.send_text(room, "before you came", msgtype="m.notice")
        self.patient.mark()
        self.patient.join(room)
        joined = self.patient.sync(timeout_ms=2000)["rooms"]["join"][room]
        # state is the state at the start of the timeline; together they
        # give the whole room.
        seen = joined["state"]["events"] + joined["timeline"]["events"]
        self.assertIn("m.room.create", {e["type"] for e in seen})
        self.assertIn("before you came", [e["content"].get("body") for e in seen])
        self.assertIs(joined["timeline"]["limited"], False)
        # Longer history: a limited timeline and the older state in "state".
        room = self.bot.create_room(name="Busy", invite=[self.patient.user_id])
        for i in range(12):
            self.bot.send_text(room, f"old {i}", msgtype="m.notice")
        self.patient.mark()
        self.patient.join(room)
        reply = self.patient.sync(timeout_ms=2000)
        joined = reply["rooms"]["join"][room]
        self.assertIs(joined["timeline"]["limited"], True)
        self.assertEqual(len(joined["timeline"]["events"]), 10)
        self.assertEqual(joined["timeline"]["events"][-1]["state_key"], self.patient.user_id)
        state_types = {e["type"] for e in joined["state"]["events"]}
        self.assertTrue({"m.room.create", "m.room.name", "m.room.power_levels"} <= state_types)
        bodies = [e["content"].get("body") for e in joined["timeline"]["events"]]
        self.assertEqual(bodies[:-1], [f"old {i}" for i in range(3, 12)])

    def test_redaction(self):
        """Redaction event carries redacts in content and top level; content is stripped."""
        room = self.shared_room()
        msg = self.patient.send_text(room, "oops, my password is hunter2")
        self.bot.mark()
        self.assertMatrixError(403, "M_FORBIDDEN", self.mod.redact, room, msg)
        redaction = self.patient.redact(room, msg, reason="secret", txn_id="r1")
        self.assertEqual(self.patient.redact(room, msg, txn_id="r1"), redaction)
        event = self.bot.wait_for(lambda e: e["type"] == "m.room.redaction", 5)
        self.assertEqual(event["event_id"], redaction)
        self.assertEqual(event["redacts"], msg)
        self.assertEqual(event["content"], {"redacts": msg, "reason": "secret"})
        original = self.bot.request("GET", f"/rooms/{quote(room)}/event/{quote(msg)}")
        self.assertEqual(original["content"], {})
        self.assertEqual(original["unsigned"]["redacted_because"]["event_id"], redaction)
        self.assertMatrixError(404, "M_NOT_FOUND", self.patient.redact, room, "$nope:localhost")

    def test_messages(self):
        """GET /messages: dir b/f, limit, from/to, end token, filter."""
        room = self.shared_room()
        ids = [self.patient.send_text(room, f"p{i}") for i in range(6)]
        self.bot.send_text(room, "bot says", msgtype="m.notice")
        back = self.bot.messages(room, "b", limit=3)
        self.assertEqual([e["content"]["body"] for e in back["chunk"]], ["bot says", "p5", "p4"])
        self.assertIn("room_id", back["chunk"][0])
        more = self.bot.messages(room, "b", back["end"], limit=2)
        self.assertEqual([e["content"]["body"] for e in more["chunk"]], ["p3", "p2"])
        fwd = self.bot.messages(room, "f", more["end"], limit=10)
        self.assertEqual([e["content"]["body"] for e in fwd["chunk"]], ["p2", "p3", "p4", "p5", "bot says"])
        self.assertNotIn("end", fwd)
        flt = self.bot.messages(room, "b", limit=10, event_filter={"senders": [self.bot.user_id],
                                                                   "types": ["m.room.message"]})
        self.assertEqual([e["content"]["body"] for e in flt["chunk"]], ["bot says"])
        start = self.bot.messages(room, "f", limit=1)
        self.assertEqual(start["chunk"][0]["type"], "m.room.create")
        self.assertTrue(ids)
        outsider = self.bot.create_room()
        self.assertMatrixError(403, "M_FORBIDDEN", self.patient.messages, outsider)
        self.assertMatrixError(400, "M_INVALID_PARAM", self.bot.messages, room, "x")

    def test_misc_endpoints(self):
        """typing, receipts, read markers, presence, devices, pushrules, forget."""
        room = self.shared_room()
        msg = self.patient.send_text(room, "hi")
        self.bot.request("PUT", f"/rooms/{quote(room)}/typing/{quote(self.bot.user_id)}",
                         {"typing": True, "timeout": 3000})
        self.bot.request("POST", f"/rooms/{quote(room)}/receipt/m.read/{quote(msg)}", {})
        self.bot.request("POST", f"/rooms/{quote(room)}/read_markers", {"m.fully_read": msg})
        self.bot.request("PUT", f"/presence/{quote(self.bot.user_id)}/status", {"presence": "online"})
        self.assertTrue(self.bot.request("GET", "/devices")["devices"])
        self.assertIn("global", self.bot.request("GET", "/pushrules/"))
        self.patient.leave(room)
        self.patient.request("POST", f"/rooms/{quote(room)}/forget", {})


class RealServerTests(Base):
    """What the server models of Synapse: rc_message, lazy-loaded members, a
    client's restart, redaction power, reply fallbacks and edits."""

    def test_rc_message_limit_and_admin_override(self):
        """Synapse's defaults: a burst of 10, then one every 5 s; 429 with
        retry_after_ms; a repeated txn is not counted; the admin API lifts it."""
        room = self.shared_room()
        self.ctl.ratelimit(users=[self.bot.user_id])
        ids = [self.bot.send_text(room, f"n{i}", txn_id=f"rl{i}") for i in range(10)]
        err = self.assertMatrixError(429, "M_LIMIT_EXCEEDED", self.bot.send_text, room, "x",
                                     txn_id="rl10")
        self.assertGreater(err.body["retry_after_ms"], 3000)
        self.assertLessEqual(err.body["retry_after_ms"], 5000)
        self.assertEqual(err.headers.get("Retry-After"), "5")
        self.assertEqual(self.bot.send_text(room, "n0", txn_id="rl0"), ids[0])  # cached, free
        self.patient.send_text(room, "the patient is not limited")
        # A redaction counts too.
        self.assertMatrixError(429, "M_LIMIT_EXCEEDED", self.bot.redact, room, ids[0])
        self.assertEqual(self.ctl.ratelimit_state()["refused"], 2)
        # Only a server admin may lift it.
        path = f"/_synapse/admin/v1/users/{quote(self.bot.user_id)}/override_ratelimit"
        with self.assertRaises(MatrixError) as ctx:
            http_request(self.url, "POST", path, {"messages_per_second": 0, "burst_count": 0},
                         token=self.mod.access_token)
        self.assertEqual(ctx.exception.status, 403)
        self.ctl.set_admin(self.mod.user_id)
        self.addCleanup(self.ctl.set_admin, self.mod.user_id, False)
        got = http_request(self.url, "POST", path, {"messages_per_second": 0, "burst_count": 0},
                           token=self.mod.access_token)
        self.assertEqual(got, {"messages_per_second": 0, "burst_count": 0})
        self.assertEqual(http_request(self.url, "GET", path, token=self.mod.access_token), got)
        for i in range(15):
            self.bot.send_text(room, f"free {i}")
        http_request(self.url, "DELETE", path, token=self.mod.access_token)
        self.assertEqual(http_request(self.url, "GET", path, token=self.mod.access_token), {})

    def test_restarted_client_gets_no_state_for_quiet_rooms(self):
        """A sync from a saved token carries a room only when something happened
        in it, and then no state or summary unless members changed."""
        room = self.shared_room()
        quiet = self.shared_room()
        first = self.bot.sync(since=None, update=False)
        self.assertIn(quiet, first["rooms"]["join"])
        self.assertIn("summary", first["rooms"]["join"][quiet])
        self.patient.send_text(room, "after the restart")
        again = self.bot.sync(since=first["next_batch"], update=False)
        self.assertNotIn(quiet, again["rooms"]["join"])
        entry = again["rooms"]["join"][room]
        self.assertEqual(entry["state"]["events"], [])
        self.assertNotIn("summary", entry)
        self.assertEqual([e["content"]["body"] for e in entry["timeline"]["events"]],
                         ["after the restart"])

    def test_lazy_loaded_members(self):
        """With lazy_load_members, member events come for the timeline's
        senders only, and once per device."""
        flt = json.dumps({"room": {"state": {"lazy_load_members": True},
                                   "timeline": {"limit": 2}}})
        room = self.shared_room()
        self.patient.send_text(room, "one")
        self.patient.send_text(room, "two")
        first = self.bot.sync(since=None, sync_filter=flt, update=False)
        members = {e["state_key"] for e in first["rooms"]["join"][room]["state"]["events"]
                   if e["type"] == "m.room.member"}
        self.assertEqual(members, {self.bot.user_id, self.patient.user_id})
        self.assertEqual(first["rooms"]["join"][room]["summary"]["m.joined_member_count"], 3)
        self.mod.send_text(room, "the moderator speaks")
        second = self.bot.sync(since=first["next_batch"], sync_filter=flt, update=False)
        members = [e["state_key"] for e in second["rooms"]["join"][room]["state"]["events"]]
        self.assertEqual(members, [self.mod.user_id])
        self.mod.send_text(room, "and again")
        third = self.bot.sync(since=second["next_batch"], sync_filter=flt, update=False)
        self.assertEqual(third["rooms"]["join"][room]["state"]["events"], [])

    def test_redaction_needs_the_level_of_m_room_redaction(self):
        """Redacting even one's own message needs the level to send m.room.redaction."""
        room = self.shared_room()
        mine = self.patient.send_text(room, "mine")
        self.bot.set_power_levels(room, events={"m.room.redaction": 50})
        self.assertMatrixError(403, "M_FORBIDDEN", self.patient.redact, room, mine)
        self.bot.set_power_levels(room, events={"m.room.redaction": 0})
        self.patient.redact(room, mine)

    def test_reply_fallback_and_edit(self):
        """The client library sends replies with the fallback quote and edits
        as m.replace, as Element does."""
        room = self.shared_room()
        first = self.mod.send_text(room, "line one\nline two")
        reply = self.patient.send_text(room, "my answer", reply_to=first, fallback=True)
        content = self.bot.request("GET", f"/rooms/{quote(room)}/event/{quote(reply)}")["content"]
        self.assertEqual(content["body"],
                         f"> <{self.mod.user_id}> line one\n> line two\n\nmy answer")
        self.assertTrue(content["formatted_body"].startswith("<mx-reply><blockquote>"))
        self.assertEqual(content["m.relates_to"], {"m.in_reply_to": {"event_id": first}})
        edit = self.patient.edit(room, reply, "my better answer")
        content = self.bot.request("GET", f"/rooms/{quote(room)}/event/{quote(edit)}")["content"]
        self.assertEqual(content["m.new_content"]["body"], "my better answer")
        self.assertEqual(content["m.relates_to"], {"rel_type": "m.replace", "event_id": reply})


class HttpTests(Base):
    """HTTP details: body caps, bad JSON, keep-alive, request log."""

    def test_body_limits_and_bad_json(self):
        """Bodies over 1 MiB get 413 M_TOO_LARGE; bad JSON gets 400 M_NOT_JSON."""
        room = self.shared_room()
        path = f"/_matrix/client/v3/rooms/{quote(room)}/send/m.room.message/big1"
        headers = {"Authorization": f"Bearer {self.bot.access_token}",
                   "Content-Type": "application/json"}
        big = json.dumps({"msgtype": "m.text", "body": "x" * (1 << 20)}).encode()
        conn = http.client.HTTPConnection("127.0.0.1", SERVER.port, timeout=30)
        resp, data = raw_request(SERVER.port, "PUT", path, big, headers, conn=conn)
        self.assertEqual(resp.status, 413)
        self.assertEqual(json.loads(data)["errcode"], "M_TOO_LARGE")
        # The body was drained: the same connection still works.
        resp, data = raw_request(SERVER.port, "GET", "/_matrix/client/v3/account/whoami",
                                 headers=headers, conn=conn)
        self.assertEqual(resp.status, 200)
        conn.close()
        # With Expect: 100-continue the 413 comes before the body is sent.
        conn = http.client.HTTPConnection("127.0.0.1", SERVER.port, timeout=30)
        conn.putrequest("PUT", path)
        for name, value in dict(headers, Expect="100-continue",
                                **{"Content-Length": str(len(big))}).items():
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        self.assertEqual(resp.status, 413)
        self.assertEqual(json.loads(resp.read())["errcode"], "M_TOO_LARGE")
        conn.close()
        resp, data = raw_request(SERVER.port, "PUT", path, b"{not json", headers)
        self.assertEqual(resp.status, 400)
        self.assertEqual(json.loads(data)["errcode"], "M_NOT_JSON")
        resp, data = raw_request(SERVER.port, "PUT", path, b"[1, 2]", headers)
        self.assertEqual(json.loads(data)["errcode"], "M_BAD_JSON")
        self.assertMatrixError(413, "M_TOO_LARGE", self.bot.send_text, room, "y" * 70000)

    def test_keep_alive_and_content_length(self):
        """HTTP/1.1: several requests on one connection, each with Content-Length."""
        conn = http.client.HTTPConnection("127.0.0.1", SERVER.port, timeout=10)
        headers = {"Authorization": f"Bearer {self.bot.access_token}"}
        for _ in range(3):
            resp, data = raw_request(SERVER.port, "GET", "/_matrix/client/v3/account/whoami",
                                     headers=headers, conn=conn)
            self.assertEqual(resp.version, 11)
            self.assertEqual(int(resp.getheader("Content-Length")), len(data))
            self.assertEqual(resp.getheader("Content-Type"), "application/json")
        sock = conn.sock
        resp, _ = raw_request(SERVER.port, "GET", "/_matrix/client/versions", conn=conn)
        self.assertIs(conn.sock, sock)  # the same TCP connection was reused
        resp, data = raw_request(SERVER.port, "GET", "/_matrix/client/v3/nope", headers=headers,
                                 conn=conn)
        self.assertEqual(resp.status, 404)
        self.assertEqual(int(resp.getheader("Content-Length")), len(data))
        conn.close()

    def test_request_log(self):
        """The log records method, path, user, body, time and status; since= filters."""
        room = self.shared_room()
        start = self.ctl.last_seq()
        self.bot.send_text(room, "logged", txn_id="log-1")
        self.assertMatrixError(403, "M_FORBIDDEN", self.bot.put_state, room, "m.room.create", {})
        entries, last = self.ctl.requests(since=start)
        self.assertEqual(len(entries), 2)
        send = entries[0]
        self.assertEqual(send["method"], "PUT")
        self.assertTrue(send["path"].endswith("/send/m.room.message/log-1"))
        self.assertEqual(send["user"], self.bot.user_id)
        self.assertEqual(send["device"], self.bot.device_id)
        self.assertEqual(send["body"], {"msgtype": "m.text", "body": "logged"})
        self.assertEqual(send["status"], 200)
        self.assertIsInstance(send["time"], float)
        self.assertEqual(entries[1]["status"], 403)
        self.assertEqual(last, entries[1]["seq"])
        only, _ = self.ctl.requests(since=start, match="/send/", method="PUT")
        self.assertEqual(len(only), 1)
        self.ctl.reset()
        self.assertEqual(self.ctl.requests()[0], [])


class FaultTests(Base):
    """Every fault kind, count/method/order semantics, outages."""

    def setUp(self):
        """Also create a room the bot and the patient share."""
        super().setUp()
        self.room = self.shared_room()

    def send_path(self, txn):
        """The raw v3 send path for the shared room."""
        return f"/_matrix/client/v3/rooms/{quote(self.room)}/send/m.room.message/{txn}"

    def test_429(self):
        """429 M_LIMIT_EXCEEDED with retry_after_ms in the body and Retry-After rounded up."""
        self.ctl.add_fault("/send/", "429", method="PUT", retry_after_ms=1500)
        err = self.assertMatrixError(429, "M_LIMIT_EXCEEDED", self.bot.send_text, self.room, "a",
                                     txn_id="t429")
        self.assertEqual(err.body["retry_after_ms"], 1500)
        self.assertEqual(err.headers.get("Retry-After"), "2")
        eid = self.bot.send_text(self.room, "a", txn_id="t429")
        self.assertEqual([e["event_id"] for e in self.ctl.events(self.room)
                          if e["type"] == "m.room.message"], [eid])
        entries, _ = self.ctl.requests(match="/send/")
        self.assertEqual([(e["status"], e["fault"]) for e in entries], [(429, "429"), (200, None)])

    def test_500_and_502(self):
        """500 is a JSON M_UNKNOWN; 502 is an HTML page like a reverse proxy's."""
        self.ctl.add_fault("/sync", "500")
        self.assertMatrixError(500, "M_UNKNOWN", self.bot.sync, update=False)
        self.ctl.add_fault("/sync", "502")
        with self.assertRaises(MatrixError) as ctx:
            self.bot.sync(update=False)
        self.assertEqual(ctx.exception.status, 502)
        self.assertIn("Bad Gateway", ctx.exception.body)
        self.assertIn("text/html", ctx.exception.headers.get("Content-Type"))
        self.assertIn("next_batch", self.bot.sync(update=False))

    def test_slow(self):
        """slow waits delay_ms and then answers normally."""
        self.ctl.add_fault("/account/whoami", "slow", delay_ms=600)
        started = time.monotonic()
        self.assertEqual(self.bot.whoami()["user_id"], self.bot.user_id)
        self.assertGreaterEqual(time.monotonic() - started, 0.55)
        started = time.monotonic()
        self.bot.whoami()
        self.assertLess(time.monotonic() - started, 0.5)

    def test_drop(self):
        """drop closes the connection without a reply; the event is not created."""
        self.ctl.add_fault("/send/", "drop")
        with self.assertRaises((ConnectionError, http.client.HTTPException, urllib.error.URLError)):
            self.bot.send_text(self.room, "lost", txn_id="tdrop")
        self.assertEqual([e for e in self.ctl.events(self.room) if e["type"] == "m.room.message"], [])
        entries, _ = self.ctl.requests(match="/send/")
        self.assertEqual(entries[0]["status"], 0)
        self.assertEqual(entries[0]["fault"], "drop")

    def test_drop_after_processing_then_retry(self):
        """phase=after: the event is created but the reply lost; a retry with the
        same txn id returns the same event id and creates nothing new."""
        self.ctl.add_fault("/send/", "drop", phase="after")
        with self.assertRaises((ConnectionError, http.client.HTTPException, urllib.error.URLError)):
            self.bot.send_text(self.room, "once", txn_id="tretry")
        eid = self.bot.send_text(self.room, "once", txn_id="tretry")
        messages = [e for e in self.ctl.events(self.room) if e["type"] == "m.room.message"]
        self.assertEqual([e["event_id"] for e in messages], [eid])
        self.ctl.add_fault("/sync", "500", phase="after")
        self.assertMatrixError(500, "M_UNKNOWN", self.bot.sync, update=False)

    def test_malformed(self):
        """malformed answers 200 with a truncated JSON body."""
        self.ctl.add_fault("/sync", "malformed")
        resp, data = raw_request(SERVER.port, "GET", "/_matrix/client/v3/sync",
                                 headers={"Authorization": f"Bearer {self.bot.access_token}"})
        self.assertEqual(resp.status, 200)
        self.assertEqual(int(resp.getheader("Content-Length")), len(data))
        with self.assertRaises(ValueError):
            json.loads(data)
        self.ctl.add_fault("/sync", "malformed", phase="after")
        with self.assertRaises(ValueError):
            self.bot.sync(update=False)

    def test_huge(self):
        """huge streams a valid JSON body of exactly `size` bytes."""
        size = 8 * 1024 * 1024
        self.ctl.add_fault("/sync", "huge", size=size)
        resp, data = raw_request(SERVER.port, "GET", "/_matrix/client/v3/sync",
                                 headers={"Authorization": f"Bearer {self.bot.access_token}"})
        self.assertEqual(resp.status, 200)
        self.assertEqual(int(resp.getheader("Content-Length")), size)
        self.assertEqual(len(data), size)
        self.assertIsInstance(json.loads(data), dict)
        # A client that gives up early does not hurt the server.
        self.ctl.add_fault("/sync", "huge", size=50 * 1024 * 1024)
        conn = http.client.HTTPConnection("127.0.0.1", SERVER.port, timeout=10)
        conn.request("GET", "/_matrix/client/v3/sync",
                     headers={"Authorization": f"Bearer {self.bot.access_token}"})
        resp = conn.getresponse()
        self.assertEqual(len(resp.read(1024)), 1024)
        conn.close()
        self.assertEqual(self.bot.whoami()["user_id"], self.bot.user_id)

    def test_wrong_type(self):
        """wrong_type answers 200 with valid JSON whose fields have the wrong types."""
        self.ctl.add_fault("/sync", "wrong_type")
        reply = self.bot.sync(update=False)
        self.assertIsInstance(reply["next_batch"], int)
        self.assertIsInstance(reply["rooms"], list)
        self.ctl.add_fault("/send/", "wrong_type")
        reply = self.bot.request("PUT", f"/rooms/{quote(self.room)}/send/m.room.message/wt",
                                 {"msgtype": "m.text", "body": "x"})
        self.assertIsInstance(reply["event_id"], dict)
        self.ctl.add_fault("/login", "wrong_type")
        with self.assertRaises((TypeError, KeyError, AttributeError, AssertionError)):
            reply = http_request(self.url, "POST", "/_matrix/client/v3/login",
                                 {"type": "m.login.password", "user": "faqbot", "password": "botpass"})
            assert isinstance(reply["access_token"], str)

    def test_unknown_token(self):
        """unknown_token answers 401 once and invalidates the token; re-login works."""
        self.ctl.add_fault("/sync", "unknown_token")
        err = self.assertMatrixError(401, "M_UNKNOWN_TOKEN", self.bot.sync, update=False)
        self.assertIs(err.body["soft_logout"], False)
        self.assertMatrixError(401, "M_UNKNOWN_TOKEN", self.bot.whoami)
        self.bot.login("faqbot", "botpass", device_id=self.bot.device_id)
        self.assertEqual(self.bot.whoami()["user_id"], self.bot.user_id)

    def test_count_method_order_and_clear(self):
        """count N hits N requests; method filters; first-added fault is used first; DELETE clears."""
        self.ctl.add_fault("/account/whoami", "500", count=2)
        self.ctl.add_fault("/account/whoami", "502", count=1)
        self.ctl.add_fault("/account/whoami", "429", method="POST")
        statuses = []
        for _ in range(4):
            try:
                self.bot.whoami()
                statuses.append(200)
            except MatrixError as err:
                statuses.append(err.status)
        self.assertEqual(statuses, [500, 500, 502, 200])
        faults = self.ctl.faults()
        self.assertEqual([f["hits"] for f in faults], [2, 1, 0])
        self.ctl.add_fault("", "500", count=-1)
        self.assertMatrixError(500, "M_UNKNOWN", self.bot.whoami)
        self.assertMatrixError(500, "M_UNKNOWN", self.bot.whoami)
        self.ctl.clear_faults()
        self.assertEqual(self.ctl.faults(), [])
        self.assertEqual(self.bot.whoami()["user_id"], self.bot.user_id)
        with self.assertRaises(MatrixError):
            self.ctl.add_fault("/x", "explode")
        with self.assertRaises(MatrixError):
            self.ctl.add_fault("(", "500")

    def test_fault_for_one_user(self):
        """A fault with "user" only hits requests authenticated as that user."""
        self.ctl.add_fault("/account/whoami", "500", user=self.bot.user_id, count=-1)
        self.assertEqual(self.patient.whoami()["user_id"], self.patient.user_id)
        self.assertMatrixError(500, "M_UNKNOWN", self.bot.whoami)
        self.assertMatrixError(500, "M_UNKNOWN", self.bot.whoami)
        self.assertEqual(self.ctl.faults()[0]["hits"], 2)

    def test_wait_for_through_outage(self):
        """wait_for(retry_errors=True) rides out an outage and injected 5xx."""
        self.patient.mark()
        self.ctl.down(0.5)
        self.ctl.add_fault("/sync", "502", user=self.patient.user_id)
        timer = threading.Timer(0.8, self.bot.send_text, (self.room, "back"))
        timer.start()
        event = self.patient.wait_for(is_message(body="back"), 5, retry_errors=True)
        timer.join()
        self.assertEqual(event["sender"], self.bot.user_id)
        with self.assertRaises(MatrixError):
            self.ctl.add_fault("/sync", "500", user=5)

    def test_down(self):
        """During an outage every client request is dropped (long-polls too); /_test/ works."""
        self.bot.mark()
        errors = []

        def long_poll():
            """A sync that should be cut by the outage."""
            try:
                self.bot.sync(since=self.bot.next_batch, timeout_ms=10000, update=False)
            except Exception as exc:  # the outage drops it
                errors.append(exc)

        poller = threading.Thread(target=long_poll)
        poller.start()
        time.sleep(0.2)
        started = time.monotonic()
        self.ctl.down(1.0)
        poller.join(5)
        self.assertFalse(poller.is_alive())
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertEqual(len(errors), 1)
        with self.assertRaises((ConnectionError, http.client.HTTPException, urllib.error.URLError)):
            self.bot.whoami()
        self.assertTrue(self.ctl.health()["ok"])
        time.sleep(1.1)
        self.assertEqual(self.bot.whoami()["user_id"], self.bot.user_id)
        entries, _ = self.ctl.requests(match="whoami")
        self.assertEqual(entries[0]["fault"], "down")


class RestartTests(unittest.TestCase):
    """Persistence across kill + restart on the same port; clean SIGTERM."""

    def test_kill_and_restart_keeps_everything(self):
        """Users, tokens, rooms, events, txn ids, filters and the stream survive SIGKILL."""
        state = os.path.join(tempfile.mkdtemp(prefix="hs-restart-"), "state.json")
        server = HomeserverProcess(USERS, state_path=state).start()
        try:
            bot = Client(server.url)
            bot.login("faqbot", "botpass")
            patient = Client(server.url)
            patient.login("patient", "patientpass")
            room = bot.create_room(alias="persist", invite=[patient.user_id])
            patient.join("#persist:localhost")
            fid = bot.upload_filter({"room": {"timeline": {"limit": 5}}})
            first = bot.send_text(room, "before", txn_id="keep-1")
            bot.mark()
            port = server.port
            server.kill()
            with self.assertRaises((ConnectionError, urllib.error.URLError)):
                bot.whoami()
            server.start()
            self.assertEqual(server.port, port)
            self.assertEqual(bot.whoami()["device_id"], bot.device_id)
            self.assertEqual(bot.send_text(room, "again", txn_id="keep-1"), first)
            self.assertEqual(bot.get_filter(fid), {"room": {"timeline": {"limit": 5}}})
            patient.send_text(room, "after restart")
            reply = bot.sync(timeout_ms=3000)
            bodies = [e["content"].get("body") for e in reply["rooms"]["join"][room]["timeline"]["events"]]
            self.assertEqual(bodies, ["after restart"])
            messages = [e for e in Control(server.url).events(room) if e["type"] == "m.room.message"]
            self.assertEqual([e["content"]["body"] for e in messages], ["before", "after restart"])
            self.assertEqual(patient.resolve_alias("#persist:localhost"), room)
        finally:
            server.kill()

    def test_sigterm_ends_long_poll_promptly(self):
        """SIGTERM: exit code 0 within a second or two even with a long-poll waiting."""
        server = HomeserverProcess(USERS).start()
        bot = Client(server.url)
        bot.login("faqbot", "botpass")
        bot.mark()
        errors = []

        def long_poll():
            """Wait on /sync; the shutdown ends it."""
            try:
                bot.sync(since=bot.next_batch, timeout_ms=30000, update=False)
            except Exception as exc:  # dropped by the shutdown
                errors.append(exc)

        poller = threading.Thread(target=long_poll)
        poller.start()
        time.sleep(0.3)
        started = time.monotonic()
        self.assertEqual(server.stop(), 0)
        poller.join(5)
        self.assertFalse(poller.is_alive())
        self.assertLess(time.monotonic() - started, 3.0)
        self.assertEqual(len(errors), 1)

    def test_command_line(self):
        """The documented command line writes the port file and prints the port."""
        tmp = tempfile.mkdtemp(prefix="hs-cli-")
        port_file = os.path.join(tmp, "port")
        proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "homeserver.py"), "--port", "0",
             "--port-file", port_file, "--server-name", "localhost",
             "--user", "@faqbot:localhost=botpass"],
            stdout=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline().strip()
            self.assertRegex(line, r"^listening on 127\.0\.0\.1:\d+$")
            with open(port_file, encoding="utf-8") as fh:
                port = int(fh.read())
            self.assertEqual(line, f"listening on 127.0.0.1:{port}")
            bot = Client(f"http://127.0.0.1:{port}")
            self.assertEqual(bot.login("faqbot", "botpass")["user_id"], "@faqbot:localhost")
        finally:
            proc.send_signal(signal.SIGINT)
            self.assertEqual(proc.wait(10), 0)
            proc.stdout.close()


class PatientTests(Base):
    """The patient terminal client in --once mode and interactive mode."""

    def test_once_mode(self):
        """--once sends the question and prints the bot's reply; exit 1 without one."""
        room = self.bot.create_room(name="Support", preset="public_chat",
                                    alias=f"ask{int(time.time() * 1000)}")
        alias = self.bot.get_state(room, "m.room.canonical_alias")["alias"]
        self.bot.mark()

        def answer():
            """Act as the bot: reply to the first question with a notice."""
            question = self.bot.wait_for(is_message(sender=self.patient.user_id, room=room), 15)
            self.bot.send_text(room, "Here is the answer.", msgtype="m.notice",
                               reply_to=question["event_id"])

        helper = threading.Thread(target=answer)
        helper.start()
        cmd = [sys.executable, os.path.join(HERE, "patient.py"), "--homeserver", self.url,
               "--user", "@patient:localhost", "--password", "patientpass", "--room", alias]
        out = subprocess.run(cmd + ["--once", "How do I book?", "--wait", "10"],
                             capture_output=True, text=True, timeout=30)
        helper.join(15)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("<@faqbot:localhost> (notice)", out.stdout)
        self.assertIn("Here is the answer.", out.stdout)
        out = subprocess.run(cmd + ["--once", "anyone?", "--wait", "0.5"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 1)

    def test_interactive_mode(self):
        """Lines on stdin are sent; other users' messages are printed; /quit exits."""
        room = self.bot.create_room(name="Chat", preset="public_chat")
        cmd = [sys.executable, os.path.join(HERE, "patient.py"), "--homeserver", self.url,
               "--user", "@patient:localhost", "--password", "patientpass", "--room", room]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            self.bot.mark()
            proc.stdin.write("hello bot\n")
            proc.stdin.flush()
            question = self.bot.wait_for(is_message(sender=self.patient.user_id, room=room), 10)
            self.assertEqual(question["content"]["body"], "hello bot")
            self.bot.send_text(room, "hello patient", msgtype="m.notice")
            line = self._readline(proc, 10)
            self.assertIn("<@faqbot:localhost> (notice) hello patient", line)
            proc.stdin.write("/quit\n")
            proc.stdin.flush()
            self.assertEqual(proc.wait(10), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                try:
                    stream.close()
                except OSError:
                    pass

    @staticmethod
    def _readline(proc, timeout_s):
        """Read one stdout line of proc with a bound on the wait."""
        result = []
        reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout_s)
        return result[0] if result else ""


if __name__ == "__main__":
    unittest.main()
