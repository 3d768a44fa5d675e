#!/usr/bin/env python3
"""A small Matrix client library (urllib only) for faqbot's tests.

Client        -- one logged-in user: login, rooms, sending, /sync, wait_for.
Control       -- the test homeserver's /_test/ API (faults, outage, logs).
HomeserverProcess -- start / stop / kill / restart homeserver.py as a subprocess.

Every network call has a timeout; every wait is bounded.
"""

import html
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

CLIENT_PREFIX = "/_matrix/client/v3"
HERE = os.path.dirname(os.path.abspath(__file__))
HOMESERVER_PY = os.path.join(HERE, "homeserver.py")


class MatrixError(Exception):
    """A non-2xx reply: HTTP status, Matrix errcode, message, body and headers."""

    def __init__(self, status, body, headers=None):
        """Keep the reply; body is the parsed JSON (or raw text when not JSON)."""
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        if isinstance(body, dict):
            self.errcode = body.get("errcode")
            self.error = body.get("error")
        else:
            self.errcode = None
            self.error = body
        super().__init__(f"HTTP {status} {self.errcode}: {self.error}")


def quote(value):
    """Percent-encode one path segment (room ids, event ids, user ids...)."""
    return urllib.parse.quote(str(value), safe="")


def http_request(base_url, method, path, body=None, query=None, token=None,
                 timeout=30.0, raw=False):
    """Do one HTTP request; return parsed JSON (or bytes when raw).

    Raises MatrixError for non-2xx replies; network errors (dropped
    connections, refused connections, timeouts) propagate unchanged.
    """
    url = base_url.rstrip("/") + path
    if query:
        items = {k: v for k, v in query.items() if v is not None}
        if items:
            url += "?" + urllib.parse.urlencode(items)
    data = None
    headers = {}
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        headers["Content-Type"] = "application/json"
    elif method in ("POST", "PUT"):
        data = b"{}"
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
    except urllib.error.HTTPError as err:
        payload = err.read()
        try:
            parsed = json.loads(payload)
        except ValueError:
            parsed = payload.decode("utf-8", "replace")
        raise MatrixError(err.code, parsed, err.headers.items()) from None
    if raw:
        return payload
    return json.loads(payload) if payload else {}


class Client:
    """A Matrix user talking to a homeserver through the client-server API."""

    def __init__(self, base_url, user_id=None, access_token=None, device_id=None,
                 timeout=30.0):
        """Create a client; call login() unless an access token is given."""
        self.base_url = base_url.rstrip("/")
        self.user_id = user_id
        self.access_token = access_token
        self.device_id = device_id
        self.timeout = timeout
        self.next_batch = None
        self.received = []  # every event seen by sync(), with room_id added
        self.cursor = 0  # wait_for() looks at received[cursor:]
        self._txn = 0
        self._txn_prefix = f"{int(time.time() * 1000)}-{os.getpid()}-{id(self) & 0xffff}"

    # ------------------------------------------------------------ plumbing

    def request(self, method, path, body=None, query=None, auth=True, timeout=None,
                prefix=CLIENT_PREFIX):
        """Do one API request under the client prefix; return the JSON reply."""
        return http_request(self.base_url, method, prefix + path, body, query,
                            self.access_token if auth else None,
                            self.timeout if timeout is None else timeout)

    def new_txn_id(self):
        """Return a fresh transaction id."""
        self._txn += 1
        return f"{self._txn_prefix}-{self._txn}"

    # ------------------------------------------------------------ account

    def versions(self):
        """GET /_matrix/client/versions."""
        return self.request("GET", "/_matrix/client/versions", auth=False, prefix="")

    def login(self, user, password, device_id=None, display_name=None):
        """Password login; stores and returns the reply (user_id, access_token, device_id)."""
        body = {"type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user},
                "password": password}
        if device_id:
            body["device_id"] = device_id
        if display_name:
            body["initial_device_display_name"] = display_name
        reply = self.request("POST", "/login", body, auth=False)
        self.user_id = reply["user_id"]
        self.access_token = reply["access_token"]
        self.device_id = reply["device_id"]
        return reply

    def logout(self):
        """POST /logout; forget the token."""
        self.request("POST", "/logout", {})
        self.access_token = None

    def whoami(self):
        """GET /account/whoami."""
        return self.request("GET", "/account/whoami")

    def get_displayname(self, user_id=None):
        """GET /profile/{userId}/displayname; returns the name or None."""
        reply = self.request("GET", f"/profile/{quote(user_id or self.user_id)}/displayname")
        return reply.get("displayname")

    def set_displayname(self, name):
        """PUT /profile/{userId}/displayname."""
        self.request("PUT", f"/profile/{quote(self.user_id)}/displayname", {"displayname": name})

    def upload_filter(self, definition):
        """POST /user/{userId}/filter; returns the filter id."""
        return self.request("POST", f"/user/{quote(self.user_id)}/filter", definition)["filter_id"]

    def get_filter(self, filter_id):
        """GET /user/{userId}/filter/{filterId}."""
        return self.request("GET", f"/user/{quote(self.user_id)}/filter/{quote(filter_id)}")

    # ------------------------------------------------------------ rooms

    def create_room(self, name=None, invite=(), preset="private_chat", alias=None,
                    topic=None, is_direct=False, power_level_content_override=None,
                    **extra):
        """POST /createRoom; returns the room id."""
        body = {"preset": preset, "invite": list(invite)}
        if name is not None:
            body["name"] = name
        if alias is not None:
            body["room_alias_name"] = alias
        if topic is not None:
            body["topic"] = topic
        if is_direct:
            body["is_direct"] = True
        if power_level_content_override is not None:
            body["power_level_content_override"] = power_level_content_override
        body.update(extra)
        return self.request("POST", "/createRoom", body)["room_id"]

    def invite(self, room_id, user_id):
        """POST /rooms/{roomId}/invite."""
        self.request("POST", f"/rooms/{quote(room_id)}/invite", {"user_id": user_id})

    def join(self, room_id_or_alias):
        """POST /join/{roomIdOrAlias}; returns the room id."""
        return self.request("POST", f"/join/{quote(room_id_or_alias)}", {})["room_id"]

    def leave(self, room_id):
        """POST /rooms/{roomId}/leave (also declines an invite)."""
        self.request("POST", f"/rooms/{quote(room_id)}/leave", {})

    def kick(self, room_id, user_id, reason=None):
        """POST /rooms/{roomId}/kick."""
        body = {"user_id": user_id}
        if reason:
            body["reason"] = reason
        self.request("POST", f"/rooms/{quote(room_id)}/kick", body)

    def resolve_alias(self, alias):
        """GET /directory/room/{alias}; returns the room id."""
        return self.request("GET", f"/directory/room/{quote(alias)}")["room_id"]

    def joined_rooms(self):
        """GET /joined_rooms; returns the list of room ids."""
        return self.request("GET", "/joined_rooms")["joined_rooms"]

    def joined_members(self, room_id):
        """GET /rooms/{roomId}/joined_members; returns {user_id: {...}}."""
        return self.request("GET", f"/rooms/{quote(room_id)}/joined_members")["joined"]

    def members(self, room_id, membership=None):
        """GET /rooms/{roomId}/members; returns the member events."""
        return self.request("GET", f"/rooms/{quote(room_id)}/members",
                            query={"membership": membership})["chunk"]

    # ------------------------------------------------------------ sending

    def send_event(self, room_id, event_type, content, txn_id=None):
        """PUT /rooms/{roomId}/send/{eventType}/{txnId}; returns the event id."""
        txn_id = txn_id or self.new_txn_id()
        path = f"/rooms/{quote(room_id)}/send/{quote(event_type)}/{quote(txn_id)}"
        return self.request("PUT", path, content)["event_id"]

    def send_text(self, room_id, body, thread_root=None, reply_to=None, msgtype="m.text",
                  extra_content=None, txn_id=None, fallback=False):
        """Send an m.room.message (optionally in a thread and/or as a reply).

        fallback=True quotes the replied-to message in body and
        formatted_body, as Element and matrix-js-sdk have long done (the
        spec's reply fallback: "> <@sender> line" lines, a blank line, then
        the reply; <mx-reply> in the HTML)."""
        content = {"msgtype": msgtype, "body": body}
        if reply_to and fallback:
            content.update(self.reply_fallback(room_id, reply_to, body))
        if thread_root:
            content["m.relates_to"] = {
                "rel_type": "m.thread", "event_id": thread_root,
                "is_falling_back": reply_to is None,
                "m.in_reply_to": {"event_id": reply_to or thread_root}}
        elif reply_to:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        if extra_content:
            content.update(extra_content)
        return self.send_event(room_id, "m.room.message", content, txn_id)

    def reply_fallback(self, room_id, event_id, body):
        """The body and formatted_body of a reply to event_id that quotes it."""
        event = self.request("GET", f"/rooms/{quote(room_id)}/event/{quote(event_id)}")
        sender = event["sender"]
        quoted = event.get("content", {}).get("body", "")
        lines = quoted.split("\n")
        plain = f"> <{sender}> {lines[0]}\n" + "".join(f"> {line}\n" for line in lines[1:])
        quoted_html = event.get("content", {}).get("formatted_body") or \
            html.escape(quoted).replace("\n", "<br>")
        head = (f'<mx-reply><blockquote><a href="https://matrix.to/#/{room_id}/{event_id}">'
                f'In reply to</a> <a href="https://matrix.to/#/{sender}">{sender}</a><br>'
                f'{quoted_html}</blockquote></mx-reply>')
        return {"body": plain + "\n" + body, "format": "org.matrix.custom.html",
                "formatted_body": head + html.escape(body)}

    def edit(self, room_id, event_id, new_body, txn_id=None):
        """Edit one's own message (an m.replace relation); returns the edit's id."""
        content = {"msgtype": "m.text", "body": "* " + new_body,
                   "m.new_content": {"msgtype": "m.text", "body": new_body},
                   "m.relates_to": {"rel_type": "m.replace", "event_id": event_id}}
        return self.send_event(room_id, "m.room.message", content, txn_id)

    def put_state(self, room_id, event_type, content, state_key=""):
        """PUT /rooms/{roomId}/state/{eventType}/{stateKey}; returns the event id."""
        path = f"/rooms/{quote(room_id)}/state/{quote(event_type)}/{quote(state_key)}"
        return self.request("PUT", path, content)["event_id"]

    def get_state(self, room_id, event_type, state_key=""):
        """GET /rooms/{roomId}/state/{eventType}/{stateKey}; returns the content."""
        path = f"/rooms/{quote(room_id)}/state/{quote(event_type)}/{quote(state_key)}"
        return self.request("GET", path)

    def room_state(self, room_id):
        """GET /rooms/{roomId}/state; returns every state event."""
        return self.request("GET", f"/rooms/{quote(room_id)}/state")

    def get_power_levels(self, room_id):
        """Return the room's m.room.power_levels content."""
        return self.get_state(room_id, "m.room.power_levels")

    def set_power_levels(self, room_id, users=None, **fields):
        """Merge users and top-level fields into the power levels; returns the event id."""
        content = self.get_power_levels(room_id)
        if users:
            content.setdefault("users", {}).update(users)
        content.update(fields)
        return self.put_state(room_id, "m.room.power_levels", content)

    def set_power_level(self, room_id, user_id, level):
        """Give one user a power level."""
        return self.set_power_levels(room_id, users={user_id: level})

    def redact(self, room_id, event_id, reason=None, txn_id=None):
        """PUT /rooms/{roomId}/redact/{eventId}/{txnId}; returns the redaction id."""
        txn_id = txn_id or self.new_txn_id()
        body = {"reason": reason} if reason else {}
        path = f"/rooms/{quote(room_id)}/redact/{quote(event_id)}/{quote(txn_id)}"
        return self.request("PUT", path, body)["event_id"]

    def messages(self, room_id, direction="b", from_token=None, to_token=None, limit=None,
                 event_filter=None):
        """GET /rooms/{roomId}/messages; returns {start, end?, chunk}."""
        query = {"dir": direction, "from": from_token, "to": to_token, "limit": limit}
        if event_filter is not None:
            query["filter"] = json.dumps(event_filter)
        return self.request("GET", f"/rooms/{quote(room_id)}/messages", query=query)

    # ------------------------------------------------------------ sync

    def sync(self, since=None, timeout_ms=0, sync_filter=None, full_state=False,
             set_presence=None, update=True, *, timeout=None, filter=None):
        """GET /sync.  With update=True (default) `since` defaults to the
        stored next_batch, the new next_batch is stored and the events are
        appended to self.received (each with its room_id).

        timeout_ms (alias: timeout, in milliseconds as in the API) is the
        long-poll time; sync_filter (alias: filter) is a filter id, a JSON
        string or a dict."""
        if timeout is not None:
            timeout_ms = timeout
        if filter is not None:
            sync_filter = filter
        if since is None and update:
            since = self.next_batch
        if isinstance(sync_filter, dict):
            sync_filter = json.dumps(sync_filter)
        query = {"since": since, "timeout": int(timeout_ms), "filter": sync_filter,
                 "full_state": "true" if full_state else None, "set_presence": set_presence}
        reply = self.request("GET", "/sync", query=query,
                             timeout=self.timeout + timeout_ms / 1000.0)
        if update:
            self.next_batch = reply["next_batch"]
            self.received.extend(sync_events(reply))
        return reply

    def mark(self):
        """Sync now and ignore everything received so far in wait_for()."""
        self.sync(timeout_ms=0)
        self.cursor = len(self.received)

    def _sync_step(self, deadline, sync_filter, retry_errors):
        """One long-poll bounded by the deadline; with retry_errors, network
        errors and 5xx/429 replies are swallowed after a short bounded pause."""
        remaining = deadline - time.monotonic()
        try:
            self.sync(timeout_ms=int(max(0.0, min(remaining, 30.0)) * 1000),
                      sync_filter=sync_filter)
        except MatrixError as err:
            if not retry_errors or not (err.status >= 500 or err.status == 429):
                raise
            time.sleep(max(0.0, min(0.25, deadline - time.monotonic())))
        except (OSError, ValueError, http.client.HTTPException):
            if not retry_errors:
                raise
            time.sleep(max(0.0, min(0.25, deadline - time.monotonic())))

    def wait_for(self, predicate, timeout_s=10.0, sync_filter=None, retry_errors=False):
        """Sync until an event satisfying predicate(event) arrives; return it.

        Events are looked at once each, in order: those received before the
        last mark() or matched by an earlier wait_for() are skipped.  When no
        sync position is stored yet, the initial sync's events count too.
        retry_errors=True keeps going through outages and injected faults.
        Raises TimeoutError after timeout_s seconds."""
        deadline = time.monotonic() + timeout_s
        if self.next_batch is None:
            self._sync_step(deadline, sync_filter, retry_errors)
        while True:
            while self.cursor < len(self.received):
                event = self.received[self.cursor]
                self.cursor += 1
                if predicate(event):
                    return event
            if deadline - time.monotonic() <= 0:
                raise TimeoutError(f"no matching event within {timeout_s} s")
            self._sync_step(deadline, sync_filter, retry_errors)

    def collect(self, duration_s, predicate=None, sync_filter=None, retry_errors=False):
        """Sync for duration_s seconds; return the new events matching predicate."""
        deadline = time.monotonic() + duration_s
        if self.next_batch is None:
            self.mark()
        found = []
        while True:
            while self.cursor < len(self.received):
                event = self.received[self.cursor]
                self.cursor += 1
                if predicate is None or predicate(event):
                    found.append(event)
            if deadline - time.monotonic() <= 0:
                return found
            self._sync_step(deadline, sync_filter, retry_errors)

    def wait_for_invite(self, timeout_s=10.0):
        """Wait for an invite to this user; return the room id."""
        event = self.wait_for(lambda e: e.get("type") == "m.room.member"
                              and e.get("state_key") == self.user_id
                              and e.get("content", {}).get("membership") == "invite",
                              timeout_s)
        return event["room_id"]

    def wait_for_message(self, room_id=None, sender=None, not_sender=None, timeout_s=10.0,
                         msgtype=None):
        """Wait for an m.room.message (optionally from/not from someone, in a room)."""
        def match(event):
            """Predicate for the requested message."""
            return (event.get("type") == "m.room.message"
                    and (room_id is None or event.get("room_id") == room_id)
                    and (sender is None or event.get("sender") == sender)
                    and (not_sender is None or event.get("sender") != not_sender)
                    and (msgtype is None or event.get("content", {}).get("msgtype") == msgtype))
        return self.wait_for(match, timeout_s)


def sync_events(reply):
    """Flatten a /sync reply into events with room_id (timeline, then invites)."""
    out = []
    rooms = reply.get("rooms") or {}
    for section in ("join", "leave"):
        for room_id, room in (rooms.get(section) or {}).items():
            for event in (room.get("timeline") or {}).get("events", []):
                out.append(dict(event, room_id=room_id))
    for room_id, room in (rooms.get("invite") or {}).items():
        for event in (room.get("invite_state") or {}).get("events", []):
            if event.get("type") == "m.room.member":
                out.append(dict(event, room_id=room_id))
    return out


class Control:
    """The test homeserver's /_test/ control API."""

    def __init__(self, base_url, timeout=30.0):
        """Create a controller for the server at base_url."""
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method, path, body=None, query=None):
        """Do one control request."""
        return http_request(self.base_url, method, path, body, query, None, self.timeout)

    def add_fault(self, match, kind, method=None, count=1, **options):
        """Inject a fault; returns its id.

        options: user (only requests authenticated as this user id),
        retry_after_ms (429), delay_ms (slow), size (huge), phase
        ("before" = instead of handling the request, "after" = handle it,
        then fail the reply)."""
        spec = {"match": match, "kind": kind, "count": count}
        if method:
            spec["method"] = method
        spec.update(options)
        return self._call("POST", "/_test/faults", spec)["id"]

    def faults(self):
        """List the faults with their hit counts."""
        return self._call("GET", "/_test/faults")["faults"]

    def clear_faults(self, fault_id=None):
        """Remove every fault (or one)."""
        self._call("DELETE", "/_test/faults", query={"id": fault_id})

    def down(self, seconds):
        """Drop every client request for that many seconds."""
        return self._call("POST", "/_test/down", {"seconds": seconds})

    def requests(self, since=0, match=None, method=None):
        """Return (entries, last_seq) of the request log after seq `since`."""
        reply = self._call("GET", "/_test/requests",
                           query={"since": since, "match": match, "method": method})
        return reply["requests"], reply["last_seq"]

    def last_seq(self):
        """Return the sequence number of the newest logged request."""
        return self.requests(since=1 << 62)[1]

    def events(self, room):
        """Every event of a room (id or alias), unfiltered, in order."""
        return self._call("GET", "/_test/events", query={"room": room})["events"]

    def reset(self):
        """Clear faults, the request log and any outage."""
        self._call("POST", "/_test/reset", {})

    def register(self, user, password, displayname=None):
        """Create a user at run time; returns the user id."""
        body = {"user": user, "password": password}
        if displayname is not None:
            body["displayname"] = displayname
        return self._call("POST", "/_test/register", body)["user_id"]

    def health(self):
        """GET /_test/health."""
        return self._call("GET", "/_test/health")

    def ratelimit(self, per_second=0.2, burst_count=10, users=None):
        """Turn on Synapse's rc_message limit (its defaults unless given),
        for everyone or only for users; per_second=None turns it off."""
        body = {"per_second": per_second, "burst_count": burst_count}
        if users is not None:
            body["users"] = list(users)
        return self._call("POST", "/_test/ratelimit", body)

    def ratelimit_state(self):
        """The limit's settings, overrides and how many 429s it gave."""
        return self._call("GET", "/_test/ratelimit")

    def set_admin(self, user, admin=True):
        """Make a user a server admin (for the /_synapse/admin API)."""
        return self._call("POST", "/_test/admin", {"user": user, "admin": admin})


class HomeserverProcess:
    """Run homeserver.py as a subprocess on 127.0.0.1 (port 0 = any free port)."""

    def __init__(self, users, state_path=None, server_name="localhost", port=0,
                 python=None, stderr=None, verbose=False):
        """users: {"@faqbot:localhost": "botpass", ...}; state_path enables persistence."""
        self.users = dict(users)
        self.state_path = state_path
        self.server_name = server_name
        self.port = port
        self.python = python or sys.executable
        self.stderr = stderr
        self.verbose = verbose
        self.proc = None
        self._tmpdir = tempfile.mkdtemp(prefix="hsproc-")

    @property
    def url(self):
        """Base URL of the running server."""
        return f"http://127.0.0.1:{self.port}"

    def control(self):
        """A Control for this server."""
        return Control(self.url)

    def client(self):
        """A fresh (not logged in) Client for this server."""
        return Client(self.url)

    def start(self, timeout_s=15.0):
        """Start the server (on the previous port after a stop/kill); wait until it answers."""
        port_file = os.path.join(self._tmpdir, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        cmd = [self.python, HOMESERVER_PY, "--port", str(self.port), "--port-file", port_file,
               "--server-name", self.server_name]
        if self.state_path:
            cmd += ["--state", self.state_path]
        for user, password in self.users.items():
            cmd += ["--user", f"{user}={password}"]
        if self.verbose:
            cmd.append("--verbose")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"homeserver exited with {self.proc.returncode}")
            try:
                with open(port_file, encoding="utf-8") as fh:
                    text = fh.read().strip()
                if text:
                    self.port = int(text)
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        else:
            self.kill()
            raise RuntimeError("homeserver did not start in time")
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    return self
            except OSError:
                time.sleep(0.02)
        self.kill()
        raise RuntimeError("homeserver is not accepting connections")

    def stop(self, timeout_s=10.0):
        """SIGTERM the server and wait for it; returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        code = self.proc.returncode
        self.proc = None
        return code

    def kill(self):
        """SIGKILL the server (no chance to clean up) and reap it."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def restart(self, downtime_s=0.0):
        """Kill the server, wait downtime_s, start it again on the same port."""
        self.kill()
        if downtime_s > 0:
            time.sleep(downtime_s)
        return self.start()

    def __enter__(self):
        """Start on entering a with-block."""
        return self.start()

    def __exit__(self, *exc):
        """Stop on leaving a with-block."""
        self.stop()


class BackgroundSync(threading.Thread):
    """A thread that long-polls /sync for a Client and calls on_event(event)."""

    def __init__(self, client, on_event, timeout_ms=30000, on_error=None):
        """on_event gets each new event (with room_id); on_error each exception."""
        super().__init__(daemon=True, name="sync")
        self.client = client
        self.on_event = on_event
        self.on_error = on_error
        self.timeout_ms = timeout_ms
        self.stopped = threading.Event()

    def run(self):
        """Sync until stop() is called; back off (bounded) after errors."""
        backoff = 0.5
        while not self.stopped.is_set():
            try:
                reply = self.client.sync(since=self.client.next_batch, timeout_ms=self.timeout_ms,
                                         update=False)
            except Exception as exc:  # network trouble: report, wait, retry
                if self.on_error:
                    self.on_error(exc)
                self.stopped.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.5
            first = self.client.next_batch is None
            self.client.next_batch = reply["next_batch"]
            if first:
                continue  # the initial sync only sets the position
            for event in sync_events(reply):
                self.on_event(event)

    def stop(self):
        """Ask the thread to end (it finishes its current long-poll first)."""
        self.stopped.set()
