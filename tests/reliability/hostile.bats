#!/usr/bin/env bats
# Hostile input, table-driven: bad types, names, ids and patterns (.., /,
# newlines, control characters, 10 KB strings, shell metacharacters,
# invalid UTF-8), payloads nested 100,000 deep or 200 MB long, huge
# numbers, unknown options and missing arguments, for every tool. Each is
# refused with the documented status (64 usage, 65 data, 73 cannot create),
# in one stderr line prefixed with the tool's name, within 20 s, and
# nothing lands in the spool. Then a tampered spool: a symlink out of the
# spool, junk names, an unparseable event and a fifo in a queue: evsub
# dead-letters or skips them with a reason, never reads through the
# symlink, never crashes.

bats_require_minimum_version 1.5.0
load ../helpers

setup() {
	ev_setup
	T=$BATS_TEST_TMPDIR
	make_sub all '#'
	touch "$EV_SPOOL/gc.stamp"
	: > "$T/failures"
}

teardown() {
	ev_teardown
}

# refuse "CODES" STDIN TOOL ARGS...: run TOOL ARGS with STDIN (a file, or
# - for /dev/null) under timeout 20; its status must be one of CODES, its
# stderr one line beginning "TOOL: ", and no event may be in the spool.
# A miss is recorded in $T/failures, so one run reports every bad row.
refuse() {
	local codes=$1 in=$2 tool=$3 rc=0 lines
	shift 2
	[ "$in" = - ] && in=/dev/null
	timeout 20 "$@" < "$in" > "$T/out" 2> "$T/err" || rc=$?
	lines=$(wc -l < "$T/err")
	if [[ " $codes " != *" $rc "* ]] || [ "$lines" -ne 1 ] ||
	    ! head -1 "$T/err" | grep -q "^$tool: " ||
	    [ "$(count_files "$EV_SPOOL/log")" -ne 0 ] ||
	    [ "$(count_files "$EV_SPOOL/subs/all/queue")" -ne 0 ] ||
	    [ "$(count_files "$EV_SPOOL/tmp")" -ne 0 ]; then
		printf 'want %s: %.120q -> exit %s, %s stderr lines: %.200s\n' \
		    "$codes" "$*" "$rc" "$lines" "$(head -c 200 "$T/err")" \
		    >> "$T/failures"
		rm -rf "$EV_SPOOL/log"/* "$EV_SPOOL/subs/all/queue"/*
	fi
}

@test "hostile types, ids, names, patterns and options are refused by every tool with one line and leave the spool empty" {
	long=$(head -c 10240 /dev/zero | tr '\0' a)
	# Bad for every kind of name (types, ids, subscription names).
	bad=(.. ../x a/b /etc/passwd ".a" "" $'a\tb' $'a\x01b' $'a\x7fb' \
	    "$long" 'a;rm -rf /' '$(touch /tmp/pwned)' '`id`' 'a b' 'a|b' \
	    "a'b" $'\xff\xfe' $'caf\xc3\xa9' 'a*' '#' $'a\nb' $'a\r\nb')
	for s in "${bad[@]}" "a..b" "a."; do
		refuse "64" - evpub "$s" x=1
	done
	for s in "${bad[@]}"; do
		refuse "64" - evpub --id "$s" ok.type
		refuse "64" - evsub -n "$s" -e '#' --once -q
		refuse "64" - evctl rm "$s"
		refuse "64" - evctl dead "$s"
		refuse "64" - evctl purge "$s"
		refuse "64" - evrun -t "$s" -- true
	done
	for s in .. ../x a/b "a..b" "a*" "a.b*" $'a\nb' $'\xff' "$long" \
	    'a;b' '$(id)'; do
		refuse "64" - evsub -e "$s" --once -q
	done
	# Unknown options and missing arguments.
	refuse "64" - evpub --bogus t
	refuse "64" - evpub
	refuse "64" - evpub --id
	refuse "64" - evpub -s
	refuse "64" - evsub --bogus -e '#'
	refuse "64" - evsub
	refuse "64" - evsub -n
	refuse "64" - evsub -e
	refuse "64" - evctl --bogus
	refuse "64" - evctl
	refuse "64" - evctl frobnicate
	refuse "64" - evctl rm
	refuse "64" - evrun --bogus -- true
	refuse "64" - evrun
	# Huge numbers where a number is wanted.
	for n in 99999999999999999999999 -1 1e9999 0x10 ''; do
		refuse "64" - evsub -e '#' --once -j "$n"
		refuse "64" - evsub -e '#' --once -r "$n"
		refuse "64" - evsub -e '#' --once -c "$n"
	done
	for d in 99999999999999999999d 1x -5s '' 1e99s; do
		refuse "64" - evsub -e '#' --once -t "$d"
		refuse "64" - evsub -e '#' --once --backoff "$d"
		refuse "64" - evsub -e '#' --once --since "$d"
	done
	[ ! -e /tmp/pwned ]
	[ ! -s "$T/failures" ] || { cat "$T/failures" >&2; return 1; }
}

@test "hostile payloads are refused with 65: deep nesting, invalid UTF-8, not JSON, huge, control characters" {
	head -c 100000 /dev/zero | tr '\0' '[' > "$T/deep"
	{ head -c 100000 /dev/zero | tr '\0' '['; head -c 100000 /dev/zero |
	    tr '\0' ']'; } > "$T/deepok"
	printf '"\xff\xfe"' > "$T/utf8"
	printf '"\xc0\xaf"' > "$T/overlong"
	printf '"\xed\xa0\x80"' > "$T/surrogate"
	printf '"a\x01b"' > "$T/ctl"
	printf '{"a":1' > "$T/trunc"
	printf '{"a":1} {"b":2}' > "$T/two"
	printf 'nul\0l' > "$T/nul"
	head -c 2000000 /dev/zero | tr '\0' 1 > "$T/bignum"
	for f in deep deepok utf8 overlong surrogate ctl trunc two nul bignum; do
		refuse "65" "$T/$f" evpub t -
	done
	for f in deep deepok utf8 overlong surrogate ctl trunc two; do
		refuse "65" - evpub t "$(head -c 100000 "$T/$f")"
	done
	refuse "65" - evpub t 'x:=[[[['
	refuse "65" - evpub t $'x=\xff'
	# -l: a bad line is refused; a nested line too.
	{ printf '{"type":"t","payload":'; cat "$T/deep"; echo '}'; } > "$T/deepline"
	refuse "65" "$T/deepline" evpub -l
	printf '{"type":"t","payload":"\xff"}\n' > "$T/utf8line"
	refuse "65" "$T/utf8line" evpub -l
	refuse "64 65" <(printf '{"type":"../x","payload":1}\n') evpub -l
	[ ! -s "$T/failures" ] || { cat "$T/failures" >&2; return 1; }
}

@test "200 MB on stdin to evpub t - is refused with 65 without reading it into memory" {
	command -v /usr/bin/time > /dev/null || skip "no /usr/bin/time"
	rc=0
	head -c 209715200 /dev/zero | tr '\0' 1 |
	    timeout 20 /usr/bin/time -o "$T/rss" -f %M evpub t - \
	    > "$T/out" 2> "$T/err" || rc=$?
	[ "$rc" -eq 65 ]
	[ "$(wc -l < "$T/err")" -eq 1 ]
	grep -q '^evpub: ' "$T/err"
	# Max RSS in KiB: well under 20 MB, so not 200 MB read in.
	[ "$(tail -1 "$T/rss")" -lt 20480 ] || {
		echo "max RSS $(tail -1 "$T/rss") KiB" >&2; return 1; }
	[ "$(count_files "$EV_SPOOL/log")" -eq 0 ]
	[ "$(count_files "$EV_SPOOL/tmp")" -eq 0 ]
}

@test "a tampered queue: a symlink out of the spool, junk names, an unparseable event and a fifo are dead-lettered or skipped, never followed" {
	q=$EV_SPOOL/subs/all/queue
	mkdir "$T/outside"
	# Targets that would show if read: a fifo blocks a reader, a file
	# whose content would be handed to the handler.
	mkfifo "$T/outside/fifo"
	echo '{"id":"secret","type":"t","time":"x","payload":"SECRET"}' \
	    > "$T/outside/secret"
	k1=$(evpub t n:=1)
	evctl gc > /dev/null
	# Keys that sort around the real one.
	ln -s "$T/outside/fifo" "$q/00000000-0000-7000-8000-000000000001"
	ln -s "$T/outside/secret" "$q/00000000-0000-7000-8000-000000000002"
	echo 'not json at all' > "$q/00000000-0000-7000-8000-000000000003"
	mkfifo "$q/00000000-0000-7000-8000-000000000004"
	echo '{"type":"t"}' > "$q/00000000-0000-7000-8000-000000000005"
	mkdir "$q/00000000-0000-7000-8000-000000000006"
	for junk in junk .hidden 'a b' "$(printf 'x\001y')" \
	    00000000-0000-7000-8000-00000000000 ..x; do
		echo junk > "$q/$junk"
	done
	ln -s /etc/passwd "$q/passwd"
	printf '#!/bin/sh\ncat >> "%s/handled"\n' "$T" > "$T/h"
	chmod +x "$T/h"
	run --separate-stderr timeout 20 evsub -n all -e '#' --once -- "$T/h"
	[ "$status" -eq 0 ] || [ "$status" -eq 75 ]
	[ "$status" -lt 128 ]
	# Only the real event was handled; nothing outside was read.
	[ "$(jq -c .payload "$T/handled")" = '{"n":1}' ] || {
		echo "handled: $(head -c 300 "$T/handled")" >&2; return 1; }
	! grep -rq SECRET "$T/handled" "$EV_SPOOL/subs/all/dead" 2>/dev/null
	# The bad entries with key names are dead letters, each with a reason.
	for n in 1 2 3 4 5; do
		k=00000000-0000-7000-8000-00000000000$n
		[ -L "$EV_SPOOL/subs/all/dead/$k" ] || [ -e "$EV_SPOOL/subs/all/dead/$k" ] ||
		    { echo "$k not dead-lettered" >&2; ls -la "$q" >&2; return 1; }
		jq -e '.last_failure.reason | length > 0' \
		    "$EV_SPOOL/subs/all/state/$k" > /dev/null
	done
	# The symlinks are still symlinks, their targets untouched.
	[ -L "$EV_SPOOL/subs/all/dead/00000000-0000-7000-8000-000000000001" ]
	[ -p "$T/outside/fifo" ]
	# The other junk is left alone and ignored.
	[ -e "$q/junk" ] && [ -L "$q/passwd" ]
	# evctl reads the dead letters without following the symlinks.
	run --separate-stderr timeout 20 evctl dead all
	[ "$status" -eq 0 ]
	[[ $output != *SECRET* ]]
	run --separate-stderr timeout 20 evctl status
	[ "$status" -eq 0 ]
}

@test "evsub printing a tampered queue does not follow a symlink into a fifo and keeps going" {
	q=$EV_SPOOL/subs/all/queue
	mkfifo "$T/fifo"
	ln -s "$T/fifo" "$q/00000000-0000-7000-8000-000000000001"
	mkfifo "$q/00000000-0000-7000-8000-000000000002"
	echo '{"id":"x","type":"t","time":"t","payload":1' > "$q/00000000-0000-7000-8000-000000000003"
	k=$(evpub t n:=7)
	run --separate-stderr timeout 20 evsub -n all -e '#' --once
	[ "$status" -lt 128 ]
	[ "$status" -ne 124 ]
	[[ $output == *'"payload":{"n":7}'* ]]
	[ "$(printf '%s\n' "$output" | grep -c .)" -eq 1 ]
	[ -p "$T/fifo" ]
}
