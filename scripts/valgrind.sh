#!/bin/sh
# valgrind memcheck over the integration suite: builds a tree without the
# sanitizers (they and valgrind do not mix) in build-valgrind/, then runs
# every integration test with the bot under memcheck (FAQBOT_WRAPPER, see
# tests/integration/harness.py). A memory error or a definite leak in any
# bot process fails its test: the harness reads valgrind's summary from the
# bot's log, and --error-exitcode turns an error into a non-zero exit.
# Waits are stretched by FAQBOT_TIMEOUT_SCALE (default 4), since the bot
# runs many times slower under valgrind. CI runs this as its own step.
# --run-libc-freeres=no: glibc's own clean-up at exit (which valgrind calls)
# frees a bogus pointer after the name lookups the IRC tests make (bookworm): that is
# glibc's, not the bot's, and the bot frees everything of its own.
#
# usage: sh scripts/valgrind.sh [ctest arguments, e.g. -R test_matrix]
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh --test
B=build-valgrind
cmake -S . -B $B -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFAQBOT_WERROR=ON >/dev/null
cmake --build $B -j"$(nproc)" --target faqbot faqbot-train >/dev/null
export FAQBOT_WRAPPER="valgrind --error-exitcode=99 --run-libc-freeres=no --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --num-callers=30"
export FAQBOT_TIMEOUT_SCALE="${FAQBOT_TIMEOUT_SCALE:-4}"
cd $B
ctest --output-on-failure -L integration "$@"
