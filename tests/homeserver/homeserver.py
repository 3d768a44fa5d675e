#!/usr/bin/env python3
"""A small Matrix homeserver for faqbot's integration tests.

It implements the part of the Matrix client-server API (v1.11, with the same
handlers under /_matrix/client/r0 as well as /_matrix/client/v3) that a bot
uses: password login, filters, long-polling /sync, rooms, membership, sending
with transaction-id de-duplication, state, redactions, /messages and
display names.  On top of that it offers a test control API under /_test/
that injects faults (429, 500, 502, slow, drop, malformed, huge, wrong_type,
unknown_token), simulates downtime and exposes a request log.

Standard library only.  It binds 127.0.0.1 only.  See README.md for usage.
"""

import argparse
import copy
import json
import math
import os
import re
import secrets
import signal
import socket
import string
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

MAX_BODY = 1 << 20  # request body cap (1 MiB)
MAX_DRAIN = 64 << 20  # oversized bodies up to this size are read and discarded
MAX_EVENT = 65536  # the spec's event size limit
DEFAULT_TIMELINE_LIMIT = 10
MAX_SYNC_TIMEOUT_MS = 300_000  # every long-poll is bounded
MAX_MESSAGES_LIMIT = 1000
IDLE_CONNECTION_TIMEOUT = 120  # seconds a keep-alive connection may idle
ROOM_VERSION = "11"

SUPPORTED_VERSIONS = [
    "r0.0.1", "r0.1.0", "r0.2.0", "r0.3.0", "r0.4.0", "r0.5.0", "r0.6.0",
    "r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8",
    "v1.9", "v1.10", "v1.11",
]

FAULT_KINDS = ("429", "500", "502", "slow", "drop", "malformed", "huge",
               "wrong_type", "unknown_token")

# State event types copied (stripped) into an invite's invite_state.
INVITE_STATE_TYPES = (
    "m.room.create", "m.room.name", "m.room.avatar", "m.room.topic",
    "m.room.join_rules", "m.room.canonical_alias", "m.room.encryption",
)

# Content keys kept by the redaction algorithm (room version 11).
# None means "keep the whole content".
REDACTION_KEEP = {
    "m.room.member": ("membership", "join_authorised_via_users_server"),
    "m.room.create": None,
    "m.room.join_rules": ("join_rule", "allow"),
    "m.room.power_levels": ("ban", "events", "events_default", "invite",
                            "kick", "redact", "state_default", "users",
                            "users_default"),
    "m.room.history_visibility": ("history_visibility",),
    "m.room.redaction": ("redacts",),
}

PREFIX_RE = re.compile(r"^/_matrix/client/(?:v3|r0)(/.*)$")
ADMIN_RATELIMIT_RE = re.compile(r"^/_synapse/admin/v1/users/([^/]+)/override_ratelimit$")


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

class ApiError(Exception):
    """A Matrix error reply: HTTP status plus {"errcode", "error", ...}."""

    def __init__(self, status, errcode, error, **extra):
        """Remember the status, errcode, message and any extra body fields."""
        super().__init__(f"{status} {errcode}: {error}")
        self.status = status
        self.body = {"errcode": errcode, "error": error}
        self.body.update(extra)


class DropConnection(Exception):
    """Raised to close the client connection without sending any reply."""


def now_ms():
    """Return the current wall-clock time in milliseconds since the epoch."""
    return int(time.time() * 1000)


def random_string(length, alphabet=string.ascii_letters + string.digits):
    """Return a random string of the given length from the alphabet."""
    return "".join(secrets.choice(alphabet) for _ in range(length))


def wildcard_match(pattern, value):
    """Match a filter pattern where '*' matches any sequence of characters."""
    if "*" not in pattern:
        return pattern == value
    rx = "^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$"
    return re.match(rx, value, re.S) is not None


def parse_stream_token(token):
    """Turn an 'sN' stream token into N; raise 400 M_INVALID_PARAM if bad."""
    if isinstance(token, str) and re.fullmatch(r"s\d{1,18}", token):
        return int(token[1:])
    raise ApiError(400, "M_INVALID_PARAM", f"Invalid stream token: {token!r}")


def make_token(pos):
    """Return the opaque stream token for stream position pos."""
    return f"s{max(0, pos)}"


def as_int(value, default):
    """Convert a power-level value (int or numeric string) to int."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def local_user_id(name, server_name):
    """Turn 'alice' or '@alice:server' into a full user id."""
    if name.startswith("@"):
        return name
    return f"@{name}:{server_name}"


def redact_content(event_type, content):
    """Return the content that survives redaction for this event type."""
    keep = REDACTION_KEEP.get(event_type, ())
    if keep is None:
        return copy.deepcopy(content)
    out = {k: copy.deepcopy(content[k]) for k in keep if k in content}
    if event_type == "m.room.member":
        signed = (content.get("third_party_invite") or {}).get("signed")
        if isinstance(signed, dict):
            out["third_party_invite"] = {"signed": copy.deepcopy(signed)}
    return out


# --------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------

def _check_str_list(obj, key, where):
    """Raise 400 M_BAD_JSON unless obj[key] is absent or a list of strings."""
    value = obj.get(key)
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(400, "M_BAD_JSON", f"{where}.{key} must be a list of strings")


def validate_filter(definition):
    """Check the shape of a filter definition; raise 400 M_BAD_JSON if wrong."""
    if not isinstance(definition, dict):
        raise ApiError(400, "M_BAD_JSON", "Filter must be a JSON object")

    def check_event_filter(obj, where):
        """Check one EventFilter / RoomEventFilter object."""
        if obj is None:
            return
        if not isinstance(obj, dict):
            raise ApiError(400, "M_BAD_JSON", f"{where} must be an object")
        for key in ("types", "not_types", "senders", "not_senders", "rooms",
                    "not_rooms"):
            _check_str_list(obj, key, where)
        limit = obj.get("limit")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise ApiError(400, "M_BAD_JSON", f"{where}.limit must be a non-negative integer")

    check_event_filter(definition.get("presence"), "presence")
    check_event_filter(definition.get("account_data"), "account_data")
    room = definition.get("room")
    if room is not None:
        if not isinstance(room, dict):
            raise ApiError(400, "M_BAD_JSON", "room must be an object")
        _check_str_list(room, "rooms", "room")
        _check_str_list(room, "not_rooms", "room")
        for key in ("timeline", "state", "ephemeral", "account_data"):
            check_event_filter(room.get(key), f"room.{key}")
    fields = definition.get("event_fields")
    if fields is not None:
        _check_str_list(definition, "event_fields", "filter")


class EventFilter:
    """An EventFilter / RoomEventFilter: types, senders, rooms, limit."""

    def __init__(self, definition=None):
        """Build the filter from its JSON definition (None = match all)."""
        d = definition or {}
        self.types = d.get("types")
        self.not_types = d.get("not_types") or []
        self.senders = d.get("senders")
        self.not_senders = d.get("not_senders") or []
        self.rooms = d.get("rooms")
        self.not_rooms = d.get("not_rooms") or []
        self.limit = d.get("limit")
        self.contains_url = d.get("contains_url")

    def room_allowed(self, room_id):
        """Return True if events of this room may pass the filter."""
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms

    def matches(self, event, room_id=None):
        """Return True if the event passes every clause of the filter."""
        if room_id is not None and not self.room_allowed(room_id):
            return False
        etype = event.get("type", "")
        if any(wildcard_match(p, etype) for p in self.not_types):
            return False
        if self.types is not None and not any(wildcard_match(p, etype) for p in self.types):
            return False
        sender = event.get("sender")
        if sender is not None:
            if sender in self.not_senders:
                return False
            if self.senders is not None and sender not in self.senders:
                return False
        if self.contains_url is not None:
            has_url = isinstance(event.get("content"), dict) and "url" in event["content"]
            if has_url != bool(self.contains_url):
                return False
        return True


class SyncFilter:
    """A whole /sync filter: presence, account_data and the room section."""

    def __init__(self, definition=None):
        """Build the parts of the filter from its JSON definition."""
        d = definition or {}
        room = d.get("room") or {}
        self.presence = EventFilter(d.get("presence"))
        self.account_data = EventFilter(d.get("account_data"))
        self.rooms = room.get("rooms")
        self.not_rooms = room.get("not_rooms") or []
        self.include_leave = bool(room.get("include_leave", False))
        self.timeline = EventFilter(room.get("timeline"))
        self.state = EventFilter(room.get("state"))
        state = room.get("state") or {}
        self.lazy_load_members = bool(state.get("lazy_load_members", False))
        self.ephemeral = EventFilter(room.get("ephemeral"))
        self.room_account_data = EventFilter(room.get("account_data"))
        limit = self.timeline.limit
        self.timeline_limit = DEFAULT_TIMELINE_LIMIT if limit is None else limit

    def room_allowed(self, room_id):
        """Return True if the room section lets this room through."""
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms


# --------------------------------------------------------------------------
# Test control: faults and the request log (not persisted)
# --------------------------------------------------------------------------

class Fault:
    """One injected fault: which requests it hits, what it does, how often."""

    def __init__(self, fault_id, spec):
        """Validate a fault specification from POST /_test/faults."""
        if not isinstance(spec, dict):
            raise ApiError(400, "M_BAD_JSON", "fault must be an object")
        self.id = fault_id
        self.match = spec.get("match", "")
        if not isinstance(self.match, str):
            raise ApiError(400, "M_BAD_JSON", "match must be a string")
        try:
            self.regex = re.compile(self.match)
        except re.error as exc:
            raise ApiError(400, "M_BAD_JSON", f"bad regex: {exc}") from exc
        self.user = spec.get("user")
        if self.user is not None and not isinstance(self.user, str):
            raise ApiError(400, "M_BAD_JSON", "user must be a user id")
        self.method = spec.get("method")
        if self.method is not None:
            if not isinstance(self.method, str):
                raise ApiError(400, "M_BAD_JSON", "method must be a string")
            self.method = self.method.upper()
        self.kind = str(spec.get("kind", ""))
        if self.kind not in FAULT_KINDS:
            raise ApiError(400, "M_BAD_JSON", f"kind must be one of {', '.join(FAULT_KINDS)}")
        self.count = spec.get("count", 1)
        if not isinstance(self.count, int) or isinstance(self.count, bool) or self.count == 0:
            raise ApiError(400, "M_BAD_JSON", "count must be a non-zero integer (-1 = unlimited)")
        self.phase = spec.get("phase", "before")
        if self.phase not in ("before", "after"):
            raise ApiError(400, "M_BAD_JSON", "phase must be 'before' or 'after'")
        self.retry_after_ms = self._number(spec, "retry_after_ms", 1000)
        self.delay_ms = self._number(spec, "delay_ms", 5000)
        self.size = self._number(spec, "size", 50 * 1024 * 1024)
        self.hits = 0

    @staticmethod
    def _number(spec, key, default):
        """Read a non-negative integer field of the spec."""
        value = spec.get(key, default)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ApiError(400, "M_BAD_JSON", f"{key} must be a non-negative number")
        return int(value)

    def applies(self, method, path, user):
        """Return True if this fault still has hits left and matches."""
        if self.count > 0 and self.hits >= self.count:
            return False
        if self.method is not None and self.method != method:
            return False
        if self.user is not None and self.user != user:
            return False
        return self.regex.search(path) is not None

    def describe(self):
        """Return the fault as JSON for GET /_test/faults."""
        remaining = None if self.count < 0 else self.count - self.hits
        return {"id": self.id, "match": self.match, "method": self.method, "user": self.user,
                "kind": self.kind, "count": self.count, "hits": self.hits,
                "remaining": remaining, "phase": self.phase,
                "retry_after_ms": self.retry_after_ms,
                "delay_ms": self.delay_ms, "size": self.size}


class FaultBook:
    """The ordered list of injected faults, consumed by matching requests."""

    def __init__(self):
        """Start with no faults."""
        self.lock = threading.Lock()
        self.faults = []
        self.next_id = 1

    def add(self, spec):
        """Add a fault from its JSON spec; return its id."""
        with self.lock:
            fault = Fault(self.next_id, spec)
            self.next_id += 1
            self.faults.append(fault)
            return fault.id

    def take(self, method, path, user=None):
        """Consume one hit of the first matching fault, or return None."""
        with self.lock:
            for fault in self.faults:
                if fault.applies(method, path, user):
                    fault.hits += 1
                    return fault
            return None

    def clear(self, fault_id=None):
        """Remove every fault, or just the one with this id."""
        with self.lock:
            if fault_id is None:
                self.faults = []
            else:
                self.faults = [f for f in self.faults if f.id != fault_id]

    def describe(self):
        """Return every fault (spent ones too) as JSON."""
        with self.lock:
            return [f.describe() for f in self.faults]


class RequestLog:
    """A log of the client API requests received, for tests to inspect."""

    MAX_ENTRIES = 200_000

    def __init__(self):
        """Start with an empty log."""
        self.lock = threading.Lock()
        self.entries = []
        self.seq = 0

    def start(self, method, path):
        """Record a request as it arrives; return its (mutable) entry."""
        with self.lock:
            self.seq += 1
            entry = {"seq": self.seq, "method": method, "path": path,
                     "user": None, "device": None, "body": None,
                     "time": time.time(), "end_time": None, "status": None,
                     "fault": None}
            self.entries.append(entry)
            if len(self.entries) > self.MAX_ENTRIES:
                del self.entries[: len(self.entries) - self.MAX_ENTRIES]
            return entry

    def update(self, entry, **fields):
        """Set fields of an entry under the lock."""
        with self.lock:
            entry.update(fields)

    def since(self, seq, match=None, method=None):
        """Return copies of the entries with seq > the given one."""
        rx = re.compile(match) if match else None
        with self.lock:
            out = []
            for entry in self.entries:
                if entry["seq"] <= seq:
                    continue
                if method and entry["method"] != method.upper():
                    continue
                if rx and not rx.search(entry["path"]):
                    continue
                out.append(copy.deepcopy(entry))
            return out, self.seq

    def clear(self):
        """Forget every entry (sequence numbers keep increasing)."""
        with self.lock:
            self.entries = []


class MessageRatelimiter:
    """Synapse's rc_message: a per-user leaky bucket on the events a client
    creates (messages, redactions, state other than membership).

    Modelled on Synapse's documented defaults (per_second 0.2, burst_count
    10) and its algorithm: a user has a count of recent actions that drains
    at per_second; an action is refused while the drained count is above
    burst_count - 1, and a refused action does not count. The refusal is
    429 M_LIMIT_EXCEEDED with retry_after_ms, the time until the next
    action is allowed. Off until a test turns it on (/_test/ratelimit);
    POST /_synapse/admin/v1/users/{userId}/override_ratelimit sets a user's
    own limits (0 and 0: not limited), as Synapse's admin API does.
    """

    def __init__(self):
        """Start switched off, with no overrides."""
        self.lock = threading.Lock()
        self.per_second = None  # None: off
        self.burst_count = 0
        self.users = None  # None: everyone; else only these user ids
        self.overrides = {}  # user id -> (per_second, burst_count)
        self.counts = {}  # user id -> (count, time_start)
        self.refused = 0  # 429s given

    def configure(self, spec):
        """Turn on ({"per_second", "burst_count", "users"}) or off ({})."""
        if not isinstance(spec, dict):
            raise ApiError(400, "M_BAD_JSON", "body must be an object")
        per_second = spec.get("per_second")
        burst = spec.get("burst_count", 10)
        users = spec.get("users")
        if per_second is not None and (not isinstance(per_second, (int, float))
                                       or isinstance(per_second, bool) or per_second < 0):
            raise ApiError(400, "M_BAD_JSON", "per_second must be a non-negative number")
        if not isinstance(burst, int) or isinstance(burst, bool) or burst < 0:
            raise ApiError(400, "M_BAD_JSON", "burst_count must be a non-negative integer")
        if users is not None and (not isinstance(users, list)
                                  or not all(isinstance(u, str) for u in users)):
            raise ApiError(400, "M_BAD_JSON", "users must be a list of user ids")
        with self.lock:
            self.per_second = float(per_second) if per_second else None
            self.burst_count = burst
            self.users = set(users) if users is not None else None
            self.counts = {}
            self.refused = 0
        return self.describe()

    def describe(self):
        """The settings and the number of refusals so far."""
        with self.lock:
            return {"per_second": self.per_second, "burst_count": self.burst_count,
                    "users": sorted(self.users) if self.users is not None else None,
                    "overrides": {u: {"messages_per_second": v[0], "burst_count": v[1]}
                                  for u, v in sorted(self.overrides.items())},
                    "refused": self.refused}

    def set_override(self, user_id, per_second, burst):
        """The admin API's override for one user (None: remove it)."""
        with self.lock:
            if per_second is None:
                self.overrides.pop(user_id, None)
            else:
                self.overrides[user_id] = (per_second, burst)
                self.counts.pop(user_id, None)

    def get_override(self, user_id):
        """(per_second, burst_count) of a user's override, or None."""
        with self.lock:
            return self.overrides.get(user_id)

    def check(self, user_id):
        """Count one action of user_id, or raise 429 M_LIMIT_EXCEEDED."""
        with self.lock:
            if self.per_second is None:
                return
            if self.users is not None and user_id not in self.users:
                return
            rate, burst = self.overrides.get(user_id, (self.per_second, self.burst_count))
            if not rate:
                return  # an override of 0 turns the limit off for this user
            now = time.monotonic()
            count, start = self.counts.get(user_id, (0.0, now))
            drained = count - (now - start) * rate
            if drained < 0:
                count, start = 1.0, now
            elif drained > burst - 1:
                allowed_at = start + (count - burst + 1) / rate
                self.refused += 1
                wait_ms = max(0, int(1000 * (allowed_at - now)))
                raise ApiError(429, "M_LIMIT_EXCEEDED", "Too Many Requests",
                               retry_after_ms=wait_ms)
            else:
                count += 1
            self.counts[user_id] = (count, start)


# --------------------------------------------------------------------------
# The homeserver state and the client-server API
# --------------------------------------------------------------------------

class Request:
    """One parsed client API request handed to an endpoint function."""

    def __init__(self, method, raw_path, sub_path, query, params, body, token):
        """Keep the request parts; user/device are filled in by auth."""
        self.method = method
        self.raw_path = raw_path
        self.sub_path = sub_path
        self.query = query
        self.params = params
        self.body = body
        self.token = token
        self.user = None
        self.device = None

    def arg(self, name, default=None):
        """Return the first value of a query parameter, or the default."""
        values = self.query.get(name)
        return values[0] if values else default


class Reply:
    """An HTTP reply: status, JSON object (or raw bytes) and extra headers."""

    def __init__(self, status, obj=None, raw=None, content_type="application/json",
                 headers=None):
        """Build a reply from a JSON-able object or raw bytes."""
        self.status = status
        self.obj = obj
        self.raw = raw
        self.content_type = content_type
        self.headers = headers or []

    def payload(self):
        """Return the body as bytes."""
        if self.raw is not None:
            return self.raw
        return json.dumps(self.obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class HomeServer:
    """All server state (behind one lock) and the client-server API logic."""

    def __init__(self, server_name, state_path=None, verbose=False):
        """Create an empty server; call load() to read a saved state."""
        self.server_name = server_name
        self.state_path = state_path
        self.verbose = verbose
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.stopping = threading.Event()
        self.faults = FaultBook()
        self.reqlog = RequestLog()
        self.ratelimiter = MessageRatelimiter()
        # Lazy-loaded members already sent: (user, device) -> {room: {member}}.
        # In memory only, as Synapse's cache is: a restart sends them again.
        self.ll_sent = {}
        self.down_until = 0.0
        # Persistent state.
        self.pos = 0
        self.users = {}  # user_id -> {"password", "displayname"}
        self.devices = {}  # user_id -> {device_id: {"display_name"}}
        self.tokens = {}  # token -> {"user_id", "device_id"}
        self.events = []  # every event, in stream order
        self.aliases = {}  # "#alias:server" -> room_id
        self.txns = {}  # (user, device, endpoint path) -> event_id
        self.filters = {}  # user_id -> [filter definitions]
        self.account_data = {}  # user -> {"global": {type: {...}}, "rooms": {room: {type: {...}}}}
        # Derived from events.
        self.rooms = {}  # room_id -> {"events": [...], "state": {(type, sk): event}}
        self.event_by_id = {}
        self.user_rooms = {}  # user_id -> set of room ids with a membership event

    # ---------------------------------------------------------------- state

    def load(self):
        """Load the saved state file, if there is one."""
        if not self.state_path or not os.path.exists(self.state_path):
            return
        with open(self.state_path, encoding="utf-8") as fh:
            data = json.load(fh)
        with self.lock:
            self.pos = data["pos"]
            self.users = data["users"]
            self.devices = data["devices"]
            self.tokens = data["tokens"]
            self.aliases = data["aliases"]
            self.filters = data["filters"]
            self.account_data = data["account_data"]
            self.txns = {tuple(k): v for k, v in data["txns"]}
            for event in data["events"]:
                self._index_event(event)

    def save(self):
        """Write the whole state atomically (temp file + rename)."""
        if not self.state_path:
            return
        with self.lock:
            data = {
                "format": 1, "server_name": self.server_name, "pos": self.pos,
                "users": self.users, "devices": self.devices,
                "tokens": self.tokens, "aliases": self.aliases,
                "filters": self.filters, "account_data": self.account_data,
                "txns": [[list(k), v] for k, v in self.txns.items()],
                "events": self.events,
            }
            text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
            tmp = f"{self.state_path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, self.state_path)

    def commit(self):
        """After a change: persist it and wake every waiting /sync."""
        with self.lock:
            self.save()
            self.cond.notify_all()

    def _index_event(self, event):
        """Add an event to the in-memory indexes (room timeline, state)."""
        room = self.rooms.setdefault(event["room_id"], {"events": [], "state": {}})
        room["events"].append(event)
        self.events.append(event)
        self.event_by_id[event["event_id"]] = event
        if "state_key" in event:
            room["state"][(event["type"], event["state_key"])] = event
            if event["type"] == "m.room.member":
                self.user_rooms.setdefault(event["state_key"], set()).add(event["room_id"])

    def add_user(self, user_id, password, displayname=None):
        """Create or update a user account."""
        if not re.fullmatch(r"@[^:\s]+:[^\s]+", user_id):
            raise ApiError(400, "M_INVALID_USERNAME", f"Invalid user id {user_id!r}")
        with self.lock:
            user = self.users.setdefault(user_id, {})
            user["password"] = password
            if displayname is not None or "displayname" not in user:
                user["displayname"] = displayname or user_id[1:].split(":", 1)[0]
            self.commit()

    # ---------------------------------------------------------------- auth

    def lookup_token(self, token):
        """Return (user_id, device_id) for a valid token, else None."""
        with self.lock:
            info = self.tokens.get(token) if token else None
            return (info["user_id"], info["device_id"]) if info else None

    def invalidate_token(self, token):
        """Forget an access token (the device stays)."""
        with self.lock:
            if token in self.tokens:
                del self.tokens[token]
                self.commit()

    def authenticate(self, req):
        """Fill req.user/req.device from the token or raise 401."""
        if not req.token:
            raise ApiError(401, "M_MISSING_TOKEN", "Missing access token")
        found = self.lookup_token(req.token)
        if not found:
            raise ApiError(401, "M_UNKNOWN_TOKEN", "Unrecognised access token",
                           soft_logout=False)
        req.user, req.device = found

    # ---------------------------------------------------------------- events

    def _new_event(self, room_id, sender, etype, content, state_key=None,
                   redacts=None, txn=None):
        """Create an event, apply it to room state and return it (locked)."""
        room = self.rooms.setdefault(room_id, {"events": [], "state": {}})
        self.pos += 1
        event = {
            "event_id": f"${random_string(24)}:{self.server_name}",
            "room_id": room_id, "sender": sender, "type": etype,
            "content": content, "origin_server_ts": now_ms(),
            "pos": self.pos, "unsigned": {},
        }
        if state_key is not None:
            event["state_key"] = state_key
            prev = room["state"].get((etype, state_key))
            if prev is not None:
                event["unsigned"]["prev_content"] = copy.deepcopy(prev["content"])
                event["unsigned"]["replaces_state"] = prev["event_id"]
                event["unsigned"]["prev_sender"] = prev["sender"]
        if redacts is not None:
            event["redacts"] = redacts
        if txn is not None:
            event["txn"] = {"user": txn[0], "device": txn[1], "txn_id": txn[2]}
        self._index_event(event)
        return event

    def client_event(self, event, user=None, device=None, with_room_id=True):
        """Render an event in the client format for this user/device."""
        out = {
            "event_id": event["event_id"], "sender": event["sender"],
            "type": event["type"], "content": event["content"],
            "origin_server_ts": event["origin_server_ts"],
        }
        if with_room_id:
            out["room_id"] = event["room_id"]
        if "state_key" in event:
            out["state_key"] = event["state_key"]
        if "redacts" in event:
            out["redacts"] = event["redacts"]
        unsigned = dict(event.get("unsigned") or {})
        unsigned["age"] = max(0, now_ms() - event["origin_server_ts"])
        txn = event.get("txn")
        if txn and user == txn["user"] and device == txn["device"]:
            unsigned["transaction_id"] = txn["txn_id"]
        out["unsigned"] = unsigned
        return copy.deepcopy(out)

    @staticmethod
    def stripped(event):
        """Render a state event in the stripped form used by invite_state."""
        return {"type": event["type"], "state_key": event["state_key"],
                "content": copy.deepcopy(event["content"]), "sender": event["sender"]}

    # ---------------------------------------------------------------- rooms

    def room(self, room_id):
        """Return the room or raise 404 M_NOT_FOUND."""
        room = self.rooms.get(room_id)
        if room is None:
            raise ApiError(404, "M_NOT_FOUND", f"Unknown room {room_id}")
        return room

    def resolve_room(self, room_or_alias):
        """Turn a room id or '#alias' into a known room id (or 404)."""
        if room_or_alias.startswith("#"):
            room_id = self.aliases.get(room_or_alias)
            if room_id is None:
                raise ApiError(404, "M_NOT_FOUND", f"Room alias {room_or_alias} not found")
            return room_id
        if not room_or_alias.startswith("!"):
            raise ApiError(400, "M_INVALID_PARAM", f"Not a room id or alias: {room_or_alias}")
        self.room(room_or_alias)
        return room_or_alias

    @staticmethod
    def state_event(room, etype, state_key=""):
        """Return the current state event of that type/key, or None."""
        return room["state"].get((etype, state_key))

    def membership(self, room, user_id):
        """Return the user's current membership in the room (or None)."""
        event = self.state_event(room, "m.room.member", user_id)
        return event["content"].get("membership") if event else None

    @staticmethod
    def state_at(room, before_pos):
        """Return the room state (key -> event) just before stream position before_pos."""
        state = {}
        for event in room["events"]:
            if event["pos"] >= before_pos:
                break
            if "state_key" in event:
                state[(event["type"], event["state_key"])] = event
        return state

    def displayname(self, user_id):
        """Return the user's display name (None for unknown users)."""
        user = self.users.get(user_id)
        return user.get("displayname") if user else None

    def member_content(self, membership, user_id, **extra):
        """Build the content of an m.room.member event."""
        content = {"membership": membership}
        if membership in ("join", "invite"):
            name = self.displayname(user_id)
            if name is not None:
                content["displayname"] = name
        content.update({k: v for k, v in extra.items() if v is not None})
        return content

    def creator(self, room):
        """Return the sender of the room's m.room.create event."""
        create = self.state_event(room, "m.room.create")
        return create["sender"] if create else None

    def power_level(self, room, user_id):
        """Return the user's power level in the room."""
        pl = self.state_event(room, "m.room.power_levels")
        if pl is None:
            return 100 if user_id == self.creator(room) else 0
        content = pl["content"]
        users = content.get("users") if isinstance(content.get("users"), dict) else {}
        if user_id in users:
            return as_int(users[user_id], 0)
        return as_int(content.get("users_default", 0), 0)

    def required_level(self, room, etype, is_state):
        """Return the power level needed to send an event of this type."""
        pl = self.state_event(room, "m.room.power_levels")
        if pl is None:
            return 0
        content = pl["content"]
        events = content.get("events") if isinstance(content.get("events"), dict) else {}
        if etype in events:
            return as_int(events[etype], 0)
        if is_state:
            return as_int(content.get("state_default", 50), 50)
        return as_int(content.get("events_default", 0), 0)

    def action_level(self, room, action):
        """Return the level needed for invite/kick/ban/redact."""
        defaults = {"invite": 0, "kick": 50, "ban": 50, "redact": 50}
        pl = self.state_event(room, "m.room.power_levels")
        if pl is None:
            return 0
        return as_int(pl["content"].get(action, defaults[action]), defaults[action])

    def require_joined(self, room, user_id):
        """Raise 403 unless the user is joined to the room."""
        if self.membership(room, user_id) != "join":
            raise ApiError(403, "M_FORBIDDEN", f"User {user_id} not in room")

    def check_power_levels_change(self, room, sender, new):
        """Apply the spec's authorization rules for an m.room.power_levels change."""
        for key in ("users_default", "events_default", "state_default", "ban",
                    "redact", "kick", "invite"):
            if key in new and not isinstance(new[key], int):
                raise ApiError(400, "M_BAD_JSON", f"{key} must be an integer")
        for key in ("users", "events"):
            if key in new and (not isinstance(new[key], dict) or not all(
                    isinstance(v, int) and not isinstance(v, bool) for v in new[key].values())):
                raise ApiError(400, "M_BAD_JSON", f"{key} must map to integers")
        old_event = self.state_event(room, "m.room.power_levels")
        if old_event is None:
            return
        old = old_event["content"]
        mine = self.power_level(room, sender)
        defaults = {"users_default": 0, "events_default": 0, "state_default": 50,
                    "ban": 50, "redact": 50, "kick": 50, "invite": 0}
        for key, default in defaults.items():
            before = as_int(old.get(key, default), default)
            after = as_int(new.get(key, default), default)
            if before != after and (before > mine or after > mine):
                raise ApiError(403, "M_FORBIDDEN", f"Cannot change {key} beyond your own power level")
        old_events = old.get("events") or {}
        new_events = new.get("events") or {}
        for etype in set(old_events) | set(new_events):
            before, after = old_events.get(etype), new_events.get(etype)
            if before == after:
                continue
            if (before is not None and as_int(before, 0) > mine) or (
                    after is not None and after > mine):
                raise ApiError(403, "M_FORBIDDEN", f"Cannot change the level of {etype}")
        old_users = old.get("users") or {}
        new_users = new.get("users") or {}
        for user_id in set(old_users) | set(new_users):
            before, after = old_users.get(user_id), new_users.get(user_id)
            if before == after:
                continue
            if after is not None and after > mine:
                raise ApiError(403, "M_FORBIDDEN", "Cannot give a higher level than your own")
            if before is not None and user_id != sender and as_int(before, 0) >= mine:
                raise ApiError(403, "M_FORBIDDEN", f"Cannot change the level of {user_id}")

    # ------------------------------------------------------- login / account

    def api_login_flows(self, req):
        """GET /login: the supported login flows."""
        return {"flows": [{"type": "m.login.password"}]}

    def api_login(self, req):
        """POST /login: password login; returns an access token."""
        body = req.body
        if body.get("type") != "m.login.password":
            raise ApiError(400, "M_UNKNOWN", "Unknown login type (only m.login.password)")
        identifier = body.get("identifier")
        name = None
        if isinstance(identifier, dict):
            if identifier.get("type") != "m.id.user":
                raise ApiError(400, "M_UNKNOWN", "Unknown identifier type (only m.id.user)")
            name = identifier.get("user")
        elif identifier is not None:
            raise ApiError(400, "M_BAD_JSON", "identifier must be an object")
        else:
            name = body.get("user")
        password = body.get("password")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "M_MISSING_PARAM", "Missing user identifier")
        if not isinstance(password, str):
            raise ApiError(400, "M_MISSING_PARAM", "Missing password")
        device_id = body.get("device_id")
        if device_id is not None and (not isinstance(device_id, str) or not device_id):
            raise ApiError(400, "M_INVALID_PARAM", "device_id must be a non-empty string")
        display = body.get("initial_device_display_name")
        user_id = local_user_id(name, self.server_name)
        with self.lock:
            user = self.users.get(user_id)
            if user is None or user["password"] != password:
                raise ApiError(403, "M_FORBIDDEN", "Invalid username or password")
            devices = self.devices.setdefault(user_id, {})
            if device_id is None:
                device_id = random_string(10, string.ascii_uppercase)
            device = devices.setdefault(device_id, {"display_name": None})
            if display is not None and device.get("display_name") is None:
                device["display_name"] = str(display)
            token = f"syt_{random_string(32)}"
            self.tokens[token] = {"user_id": user_id, "device_id": device_id}
            self.commit()
        return {"user_id": user_id, "access_token": token, "device_id": device_id,
                "home_server": self.server_name}

    def api_logout(self, req):
        """POST /logout: invalidate the token and delete its device."""
        with self.lock:
            self.tokens.pop(req.token, None)
            self._delete_device(req.user, req.device)
            self.commit()
        return {}

    def api_logout_all(self, req):
        """POST /logout/all: invalidate every token of the user."""
        with self.lock:
            for token, info in list(self.tokens.items()):
                if info["user_id"] == req.user:
                    del self.tokens[token]
            self.devices.pop(req.user, None)
            self.commit()
        return {}

    def _delete_device(self, user_id, device_id):
        """Delete a device and every token belonging to it (locked)."""
        self.devices.get(user_id, {}).pop(device_id, None)
        for token, info in list(self.tokens.items()):
            if info["user_id"] == user_id and info["device_id"] == device_id:
                del self.tokens[token]

    def api_whoami(self, req):
        """GET /account/whoami."""
        return {"user_id": req.user, "device_id": req.device, "is_guest": False}

    def api_devices(self, req):
        """GET /devices: the user's devices."""
        with self.lock:
            devices = self.devices.get(req.user, {})
            return {"devices": [{"device_id": d, "display_name": v.get("display_name")}
                                for d, v in sorted(devices.items())]}

    def api_capabilities(self, req):
        """GET /capabilities."""
        return {"capabilities": {
            "m.change_password": {"enabled": False},
            "m.room_versions": {"default": ROOM_VERSION,
                                "available": {ROOM_VERSION: "stable"}},
            "m.set_displayname": {"enabled": True},
            "m.set_avatar_url": {"enabled": False},
            "m.3pid_changes": {"enabled": False},
        }}

    def api_pushrules(self, req):
        """GET /pushrules/: an empty rule set."""
        return {"global": {"content": [], "override": [], "room": [],
                           "sender": [], "underride": []}}

    def _require_self(self, req, user_id):
        """Raise 403 unless the path's user id is the requester."""
        if user_id != req.user:
            raise ApiError(403, "M_FORBIDDEN", "Cannot act on behalf of another user")

    # ---------------------------------------------------------------- filters

    def api_filter_upload(self, req):
        """POST /user/{userId}/filter: store a filter, return its id."""
        self._require_self(req, req.params["user"])
        validate_filter(req.body)
        with self.lock:
            filters = self.filters.setdefault(req.user, [])
            filters.append(copy.deepcopy(req.body))
            self.commit()
            return {"filter_id": str(len(filters) - 1)}

    def api_filter_get(self, req):
        """GET /user/{userId}/filter/{filterId}."""
        self._require_self(req, req.params["user"])
        with self.lock:
            definition = self._filter_by_id(req.user, req.params["filter"])
            if definition is None:
                raise ApiError(404, "M_NOT_FOUND", "No such filter")
            return copy.deepcopy(definition)

    def _filter_by_id(self, user_id, filter_id):
        """Return a stored filter definition or None."""
        filters = self.filters.get(user_id, [])
        if filter_id.isdigit() and int(filter_id) < len(filters):
            return filters[int(filter_id)]
        return None

    def sync_filter(self, user_id, value):
        """Turn the /sync 'filter' parameter (id or inline JSON) into a SyncFilter."""
        if value is None or value == "":
            return SyncFilter()
        if value.lstrip().startswith("{"):
            try:
                definition = json.loads(value)
            except ValueError as exc:
                raise ApiError(400, "M_INVALID_PARAM", f"filter is not valid JSON: {exc}") from exc
            validate_filter(definition)
            return SyncFilter(definition)
        with self.lock:
            definition = self._filter_by_id(user_id, value)
        if definition is None:
            raise ApiError(400, "M_INVALID_PARAM", f"Unknown filter id {value!r}")
        return SyncFilter(definition)

    # ------------------------------------------------------------ account data

    def _account_data_slot(self, user_id, room_id=None):
        """Return the dict type -> {"content", "pos"} for user (and room)."""
        data = self.account_data.setdefault(user_id, {"global": {}, "rooms": {}})
        if room_id is None:
            return data["global"]
        return data["rooms"].setdefault(room_id, {})

    def api_account_data_put(self, req):
        """PUT /user/{userId}[/rooms/{roomId}]/account_data/{type}."""
        self._require_self(req, req.params["user"])
        room_id = req.params.get("room")
        with self.lock:
            if room_id is not None:
                self.room(room_id)
            self.pos += 1
            self._account_data_slot(req.user, room_id)[req.params["type"]] = {
                "content": copy.deepcopy(req.body), "pos": self.pos}
            self.commit()
        return {}

    def api_account_data_get(self, req):
        """GET /user/{userId}[/rooms/{roomId}]/account_data/{type}."""
        self._require_self(req, req.params["user"])
        with self.lock:
            item = self._account_data_slot(req.user, req.params.get("room")).get(req.params["type"])
            if item is None:
                raise ApiError(404, "M_NOT_FOUND", "Account data not found")
            return copy.deepcopy(item["content"])

    # ---------------------------------------------------------------- rooms

    def api_create_room(self, req):
        """POST /createRoom."""
        body = req.body
        creator = req.user
        preset = body.get("preset")
        if preset is None:
            preset = "public_chat" if body.get("visibility") == "public" else "private_chat"
        if preset not in ("private_chat", "public_chat", "trusted_private_chat"):
            raise ApiError(400, "M_INVALID_PARAM", f"Unknown preset {preset!r}")
        invite = body.get("invite") or []
        if not isinstance(invite, list) or not all(isinstance(u, str) for u in invite):
            raise ApiError(400, "M_BAD_JSON", "invite must be a list of user ids")
        for key in ("name", "topic", "room_alias_name"):
            if key in body and not isinstance(body[key], str):
                raise ApiError(400, "M_BAD_JSON", f"{key} must be a string")
        room_version = body.get("room_version", ROOM_VERSION)
        if room_version != ROOM_VERSION:
            raise ApiError(400, "M_UNSUPPORTED_ROOM_VERSION", f"Only room version {ROOM_VERSION}")
        override = body.get("power_level_content_override") or {}
        if not isinstance(override, dict):
            raise ApiError(400, "M_BAD_JSON", "power_level_content_override must be an object")
        initial_state = body.get("initial_state") or []
        if not isinstance(initial_state, list) or not all(
                isinstance(e, dict) and isinstance(e.get("type"), str)
                and isinstance(e.get("content"), dict) for e in initial_state):
            raise ApiError(400, "M_BAD_JSON", "initial_state must be a list of state events")
        creation_content = body.get("creation_content") or {}
        if not isinstance(creation_content, dict):
            raise ApiError(400, "M_BAD_JSON", "creation_content must be an object")
        is_direct = bool(body.get("is_direct", False))

        with self.lock:
            alias = None
            if body.get("room_alias_name"):
                alias = f"#{body['room_alias_name']}:{self.server_name}"
                if alias in self.aliases:
                    raise ApiError(400, "M_ROOM_IN_USE", f"Room alias {alias} already taken")
            for user_id in invite:
                if user_id not in self.users:
                    raise ApiError(404, "M_NOT_FOUND", f"Unknown user {user_id}")
            room_id = f"!{random_string(18)}:{self.server_name}"
            while room_id in self.rooms:
                room_id = f"!{random_string(18)}:{self.server_name}"

            create_content = dict(creation_content)
            create_content["room_version"] = ROOM_VERSION
            self._new_event(room_id, creator, "m.room.create", create_content, "")
            self._new_event(room_id, creator, "m.room.member",
                            self.member_content("join", creator), creator)
            power = {
                "users": {creator: 100}, "users_default": 0,
                "events": {"m.room.name": 50, "m.room.power_levels": 100,
                           "m.room.history_visibility": 100,
                           "m.room.canonical_alias": 50, "m.room.avatar": 50,
                           "m.room.tombstone": 100, "m.room.server_acl": 100,
                           "m.room.encryption": 100},
                "events_default": 0, "state_default": 50, "ban": 50, "kick": 50,
                "redact": 50, "invite": 0 if preset != "public_chat" else 50,
                "historical": 100, "notifications": {"room": 50},
            }
            if preset == "trusted_private_chat":
                for user_id in invite:
                    power["users"][user_id] = 100
            power.update(copy.deepcopy(override))
            self._new_event(room_id, creator, "m.room.power_levels", power, "")
            if alias:
                self.aliases[alias] = room_id
                self._new_event(room_id, creator, "m.room.canonical_alias", {"alias": alias}, "")
            join_rule = "public" if preset == "public_chat" else "invite"
            self._new_event(room_id, creator, "m.room.join_rules", {"join_rule": join_rule}, "")
            self._new_event(room_id, creator, "m.room.history_visibility",
                            {"history_visibility": "shared"}, "")
            self._new_event(room_id, creator, "m.room.guest_access",
                            {"guest_access": "forbidden" if preset == "public_chat" else "can_join"}, "")
            for state in initial_state:
                self._new_event(room_id, creator, state["type"],
                                copy.deepcopy(state["content"]), str(state.get("state_key", "")))
            if "name" in body:
                self._new_event(room_id, creator, "m.room.name", {"name": body["name"]}, "")
            if "topic" in body:
                self._new_event(room_id, creator, "m.room.topic", {"topic": body["topic"]}, "")
            for user_id in invite:
                content = self.member_content("invite", user_id)
                if is_direct:
                    content["is_direct"] = True
                self._new_event(room_id, creator, "m.room.member", content, user_id)
            self.commit()
        return {"room_id": room_id}

    def api_invite(self, req):
        """POST /rooms/{roomId}/invite."""
        target = req.body.get("user_id")
        if not isinstance(target, str):
            raise ApiError(400, "M_MISSING_PARAM", "Missing user_id")
        with self.lock:
            room_id = req.params["room"]
            room = self.room(room_id)
            self.require_joined(room, req.user)
            if target not in self.users:
                raise ApiError(404, "M_NOT_FOUND", f"Unknown user {target}")
            if self.power_level(room, req.user) < self.action_level(room, "invite"):
                raise ApiError(403, "M_FORBIDDEN", "You don't have permission to invite users")
            current = self.membership(room, target)
            if current == "join":
                raise ApiError(403, "M_FORBIDDEN", f"{target} is already in the room")
            if current == "ban":
                raise ApiError(403, "M_FORBIDDEN", f"{target} is banned from the room")
            if current != "invite":
                content = self.member_content("invite", target, reason=req.body.get("reason"))
                self._new_event(room_id, req.user, "m.room.member", content, target)
                self.commit()
        return {}

    def api_join_room_id(self, req):
        """POST /rooms/{roomId}/join."""
        return self._join(req, req.params["room"])

    def api_join_any(self, req):
        """POST /join/{roomIdOrAlias}."""
        return self._join(req, req.params["room"])

    def _join(self, req, room_or_alias):
        """Join a room when invited, already joined, or the room is public."""
        with self.lock:
            room_id = self.resolve_room(room_or_alias)
            room = self.room(room_id)
            current = self.membership(room, req.user)
            if current == "join":
                return {"room_id": room_id}
            if current == "ban":
                raise ApiError(403, "M_FORBIDDEN", "You are banned from this room")
            rules = self.state_event(room, "m.room.join_rules")
            public = rules is not None and rules["content"].get("join_rule") == "public"
            if current != "invite" and not public:
                raise ApiError(403, "M_FORBIDDEN", "You are not invited to this room.")
            content = self.member_content("join", req.user, reason=req.body.get("reason"))
            self._new_event(room_id, req.user, "m.room.member", content, req.user)
            self.commit()
        return {"room_id": room_id}

    def api_leave(self, req):
        """POST /rooms/{roomId}/leave (also declines an invite)."""
        with self.lock:
            room_id = req.params["room"]
            room = self.room(room_id)
            current = self.membership(room, req.user)
            if current is None:
                raise ApiError(403, "M_FORBIDDEN", "You are not in this room")
            if current in ("join", "invite", "knock"):
                content = self.member_content("leave", req.user, reason=req.body.get("reason"))
                self._new_event(room_id, req.user, "m.room.member", content, req.user)
                self.commit()
        return {}

    def api_forget(self, req):
        """POST /rooms/{roomId}/forget (accepted, nothing to forget here)."""
        with self.lock:
            room = self.room(req.params["room"])
            if self.membership(room, req.user) in ("join", "invite"):
                raise ApiError(400, "M_UNKNOWN", "You must leave the room first")
        return {}

    def _moderate(self, req, action, allowed_from, new_membership):
        """Shared code of kick, ban and unban."""
        target = req.body.get("user_id")
        if not isinstance(target, str):
            raise ApiError(400, "M_MISSING_PARAM", "Missing user_id")
        with self.lock:
            room_id = req.params["room"]
            room = self.room(room_id)
            self.require_joined(room, req.user)
            mine = self.power_level(room, req.user)
            if mine < self.action_level(room, action if action != "unban" else "ban"):
                raise ApiError(403, "M_FORBIDDEN", f"You don't have permission to {action}")
            if target != req.user and mine <= self.power_level(room, target):
                raise ApiError(403, "M_FORBIDDEN", f"You cannot {action} a user with equal or higher power")
            current = self.membership(room, target)
            if current not in allowed_from:
                raise ApiError(403, "M_FORBIDDEN", f"{target} cannot be {action}ed (membership {current})")
            content = {"membership": new_membership}
            if isinstance(req.body.get("reason"), str):
                content["reason"] = req.body["reason"]
            self._new_event(room_id, req.user, "m.room.member", content, target)
            self.commit()
        return {}

    def api_kick(self, req):
        """POST /rooms/{roomId}/kick."""
        return self._moderate(req, "kick", ("join", "invite", "knock"), "leave")

    def api_ban(self, req):
        """POST /rooms/{roomId}/ban."""
        return self._moderate(req, "ban", ("join", "invite", "knock", "leave", None), "ban")

    def api_unban(self, req):
        """POST /rooms/{roomId}/unban."""
        return self._moderate(req, "unban", ("ban",), "leave")

    # ---------------------------------------------------------------- sending

    def _txn_key(self, req):
        """The transaction scope: user, device and the endpoint path."""
        return (req.user, req.device, req.method + " " + req.sub_path)

    def api_send(self, req):
        """PUT /rooms/{roomId}/send/{eventType}/{txnId}."""
        key = self._txn_key(req)
        with self.lock:
            if key in self.txns:
                return {"event_id": self.txns[key]}
            room_id = req.params["room"]
            etype = req.params["type"]
            room = self.room(room_id)
            self.require_joined(room, req.user)
            if self.power_level(room, req.user) < self.required_level(room, etype, False):
                raise ApiError(403, "M_FORBIDDEN", f"You don't have permission to send {etype}")
            self._check_size(req.body)
            self.ratelimiter.check(req.user)
            event = self._new_event(room_id, req.user, etype, copy.deepcopy(req.body),
                                    txn=(req.user, req.device, req.params["txn"]))
            self.txns[key] = event["event_id"]
            self.commit()
            return {"event_id": event["event_id"]}

    @staticmethod
    def _check_size(content):
        """Raise 413 M_TOO_LARGE if an event's content exceeds the event size limit."""
        if len(json.dumps(content).encode("utf-8")) > MAX_EVENT - 1024:
            raise ApiError(413, "M_TOO_LARGE", "Event too large")

    def api_state_put(self, req):
        """PUT /rooms/{roomId}/state/{eventType}/{stateKey}."""
        with self.lock:
            room_id = req.params["room"]
            etype = req.params["type"]
            state_key = req.params.get("state_key") or ""
            room = self.room(room_id)
            self.require_joined(room, req.user)
            if etype == "m.room.create":
                raise ApiError(403, "M_FORBIDDEN", "m.room.create cannot be changed")
            if etype == "m.room.member":
                if state_key != req.user or req.body.get("membership") != "join":
                    raise ApiError(403, "M_FORBIDDEN", "Use the membership endpoints")
            if state_key.startswith("@") and state_key != req.user and etype != "m.room.member":
                raise ApiError(403, "M_FORBIDDEN", "State keys starting with @ are reserved for that user")
            if self.power_level(room, req.user) < self.required_level(room, etype, True):
                raise ApiError(403, "M_FORBIDDEN", f"You don't have permission to send {etype}")
            if etype == "m.room.power_levels":
                self.check_power_levels_change(room, req.user, req.body)
            if etype != "m.room.member":
                self.ratelimiter.check(req.user)
            if etype == "m.room.canonical_alias":
                alias = req.body.get("alias")
                if alias is not None and self.aliases.get(alias) != room_id:
                    raise ApiError(400, "M_BAD_ALIAS", "Alias does not point to this room")
            self._check_size(req.body)
            event = self._new_event(room_id, req.user, etype, copy.deepcopy(req.body), state_key)
            self.commit()
            return {"event_id": event["event_id"]}

    def _readable_state(self, room, user_id):
        """Return the state the user may read: current if joined, else at their leave."""
        membership_event = self.state_event(room, "m.room.member", user_id)
        if membership_event is None:
            raise ApiError(403, "M_FORBIDDEN", f"User {user_id} not in room")
        if membership_event["content"].get("membership") == "join":
            return room["state"]
        if membership_event["content"].get("membership") in ("leave", "ban"):
            return self.state_at(room, membership_event["pos"] + 1)
        raise ApiError(403, "M_FORBIDDEN", f"User {user_id} not in room")

    def api_state_get(self, req):
        """GET /rooms/{roomId}/state/{eventType}/{stateKey}: the content."""
        with self.lock:
            room = self.room(req.params["room"])
            state = self._readable_state(room, req.user)
            event = state.get((req.params["type"], req.params.get("state_key") or ""))
            if event is None:
                raise ApiError(404, "M_NOT_FOUND", "Event not found.")
            return copy.deepcopy(event["content"])

    def api_state_all(self, req):
        """GET /rooms/{roomId}/state: every current state event."""
        with self.lock:
            room = self.room(req.params["room"])
            state = self._readable_state(room, req.user)
            events = sorted(state.values(), key=lambda e: e["pos"])
            return [self.client_event(e, req.user, req.device) for e in events]

    def api_joined_members(self, req):
        """GET /rooms/{roomId}/joined_members."""
        with self.lock:
            room = self.room(req.params["room"])
            self.require_joined(room, req.user)
            joined = {}
            for (etype, state_key), event in room["state"].items():
                if etype == "m.room.member" and event["content"].get("membership") == "join":
                    joined[state_key] = {"display_name": event["content"].get("displayname"),
                                         "avatar_url": event["content"].get("avatar_url")}
            return {"joined": joined}

    def api_members(self, req):
        """GET /rooms/{roomId}/members (membership / not_membership filters)."""
        with self.lock:
            room = self.room(req.params["room"])
            state = self._readable_state(room, req.user)
            want = req.arg("membership")
            not_want = req.arg("not_membership")
            chunk = []
            for (etype, _), event in sorted(state.items(), key=lambda kv: kv[1]["pos"]):
                if etype != "m.room.member":
                    continue
                membership = event["content"].get("membership")
                if want and membership != want:
                    continue
                if not_want and membership == not_want:
                    continue
                chunk.append(self.client_event(event, req.user, req.device))
            return {"chunk": chunk}

    def api_joined_rooms(self, req):
        """GET /joined_rooms."""
        with self.lock:
            rooms = [rid for rid in sorted(self.user_rooms.get(req.user, ()))
                     if self.membership(self.rooms[rid], req.user) == "join"]
            return {"joined_rooms": rooms}

    def api_get_event(self, req):
        """GET /rooms/{roomId}/event/{eventId}."""
        with self.lock:
            room_id = req.params["room"]
            room = self.room(room_id)
            event = self.event_by_id.get(req.params["event"])
            if event is None or event["room_id"] != room_id:
                raise ApiError(404, "M_NOT_FOUND", "Event not found.")
            if not any(e is event for e in self.visible_events(room, req.user)):
                raise ApiError(404, "M_NOT_FOUND", "Event not found.")
            return self.client_event(event, req.user, req.device)

    def api_redact(self, req):
        """PUT /rooms/{roomId}/redact/{eventId}/{txnId}."""
        key = self._txn_key(req)
        reason = req.body.get("reason")
        with self.lock:
            if key in self.txns:
                return {"event_id": self.txns[key]}
            room_id = req.params["room"]
            room = self.room(room_id)
            self.require_joined(room, req.user)
            target = self.event_by_id.get(req.params["event"])
            if target is None or target["room_id"] != room_id:
                raise ApiError(404, "M_NOT_FOUND", "Event not found.")
            # A redaction is an event like any other: sending it needs the
            # level of m.room.redaction (events_default unless set); redacting
            # someone else's event needs the room's redact level as well.
            mine = self.power_level(room, req.user)
            if mine < self.required_level(room, "m.room.redaction", False):
                raise ApiError(403, "M_FORBIDDEN", "You don't have permission to send m.room.redaction")
            if target["sender"] != req.user and mine < self.action_level(room, "redact"):
                raise ApiError(403, "M_FORBIDDEN", "You don't have permission to redact this event")
            self.ratelimiter.check(req.user)
            content = {"redacts": target["event_id"]}
            if isinstance(reason, str):
                content["reason"] = reason
            redaction = self._new_event(room_id, req.user, "m.room.redaction", content,
                                        redacts=target["event_id"],
                                        txn=(req.user, req.device, req.params["txn"]))
            if "redacted_because" not in target.get("unsigned", {}):
                target["content"] = redact_content(target["type"], target["content"])
                unsigned = {k: v for k, v in target.get("unsigned", {}).items()
                            if k in ("replaces_state",)}
                unsigned["redacted_because"] = self.client_event(redaction)
                target["unsigned"] = unsigned
            self.txns[key] = redaction["event_id"]
            self.commit()
            return {"event_id": redaction["event_id"]}

    def api_typing(self, req):
        """PUT /rooms/{roomId}/typing/{userId}: accepted, not relayed."""
        self._require_self(req, req.params["user"])
        with self.lock:
            self.require_joined(self.room(req.params["room"]), req.user)
        return {}

    def api_receipt(self, req):
        """POST /rooms/{roomId}/receipt/{type}/{eventId}: accepted, not relayed."""
        with self.lock:
            self.require_joined(self.room(req.params["room"]), req.user)
        return {}

    def api_read_markers(self, req):
        """POST /rooms/{roomId}/read_markers: accepted, not relayed."""
        return self.api_receipt(req)

    def api_presence(self, req):
        """PUT /presence/{userId}/status: accepted, presence is not sent."""
        self._require_self(req, req.params["user"])
        return {}

    def api_directory(self, req):
        """GET /directory/room/{roomAlias}."""
        with self.lock:
            room_id = self.aliases.get(req.params["alias"])
            if room_id is None:
                raise ApiError(404, "M_NOT_FOUND", f"Room alias {req.params['alias']} not found")
            return {"room_id": room_id, "servers": [self.server_name]}

    # ---------------------------------------------------------------- profile

    def api_profile(self, req):
        """GET /profile/{userId}."""
        with self.lock:
            name = self._profile_user(req.params["user"])
            return {"displayname": name} if name is not None else {}

    def _profile_user(self, user_id):
        """Return the display name of a known user or raise 404."""
        if user_id not in self.users:
            raise ApiError(404, "M_NOT_FOUND", "Profile was not found")
        return self.users[user_id].get("displayname")

    def api_displayname_get(self, req):
        """GET /profile/{userId}/displayname."""
        with self.lock:
            name = self._profile_user(req.params["user"])
            return {"displayname": name} if name is not None else {}

    def api_displayname_put(self, req):
        """PUT /profile/{userId}/displayname: also updates joined rooms' member events."""
        self._require_self(req, req.params["user"])
        name = req.body.get("displayname")
        if name is not None and not isinstance(name, str):
            raise ApiError(400, "M_BAD_JSON", "displayname must be a string")
        with self.lock:
            self.users[req.user]["displayname"] = name
            for room_id in sorted(self.user_rooms.get(req.user, ())):
                room = self.rooms[room_id]
                if self.membership(room, req.user) == "join":
                    self._new_event(room_id, req.user, "m.room.member",
                                    self.member_content("join", req.user), req.user)
            self.commit()
        return {}

    # ---------------------------------------------------------------- history

    def visible_events(self, room, user_id):
        """Return the room's events the user may see (spec history visibility rules)."""
        joins = [e["pos"] for e in room["events"]
                 if e["type"] == "m.room.member" and e.get("state_key") == user_id
                 and e["content"].get("membership") == "join"]
        last_join = joins[-1] if joins else None
        membership = None
        visibility = "shared"
        out = []
        for event in room["events"]:
            own = event["type"] == "m.room.member" and event.get("state_key") == user_id
            if (visibility == "world_readable" or membership == "join" or own
                    or (visibility == "shared" and last_join is not None and last_join >= event["pos"])
                    or (visibility == "invited" and membership == "invite")):
                out.append(event)
            if own:
                membership = event["content"].get("membership")
            if event["type"] == "m.room.history_visibility" and event.get("state_key") == "":
                visibility = event["content"].get("history_visibility", "shared")
        return out

    def api_messages(self, req):
        """GET /rooms/{roomId}/messages: paginate the timeline."""
        direction = req.arg("dir", "b")
        if direction not in ("b", "f"):
            raise ApiError(400, "M_INVALID_PARAM", "dir must be 'b' or 'f'")
        try:
            limit = int(req.arg("limit", "10"))
        except ValueError as exc:
            raise ApiError(400, "M_INVALID_PARAM", "limit must be an integer") from exc
        limit = max(0, min(limit, MAX_MESSAGES_LIMIT))
        event_filter = EventFilter()
        raw_filter = req.arg("filter")
        if raw_filter:
            try:
                definition = json.loads(raw_filter)
            except ValueError as exc:
                raise ApiError(400, "M_INVALID_PARAM", "filter is not valid JSON") from exc
            if not isinstance(definition, dict):
                raise ApiError(400, "M_INVALID_PARAM", "filter must be an object")
            event_filter = EventFilter(definition)
            if definition.get("limit") is not None and "limit" not in req.query:
                limit = max(0, min(as_int(definition["limit"], limit), MAX_MESSAGES_LIMIT))
        with self.lock:
            room_id = req.params["room"]
            room = self.room(room_id)
            if self.membership(room, req.user) is None:
                raise ApiError(403, "M_FORBIDDEN", f"User {req.user} not in room")
            from_token = req.arg("from")
            to_token = req.arg("to")
            if from_token:
                start = parse_stream_token(from_token)
            else:
                start = self.pos if direction == "b" else 0
            stop = parse_stream_token(to_token) if to_token else None
            visible = self.visible_events(room, req.user)
            if direction == "b":
                candidates = [e for e in reversed(visible) if e["pos"] <= start
                              and (stop is None or e["pos"] > stop)]
            else:
                candidates = [e for e in visible if e["pos"] > start
                              and (stop is None or e["pos"] <= stop)]
            chunk = []
            for event in candidates:
                if len(chunk) >= limit:
                    break
                if event_filter.matches(event, room_id):
                    chunk.append(event)
            out = {"start": make_token(start),
                   "chunk": [self.client_event(e, req.user, req.device) for e in chunk]}
            if chunk and len(chunk) >= limit:
                last = chunk[-1]["pos"]
                out["end"] = make_token(last - 1 if direction == "b" else last)
            return out

    # ---------------------------------------------------------------- sync

    def api_sync(self, req, should_drop):
        """GET /sync: long-polls until something new for the user or timeout."""
        since = req.arg("since")
        since_pos = parse_stream_token(since) if since else None
        try:
            timeout_ms = int(req.arg("timeout", "0"))
        except ValueError as exc:
            raise ApiError(400, "M_INVALID_PARAM", "timeout must be an integer") from exc
        timeout_ms = max(0, min(timeout_ms, MAX_SYNC_TIMEOUT_MS))
        full_state = req.arg("full_state", "false") == "true"
        sync_filter = self.sync_filter(req.user, req.arg("filter"))
        deadline = time.monotonic() + timeout_ms / 1000.0
        with self.cond:
            if since_pos is not None and since_pos > self.pos:
                raise ApiError(400, "M_INVALID_PARAM",
                               f"since token {since} is ahead of the server's stream")
            while True:
                if should_drop():
                    raise DropConnection()
                response, has_data = self._build_sync(req.user, req.device, since_pos,
                                                      sync_filter, full_state)
                remaining = deadline - time.monotonic()
                if has_data or since_pos is None or full_state or remaining <= 0:
                    return response
                seen = self.pos
                while self.pos == seen and remaining > 0 and not should_drop():
                    self.cond.wait(remaining)
                    remaining = deadline - time.monotonic()

    def _build_sync(self, user_id, device_id, since, sync_filter, full_state):
        """Compute a sync response at the current position (locked)."""
        now = self.pos
        joined, invited, left = {}, {}, {}
        for room_id in sorted(self.user_rooms.get(user_id, ())):
            if not sync_filter.room_allowed(room_id):
                continue
            room = self.rooms[room_id]
            member = self.state_event(room, "m.room.member", user_id)
            membership = member["content"].get("membership")
            if membership == "join":
                entry = self._sync_joined(room_id, room, user_id, device_id, since,
                                          sync_filter, full_state)
                if entry is not None:
                    joined[room_id] = entry
            elif membership == "invite":
                if since is None or member["pos"] > since:
                    invited[room_id] = {"invite_state": {"events": self._invite_state(
                        room, member, user_id, device_id)}}
            elif membership in ("leave", "ban"):
                if (since is None and not sync_filter.include_leave) or (
                        since is not None and member["pos"] <= since):
                    continue
                entry = self._sync_left(room_id, room, user_id, device_id, since, sync_filter)
                if entry is not None:
                    left[room_id] = entry
        account_events = self._account_data_events(user_id, None, since, sync_filter.account_data)
        response = {
            "next_batch": make_token(now),
            "rooms": {"join": joined, "invite": invited, "leave": left, "knock": {}},
            "account_data": {"events": account_events},
            "presence": {"events": []},
            "to_device": {"events": []},
            "device_lists": {"changed": [], "left": []},
            "device_one_time_keys_count": {},
        }
        return response, bool(joined or invited or left or account_events)

    def _account_data_events(self, user_id, room_id, since, event_filter):
        """Account data changed since the token, as events."""
        data = self.account_data.get(user_id)
        if not data:
            return []
        slot = data["global"] if room_id is None else data["rooms"].get(room_id, {})
        out = []
        for etype, item in sorted(slot.items(), key=lambda kv: kv[1]["pos"]):
            if since is not None and item["pos"] <= since:
                continue
            event = {"type": etype, "content": copy.deepcopy(item["content"])}
            if event_filter.matches(event):
                out.append(event)
        if event_filter.limit is not None:
            out = out[: event_filter.limit]
        return out

    def _timeline(self, room_id, events, user_id, device_id, sync_filter, now):
        """Filter and limit timeline events; return (events, limited, prev_batch)."""
        passed = [e for e in events if sync_filter.timeline.matches(e, room_id)]
        limit = sync_filter.timeline_limit
        limited = len(passed) > limit
        passed = passed[-limit:] if limit else []
        prev_batch = make_token(passed[0]["pos"] - 1) if passed else make_token(now)
        return passed, limited, prev_batch

    def _sync_joined(self, room_id, room, user_id, device_id, since, sync_filter, full_state):
        """The rooms.join entry for one room, or None if nothing to report."""
        now = self.pos
        visible = self.visible_events(room, user_id)
        newly_joined = since is None
        if since is not None:
            own = [e for e in room["events"] if e["type"] == "m.room.member"
                   and e.get("state_key") == user_id]
            before = [e for e in own if e["pos"] <= since]
            after = [e for e in own if e["pos"] > since]
            was_joined = bool(before) and before[-1]["content"].get("membership") == "join"
            newly_joined = not was_joined or any(
                e["content"].get("membership") != "join" for e in after)
        fresh = newly_joined or full_state
        candidates = visible if newly_joined else [e for e in visible if e["pos"] > since]
        timeline, limited, prev_batch = self._timeline(room_id, candidates, user_id,
                                                       device_id, sync_filter, now)
        start = timeline[0]["pos"] if timeline else now + 1
        state_events = []
        if fresh or limited:
            at_start = self.state_at(room, start)
            for event in sorted(at_start.values(), key=lambda e: e["pos"]):
                if not fresh and event["pos"] <= since:
                    continue
                if sync_filter.state.matches(event, room_id):
                    state_events.append(event)
        if sync_filter.lazy_load_members:
            state_events = self._lazy_members(room_id, room, user_id, device_id, fresh,
                                              timeline, start, state_events, sync_filter)
        room_account = self._account_data_events(user_id, room_id, since,
                                                 sync_filter.room_account_data)
        if not (fresh or timeline or state_events or room_account):
            return None
        entry = {
            "timeline": {"events": [self.client_event(e, user_id, device_id, False) for e in timeline],
                         "limited": limited, "prev_batch": prev_batch},
            "state": {"events": [self.client_event(e, user_id, device_id, False) for e in state_events]},
            "account_data": {"events": room_account},
            "ephemeral": {"events": []},
            "unread_notifications": {"highlight_count": 0, "notification_count": 0},
        }
        # Like Synapse, the summary comes only when it may have changed: for a
        # fresh room, or when members came and went. A client that was away
        # (a restart) gets none for a quiet room.
        if not (fresh or any(e["type"] == "m.room.member" for e in timeline + state_events)):
            return entry
        joined_count = invited_count = 0
        heroes = []
        for (etype, state_key), event in room["state"].items():
            if etype != "m.room.member":
                continue
            membership = event["content"].get("membership")
            if membership == "join":
                joined_count += 1
            elif membership == "invite":
                invited_count += 1
            if membership in ("join", "invite") and state_key != user_id and len(heroes) < 5:
                heroes.append(state_key)
        entry["summary"] = {"m.joined_member_count": joined_count,
                            "m.invited_member_count": invited_count,
                            "m.heroes": sorted(heroes)}
        return entry

    def _lazy_members(self, room_id, room, user_id, device_id, fresh, timeline, start,
                      state_events, sync_filter):
        """Member events as lazy loading sends them (locked): only those of the
        timeline's senders (and the user's own), each once per device until it
        changes (Synapse's default, include_redundant_members false)."""
        rooms = self.ll_sent.setdefault((user_id, device_id), {})
        if fresh:
            rooms.pop(room_id, None)
        known = rooms.setdefault(room_id, set())
        wanted = {e["sender"] for e in timeline} | {user_id}
        in_timeline = {e["state_key"] for e in timeline if e["type"] == "m.room.member"}
        out, have = [], set()
        for event in state_events:
            if event["type"] == "m.room.member":
                member = event["state_key"]
                if member not in wanted or member in known or member in in_timeline:
                    continue
                have.add(member)
            out.append(event)
        at_start = None
        for member in sorted(wanted - have - in_timeline - known):
            if at_start is None:
                at_start = self.state_at(room, start)
            event = at_start.get(("m.room.member", member))
            if event is not None and sync_filter.state.matches(event, room_id):
                out.append(event)
                have.add(member)
        known |= have | in_timeline
        return sorted(out, key=lambda e: e["pos"])

    def _sync_left(self, room_id, room, user_id, device_id, since, sync_filter):
        """The rooms.leave entry for a room the user left (or was kicked from)."""
        now = self.pos
        visible = self.visible_events(room, user_id)
        candidates = visible if since is None else [e for e in visible if e["pos"] > since]
        timeline, limited, prev_batch = self._timeline(room_id, candidates, user_id,
                                                       device_id, sync_filter, now)
        return {
            "timeline": {"events": [self.client_event(e, user_id, device_id, False) for e in timeline],
                         "limited": limited, "prev_batch": prev_batch},
            "state": {"events": []},
            "account_data": {"events": []},
        }

    def _invite_state(self, room, member, user_id, device_id):
        """The stripped state shown with an invite, ending with the invite event."""
        events = []
        for etype in INVITE_STATE_TYPES:
            event = self.state_event(room, etype)
            if event is not None:
                events.append(self.stripped(event))
        events.append(self.client_event(member, user_id, device_id, False))
        return events

    # ------------------------------------------------------------ test control

    def register_user(self, body):
        """POST /_test/register: create a user at run time."""
        user = body.get("user")
        password = body.get("password")
        if not isinstance(user, str) or not isinstance(password, str):
            raise ApiError(400, "M_MISSING_PARAM", "user and password are required")
        user_id = local_user_id(user, self.server_name)
        with self.lock:
            if user_id in self.users:
                raise ApiError(400, "M_USER_IN_USE", f"{user_id} already exists")
            self.add_user(user_id, password, body.get("displayname"))
            if body.get("admin"):
                self.users[user_id]["admin"] = True
                self.commit()
        return {"user_id": user_id}

    def set_admin(self, body):
        """POST /_test/admin: make a user a server admin (or not)."""
        user = body.get("user")
        if not isinstance(user, str):
            raise ApiError(400, "M_MISSING_PARAM", "user is required")
        user_id = local_user_id(user, self.server_name)
        with self.lock:
            if user_id not in self.users:
                raise ApiError(404, "M_NOT_FOUND", f"Unknown user {user_id}")
            self.users[user_id]["admin"] = bool(body.get("admin", True))
            self.commit()
        return {"user_id": user_id, "admin": self.users[user_id]["admin"]}

    def admin_override_ratelimit(self, method, user_id, token, body):
        """/_synapse/admin/v1/users/{userId}/override_ratelimit (GET, POST, DELETE)."""
        found = self.lookup_token(token)
        if not found:
            raise ApiError(401, "M_MISSING_TOKEN" if not token else "M_UNKNOWN_TOKEN",
                           "Missing or unknown access token")
        with self.lock:
            if not self.users.get(found[0], {}).get("admin"):
                raise ApiError(403, "M_FORBIDDEN", "You are not a server admin")
            if user_id not in self.users:
                raise ApiError(404, "M_NOT_FOUND", "User not found")
        if method == "GET":
            got = self.ratelimiter.get_override(user_id)
            return {} if got is None else {"messages_per_second": got[0], "burst_count": got[1]}
        if method == "DELETE":
            self.ratelimiter.set_override(user_id, None, None)
            return {}
        if method != "POST":
            raise ApiError(405, "M_UNRECOGNIZED", "Unrecognized request")
        per_second = body.get("messages_per_second", 0)
        burst = body.get("burst_count", 0)
        for value in (per_second, burst):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ApiError(400, "M_INVALID_PARAM", "must be a non-negative integer")
        self.ratelimiter.set_override(user_id, per_second, burst)
        return {"messages_per_second": per_second, "burst_count": burst}

    def room_events_dump(self, room_or_alias):
        """GET /_test/events: every event of a room, unfiltered, in order."""
        with self.lock:
            room_id = self.resolve_room(room_or_alias)
            return {"room_id": room_id,
                    "events": [dict(self.client_event(e), stream_pos=e["pos"])
                               for e in self.rooms[room_id]["events"]]}

    def set_down(self, seconds):
        """POST /_test/down: drop every client request for that long."""
        with self.lock:
            self.down_until = time.monotonic() + seconds
            self.cond.notify_all()
        return {"down_for_ms": int(seconds * 1000)}

    def is_down(self):
        """Return True while a simulated outage is in effect."""
        return time.monotonic() < self.down_until


# --------------------------------------------------------------------------
# Routing
# --------------------------------------------------------------------------

def _route(method, pattern, name, auth=True):
    """Build one route table entry (pattern is matched on the path after the prefix)."""
    return (method, re.compile("^" + pattern + "$"), name, auth)


ROOM = r"(?P<room>[^/]+)"
USER = r"(?P<user>[^/]+)"
ROUTES = [
    _route("GET", r"/login", "api_login_flows", auth=False),
    _route("POST", r"/login", "api_login", auth=False),
    _route("POST", r"/logout", "api_logout"),
    _route("POST", r"/logout/all", "api_logout_all"),
    _route("GET", r"/account/whoami", "api_whoami"),
    _route("GET", r"/devices", "api_devices"),
    _route("GET", r"/capabilities", "api_capabilities"),
    _route("GET", r"/pushrules/?", "api_pushrules"),
    _route("POST", rf"/user/{USER}/filter", "api_filter_upload"),
    _route("GET", rf"/user/{USER}/filter/(?P<filter>[^/]+)", "api_filter_get"),
    _route("PUT", rf"/user/{USER}/account_data/(?P<type>[^/]+)", "api_account_data_put"),
    _route("GET", rf"/user/{USER}/account_data/(?P<type>[^/]+)", "api_account_data_get"),
    _route("PUT", rf"/user/{USER}/rooms/{ROOM}/account_data/(?P<type>[^/]+)", "api_account_data_put"),
    _route("GET", rf"/user/{USER}/rooms/{ROOM}/account_data/(?P<type>[^/]+)", "api_account_data_get"),
    _route("GET", r"/sync", "api_sync"),
    _route("POST", r"/createRoom", "api_create_room"),
    _route("POST", rf"/rooms/{ROOM}/invite", "api_invite"),
    _route("POST", rf"/rooms/{ROOM}/join", "api_join_room_id"),
    _route("POST", rf"/join/{ROOM}", "api_join_any"),
    _route("POST", rf"/rooms/{ROOM}/leave", "api_leave"),
    _route("POST", rf"/rooms/{ROOM}/forget", "api_forget"),
    _route("POST", rf"/rooms/{ROOM}/kick", "api_kick"),
    _route("POST", rf"/rooms/{ROOM}/ban", "api_ban"),
    _route("POST", rf"/rooms/{ROOM}/unban", "api_unban"),
    _route("PUT", rf"/rooms/{ROOM}/send/(?P<type>[^/]+)/(?P<txn>[^/]+)", "api_send"),
    _route("PUT", rf"/rooms/{ROOM}/state/(?P<type>[^/]+)(?:/(?P<state_key>[^/]*))?", "api_state_put"),
    _route("GET", rf"/rooms/{ROOM}/state/(?P<type>[^/]+)(?:/(?P<state_key>[^/]*))?", "api_state_get"),
    _route("GET", rf"/rooms/{ROOM}/state", "api_state_all"),
    _route("GET", rf"/rooms/{ROOM}/joined_members", "api_joined_members"),
    _route("GET", rf"/rooms/{ROOM}/members", "api_members"),
    _route("GET", rf"/rooms/{ROOM}/event/(?P<event>[^/]+)", "api_get_event"),
    _route("PUT", rf"/rooms/{ROOM}/redact/(?P<event>[^/]+)/(?P<txn>[^/]+)", "api_redact"),
    _route("GET", rf"/rooms/{ROOM}/messages", "api_messages"),
    _route("PUT", rf"/rooms/{ROOM}/typing/{USER}", "api_typing"),
    _route("POST", rf"/rooms/{ROOM}/receipt/(?P<type>[^/]+)/(?P<event>[^/]+)", "api_receipt"),
    _route("POST", rf"/rooms/{ROOM}/read_markers", "api_read_markers"),
    _route("GET", r"/joined_rooms", "api_joined_rooms"),
    _route("GET", rf"/profile/{USER}", "api_profile"),
    _route("GET", rf"/profile/{USER}/displayname", "api_displayname_get"),
    _route("PUT", rf"/profile/{USER}/displayname", "api_displayname_put"),
    _route("PUT", rf"/presence/{USER}/status", "api_presence"),
    _route("GET", r"/directory/room/(?P<alias>[^/]+)", "api_directory"),
]


def wrong_type_body(path):
    """A 200 body of valid JSON whose fields have the wrong types for this endpoint."""
    if "/sync" in path:
        return {"next_batch": 12345, "rooms": ["join", "invite"], "account_data": "nope"}
    if "/send/" in path or "/redact/" in path or "/state/" in path:
        return {"event_id": {"not": "a string"}}
    if "/login" in path:
        return {"user_id": 42, "access_token": ["not", "a", "string"],
                "device_id": {}, "home_server": 7, "flows": "m.login.password"}
    if "/whoami" in path:
        return {"user_id": 42, "device_id": []}
    if "/filter" in path:
        return {"filter_id": 42}
    if "/createRoom" in path or "/join" in path:
        return {"room_id": ["!not:a.string"]}
    if "/joined_rooms" in path:
        return {"joined_rooms": "!a:b"}
    if "/joined_members" in path:
        return {"joined": ["@a:b"]}
    if "/messages" in path:
        return {"chunk": {"not": "a list"}, "start": 1, "end": 2}
    if "/versions" in path:
        return {"versions": "v1.11", "unstable_features": []}
    if "/profile" in path:
        return {"displayname": 42}
    return {"event_id": 42, "room_id": [], "user_id": {}, "next_batch": 1}


# --------------------------------------------------------------------------
# HTTP layer
# --------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive request handler for the client API and /_test/."""

    protocol_version = "HTTP/1.1"
    server_version = "faqbot-test-homeserver/1.0"
    sys_version = ""
    timeout = IDLE_CONNECTION_TIMEOUT

    # ------------------------------------------------------------ plumbing

    def version_string(self):
        """The Server header."""
        return self.server_version

    def setup(self):
        """Register the connection so shutdown can close it."""
        super().setup()
        self.server.track(self.connection, True)

    def finish(self):
        """Unregister the connection."""
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, fmt, *args):
        """Access log on stderr, only with --verbose."""
        if self.server.app.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    def handle_expect_100(self):
        """Refuse an oversized body before the client sends it."""
        if self._content_length() > MAX_BODY:
            entry = self.server.app.reqlog.start(self.command, self.path)
            self.close_connection = True
            self._finish(entry, Reply(413, {"errcode": "M_TOO_LARGE",
                                            "error": "Request body too large"}))
            return False
        return super().handle_expect_100()

    def do_GET(self):
        """Serve a GET request."""
        self._serve("GET")

    def do_POST(self):
        """Serve a POST request."""
        self._serve("POST")

    def do_PUT(self):
        """Serve a PUT request."""
        self._serve("PUT")

    def do_DELETE(self):
        """Serve a DELETE request."""
        self._serve("DELETE")

    def do_OPTIONS(self):
        """Serve an OPTIONS (CORS pre-flight) request."""
        self._serve("OPTIONS")

    def _content_length(self):
        """Return the request's Content-Length (0 if absent or bad)."""
        try:
            return max(0, int(self.headers.get("Content-Length", "0")))
        except ValueError:
            return 0

    def _discard(self, length):
        """Read and throw away length bytes of request body (bounded chunks)."""
        while length > 0:
            data = self.rfile.read(min(length, 65536))
            if not data:
                break
            length -= len(data)

    def _read_body(self):
        """Read the request body (plain or chunked); raise 413 when over the cap.

        An oversized body of up to MAX_DRAIN bytes is read and discarded so
        that the client reliably gets the 413 and the connection stays
        usable; anything bigger is refused and the connection closed."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = bytearray()
            total = 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                except ValueError:
                    self.close_connection = True
                    raise ApiError(400, "M_UNKNOWN", "Bad chunked encoding")
                if size == 0:
                    while self.rfile.readline(1024).strip():
                        pass
                    if total > MAX_BODY:
                        raise ApiError(413, "M_TOO_LARGE", "Request body too large")
                    return bytes(data)
                total += size
                if total > MAX_DRAIN:
                    self.close_connection = True
                    raise ApiError(413, "M_TOO_LARGE", "Request body too large")
                if total > MAX_BODY:
                    self._discard(size)
                else:
                    data += self.rfile.read(size)
                self.rfile.readline(16)
        length = self._content_length()
        if length > MAX_BODY:
            if length <= MAX_DRAIN:
                self._discard(length)
            else:
                self.close_connection = True
            raise ApiError(413, "M_TOO_LARGE", "Request body too large")
        return self.rfile.read(length) if length else b""

    def _send(self, reply):
        """Write a complete reply with Content-Length; tolerate a gone client."""
        payload = reply.payload()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Access-Control-Allow-Origin", "*")
            for name, value in reply.headers:
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True

    def _drop(self):
        """Close the connection abruptly (RST) without any reply."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass

    # ------------------------------------------------------------ serving

    def _serve(self, method):
        """Serve one request: control API, outage, faults, then the client API."""
        app = self.server.app
        split = urlsplit(self.path)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        if path == "/_test" or path.startswith("/_test/"):
            self._serve_control(method, path, query)
            return
        entry = app.reqlog.start(method, self.path)
        if app.is_down():
            app.reqlog.update(entry, status=0, fault="down", end_time=time.time())
            self._drop()
            return
        token = self._token(query)
        found = app.lookup_token(token)
        if found:
            app.reqlog.update(entry, user=found[0], device=found[1])
        try:
            raw_body = self._read_body()
        except ApiError as err:
            self._finish(entry, Reply(err.status, err.body))
            return
        app.reqlog.update(entry, body=self._loggable(raw_body))
        fault = app.faults.take(method, self.path, found[0] if found else None)
        if fault is not None:
            app.reqlog.update(entry, fault=fault.kind)
        try:
            if fault is not None and fault.phase == "before":
                if fault.kind == "slow":
                    self._sleep(fault.delay_ms)
                else:
                    self._emit_fault(fault, entry, token, None)
                    return
            reply = self._dispatch(method, path, query, raw_body, token)
            if fault is not None and fault.phase == "after":
                if fault.kind == "slow":
                    self._sleep(fault.delay_ms)
                else:
                    self._emit_fault(fault, entry, token, reply)
                    return
            self._finish(entry, reply)
        except DropConnection:
            app.reqlog.update(entry, status=0, end_time=time.time())
            self._drop()

    def _finish(self, entry, reply):
        """Send the reply and record its status in the request log."""
        self._send(reply)
        self.server.app.reqlog.update(entry, status=reply.status, end_time=time.time())

    @staticmethod
    def _loggable(raw_body):
        """Return the body for the request log: parsed JSON, or text, or None."""
        if not raw_body:
            return None
        try:
            return json.loads(raw_body)
        except ValueError:
            return raw_body[:4096].decode("utf-8", "replace")

    def _token(self, query):
        """Return the access token from the Authorization header or the query."""
        header = self.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            return header[7:].strip()
        values = query.get("access_token")
        return values[0] if values else None

    def _sleep(self, delay_ms):
        """Wait delay_ms (bounded); drop the connection if the server stops."""
        if self.server.app.stopping.wait(delay_ms / 1000.0):
            raise DropConnection()

    def _should_drop(self):
        """True when a waiting request must end: shutdown or simulated outage."""
        app = self.server.app
        return app.stopping.is_set() or app.is_down()

    def _dispatch(self, method, path, query, raw_body, token):
        """Route a client API request and turn errors into Matrix error replies."""
        app = self.server.app
        try:
            if path == "/_matrix/client/versions":
                if method != "GET":
                    raise ApiError(405, "M_UNRECOGNIZED", "Unrecognized request")
                return Reply(200, {"versions": SUPPORTED_VERSIONS, "unstable_features": {}})
            if path == "/.well-known/matrix/client":
                host = self.headers.get("Host", "127.0.0.1")
                return Reply(200, {"m.homeserver": {"base_url": f"http://{host}"}})
            admin = ADMIN_RATELIMIT_RE.match(path)
            if admin:
                body = self._parse_json(raw_body) if method == "POST" else {}
                return Reply(200, app.admin_override_ratelimit(method, unquote(admin.group(1)),
                                                               token, body))
            match = PREFIX_RE.match(path)
            if not match:
                raise ApiError(404, "M_UNRECOGNIZED", "Unrecognized request")
            sub = match.group(1)
            if method == "OPTIONS":
                return Reply(200, {}, headers=[
                    ("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS"),
                    ("Access-Control-Allow-Headers", "Authorization, Content-Type")])
            path_matched = False
            for route_method, regex, name, needs_auth in ROUTES:
                found = regex.match(sub)
                if not found:
                    continue
                path_matched = True
                if route_method != method:
                    continue
                params = {k: unquote(v) for k, v in found.groupdict().items() if v is not None}
                body = {}
                req = Request(method, self.path, sub, query, params, body, token)
                if needs_auth:
                    app.authenticate(req)
                if method in ("POST", "PUT"):
                    req.body = self._parse_json(raw_body)
                handler = getattr(app, name)
                if name == "api_sync":
                    result = handler(req, self._should_drop)
                else:
                    result = handler(req)
                return Reply(200, result)
            if path_matched:
                raise ApiError(405, "M_UNRECOGNIZED", "Unrecognized request")
            raise ApiError(404, "M_UNRECOGNIZED", "Unrecognized request")
        except ApiError as err:
            headers = []
            if err.status == 429 and "retry_after_ms" in err.body:
                headers.append(("Retry-After", str(max(1, math.ceil(err.body["retry_after_ms"] / 1000.0)))))
            return Reply(err.status, err.body, headers=headers)
        except DropConnection:
            raise
        except Exception:  # a bug in this server: answer 500 and show it

            traceback.print_exc()
            return Reply(500, {"errcode": "M_UNKNOWN", "error": "Internal server error"})

    @staticmethod
    def _parse_json(raw_body):
        """Parse a request body as a JSON object ({} when empty)."""
        if not raw_body.strip():
            return {}
        try:
            body = json.loads(raw_body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, "M_NOT_JSON", f"Content not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "M_BAD_JSON", "Body must be a JSON object")
        return body

    # ------------------------------------------------------------ faults

    def _emit_fault(self, fault, entry, token, reply):
        """Answer (or not) according to the fault kind instead of the real reply."""
        app = self.server.app
        kind = fault.kind
        if kind == "drop":
            app.reqlog.update(entry, status=0, end_time=time.time())
            self._drop()
            return
        if kind == "huge":
            self._stream_huge(fault.size)
            app.reqlog.update(entry, status=200, end_time=time.time())
            return
        if kind == "429":
            seconds = max(1, math.ceil(fault.retry_after_ms / 1000.0))
            out = Reply(429, {"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests",
                              "retry_after_ms": fault.retry_after_ms},
                        headers=[("Retry-After", str(seconds))])
        elif kind == "500":
            out = Reply(500, {"errcode": "M_UNKNOWN", "error": "Internal server error (injected)"})
        elif kind == "502":
            out = Reply(502, raw=(b"<html><head><title>502 Bad Gateway</title></head>"
                                  b"<body><h1>502 Bad Gateway</h1></body></html>\n"),
                        content_type="text/html")
        elif kind == "malformed":
            if reply is not None and reply.status == 200:
                full = reply.payload()
                raw = full[: max(1, len(full) // 2)]
            else:
                raw = b'{"next_batch": "s1", "event_id": "$trunc'
            out = Reply(200, raw=raw)
        elif kind == "wrong_type":
            out = Reply(200, wrong_type_body(self.path))
        elif kind == "unknown_token":
            app.invalidate_token(token)
            out = Reply(401, {"errcode": "M_UNKNOWN_TOKEN", "error": "Unrecognised access token",
                              "soft_logout": False})
        else:  # pragma: no cover - kinds are validated on creation
            out = Reply(500, {"errcode": "M_UNKNOWN", "error": f"bad fault {kind}"})
        self._finish(entry, out)

    def _stream_huge(self, size):
        """Send a 200 reply of valid JSON of exactly `size` bytes, in chunks."""
        prefix, suffix = b'{"padding":"', b'"}'
        size = max(size, len(prefix) + len(suffix))
        remaining = size - len(prefix) - len(suffix)
        chunk = b"x" * 65536
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            self.wfile.write(prefix)
            while remaining > 0:
                if self.server.app.stopping.is_set():
                    self._drop()
                    return
                n = min(remaining, len(chunk))
                self.wfile.write(chunk[:n])
                remaining -= n
            self.wfile.write(suffix)
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
            self.close_connection = True

    # ------------------------------------------------------------ control API

    def _serve_control(self, method, path, query):
        """Serve /_test/ endpoints: no auth, no faults, not logged."""
        app = self.server.app
        try:
            raw_body = self._read_body()
            body = self._parse_json(raw_body) if method in ("POST", "PUT") else {}
            if path == "/_test/faults" and method == "POST":
                result = {"id": app.faults.add(body)}
            elif path == "/_test/faults" and method == "GET":
                result = {"faults": app.faults.describe()}
            elif path == "/_test/faults" and method == "DELETE":
                fault_id = query.get("id", [None])[0]
                if fault_id is not None and not fault_id.isdigit():
                    raise ApiError(400, "M_INVALID_PARAM", "id must be an integer")
                app.faults.clear(int(fault_id) if fault_id else None)
                result = {}
            elif path == "/_test/down" and method == "POST":
                seconds = body.get("seconds", 0)
                if not isinstance(seconds, (int, float)) or seconds < 0 or seconds > 3600:
                    raise ApiError(400, "M_BAD_JSON", "seconds must be a number in [0, 3600]")
                result = app.set_down(float(seconds))
            elif path == "/_test/requests" and method == "GET":
                try:
                    since = int(query.get("since", ["0"])[0])
                except ValueError as exc:
                    raise ApiError(400, "M_INVALID_PARAM", "since must be an integer") from exc
                entries, last = app.reqlog.since(since, query.get("match", [None])[0],
                                                 query.get("method", [None])[0])
                result = {"requests": entries, "last_seq": last}
            elif path == "/_test/events" and method == "GET":
                room = query.get("room", [None])[0]
                if not room:
                    raise ApiError(400, "M_MISSING_PARAM", "room is required")
                result = app.room_events_dump(room)
            elif path == "/_test/reset" and method == "POST":
                app.faults.clear()
                app.reqlog.clear()
                app.set_down(0)
                app.ratelimiter.configure({})
                result = {}
            elif path == "/_test/register" and method == "POST":
                result = app.register_user(body)
            elif path == "/_test/ratelimit" and method == "POST":
                result = app.ratelimiter.configure(body)
            elif path == "/_test/ratelimit" and method == "GET":
                result = app.ratelimiter.describe()
            elif path == "/_test/admin" and method == "POST":
                result = app.set_admin(body)
            elif path == "/_test/health" and method == "GET":
                result = {"ok": True, "stream_pos": app.pos}
            else:
                raise ApiError(404, "M_UNRECOGNIZED", "Unknown test control endpoint")
            self._send(Reply(200, result))
        except ApiError as err:
            self._send(Reply(err.status, err.body))


class Server(ThreadingHTTPServer):
    """Threading HTTP server that knows the app and its open connections."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, app):
        """Bind and listen on address; app is the HomeServer."""
        self.app = app
        self.connections = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, Handler)

    def track(self, sock, add):
        """Add or remove an open client connection."""
        with self.connections_lock:
            if add:
                self.connections.add(sock)
            else:
                self.connections.discard(sock)

    def close_connections(self):
        """Shut down every open client connection (wakes idle keep-alives)."""
        with self.connections_lock:
            socks = list(self.connections)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        """Ignore client disconnects; print other errors."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout)):
            return
        super().handle_error(request, client_address)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def write_atomically(path, text):
    """Write text to path via a temporary file and rename."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def parse_args(argv):
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Test Matrix homeserver for faqbot.")
    parser.add_argument("--port", type=int, default=0, help="port to bind on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--port-file", help="write the chosen port here once listening")
    parser.add_argument("--state", help="persist the whole state in this JSON file")
    parser.add_argument("--server-name", default="localhost")
    parser.add_argument("--user", action="append", default=[], metavar="@USER:SERVER=PASSWORD",
                        help="create a user (repeatable)")
    parser.add_argument("--verbose", action="store_true", help="access log on stderr")
    return parser.parse_args(argv)


def main(argv=None):
    """Start the server and serve until SIGTERM/SIGINT."""
    args = parse_args(argv if argv is not None else sys.argv[1:])
    app = HomeServer(args.server_name, args.state, args.verbose)
    try:
        app.load()
    except (OSError, ValueError, KeyError) as exc:
        sys.stderr.write(f"homeserver: cannot load state {args.state}: {exc}\n")
        return 2
    for spec in args.user:
        if "=" not in spec:
            sys.stderr.write(f"homeserver: --user needs USER=PASSWORD, got {spec!r}\n")
            return 2
        name, password = spec.split("=", 1)
        try:
            app.add_user(local_user_id(name, args.server_name), password)
        except ApiError as exc:
            sys.stderr.write(f"homeserver: {exc}\n")
            return 2
    app.save()

    try:
        server = Server(("127.0.0.1", args.port), app)
    except OSError as exc:
        sys.stderr.write(f"homeserver: cannot listen on 127.0.0.1:{args.port}: {exc}\n")
        return 1
    port = server.server_address[1]
    if args.port_file:
        write_atomically(args.port_file, f"{port}\n")
    print(f"listening on 127.0.0.1:{port}", flush=True)

    stop = threading.Event()

    def on_signal(signum, frame):
        """Ask the main thread to shut down."""
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="serve", daemon=True)
    thread.start()
    while not stop.wait(1.0):
        pass
    app.stopping.set()
    with app.lock:
        app.cond.notify_all()
    server.shutdown()
    server.close_connections()
    server.server_close()
    app.save()
    thread.join(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
