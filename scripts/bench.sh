#!/bin/sh
# Benchmarks of the matcher, reported the way BENCHMARKS.md reports its
# peers: median µs per message / peak RSS, medians of several runs, and
# ratios to the peer (a C loop running every PCRE2 pattern, interpreted and
# JIT) on the same machine, patterns and messages. Figures only: nothing
# here passes or fails on a timing.
#
# Builds a Release tree in build-bench/, generates the intent sets (30, 300,
# 1,000 and 3,000 intents) and message streams with tests/bench/gen_intents.py,
# runs bench_classify and bench_baseline on them and on the shipped set, and
# prints the tables. Every run's full output stays in build-bench/bench-out/.
# (The daemon has its own: tests/bench/bench_daemon.py for latency and memory,
# tests/bench/soak.py for a long run with faults and a kill -9; see
# tests/bench/README.md.)
#
# Environment: BENCH_RUNS (3), BENCH_SIZES ("30 300 1000 3000"),
# BENCH_TIMEOUT (seconds per process, 300). Every generated set is linted
# too, and the time it took printed (lint follows the matcher's prefilter:
# about 0.5 s at 1,000 intents, 3 s at 3,000).
set -eu
cd "$(dirname "$0")/.."

RUNS=${BENCH_RUNS:-3}
SIZES=${BENCH_SIZES:-"30 300 1000 3000"}
TMO=${BENCH_TIMEOUT:-300}
B=build-bench
DATA=$B/bench-data
OUT=$B/bench-out
GEN=tests/bench/gen_intents.py
case $RUNS in '' | *[!0-9]*) echo "bench.sh: BENCH_RUNS must be a number" >&2; exit 2 ;; esac
if [ "$RUNS" -lt 1 ] || [ "$RUNS" -gt 9 ]; then
	echo "bench.sh: BENCH_RUNS: 1 to 9" >&2
	exit 2
fi

echo "bench.sh: building $B (Release)" >&2
cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DFAQBOT_TESTS=OFF >/dev/null
cmake --build $B -j"$(nproc)" --target faqbot faqbot-train bench_classify bench_baseline >/dev/null
# bench_classify gets its learned model as the bot does, from faqbot-train,
# trained once per set and cached here.
FAQBOT_TRAINER=$PWD/$B/faqbot-train
FAQBOT_CACHE_DIR=$PWD/$B/model-cache
export FAQBOT_TRAINER FAQBOT_CACHE_DIR
mkdir -p "$FAQBOT_CACHE_DIR"
CLASSIFY=$B/tests/bench/bench_classify
BASELINE=$B/tests/bench/bench_baseline
mkdir -p "$DATA" "$OUT"
rm -f "$OUT"/*.txt

# The peer runs every pattern on every message, so at scale it gets the
# first N messages of the same stream (a random sample of it), to stay
# within minutes.
peer_messages() {
	case $1 in
	shipped | 30) echo 10000 ;;
	300) echo 3000 ;;
	1000) echo 1000 ;;
	*) echo 300 ;;
	esac
}

# Regenerates a set when the generator or the lexicon is newer than it.
stale() {
	[ ! -f "$1/messages.txt" ] ||
		[ -n "$(find "$GEN" intents/lexicon.json -newer "$1/messages.txt")" ]
}
for n in $SIZES; do
	if stale "$DATA/$n"; then
		python3 $GEN --intents "$n" --out "$DATA/$n" >&2
	fi
done
if stale "$DATA/shipped"; then
	python3 $GEN --from intents --out "$DATA/shipped" >&2
fi
# The same 1,000 intents in files of 100, to show what file size does to loading.
if stale "$DATA/1000-per100"; then
	python3 $GEN --intents 1000 --per-file 100 --messages 100 --out "$DATA/1000-per100" >&2
fi

for n in $SIZES; do
	t0=$(date +%s.%N)
	last=$($B/faqbot lint "$DATA/$n" | tail -n 1)
	printf 'lint %s intents (%s s): %s\n' "$n" \
		"$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" \
		"$last" >&2
done

# One set: RUNS runs of faqbot, of faqbot without the JIT, and of the peer.
bench_set() {
	name=$1
	dir=$2
	msgs=$3
	timeout "$TMO" $BASELINE --dump ${dir:+"$dir"} >"$OUT/$name-patterns.tsv"
	np=$(peer_messages "$name")
	r=1
	while [ $r -le "$RUNS" ]; do
		echo "bench.sh: $name, run $r of $RUNS" >&2
		timeout "$TMO" $CLASSIFY -m "$msgs" ${dir:+"$dir"} >"$OUT/$name-faqbot-$r.txt"
		timeout "$TMO" $CLASSIFY -I -m "$msgs" ${dir:+"$dir"} >"$OUT/$name-nojit-$r.txt"
		timeout "$TMO" $BASELINE -n "$np" "$OUT/$name-patterns.tsv" "$msgs" \
			>"$OUT/$name-interp-$r.txt"
		timeout "$TMO" $BASELINE -j -n "$np" "$OUT/$name-patterns.tsv" "$msgs" \
			>"$OUT/$name-jit-$r.txt"
		r=$((r + 1))
	done
}

SETS="shipped"
bench_set shipped "" "$DATA/shipped/messages.txt"
for n in $SIZES; do
	bench_set "$n" "$DATA/$n" "$DATA/$n/messages.txt"
	SETS="$SETS $n"
done
timeout "$TMO" $CLASSIFY -n 100 -m "$DATA/1000-per100/messages.txt" "$DATA/1000-per100" \
	>"$OUT/1000-per100-faqbot-1.txt"

# field NAME TOOL KEY [N]: the median over the runs of field N (default 2)
# of the line starting with KEY.
field() {
	r=1
	while [ $r -le "$RUNS" ]; do
		f="$OUT/$1-$2-$r.txt"
		[ -f "$f" ] && awk -v k="$3" -v n="${4:-2}" '$1 == k { print $n; exit }' "$f"
		r=$((r + 1))
	done | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'
}

# ratio A B: A / B with one decimal, or "-"
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.1f", a / b; else print "-" }'
}

heading() {
	printf '| %s |' "$1"
	for s in $SETS; do
		if [ "$s" = shipped ]; then
			printf ' shipped (%s intents) |' "$(field shipped faqbot intents)"
		else
			printf ' %s intents |' "$s"
		fi
	done
	printf '\n|---|'
	for s in $SETS; do printf -- '---|'; done
	printf '\n'
}

row() { # label tool rsskey rssfield
	printf '| %s |' "$1"
	for s in $SETS; do
		printf ' %s µs / %s MB |' "$(field "$s" "$2" median)" "$(field "$s" "$2" "$3" "$4")"
	done
	printf '\n'
}

echo
echo "Median µs per message / peak RSS (medians of $RUNS runs; $(nproc) cores, $(uname -m))"
echo
heading peer
row "faqbot: normalise, Aho-Corasick prefilter, PCRE2 JIT" faqbot rss_peak 2
row "faqbot, patterns interpreted (-I; RSS after dropping the JIT code)" nojit rss_nojit 2
row "C, PCRE2 loop over every pattern, interpreted" interp rss_peak 2
row "C, PCRE2 loop over every pattern, JIT" jit rss_peak 2
echo
printf 'The peer classified the first %s / %s / %s / %s messages of each stream;\n' \
	"$(peer_messages 30)" "$(peer_messages 300)" "$(peer_messages 1000)" "$(peer_messages 3000)"
echo "faqbot all 10,000. Peer RSS has no lexicon, index or responses in it."
echo
echo "Ratios (peer median / faqbot median, same machine and data)"
echo
heading "peer / faqbot"
for t in interp jit; do
	if [ $t = interp ]; then printf '| PCRE2 loop, interpreted |'; else printf '| PCRE2 loop, JIT |'; fi
	for s in $SETS; do
		printf ' %s× |' "$(ratio "$(field "$s" $t median)" "$(field "$s" faqbot median)")"
	done
	printf '\n'
done
printf '| faqbot without the JIT (-I) |'
for s in $SETS; do
	printf ' %s× |' "$(ratio "$(field "$s" nojit median)" "$(field "$s" faqbot median)")"
done
printf '\n'
echo
echo "faqbot in detail (medians of $RUNS runs)"
echo
heading figure
detail() { # label tool key [field] [unit]
	printf '| %s |' "$1"
	for s in $SETS; do printf ' %s%s |' "$(field "$s" "$2" "$3" "${4:-2}")" "${5:-}"; done
	printf '\n'
}
detail "patterns" faqbot patterns
detail "load" faqbot load 2 " ms"
detail "RSS at start (binary, libraries)" faqbot rss_start 2 " MB"
detail "RSS peak after load" faqbot rss_load 2 " MB"
detail "compiled patterns" faqbot pattern_code 2 " KiB"
detail "JIT code" faqbot pattern_code 5 " KiB"
detail "messages/s" faqbot throughput
detail "median" faqbot median 2 " µs"
detail "p90" faqbot p90 2 " µs"
detail "p99" faqbot p99 2 " µs"
detail "max" faqbot max 2 " µs"
detail "normalise (median)" faqbot normalise 2 " µs"
detail "normalise + scan (median)" faqbot norm+scan 2 " µs"
detail "candidate patterns per message" faqbot candidates
detail "answered" faqbot answered
detail "median, rules alone" faqbot rules_only 2 " µs"
detail "with the model / rules alone" faqbot rules_only 11
detail "model size" faqbot model 10 " MB"
detail "p99 without the JIT" nojit p99 2 " µs"
echo
RUNS_SAVED=$RUNS
RUNS=1
echo "Load of the same 1,000 intents in files of 100 intents (instead of 25):" \
	"$(field 1000-per100 faqbot load) ms."
RUNS=$RUNS_SAVED
if echo " $SIZES " | grep -q ' 1000 '; then
	echo "Targets at 1,000 intents: median $(field 1000 faqbot median) µs (target under 20)," \
		"peak RSS $(field 1000 faqbot rss_peak) MB (under 10)," \
		"load $(field 1000 faqbot load) ms (under 200)."
fi
echo "Every run's output: $OUT/"
