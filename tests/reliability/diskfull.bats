#!/usr/bin/env bats
# Disk full: the spool on a 256 KiB tmpfs. Publishing until it is full ends
# with exit 74 and a clear message and leaves nothing half-published; an
# evsub serving the spool keeps running through it and handles everything
# that was acknowledged, also what is published once there is room again.

bats_require_minimum_version 1.5.0
load ../helpers

setup() {
	ev_setup
	T=$BATS_TEST_TMPDIR
	MNT=$T/mnt
	mkdir "$MNT"
	mount -t tmpfs -o size=256k tmpfs "$MNT" 2> "$T/mount.err" ||
	    skip "cannot mount a tmpfs here: $(cat "$T/mount.err")"
	export EV_SPOOL=$MNT/spool
	printf '#!/bin/sh\ncat > /dev/null\necho "$EV_ID" >> "%s/handled"\n' \
	    "$T" > "$T/h"
	chmod +x "$T/h"
	: > "$T/handled"
}

teardown() {
	ev_teardown
	if mountpoint -q "${MNT:-/nonexistent}"; then
		umount "$MNT" || umount -l "$MNT"
	fi
}

all_handled() {
	[ -z "$(comm -23 <(sort -u "$T/acked") <(sort -u "$T/handled"))" ]
}

# Every log file is one whole event; every queue entry is a logged event.
nothing_half() {
	local k
	for k in $(ls "$EV_SPOOL/log"); do
		jq -e 'has("payload") and (.id|type) == "string"' \
		    "$EV_SPOOL/log/$k" > /dev/null || {
			echo "log/$k does not parse" >&2; return 1; }
	done
	for k in $(ls "$EV_SPOOL/subs/k/queue"; ls "$EV_SPOOL/subs/k/cur"); do
		[ -e "$EV_SPOOL/log/$k" ] || { echo "queued $k not logged" >&2; return 1; }
	done
	[ "$(count_files "$EV_SPOOL/tmp")" -eq 0 ]
}

@test "publishing into a full spool exits 74 with one clear line and leaves nothing half-published" {
	make_sub k '#'
	pad=$(head -c 3000 /dev/zero | tr '\0' x)
	: > "$T/acked"
	for i in $(seq 200); do
		run --separate-stderr evpub full.e n:="$i" pad="$pad"
		[ "$status" -eq 0 ] || break
		echo "$output" >> "$T/acked"
	done
	[ "$status" -eq 74 ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ $stderr == evpub:* ]]
	[[ $stderr == *"No space left on device"* ]]
	[ "$(wc -l < "$T/acked")" -gt 5 ]
	nothing_half
	# Every acknowledged event is logged and queued.
	for id in $(cat "$T/acked"); do
		[ -e "$EV_SPOOL/log/$id" ] && [ -e "$EV_SPOOL/subs/k/queue/$id" ]
	done
	# A batch into a full spool is refused whole, too.
	for i in $(seq 5); do
		echo "{\"type\":\"full.b\",\"payload\":{\"pad\":\"$pad\"}}"
	done > "$T/batch"
	run --separate-stderr evpub -l < "$T/batch"
	[ "$status" -eq 74 ] || [ "$status" -eq 0 ]
	nothing_half
}

@test "an evsub on a full spool keeps running and handles everything once there is room again" {
	make_sub k '#'
	ev_bg evsub -n k -e '#' -q -- "$T/h" 2> "$T/sub.err"
	sub=$!
	pad=$(head -c 3000 /dev/zero | tr '\0' x)
	: > "$T/acked"
	for i in $(seq 200); do
		id=$(evpub full.e n:="$i" pad="$pad" 2> "$T/pub.err") || break
		echo "$id" >> "$T/acked"
	done
	grep -q 'No space left on device' "$T/pub.err"
	# Fill the last blocks too, so even a state file cannot be written.
	dd if=/dev/zero of="$MNT/filler" bs=4k 2> /dev/null || true
	run evpub full.small
	[ "$status" -eq 74 ]
	wait_until 30 all_handled
	kill -0 "$sub"
	# Room again: the log is trimmed by hand and the filler goes.
	rm -f "$MNT/filler"
	for id in $(head -20 "$T/acked"); do rm -f "$EV_SPOOL/log/$id"; done
	for i in $(seq 20); do
		evpub full.after n:="$i" >> "$T/acked"
	done
	wait_until 30 all_handled
	kill -0 "$sub"
	nothing_half
	[ "$(count_files "$EV_SPOOL/subs/k/queue")" -eq 0 ]
}

@test "a spool remounted bigger after being full takes events again and evsub handles them" {
	make_sub k '#'
	ev_bg evsub -n k -e '#' -q -- "$T/h" 2> "$T/sub.err"
	sub=$!
	pad=$(head -c 3000 /dev/zero | tr '\0' x)
	: > "$T/acked"
	for i in $(seq 200); do
		id=$(evpub full.e n:="$i" pad="$pad" 2> /dev/null) || break
		echo "$id" >> "$T/acked"
	done
	run evpub full.e pad="$pad"
	[ "$status" -eq 74 ]
	mount -o remount,size=2m "$MNT"
	for i in $(seq 50); do
		evpub full.more n:="$i" pad="$pad" >> "$T/acked"
	done
	wait_until 30 all_handled
	kill -0 "$sub"
	nothing_half
}
