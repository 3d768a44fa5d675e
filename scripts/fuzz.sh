#!/bin/sh
# Builds the libFuzzer targets of tests/fuzz/ with clang (ASan and UBSan,
# coverage-instrumented library) into build-fuzz/ and runs each one for a
# bounded time. CI runs it as its own step. New inputs the fuzzers find go
# to build-fuzz/corpus/<target>/ (the seeds in tests/fuzz/corpus/<target>/
# are only read); a crash, leak, timeout or out-of-memory input is written
# to build-fuzz/artifacts/ and makes the script fail, after every target
# has run. Keep such an input as tests/fuzz/corpus/<target>/crash-<what>
# once it is fixed, so the replay tests (ctest -L fuzz) guard it.
#
# usage: scripts/fuzz.sh [TARGET...]        (default: every target built)
# Environment: FUZZ_SECONDS (60: -max_total_time per target),
# FUZZ_TIMEOUT (10: seconds one input may take before it counts as a hang),
# FUZZ_RSS_MB (2048: memory limit), FUZZ_JOBS (1; more runs that many
# fuzzing processes per target, libFuzzer's -fork), FUZZ_ARGS (more libFuzzer flags).
set -eu
cd "$(dirname "$0")/.."

SECS=${FUZZ_SECONDS:-60}
TMO=${FUZZ_TIMEOUT:-10}
RSS=${FUZZ_RSS_MB:-2048}
JOBS=${FUZZ_JOBS:-1}
B=build-fuzz
for v in "$SECS" "$TMO" "$RSS" "$JOBS"; do
	case $v in '' | *[!0-9]*) echo "fuzz.sh: FUZZ_* settings must be numbers" >&2; exit 2 ;; esac
done

sh scripts/deps.sh --test
CC=clang cmake -S . -B $B -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-O1 -g" \
	-DFAQBOT_FUZZ=ON -DFAQBOT_TESTS=OFF >/dev/null
cmake --build $B -j"$(nproc)" >/dev/null

if [ $# -gt 0 ]; then
	TARGETS="$*"
else
	TARGETS=""
	for f in $B/tests/fuzz/fuzz_*; do
		case $f in *fuzz_replay_*) continue ;; esac
		[ -x "$f" ] && TARGETS="$TARGETS ${f##*/fuzz_}"
	done
fi
[ -n "$TARGETS" ] || { echo "fuzz.sh: no fuzz target was built" >&2; exit 1; }

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
mkdir -p $B/artifacts
failed=""
for t in $TARGETS; do
	bin=$B/tests/fuzz/fuzz_$t
	seeds=tests/fuzz/corpus/$t
	dict=tests/fuzz/$t.dict
	[ -x "$bin" ] || { echo "fuzz.sh: no target $t" >&2; failed="$failed $t"; continue; }
	mkdir -p $B/corpus/$t
	set -- -max_total_time="$SECS" -timeout="$TMO" -rss_limit_mb="$RSS" -print_final_stats=1 \
		-artifact_prefix=$B/artifacts/$t-
	[ "$JOBS" -gt 1 ] && set -- "$@" -fork="$JOBS"
	[ -f "$dict" ] && set -- "$@" -dict="$dict"
	echo "== fuzz_$t: $SECS s"
	# shellcheck disable=SC2086
	if "$bin" "$@" ${FUZZ_ARGS:-} $B/corpus/$t "$seeds" >$B/fuzz-$t.log 2>&1; then
		grep -E "^#[0-9]+.*DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb" \
			$B/fuzz-$t.log || tail -n 3 $B/fuzz-$t.log
	else
		echo "fuzz_$t FAILED (log: $B/fuzz-$t.log):"
		grep -E "ERROR|SUMMARY|runtime error|Test unit written" $B/fuzz-$t.log | head -n 20
		failed="$failed $t"
	fi
done
if [ -n "$failed" ]; then
	echo "fuzz.sh: failed:$failed; inputs in $B/artifacts/" >&2
	exit 1
fi
echo "fuzz.sh: every target ran $SECS s without a finding"
