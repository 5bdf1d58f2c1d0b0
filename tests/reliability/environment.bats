#!/usr/bin/env bats
# A hostile environment: the wall clock stepping back between publishes
# (through the faultinject.c shim) keeps ids unique and one publisher's
# queue order; no inotify instance to be had (inotify_init1 failing, or
# fs.inotify.max_user_instances lowered) makes evsub fall back to listing
# the queue every second, and it loses nothing.

bats_require_minimum_version 1.5.0
load ../helpers

setup_file() {
	build_fault_shim
}

setup() {
	ev_setup
	T=$BATS_TEST_TMPDIR
	printf '#!/bin/sh\ncat > /dev/null\necho "$EV_ID" >> "%s/handled"\n' \
	    "$T" > "$T/h"
	chmod +x "$T/h"
	: > "$T/handled"
}

teardown() {
	ev_teardown
	if [ -n "${OLD_INSTANCES:-}" ]; then
		sysctl -q -w fs.inotify.max_user_instances="$OLD_INSTANCES"
	fi
}

@test "a wall clock stepping back keeps ids unique and queue order within one publisher" {
	make_sub k '#'
	for r in 1 2; do
		for i in $(seq 200); do
			echo "{\"type\":\"clk\",\"payload\":{\"r\":$r,\"i\":$i}}"
		done > "$T/in.$r"
		# Each reading of the clock is 50 ms earlier than the one
		# before.
		LD_PRELOAD=$FI EVFI_CLOCK_BACK_MS=50 evpub -l < "$T/in.$r" > "$T/ids.$r"
		[ "$(wc -l < "$T/ids.$r")" -eq 200 ]
		# Keys sort in publish order within each run.
		sort -c "$T/ids.$r"
	done
	[ -z "$(sort "$T/ids.1" "$T/ids.2" | uniq -d)" ]
	# The queue hands each publisher's events out in its order.
	run --separate-stderr evsub -n k -e '#' --once -F '%p'
	[ "$status" -eq 0 ]
	for r in 1 2; do
		[ "$(printf '%s\n' "$output" | jq -r "select(.r == $r) | .i" |
		    tr '\n' ' ')" = "$(seq 200 | tr '\n' ' ')" ]
	done
}

# pub_and_check: publish 50 events while evsub (without inotify) runs,
# and all are handled.
pub_and_check() {
	for i in $(seq 50); do
		evpub ino.e i:="$i" >> "$T/acked"
	done
	wait_until 30 all_handled
	kill -0 "$SUB"
}

all_handled() {
	[ -z "$(comm -23 <(sort "$T/acked") <(sort -u "$T/handled"))" ]
}

@test "evsub without an inotify instance (inotify_init1 fails) rescans every second and loses nothing" {
	make_sub k '#'
	ev_bg env LD_PRELOAD="$FI" EVFI_CALL=inotify_init1 EVFI_ALL=1 \
	    EVFI_ERRNO=EMFILE evsub -n k -e '#' -q -- "$T/h"
	SUB=$!
	: > "$T/acked"
	pub_and_check
}

@test "evsub with fs.inotify.max_user_instances exhausted rescans every second and loses nothing" {
	OLD=$(sysctl -n fs.inotify.max_user_instances 2>/dev/null) ||
	    skip "cannot read fs.inotify.max_user_instances"
	sysctl -q -w fs.inotify.max_user_instances=0 2> "$T/sysctl.err" ||
	    skip "cannot change fs.inotify.max_user_instances: $(cat "$T/sysctl.err")"
	OLD_INSTANCES=$OLD
	make_sub k '#'
	ev_bg evsub -n k -e '#' -q -- "$T/h"
	SUB=$!
	: > "$T/acked"
	pub_and_check
	sysctl -q -w fs.inotify.max_user_instances="$OLD"
	OLD_INSTANCES=
}
