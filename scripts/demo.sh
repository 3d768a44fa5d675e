#!/bin/sh
# Quick start: installs what is missing, builds faqbot, and starts a terminal
# chat with the bot on the intents and responses built into it.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFAQBOT_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec build/faqbot chat "$@"
