#!/usr/bin/env bats
# Cross-tool scenarios: publishers and subscribers running at the same time,
# handlers that publish, bursts.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	ev_setup
	export T=$BATS_TEST_TMPDIR
}

teardown() {
	ev_teardown
}

keys_in() {
	ls "$EV_SPOOL/subs/$1/$2" 2>/dev/null | sort
}

# Has an evsub without -n registered its ephemeral subscription?
eph_present() {
	grep -q '^eph/' "$EV_SPOOL/subs.idx" 2>/dev/null
}

lines_of() {
	if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi
}

# has_lines FILE N: FILE has at least N lines.
has_lines() {
	[ "$(lines_of "$1")" -ge "$2" ]
}

@test "two publishers and three subscriptions at once: each subscription gets exactly its events, none twice" {
	make_sub orders 'order.*'
	make_sub all '#'
	make_sub created 'order.created'
	ev_bg evsub -n orders -e 'order.*' -- \
	    sh -c 'cat >> "$0"' "$T/orders"
	p1=$!
	ev_bg evsub -n all -e '#' -j 3 -- sh -c 'echo "$EV_ID" >> "$0"' "$T/all"
	p2=$!
	ev_bg evsub -n created -e 'order.created' -F '%i' > "$T/created"
	p3=$!
	ev_bg sh -c 'for i in $(seq 60); do
		evpub order.created i:=$i && evpub user.seen i:=$i || exit 1
	done' > "$T/ids1"
	q1=$!
	ev_bg sh -c 'for i in $(seq 60); do evpub order.paid i:=$i || exit 1; done' \
	    > "$T/ids2"
	q2=$!
	wait "$q1"
	wait "$q2"
	cat "$T/ids1" "$T/ids2" > "$T/ids"
	[ "$(wc -l < "$T/ids")" -eq 180 ]

	wait_until 60 has_lines "$T/orders" 120
	wait_until 60 has_lines "$T/all" 180
	wait_until 60 has_lines "$T/created" 60
	for p in "$p1" "$p2" "$p3"; do
		kill -TERM "$p"
		wait "$p"
	done

	# "all" got every event once; "orders" the 120 order.* ones; "created"
	# the 60 order.created ones.
	[ "$(sort "$T/all")" = "$(sort "$T/ids")" ]
	jq -r .id "$T/orders" | sort > "$T/orders.ids"
	[ "$(jq -r 'select(.type | startswith("order.")) | .id' \
	    "$EV_SPOOL"/log/* | sort)" = "$(cat "$T/orders.ids")" ]
	[ "$(wc -l < "$T/orders.ids")" -eq 120 ]
	[ "$(sort "$T/created")" = "$(jq -r 'select(.type == "order.created") |
	    .id' "$EV_SPOOL"/log/* | sort)" ]
	[ "$(sort -u "$T/created" | wc -l)" -eq 60 ]
	# One publisher's events reach a -j 1 subscriber in its publish order.
	[ "$(jq -r 'select(.type == "order.paid") | .payload.i' "$T/orders" |
	    tr '\n' ' ')" = "$(seq 60 | tr '\n' ' ')" ]
	for s in orders all created; do
		[ -z "$(keys_in $s queue)$(keys_in $s cur)$(keys_in $s retry)" ]
	done
}

@test "an event published by a handler records the handling event as its cause and keeps the chain's correlation" {
	make_sub step1 'flow.start'
	make_sub step2 'flow.middle'
	make_sub seen 'flow.*'
	first=$(evpub flow.start n=1)
	# The handler's evpub finds the spool through EV_SPOOL, which evsub
	# sets: the test's own is not passed down.
	env -u EV_SPOOL evsub -s "$EV_SPOOL" -n step1 -e 'flow.start' --once -- \
	    sh -c 'evpub flow.middle n=2 > "$0"' "$T/second"
	second=$(cat "$T/second")
	env -u EV_SPOOL evsub -s "$EV_SPOOL" -n step2 -e 'flow.middle' --once -- \
	    sh -c 'evpub flow.end n=3 > "$0"' "$T/third"
	third=$(cat "$T/third")

	ev=$EV_SPOOL/log
	[ "$(jq -r .causationid "$ev/$second")" = "$first" ]
	[ "$(jq -r .correlationid "$ev/$second")" = "$first" ]
	[ "$(jq -r .causationid "$ev/$third")" = "$second" ]
	[ "$(jq -r .correlationid "$ev/$third")" = "$first" ]
	# The first event has no cause of its own.
	[ "$(jq -r '.causationid // "none"' "$ev/$first")" = none ]
	# And the chain is delivered like any other events.
	run --separate-stderr evsub -n seen -e 'flow.*' --once -F '%i %t'
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf '%s\n' "$first flow.start" "$second flow.middle" \
	    "$third flow.end")" ]
}

@test "a burst of 100 events from 100 concurrent evpub while evsub runs: all handled, none lost, none twice" {
	make_sub burst '#'
	ev_bg evsub -n burst -e '#' -j 2 -- sh -c 'echo "$EV_ID" >> "$0"' "$T/log"
	sub=$!
	ev_bg evsub -e 'b.*' -F '%i' > "$T/eph"
	eph=$!
	wait_until 10 eph_present
	pids=()
	for i in $(seq 100); do
		ev_bg evpub b.e i:=$i > "$T/id.$i"
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	cat "$T"/id.* | sort > "$T/ids"
	[ "$(sort -u "$T/ids" | wc -l)" -eq 100 ]
	wait_until 30 has_lines "$T/log" 100
	wait_until 30 has_lines "$T/eph" 100
	kill -TERM "$sub" "$eph"
	wait "$sub"
	wait "$eph"
	[ "$(sort "$T/log")" = "$(cat "$T/ids")" ]
	[ "$(sort "$T/eph")" = "$(cat "$T/ids")" ]
	[ -z "$(keys_in burst queue)$(keys_in burst cur)" ]
}

@test "a batch of 100 events published at once while evsub runs: all handled in publish order" {
	make_sub batch '#'
	ev_bg evsub -n batch -e '#' -- sh -c 'echo "$EV_ID" >> "$0"' "$T/log"
	sub=$!
	for i in $(seq 100); do
		echo "{\"type\":\"batch.e\",\"payload\":{\"i\":$i}}"
	done | evpub -l > "$T/ids"
	wait_until 30 has_lines "$T/log" 100
	kill -TERM "$sub"
	wait "$sub"
	[ "$(cat "$T/log")" = "$(cat "$T/ids")" ]
	[ -z "$(keys_in batch queue)$(keys_in batch cur)" ]
}

@test "a subscriber stopped with SIGTERM and restarted while a publisher runs loses nothing and repeats nothing" {
	make_sub rs 'rs.*'
	ev_bg sh -c 'for i in $(seq 150); do evpub rs.e i:=$i || exit 1; done' \
	    > "$T/ids"
	pubpid=$!
	for round in 1 2 3 4; do
		ev_bg evsub -n rs -e 'rs.*' -j 2 -- \
		    sh -c 'sleep 0.01; echo "$EV_ID" >> "$0"' "$T/log"
		pid=$!
		wait_until 30 has_lines "$T/log" $((round * 20))
		kill -TERM "$pid"
		wait "$pid"
	done
	wait "$pubpid"
	run --separate-stderr evsub -n rs -e 'rs.*' --once -- \
	    sh -c 'echo "$EV_ID" >> "$0"' "$T/log"
	[ "$status" -eq 0 ]
	[ "$(wc -l < "$T/ids")" -eq 150 ]
	# A graceful stop lets handlers finish: exactly once each.
	[ "$(sort "$T/log")" = "$(sort "$T/ids")" ]
	[ -z "$(keys_in rs queue)$(keys_in rs cur)$(keys_in rs retry)" ]
}
