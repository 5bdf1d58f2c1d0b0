#!/usr/bin/env bats
# evsub killed with SIGKILL at random moments while it handles events:
# nothing acknowledged is lost, everything unacknowledged comes again with
# EV_ATTEMPT counting up, duplicates stay bounded, and no lock is left held.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	ev_setup
	export T=$BATS_TEST_TMPDIR
	mkdir "$T/running"
	# The handler logs "ID ATTEMPT" with one short O_APPEND write (atomic),
	# after a few ms of "work". running/PID is there while it runs: a
	# handler orphaned by a killed evsub goes on and must be waited for.
	cat > "$T/h" <<'EOF'
#!/bin/sh
touch "$T/running/$$"
sleep 0.00$(($$ % 10))
echo "$EV_ID $EV_ATTEMPT" >> "$T/log"
rm -f "$T/running/$$"
EOF
	chmod +x "$T/h"
}

teardown() {
	ev_teardown
}

keys_in() {
	ls "$EV_SPOOL/subs/$1/$2" 2>/dev/null | sort
}

settled() {
	[ -z "$(keys_in k queue)$(keys_in k cur)$(keys_in k retry)" ]
}

handlers_done() {
	[ "$(count_files "$T/running")" -eq 0 ]
}

# crash_loop JOBS: publish N events (2/3 before, 1/3 while evsub is being
# killed), kill -9 evsub -j JOBS again and again after random short delays
# (at most K times), then let a last evsub --once finish, and check the log.
# N and K are EV_CRASH_EVENTS (300) and EV_CRASH_KILLS (60): CI runs these;
# larger runs are one environment variable away.
crash_loop() {
	local jobs=$1 kills=0 pid pubpid rc dups
	local n=${EV_CRASH_EVENTS:-300} maxkills=${EV_CRASH_KILLS:-60}
	make_sub k '#'
	for i in $(seq $((n * 2 / 3))); do
		echo "{\"type\":\"crash.e\",\"payload\":{\"i\":$i}}"
	done | evpub -l > "$T/ids"
	ev_bg sh -c 'for i in $(seq "$1" "$2"); do
		evpub crash.e i:=$i || exit 1; sleep 0.01; done' sh \
	    $((n * 2 / 3 + 1)) "$n" >> "$T/ids"
	pubpid=$!
	while [ "$kills" -lt "$maxkills" ]; do
		ev_bg evsub -n k -e '#' -j "$jobs" -- "$T/h" 2>> "$T/err"
		pid=$!
		sleep "$(printf '0.%03d' $((RANDOM % 200)))"
		if ! kill -KILL "$pid" 2>/dev/null; then
			rc=0
			wait "$pid" || rc=$?
			echo "evsub exited by itself ($rc): $(cat "$T/err")" >&2
			return 1
		fi
		wait "$pid" || true
		kills=$((kills + 1))
		if ! kill -0 "$pubpid" 2>/dev/null && settled; then
			break
		fi
	done
	wait "$pubpid"
	[ "$(wc -l < "$T/ids")" -eq "$n" ]
	# Right after the last kill the subscription can be served again: the
	# lock died with its holder.
	run --separate-stderr evsub -n k -e '#' -j "$jobs" --once -- "$T/h"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	wait_until 20 handlers_done
	# No restart was ever refused or reported anything.
	[ ! -s "$T/err" ]

	# Every event was handled: exactly the N published ids, none missing.
	[ "$(cut -d' ' -f1 "$T/log" | sort -u)" = "$(sort "$T/ids")" ]
	# A redelivery never repeats an attempt number: EV_ATTEMPT counts up.
	[ -z "$(sort "$T/log" | uniq -d)" ]
	dups=$(($(wc -l < "$T/log") - n))
	echo "# -j $jobs: $n events, $kills kills, $dups duplicate deliveries," \
	    "highest attempt $(cut -d' ' -f2 "$T/log" | sort -n | tail -n 1)" >&3
	# At most the events being handled at each kill come again.
	[ "$dups" -le $((kills * jobs)) ]
	# Nothing is left over: queues empty, no state of finished events.
	settled
	[ -z "$(keys_in k dead)$(keys_in k state)" ]
}

@test "evsub -j 1 killed with SIGKILL again and again delivers every event at least once, duplicates bounded by the kills" {
	crash_loop 1
}

@test "evsub -j 4 killed with SIGKILL again and again delivers every event at least once, duplicates bounded by kills x jobs" {
	crash_loop 4
}

@test "an event in flight when evsub is killed comes again with EV_ATTEMPT 2, then 3" {
	make_sub k '#'
	id=$(evpub crash.one)
	for n in 1 2; do
		ev_bg evsub -n k -e '#' -- sh -c 'echo "$EV_ATTEMPT" >> "$0"
		    echo $$ > "$0.pid"; exec sleep 30' "$T/att.$n"
		pid=$!
		wait_until 10 test -s "$T/att.$n.pid"
		[ "$(keys_in k cur)" = "$id" ]
		kill -KILL "$pid"
		wait "$pid" || true
		# The handler, orphaned, is still running: stop it.
		kill -KILL "$(cat "$T/att.$n.pid")"
	done
	[ "$(cat "$T/att.1")" = 1 ]
	[ "$(cat "$T/att.2")" = 2 ]
	run --separate-stderr evsub -n k -e '#' --once -- \
	    sh -c 'echo "$EV_ID $EV_ATTEMPT" > "$0"' "$T/last"
	[ "$status" -eq 0 ]
	[ "$(cat "$T/last")" = "$id 3" ]
	settled
	[ -z "$(keys_in k state)" ]
}

@test "an ephemeral evsub killed with SIGKILL is dropped by the next change of the subscriptions" {
	ev_bg evsub -e 'x.*' -F '%i'
	pid=$!
	wait_until 10 grep -qs '^eph/' "$EV_SPOOL/subs.idx"
	eph=$(grep '^eph/' "$EV_SPOOL/subs.idx" | cut -d' ' -f1)
	kill -KILL "$pid"
	wait "$pid" || true
	# Its queue is still listed until someone rewrites the index...
	[ -d "$EV_SPOOL/$eph/queue" ]
	# ...as a new subscription does.
	make_sub fresh 'y.*'
	[ -z "$(grep '^eph/' "$EV_SPOOL/subs.idx")" ]
	[ ! -e "$EV_SPOOL/$eph" ]
	grep -qx 'subs/fresh y.\*' "$EV_SPOOL/subs.idx"
	# Publishing no longer feeds the dead one.
	evpub x.e > /dev/null
	[ ! -e "$EV_SPOOL/$eph" ]
}
