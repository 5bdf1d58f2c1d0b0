#!/usr/bin/env bats
# Fault injection (issue 6, "prove nothing is lost"): an LD_PRELOAD shim
# (faultinject.c) makes one file system call of evpub or evsub fail, or
# kills the process right at it (a power cut at that point). The calls are
# learned from a clean run, so every step of a publish and of a delivery is
# hit in turn:
#  - a publish that fails at any step (with EIO, ENOSPC or EACCES) exits
#    73 or 74 with one line, and no queue, log or id holds the event; tmp/
#    is clean after gc;
#  - a publish killed at any step leaves, after gc, a consistent spool:
#    every file a whole event, each logged event in every matching queue or
#    in none, everything acknowledged earlier still there, tmp/ empty;
#  - an evsub whose take or acknowledgement fails or is killed delivers
#    the event again after a restart: at least once, nothing lost.

bats_require_minimum_version 1.5.0
load ../helpers

setup_file() {
	build_fault_shim
}

setup() {
	ev_setup
	T=$BATS_TEST_TMPDIR
	make_sub a '#'
	make_sub b 'x.#'
	make_sub c 'other'
	# No automatic clean-up in the middle of a case: the tests run it.
	touch "$EV_SPOOL/gc.stamp"
}

teardown() {
	ev_teardown
}

# The calls a command makes, "CALL N ARG" a line, from a clean run.
learn() {
	rm -f "$T/calls"
	LD_PRELOAD=$FI EVFI_LOG=$T/calls "$@" > /dev/null
	[ -s "$T/calls" ]
}

# Every file of DIR is one whole event (one line ending with a newline, an
# object with id, type, time and payload); prints "ID TYPE KEY" of each.
whole_events() {
	local dir=$1 n bad
	n=$(count_files "$dir")
	[ "$n" -gt 0 ] || return 0
	bad=$(find "$dir" -mindepth 1 -maxdepth 1 \( ! -type f -o -empty \) | head -1)
	[ -z "$bad" ] || { echo "not a regular file, or empty: $bad" >&2; return 1; }
	bad=$(find "$dir" -mindepth 1 -maxdepth 1 -type f -exec awk '
	    FNR == 2 { print FILENAME; nextfile }' {} + | head -1)
	[ -z "$bad" ] || { echo "more than one line: $bad" >&2; return 1; }
	[ "$(cat "$dir"/* | wc -l)" -eq "$n" ] || {
		echo "$dir: a file without its newline" >&2; return 1; }
	jq -r 'if (.id|type) == "string" and (.type|type) == "string"
	    and (.time|type) == "string" and has("payload")
	    then "\(.id) \(.type) \(input_filename | split("/") | last)"
	    else error("not an event") end' "$dir"/* ||
	    { echo "a file in $dir is not an event" >&2; return 1; }
}

# After gc: tmp/ empty; every log and queue file whole; every queue entry
# the same file as its log entry; every logged event in every queue it
# matches; every id entry a logged event; the ids in $T/acked all logged.
consistent() {
	local s k id type
	rm -f "$EV_SPOOL/gc.stamp"
	evctl gc
	[ "$(count_files "$EV_SPOOL/tmp")" -eq 0 ] || {
		echo "tmp/ not clean: $(ls "$EV_SPOOL/tmp")" >&2; return 1; }
	whole_events "$EV_SPOOL/log" > "$T/logged" || return 1
	for s in a b c; do
		whole_events "$EV_SPOOL/subs/$s/queue" > /dev/null || return 1
		for k in $(ls "$EV_SPOOL/subs/$s/queue"); do
			[ "$EV_SPOOL/subs/$s/queue/$k" -ef "$EV_SPOOL/log/$k" ] || {
				echo "$s: queued $k is not the logged one" >&2
				return 1
			}
		done
	done
	while read -r id type k; do
		[ -e "$EV_SPOOL/subs/a/queue/$k" ] || {
			echo "logged $k not in a/" >&2; return 1; }
		case $type in
		x.*) [ -e "$EV_SPOOL/subs/b/queue/$k" ] || {
			echo "logged $k not in b/" >&2; return 1; } ;;
		esac
	done < "$T/logged"
	for k in $(ls "$EV_SPOOL/ids"); do
		grep -q "^$k " "$T/logged" &&
		    [ "$(stat -c %h "$EV_SPOOL/ids/$k")" -ge 2 ] || {
			echo "stale id reservation $k" >&2; return 1; }
	done
	[ -z "$(comm -23 <(sort -u "$T/acked") <(cut -d' ' -f1 "$T/logged" | sort -u))" ] || {
		echo "acknowledged but lost: $(comm -23 <(sort -u "$T/acked") \
		    <(cut -d' ' -f1 "$T/logged" | sort -u))" >&2
		return 1
	}
}

# No file anywhere in the spool holds payload marker M.
no_trace() {
	! grep -rqs -- "\"m\":\"$1\"" "$EV_SPOOL/log" "$EV_SPOOL/subs" \
	    "$EV_SPOOL/ids" || { echo "$1 left a trace:" >&2
		grep -rl -- "\"m\":\"$1\"" "$EV_SPOOL" >&2; return 1; }
}

# ARGS with every @ID@ replaced by $1, into the array A.
with_id() {
	local id=$1
	shift
	A=("${@//@ID@/$id}")
}

# fail_each CASE ARGS...: for each call that "evpub ARGS" makes, make that
# call fail and check the refusal and that nothing of it stays. An @ID@ in
# ARGS is a chosen id, the same in every faulty run, another for learning.
fail_each() {
	local name=$1 call n arg e m A
	shift
	with_id learn-id "$@"
	learn evpub "${A[@]}" m=learn-$name
	with_id chosen-1 "$@"
	set -- "${A[@]}"
	evpub x.seed m=seed-$name >> "$T/acked"
	while read -r call n arg; do
		for e in EIO ENOSPC EACCES; do
			m=$name-$call-$n-$e
			run --separate-stderr env LD_PRELOAD="$FI" EVFI_CALL=$call \
			    EVFI_NTH=$n EVFI_ERRNO=$e evpub "$@" m="$m"
			# The calls that set up the spool before the event is
			# made are not part of the publish; any failure there
			# is still a refusal of the tool.
			[ "$status" -eq 74 ] || [ "$status" -eq 73 ] || {
				echo "$m: exit $status: $stderr" >&2; return 1; }
			[ -z "$output" ] || { echo "$m: printed $output" >&2; return 1; }
			[ "${#stderr_lines[@]}" -eq 1 ] && [[ $stderr == evpub:* ]] || {
				echo "$m: stderr: $stderr" >&2; return 1; }
			no_trace "$m"
			[ "$(count_files "$EV_SPOOL/tmp")" -eq 0 ] || {
				echo "$m: tmp/ not clean before gc" >&2; return 1; }
		done
	done < "$T/calls"
	consistent
	# What was refused can be published now.
	run --separate-stderr evpub "$@" m=after-$name
	[ "$status" -eq 0 ]
}

@test "a single publish that fails at any of its file system calls (EIO, ENOSPC, EACCES) exits 73 or 74 with one line and leaves nothing" {
	: > "$T/acked"
	fail_each plain x.y
}

@test "a publish with a chosen id that fails at any call leaves no reservation and can be retried" {
	: > "$T/acked"
	fail_each chosen --id @ID@ x.y
	[ "$(cat "$EV_SPOOL/ids/chosen-1" | jq -r .payload.m)" = after-chosen ]
}

@test "a batch (evpub -l) that fails at any call of its commit leaves none of its events" {
	: > "$T/acked"
	printf '%s\n' '{"type":"x.1","payload":{"m":"batch"}}' \
	    '{"type":"x.2","id":"bid","payload":{"m":"batch"}}' \
	    '{"type":"other","payload":{"m":"batch"}}' > "$T/in"
	learn evpub -l < "$T/in"
	rm -rf "$EV_SPOOL/log"/* "$EV_SPOOL/ids"/* "$EV_SPOOL"/subs/*/queue/*
	while read -r call n arg; do
		run --separate-stderr env LD_PRELOAD="$FI" EVFI_CALL=$call \
		    EVFI_NTH=$n evpub -l < "$T/in"
		[ "$status" -eq 74 ] || [ "$status" -eq 73 ] || {
			echo "$call $n: exit $status: $stderr" >&2; return 1; }
		[[ $stderr == evpub:* ]]
		[ "${#stderr_lines[@]}" -eq 1 ]
		# Nothing was acknowledged, and nothing of it is there.
		[ -z "$output" ]
		no_trace batch
		[ "$(count_files "$EV_SPOOL/tmp")" -eq 0 ]
	done < "$T/calls"
	consistent
}

# kill_each ARGS...: for each call of "evpub ARGS", SIGKILL evpub right
# there, then check the spool after gc. Every earlier publish that exited
# 0 is in $T/acked and must survive.
kill_each() {
	local call n arg A
	with_id learn-id "$@"
	learn evpub "${A[@]}" m=learn
	while read -r call n arg; do
		evpub x.ok m=ok-$call-$n >> "$T/acked"
		with_id "kid-$call-$n" "$@"
		run --separate-stderr env LD_PRELOAD="$FI" EVFI_CALL=$call \
		    EVFI_NTH=$n EVFI_KILL=1 evpub "${A[@]}" m="kill-$call-$n"
		[ "$status" -eq 137 ] || { echo "$call $n: exit $status" >&2; return 1; }
		consistent || { echo "after a kill at $call $n $arg" >&2; return 1; }
	done < "$T/calls"
	# Every kill point was hit, and still each acknowledged event is
	# queued for a and b.
	[ "$(wc -l < "$T/acked")" -eq "$(wc -l < "$T/calls")" ]
}

@test "evpub killed at any call of a publish leaves a consistent spool after gc and loses nothing acknowledged" {
	: > "$T/acked"
	kill_each x.y
}

@test "evpub --id killed at any call: after gc the id is either published once or free again" {
	: > "$T/acked"
	kill_each --id @ID@ x.y
	# Publishing every id again: each is then logged and queued once.
	for id in $(awk '{ print "kid-" $1 "-" $2 }' "$T/calls"); do
		run --separate-stderr evpub --id "$id" x.y m=again
		[ "$status" -eq 0 ]
		[ "$output" = "$id" ]
		[ "$(grep -l "\"id\":\"$id\"" "$EV_SPOOL"/log/* | wc -l)" -eq 1 ]
		[ "$(grep -l "\"id\":\"$id\"" "$EV_SPOOL"/subs/a/queue/* | wc -l)" -eq 1 ]
	done
}

# A handler that records "ID ATTEMPT" of what it got.
handler() {
	printf '#!/bin/sh\ncat > /dev/null\necho "$EV_ID $EV_ATTEMPT" >> "%s/handled"\n' \
	    "$T" > "$T/h"
	chmod +x "$T/h"
}

# evsub_each MODE: for each renameat/unlinkat that handling one event makes
# (the take and the acknowledgement), fail it, or kill evsub at it; after
# a restart without faults, the event has been handled or printed.
evsub_each() {
	local mode=$1 call n arg how id rc
	handler
	local cmd=(evsub -n a -e '#' --once -- "$T/h")
	[ "$mode" = print ] && cmd=(evsub -n a -e '#' --once)
	evpub x.learn > /dev/null
	learn "${cmd[@]}"
	grep -E '^(renameat|unlinkat) ' "$T/calls" > "$T/acks"
	[ -s "$T/acks" ]
	while read -r call n arg; do
		for how in fail kill; do
			rm -f "$EV_SPOOL"/subs/a/queue/*
			id=$(evpub x.ev m="$mode-$how-$call-$n")
			: > "$T/handled"
			rc=0
			if [ "$how" = kill ]; then
				env LD_PRELOAD="$FI" EVFI_CALL=$call EVFI_NTH=$n \
				    EVFI_KILL=1 "${cmd[@]}" > "$T/out1" 2> "$T/err1" || rc=$?
				[ "$rc" -eq 137 ] || { echo "kill $call $n: $rc" >&2; return 1; }
			else
				env LD_PRELOAD="$FI" EVFI_CALL=$call EVFI_NTH=$n \
				    "${cmd[@]}" > "$T/out1" 2> "$T/err1" || rc=$?
				# A failed acknowledgement is reported, in one
				# line, and ends evsub with 74.
				[ "$rc" -eq 74 ] && [ "$(wc -l < "$T/err1")" -eq 1 ] &&
				    grep -q '^evsub: ' "$T/err1" || {
					echo "fail $call $n: exit $rc: $(cat "$T/err1")" >&2
					return 1; }
			fi
			# The restart delivers it again (or for the first time).
			run --separate-stderr "${cmd[@]}"
			[ "$status" -eq 0 ] || { echo "restart: $status $stderr" >&2; return 1; }
			if [ "$mode" = print ]; then
				cat "$T/out1" > "$T/got"
				echo "$output" >> "$T/got"
				grep -q "\"id\":\"$id\"" "$T/got" || {
					echo "$how $call $n: $id lost" >&2; return 1; }
			else
				grep -q "^$id " "$T/handled" || {
					echo "$how $call $n: $id lost" >&2; return 1; }
			fi
			[ "$(count_files "$EV_SPOOL/subs/a/queue")" -eq 0 ]
			[ "$(count_files "$EV_SPOOL/subs/a/cur")" -eq 0 ]
		done
	done < "$T/acks"
}

@test "evsub with a handler: a take or acknowledgement that fails or is killed is delivered again after restart" {
	evsub_each handler
}

@test "evsub printing: an acknowledgement that fails or is killed prints the event again after restart" {
	evsub_each print
}

# ---- temporary failures are not the event's, and crashes leave no orphans

# The number of the last call CALL whose argument is ARG in $T/calls (the
# sequence learned by learn()).
call_number() {
	awk -v c="$1" -v a="$2" '$1 == c && $3 == a { n = $2 }
	    END { if (n == "") exit 1; print n }' "$T/calls"
}

# A handler that records "ID ATTEMPT" and fails while $T/fail exists.
failing_handler() {
	printf '#!/bin/sh\ncat > /dev/null\necho "$EV_ID $EV_ATTEMPT" >> "%s/handled"\n[ ! -e "%s/fail" ]\n' \
	    "$T" "$T" > "$T/h"
	chmod +x "$T/h"
}

# Has the retry of KEY (in subscription a) come due?
retry_due() {
	local due
	due=$(jq -r .next_try_ms "$EV_SPOOL/subs/a/state/$1") || return 1
	[ "$(date +%s%3N)" -gt "$due" ]
}

# fail_then_due CMD...: publish an event that CMD's handler fails once, so
# that it waits in retry/ of a, and wait until its retry is due; its key
# is in $K.
fail_then_due() {
	touch "$T/fail"
	K=$(evpub x.ev m=retry)
	run "$@"
	[ "$status" -eq 75 ] || { echo "first attempt: exit $status" >&2; return 1; }
	rm "$T/fail"
	[ -e "$EV_SPOOL/subs/a/retry/$K" ]
	wait_until 10 retry_due "$K"
}

@test "evsub_open_emfile_eio_keeps_event: an event evsub cannot open for EMFILE or EIO stays queued with no attempt counted, exit 75, and is delivered next time; EACCES still dead-letters it" {
	handler
	local cmd=(evsub -n a -e '#' --once -- "$T/h") e id n
	id=$(evpub x.learn)
	learn "${cmd[@]}"
	n=$(call_number openat "$id")
	for e in EMFILE EIO; do
		id=$(evpub x.ev m="$e")
		: > "$T/handled"
		run --separate-stderr env LD_PRELOAD="$FI" EVFI_CALL=openat \
		    EVFI_NTH="$n" EVFI_ERRNO=$e "${cmd[@]}"
		[ "$status" -eq 75 ] || { echo "$e: exit $status: $stderr" >&2; return 1; }
		[ "${#stderr_lines[@]}" -eq 1 ] && [[ $stderr == "evsub: "* ]]
		[[ $stderr == *"queue/$id"* ]]
		case $e in
		EMFILE) [[ $stderr == *"Too many open files"* ]] ;;
		EIO) [[ $stderr == *"Input/output error"* ]] ;;
		esac
		# Where it was, untouched: not dead, not in flight, no attempt.
		[ -f "$EV_SPOOL/subs/a/queue/$id" ]
		[ "$(count_files "$EV_SPOOL/subs/a/dead")" -eq 0 ]
		[ "$(count_files "$EV_SPOOL/subs/a/cur")" -eq 0 ]
		[ ! -e "$EV_SPOOL/subs/a/state/$id" ]
		[ ! -s "$T/handled" ]
		run --separate-stderr "${cmd[@]}"
		[ "$status" -eq 0 ]
		[ "$(cat "$T/handled")" = "$id 1" ]
	done
	# EACCES is the entry's own (a file of another user): a dead letter.
	id=$(evpub x.ev m=EACCES)
	: > "$T/handled"
	run --separate-stderr env LD_PRELOAD="$FI" EVFI_CALL=openat \
	    EVFI_NTH="$n" EVFI_ERRNO=EACCES "${cmd[@]}"
	# (A dead letter made while taking does not count for --once's 75;
	# see the tampered-queue test of hostile.bats.)
	[ "$status" -eq 0 ] || [ "$status" -eq 75 ]
	[ -e "$EV_SPOOL/subs/a/dead/$id" ]
	[[ $(jq -r .last_failure.reason "$EV_SPOOL/subs/a/state/$id") == *"Permission denied"* ]]
	[ ! -s "$T/handled" ]
}

@test "evsub_open_emfile_keeps_retry: an event due for its retry that evsub cannot open for EMFILE stays in retry/ with its attempts and is delivered next time as the next attempt" {
	failing_handler
	local cmd=(evsub -n a -e '#' --once -- "$T/h") n
	# Learn the calls of taking a retry that is due.
	fail_then_due "${cmd[@]}"
	learn "${cmd[@]}"
	n=$(call_number openat "$K")
	fail_then_due "${cmd[@]}"
	: > "$T/handled"
	run --separate-stderr env LD_PRELOAD="$FI" EVFI_CALL=openat \
	    EVFI_NTH="$n" EVFI_ERRNO=EMFILE "${cmd[@]}"
	[ "$status" -eq 75 ] || { echo "exit $status: $stderr" >&2; return 1; }
	[[ $stderr == *"retry/$K"*"Too many open files"* ]]
	[ -f "$EV_SPOOL/subs/a/retry/$K" ]
	[ "$(jq .attempts "$EV_SPOOL/subs/a/state/$K")" -eq 1 ]
	[ "$(count_files "$EV_SPOOL/subs/a/dead")" -eq 0 ]
	[ "$(count_files "$EV_SPOOL/subs/a/cur")" -eq 0 ]
	[ ! -s "$T/handled" ]
	run --separate-stderr "${cmd[@]}"
	[ "$status" -eq 0 ]
	[ "$(cat "$T/handled")" = "$K 2" ]
}

@test "evsub_open_emfile_waits_for_handlers: with -j 2, an event evsub cannot open for EMFILE while a handler runs is taken again once it finished, in the same run" {
	# A handler that records "ID ATTEMPT" and runs until $T/go exists
	# (or its evsub is gone, so that a failing test leaves nothing).
	printf '#!/bin/sh\ncat > /dev/null\necho "$EV_ID $EV_ATTEMPT" >> "%s/handled"\nwhile [ ! -e "%s/go" ] && kill -0 $PPID 2>/dev/null; do sleep 0.05; done\n' \
	    "$T" "$T" > "$T/h"
	chmod +x "$T/h"
	local cmd=(evsub -n a -e '#' -j 2 -c 2 -- "$T/h") n k1 k2 pid rc=0
	touch "$T/go"
	evpub x.learn > /dev/null
	k2=$(evpub x.learn)
	learn "${cmd[@]}"
	n=$(call_number openat "$k2")
	rm "$T/go"
	k1=$(evpub x.ev m=1)
	k2=$(evpub x.ev m=2)
	: > "$T/handled"
	ev_bg env LD_PRELOAD="$FI" EVFI_CALL=openat EVFI_NTH="$n" \
	    EVFI_ERRNO=EMFILE EVFI_LOG="$T/calls2" "${cmd[@]}" 2> "$T/err"
	pid=$!
	# The open of the second event failed while the first one's handler
	# runs: that handler is kept, and the event is neither dead nor lost.
	wait_until 10 grep -q "^openat $n $k2\$" "$T/calls2"
	wait_until 10 grep -q "^$k1 1\$" "$T/handled"
	kill -0 "$pid"
	[ "$(count_files "$EV_SPOOL/subs/a/dead")" -eq 0 ]
	[ -f "$EV_SPOOL/subs/a/queue/$k2" ]
	! grep -q "^$k2 " "$T/handled"
	touch "$T/go"
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ] || { echo "exit $rc: $(cat "$T/err")" >&2; return 1; }
	[ "$(sort "$T/handled")" = "$(printf '%s 1\n%s 1' "$k1" "$k2" | sort)" ]
	[ "$(count_files "$EV_SPOOL/subs/a/queue")" -eq 0 ]
	[ "$(count_files "$EV_SPOOL/subs/a/dead")" -eq 0 ]
}

@test "evsub_ack_crash_leaves_no_state: an acknowledgement killed between its two unlinks leaves no state/KEY after a restart; killed before them, the attempts are kept" {
	failing_handler
	local cmd=(evsub -n a -e '#' --once -- "$T/h") ucur ustate
	# The acknowledgement of a retried event unlinks cur/KEY, then
	# state/KEY: the last two unlinkat calls naming its key.
	fail_then_due "${cmd[@]}"
	learn "${cmd[@]}"
	ucur=$(grep "^unlinkat [0-9]* $K\$" "$T/calls" | tail -2 | head -1 | cut -d' ' -f2)
	ustate=$(call_number unlinkat "$K")
	[ "$ucur" -lt "$ustate" ]

	# Killed between the two: the event was handled; its state would
	# be an orphan, kept for ever, counted against the event if it came
	# back. The next start removes it, and a replay is attempt 1.
	fail_then_due "${cmd[@]}"
	run env LD_PRELOAD="$FI" EVFI_CALL=unlinkat EVFI_NTH="$ustate" \
	    EVFI_KILL=1 "${cmd[@]}"
	[ "$status" -eq 137 ]
	[ ! -e "$EV_SPOOL/subs/a/cur/$K" ]
	[ -e "$EV_SPOOL/subs/a/state/$K" ]
	: > "$T/handled"
	run --separate-stderr "${cmd[@]}"
	[ "$status" -eq 0 ]
	[ ! -s "$T/handled" ]
	[ "$(count_files "$EV_SPOOL/subs/a/state")" -eq 0 ]
	run evctl replay a --from "$K"
	[ "$status" -eq 0 ]
	[ "$output" = "requeued 1 event" ]
	run --separate-stderr "${cmd[@]}"
	[ "$status" -eq 0 ]
	[ "$(cat "$T/handled")" = "$K 1" ]

	# Killed before the first: delivered again, the attempt that was cut
	# short counted on top of the failed one.
	fail_then_due "${cmd[@]}"
	run env LD_PRELOAD="$FI" EVFI_CALL=unlinkat EVFI_NTH="$ucur" \
	    EVFI_KILL=1 "${cmd[@]}"
	[ "$status" -eq 137 ]
	[ -e "$EV_SPOOL/subs/a/cur/$K" ]
	: > "$T/handled"
	run --separate-stderr "${cmd[@]}"
	[ "$status" -eq 0 ]
	[ "$(cat "$T/handled")" = "$K 3" ]
	[ "$(count_files "$EV_SPOOL/subs/a/state")" -eq 0 ]
}

# The ephemeral subscription of evsub PID: its directory name under eph/,
# once its lock holds PID.
eph_of() {
	local d
	for d in "$EV_SPOOL"/eph/"$1"-*; do
		[ -f "$d/lock" ] && [ "$(cat "$d/lock")" = "$1" ] &&
		    { basename "$d"; return 0; }
	done
	return 1
}

@test "gc_keeps_eph_lock_unopenable: evctl gc that cannot open a live ephemeral subscription's lock (EMFILE, EACCES, EIO) leaves it alone; one whose lock it can take is removed" {
	handler
	local pid id n e k
	ev_bg evsub -e 'x.#' -- "$T/h"
	pid=$!
	wait_until 10 eph_of "$pid"
	id=$(eph_of "$pid")
	grep -q "^eph/$id " "$EV_SPOOL/subs.idx"
	# Older than a minute: only its lock tells that it is alive.
	touch -d '2 minutes ago' "$EV_SPOOL/eph/$id"
	learn evctl gc
	n=$(call_number openat "$id/lock")
	for e in EMFILE EACCES EIO; do
		run --separate-stderr env LD_PRELOAD="$FI" EVFI_CALL=openat \
		    EVFI_NTH="$n" EVFI_ERRNO=$e evctl gc
		[ "$status" -eq 0 ] || { echo "$e: exit $status: $stderr" >&2; return 1; }
		[ -d "$EV_SPOOL/eph/$id/queue" ] || { echo "$e: removed" >&2; return 1; }
		grep -q "^eph/$id " "$EV_SPOOL/subs.idx"
	done
	# It is still served.
	: > "$T/handled"
	k=$(evpub x.after)
	wait_until 10 grep -q "^$k " "$T/handled"
	# Its evsub gone, the lock is free: dead, and removed.
	kill -KILL "$pid"
	wait "$pid" || true
	run --separate-stderr evctl gc
	[ "$status" -eq 0 ]
	[ ! -e "$EV_SPOOL/eph/$id" ]
	! grep -q "^eph/$id " "$EV_SPOOL/subs.idx"
}

@test "evsub_open_emfile_running_waits: a running evsub that cannot open an event for EMFILE says so in one line, keeps running, and delivers it on its next try" {
	handler
	local cmd=(evsub -n a -e '#' -c 1 -- "$T/h") id n
	id=$(evpub x.learn)
	learn "${cmd[@]}"
	n=$(call_number openat "$id")
	id=$(evpub x.ev)
	: > "$T/handled"
	run --separate-stderr env LD_PRELOAD="$FI" EVFI_CALL=openat \
	    EVFI_NTH="$n" EVFI_ERRNO=EMFILE "${cmd[@]}"
	[ "$status" -eq 0 ] || { echo "exit $status: $stderr" >&2; return 1; }
	[ "${#stderr_lines[@]}" -eq 1 ] || { echo "stderr: $stderr" >&2; return 1; }
	[[ $stderr == "evsub: "*"queue/$id"*"Too many open files"*"will try again" ]]
	[ "$(cat "$T/handled")" = "$id 1" ]
	[ "$(count_files "$EV_SPOOL/subs/a/dead")" -eq 0 ]
	[ "$(count_files "$EV_SPOOL/subs/a/queue")" -eq 0 ]
}

@test "evsub_read_eio_retries: an event whose read fails with EIO is a failed attempt with its backoff, not a dead letter, and is delivered on its retry" {
	handler
	local cmd=(evsub -n a -e '#' --once --backoff 10ms -- "$T/h") id
	id=$(evpub x.ev)
	: > "$T/handled"
	run --separate-stderr env LD_PRELOAD="$FI" EVFI_CALL=pread EVFI_NTH=1 \
	    EVFI_ERRNO=EIO "${cmd[@]}"
	# --once: an event failed and waits for its retry.
	[ "$status" -eq 75 ] || { echo "exit $status: $stderr" >&2; return 1; }
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ $stderr == "evsub: "*"$id"*"Input/output error; retry 1 of 5"* ]]
	[ -f "$EV_SPOOL/subs/a/retry/$id" ]
	[ "$(jq .attempts "$EV_SPOOL/subs/a/state/$id")" -eq 1 ]
	[ "$(count_files "$EV_SPOOL/subs/a/dead")" -eq 0 ]
	[ ! -s "$T/handled" ]
	wait_until 10 retry_due "$id"
	run --separate-stderr "${cmd[@]}"
	[ "$status" -eq 0 ]
	[ "$(cat "$T/handled")" = "$id 2" ]
}
