#!/usr/bin/env bats
# Fault injection (issue 6, "prove nothing is lost"): an LD_PRELOAD shim
# (faultinject.c) makes one file system call of evpub or evsub fail, or
# kills the process right at it (a power cut at that point). The calls are
# learned from a clean run, so every step of a publish and of a delivery is
# hit in turn:
#  - a publish that fails at any step exits 73 or 74 with one line, and no
#    queue, log or id holds the event; tmp/ is clean after gc;
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
		for e in EIO ENOSPC; do
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

@test "a single publish that fails at any of its file system calls exits 74 with one line and leaves nothing" {
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
