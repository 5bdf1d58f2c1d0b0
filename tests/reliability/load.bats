#!/usr/bin/env bats
# Load (issue 6, "prove nothing is lost"): 8 publishers of N events each
# ($EV_LOAD_N, default 1500) publish at once, half of them with --no-sync
# and half durable, lines piped from a generator into `evpub -l`, while 4
# durable subscriptions are served at the same time:
#   h1  a handler, one at a time, on load.a.#    (half the events)
#   h2  a handler, one at a time, on load.b.x.#  (a quarter)
#   j4  a handler with -j 4, on load.b.#          (half)
#   s   streaming every load.# event to a file    (all)
# (a handler costs ~0.7 ms an event, so they take subsets). When every
# queue, cur/ and retry/ is empty, the evsubs are stopped with SIGTERM (exit
# 0), and every id an evpub printed must be in each matching
# subscription's output exactly once: nothing lost, nothing duplicated (no
# crash happened, so no redelivery is allowed).
#
# Figures go to fd 3: publish events/s, drain time, the largest queue seen
# per subscription (sampled every 100 ms), each evsub's peak RSS.

bats_require_minimum_version 1.5.0
load ../helpers

PUBS=8
SUBS="h1 h2 j4 s"

setup() {
	ev_setup
	T=$BATS_TEST_TMPDIR
	N=${EV_LOAD_N:-1500}
}

teardown() {
	ev_teardown
}

now() { date +%s.%N; }

# gen P: N lines for publisher P; line j has type TYPES[j % 4].
TYPES=(load.a.x load.a.y load.b.x load.b.y)
gen() {
	awk -v p="$1" -v n="$N" 'BEGIN {
		split("load.a.x load.a.y load.b.x load.b.y", t, " ")
		for (j = 0; j < n; j++) {
			printf "{\"type\":\"%s\",\"payload\":{\"p\":%d,\"j\":%d}}\n", t[j % 4 + 1], p, j
			# bursts of 100 lines, so evpub commits batches of
			# varying size as it reads what is ready
			if (j % 100 == 99) fflush()
		}
	}'
}

# Sample each subscription's queue length every 100 ms; keep the maximum
# in $T/max.NAME.
sampler() {
	local s n
	declare -A max
	for s in $SUBS; do max[$s]=0; done
	while :; do
		for s in $SUBS; do
			n=$(ls -U "$EV_SPOOL/subs/$s/queue" 2>/dev/null | wc -l)
			if [ "$n" -gt "${max[$s]}" ]; then
				max[$s]=$n
				echo "$n" > "$T/max.$s"
			fi
		done
		sleep 0.1
	done
}

# Every queue, cur/ and retry/ of the 4 subscriptions is empty.
drained() {
	local s d
	for s in $SUBS; do
		for d in queue cur retry; do
			[ "$(count_files "$EV_SPOOL/subs/$s/$d")" -eq 0 ] || return 1
		done
	done
}

# exactly_once NAME GOT EXPECTED: the ids in file GOT are those in
# EXPECTED, each once.
exactly_once() {
	local name=$1 got=$2 want=$3 dup lost extra
	dup=$(sort "$got" | uniq -d | head -5)
	[ -z "$dup" ] || { echo "$name: delivered twice: $dup" >&2; return 1; }
	lost=$(comm -13 <(sort "$got") <(sort "$want") | head -5)
	[ -z "$lost" ] || { echo "$name: lost ($(comm -13 <(sort "$got") \
	    <(sort "$want") | wc -l)): $lost" >&2; return 1; }
	extra=$(comm -23 <(sort "$got") <(sort "$want") | head -5)
	[ -z "$extra" ] || { echo "$name: not expected: $extra" >&2; return 1; }
	[ "$(wc -l < "$got")" -eq "$(wc -l < "$want")" ]
}

@test "load: $PUBS publishers and 4 subscriptions at once, every event exactly once" {
	local s i p pid t0 t1 t2 rc limit
	for s in h1 h2 j4 s; do : > "$T/got.$s"; echo 0 > "$T/max.$s"; done
	make_sub h1 'load.a.#'
	make_sub h2 'load.b.x.#'
	make_sub j4 'load.b.#'
	make_sub s 'load.#'

	declare -A SUBPID
	ev_bg evsub -n h1 -q -e 'load.a.#' -- \
	    sh -c 'cat >/dev/null; echo "$EV_ID" >> "$0"' "$T/got.h1"
	SUBPID[h1]=$!
	ev_bg evsub -n h2 -q -e 'load.b.x.#' -- \
	    sh -c 'cat >/dev/null; echo "$EV_ID" >> "$0"' "$T/got.h2"
	SUBPID[h2]=$!
	ev_bg evsub -n j4 -q -j 4 -e 'load.b.#' -- \
	    sh -c 'cat >/dev/null; echo "$EV_ID" >> "$0"' "$T/got.j4"
	SUBPID[j4]=$!
	ev_bg evsub -n s -e 'load.#' > "$T/s.out"
	SUBPID[s]=$!
	ev_bg sampler
	local sampler_pid=$!

	# All at once: half with --no-sync, half durable.
	local pubs=()
	t0=$(now)
	for ((p = 0; p < PUBS; p++)); do
		local sync=()
		((p % 2)) && sync=(--no-sync)
		ev_bg evpub -l "${sync[@]}" < <(gen "$p") > "$T/pub.$p" 2> "$T/pub.$p.err"
		pubs+=($!)
	done
	for ((p = 0; p < PUBS; p++)); do
		rc=0
		wait "${pubs[$p]}" || rc=$?
		[ "$rc" -eq 0 ] || { echo "evpub $p: exit $rc: $(cat "$T/pub.$p.err")" >&2; false; }
		[ ! -s "$T/pub.$p.err" ] || { echo "evpub $p: $(cat "$T/pub.$p.err")" >&2; false; }
		[ "$(wc -l < "$T/pub.$p")" -eq "$N" ] || {
			echo "evpub $p printed $(wc -l < "$T/pub.$p") ids, not $N" >&2; false; }
	done
	t1=$(now)

	# Bounded: handlers of h1 take ~4N events one at a time; allow
	# ~10 ms each on a busy machine.
	limit=$((120 + N * 4 / 100))
	wait_until "$limit" drained
	t2=$(now)

	# Peak RSS, then stop each evsub by its pid: exit 0.
	declare -A RSS
	for s in $SUBS; do
		pid=${SUBPID[$s]}
		RSS[$s]=$(awk '/^VmHWM:/ { print $2 " " $3 }' "/proc/$pid/status")
		kill -TERM "$pid"
		rc=0
		wait "$pid" || rc=$?
		[ "$rc" -eq 0 ] || { echo "evsub $s: exit $rc" >&2; false; }
	done
	kill -TERM "$sampler_pid"
	wait "$sampler_pid" || true

	# What each subscription should have: the ids, by type.
	for ((p = 0; p < PUBS; p++)); do
		awk -v n="$N" 'BEGIN { split("load.a.x load.a.y load.b.x load.b.y", t, " ")
			for (j = 0; j < n; j++) print t[j % 4 + 1] }' |
		    paste -d' ' - "$T/pub.$p"
	done > "$T/published"
	[ "$(cut -d' ' -f2 "$T/published" | sort | uniq -d | wc -l)" -eq 0 ]
	awk '$1 ~ /^load\.a\./ { print $2 }' "$T/published" > "$T/want.h1"
	awk '$1 ~ /^load\.b\.x$/ { print $2 }' "$T/published" > "$T/want.h2"
	awk '$1 ~ /^load\.b\./ { print $2 }' "$T/published" > "$T/want.j4"
	cut -d' ' -f2 "$T/published" > "$T/want.s"

	# The stream: whole JSON events of the right types.
	jq -r '"\(.type) \(.id)"' "$T/s.out" > "$T/s.typed"
	cut -d' ' -f2 "$T/s.typed" > "$T/got.s"
	[ -z "$(comm -3 <(sort "$T/s.typed") <(sort "$T/published") | head -1)" ] || {
		echo "s: stream differs from what was published" >&2; false; }

	for s in $SUBS; do
		exactly_once "$s" "$T/got.$s" "$T/want.$s"
	done

	local total=$((PUBS * N))
	{
		echo "# load: $PUBS publishers x $N events = $total events"
		awk -v n="$total" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
			printf "#   publish: %.2f s, %.0f events/s overall\n", b - a, n / (b - a)
			printf "#   drained %.2f s after the start, %.2f s after the last evpub\n", c - a, c - b }'
		for s in $SUBS; do
			echo "#   $s: $(wc -l < "$T/want.$s") events, max queue depth $(cat "$T/max.$s"), evsub peak RSS ${RSS[$s]}"
		done
	} >&3
}
