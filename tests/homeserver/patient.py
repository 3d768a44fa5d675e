#!/usr/bin/env python3
"""An interactive terminal Matrix client playing "the patient".

  python3 patient.py --homeserver http://127.0.0.1:PORT \\
      --user @patient:localhost --password patientpass --room '#support:localhost'

Joins the room, sends every line typed on stdin as m.text and prints every
message from other users as it arrives (a background thread long-polls
/sync).  "/quit" (or end of input) exits.

  python3 patient.py ... --once "How do I reset my password?" --wait 10

sends one message, prints the first reply from another user in that room and
exits 0, or exits 1 when nothing arrived within --wait seconds.
"""

import argparse
import os
import sys
import time
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mxclient import BackgroundSync, Client, MatrixError  # noqa: E402

PRINT_LOCK = threading.Lock()


def say(text, stream=None):
    """Print one line atomically (the sync thread prints too)."""
    with PRINT_LOCK:
        out = stream or sys.stdout
        out.write(text + "\n")
        out.flush()


def format_message(event):
    """Render an m.room.message event as one line: sender, kind, body."""
    content = event.get("content") or {}
    msgtype = content.get("msgtype", "?")
    kind = {"m.notice": " (notice)", "m.emote": " (emote)", "m.text": ""}.get(msgtype, f" ({msgtype})")
    relates = content.get("m.relates_to") or {}
    where = ""
    if relates.get("rel_type") == "m.thread":
        where = f" [thread {relates.get('event_id')}]"
    elif (relates.get("m.in_reply_to") or {}).get("event_id"):
        where = f" [reply to {relates['m.in_reply_to']['event_id']}]"
    body = str(content.get("body", ""))
    return f"<{event.get('sender')}>{kind}{where} {body}"


def is_reply_from_other(client, room_id):
    """Return a predicate: an m.room.message from someone else in the room."""
    def predicate(event):
        """True for messages from other users in our room."""
        return (event.get("room_id") == room_id
                and event.get("type") == "m.room.message"
                and event.get("sender") != client.user_id)
    return predicate


def enter_room(client, room, create, invite):
    """Join the room (alias or id); with --create, create it when it does not exist."""
    try:
        return client.join(room)
    except MatrixError as err:
        if not (create and err.status == 404 and room.startswith("#")):
            raise
    alias = room[1:].split(":", 1)[0]
    return client.create_room(name=alias, alias=alias, preset="public_chat", invite=invite)


def parse_args(argv):
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Terminal client playing the patient.")
    parser.add_argument("--homeserver", required=True, help="e.g. http://127.0.0.1:8008")
    parser.add_argument("--user", required=True, help="e.g. @patient:localhost")
    parser.add_argument("--password", required=True)
    parser.add_argument("--room", required=True, help="room alias (#support:localhost) or id")
    parser.add_argument("--once", metavar="MESSAGE", help="send one message, print the first reply, exit")
    parser.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the reply (--once)")
    parser.add_argument("--create", action="store_true", help="create the room (public) if the alias is unknown")
    parser.add_argument("--invite", action="append", default=[], help="with --create: invite this user")
    parser.add_argument("--wait-member", metavar="USER", action="append", default=[],
                        help="before talking, wait (up to 30 s) until USER has joined the room")
    return parser.parse_args(argv)


def wait_members(client, room_id, users, timeout_s=30.0):
    """Wait until every user in users has joined room_id; False on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        joined = client.joined_members(room_id)
        if all(u in joined for u in users):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def run_once(client, room_id, message, wait_s):
    """Send one message and print the first reply from another user."""
    client.mark()
    client.send_text(room_id, message)
    try:
        event = client.wait_for(is_reply_from_other(client, room_id), wait_s)
    except TimeoutError:
        say(f"no reply within {wait_s:g} s", sys.stderr)
        return 1
    say(format_message(event))
    return 0


def run_interactive(client, room_id):
    """Read lines from stdin and send them; print other users' messages."""
    predicate = is_reply_from_other(client, room_id)

    def on_event(event):
        """Print messages from other users in our room."""
        if predicate(event):
            say(format_message(event))

    def on_error(exc):
        """Report sync trouble (the thread retries)."""
        say(f"[sync error: {exc}]", sys.stderr)

    client.mark()
    syncer = BackgroundSync(client, on_event, timeout_ms=30000, on_error=on_error)
    syncer.start()
    say(f"[joined {room_id} as {client.user_id}; type a message, /quit to exit]", sys.stderr)
    try:
        for line in sys.stdin:
            text = line.rstrip("\n")
            if text.strip() == "/quit":
                break
            if not text.strip():
                continue
            try:
                client.send_text(room_id, text)
            except (MatrixError, OSError) as err:
                say(f"[send failed: {err}]", sys.stderr)
    except KeyboardInterrupt:
        pass
    syncer.stop()
    return 0


def main(argv=None):
    """Log in, join the room, then run in --once or interactive mode."""
    args = parse_args(argv if argv is not None else sys.argv[1:])
    client = Client(args.homeserver)
    try:
        client.login(args.user, args.password)
        room_id = enter_room(client, args.room, args.create, args.invite)
        if args.wait_member and not wait_members(client, room_id, args.wait_member):
            say(f"patient: {', '.join(args.wait_member)} did not join within 30 s", sys.stderr)
            return 2
    except (MatrixError, OSError) as err:
        say(f"patient: {err}", sys.stderr)
        return 2
    if args.once is not None:
        try:
            return run_once(client, room_id, args.once, args.wait)
        except (MatrixError, OSError) as err:
            say(f"patient: {err}", sys.stderr)
            return 2
    return run_interactive(client, room_id)


if __name__ == "__main__":
    sys.exit(main())
