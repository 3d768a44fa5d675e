#!/bin/sh
# The whole test suite: installs what is missing, builds with AddressSanitizer
# and UBSan and warnings as errors, and runs every test (unit, content checks,
# integration) with ctest. .ci/run calls exactly this.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh --test
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DFAQBOT_SANITIZE=ON -DFAQBOT_WERROR=ON >/dev/null
cmake --build build-test -j"$(nproc)"
# The release build too: benchmarks and the eval scorer use build/faqbot.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFAQBOT_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
cd build-test
ctest --output-on-failure -j"$(nproc)" "$@"
