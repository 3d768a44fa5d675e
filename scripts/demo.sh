#!/bin/sh
# Quick start: installs what is missing and builds faqbot, then starts, all
# on 127.0.0.1, the test Matrix homeserver, the bot (on the intents and
# responses built into it), and a terminal client in which you are the
# patient: what you type goes to a support room through the real Matrix
# protocol path, and the bot's answers come back. /quit leaves and stops
# everything.
#
#   sh scripts/demo.sh          the Matrix demo
#   sh scripts/demo.sh --chat   just a terminal chat with the bot (no server)
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFAQBOT_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

if [ "${1:-}" = "--chat" ]; then
	shift
	exec build/faqbot chat "$@"
fi

work=$(mktemp -d /tmp/faqbot-demo.XXXXXX)
hs_pid=""
bot_pid=""
cleanup() {
	[ -n "$bot_pid" ] && kill "$bot_pid" 2>/dev/null && wait "$bot_pid" 2>/dev/null
	[ -n "$hs_pid" ] && kill "$hs_pid" 2>/dev/null && wait "$hs_pid" 2>/dev/null
	[ -n "${FAQBOT_DEMO_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT INT TERM

python3 tests/homeserver/homeserver.py --port 0 --port-file "$work/port" \
	--state "$work/hs.json" --server-name localhost \
	--user @faqbot:localhost=botpass --user @you:localhost=youpass \
	--user @mod:localhost=modpass >/dev/null 2>"$work/homeserver.log" &
hs_pid=$!
i=0
while [ ! -s "$work/port" ]; do
	i=$((i + 1))
	[ $i -gt 100 ] && { echo "the test homeserver did not start" >&2; exit 1; }
	sleep 0.1
done
port=$(cat "$work/port")

umask 077
cat >"$work/faqbot.json" <<JSON
{
  "_about": "demo configuration: drafts are shown (marked) because the shipped responses await clinical review",
  "state_dir": "$work/state",
  "matrix": {
    "homeserver": "http://127.0.0.1:$port",
    "user_id": "@faqbot:localhost",
    "password": "botpass",
    "invite_allow": ["@you:localhost", "@mod:localhost"]
  },
  "responses": {"allow_drafts": true},
  "policy": {"cooldown_s": 0}
}
JSON
build/faqbot run -c "$work/faqbot.json" 2>"$work/faqbot.log" &
bot_pid=$!

cat <<MSG
faqbot demo: a Matrix homeserver on 127.0.0.1:$port, the bot, and you as
the patient in #support:localhost. Ask a question about metastatic cancer
("what is immunotherapy?", "can kidney cancer be cured if it spreads?");
the bot's log is in $work/faqbot.log. Type /quit to leave.

MSG
python3 tests/homeserver/patient.py --homeserver "http://127.0.0.1:$port" \
	--user @you:localhost --password youpass --room '#support:localhost' \
	--create --invite @faqbot:localhost --wait-member @faqbot:localhost
