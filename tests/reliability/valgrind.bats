#!/usr/bin/env bats
# Memory errors and leaks (issue 6): each tool, on its main paths, run
# under valgrind (memcheck) must exit with its own normal status, never
# valgrind's 99: no invalid read or write, no use of uninitialised memory,
# no memory "definitely lost" at exit. Memory still reachable at exit() is
# not counted. Valgrind is slow, so each run is small.

bats_require_minimum_version 1.5.0
load ../helpers

setup_file() {
	command -v valgrind > /dev/null || skip "valgrind is not installed"
}

setup() {
	command -v valgrind > /dev/null || skip "valgrind is not installed"
	# An ASan build cannot run under valgrind; that build checks memory
	# itself.
	if ldd "$EV_BIN/evpub" 2>/dev/null | grep -q libasan; then
		skip "the tools are built with AddressSanitizer"
	fi
	ev_setup
	T=$BATS_TEST_TMPDIR
	evpub --no-sync seed.first > /dev/null   # the spool exists
}

teardown() {
	ev_teardown
}

# vg WANT TOOL ARGS...: run the tool under valgrind; its exit status must
# be WANT (or one of WANT's comma-separated values), never valgrind's 99,
# and valgrind must report nothing. The tool's stdout is vg's; its stderr
# goes to $T/err; valgrind's report to $T/vg.log. Both are shown on a
# failure. Use as `out=$(vg 0 evpub x)`, so a failure fails the test.
vg() {
	local want=$1 rc=0
	shift
	valgrind --error-exitcode=99 --leak-check=full \
	    --errors-for-leak-kinds=definite --quiet \
	    --log-file="$T/vg.log" "$@" 2> "$T/err" || rc=$?
	case ",$want," in
	*",$rc,"*) ;;
	*)
		{ echo "under valgrind, '$*' exited $rc, not $want"
		  echo "--- its stderr:"; cat "$T/err"
		  echo "--- valgrind:"; cat "$T/vg.log"; } >&2
		return 1 ;;
	esac
	[ ! -s "$T/vg.log" ] || {
		echo "valgrind reported, for '$*':" >&2; cat "$T/vg.log" >&2; return 1; }
}

@test "valgrind: evpub single, KEY=VALUE, -l with a bad line, --id twice" {
	local out
	make_sub all '#'
	out=$(vg 0 evpub vg.single)
	[ -n "$out" ]
	out=$(vg 0 evpub vg.kv name=alice n=3 ok=true)
	[ -n "$out" ]
	out=$(vg 0 evpub vg.json '{"a":[1,2,{"b":null}],"s":"\u00e9"}')
	[ -n "$out" ]

	# Lines 2 (not JSON) and 6 (no type) are rejected; line 5 repeats
	# the id of line 4 and is not published again, but printed.
	printf '%s\n' '{"type":"vg.l","payload":1}' 'not json' '' \
	    '{"type":"vg.l","id":"line-id-1"}' '{"type":"vg.l","id":"line-id-1"}' \
	    '{"payload":2}' > "$T/lines"
	out=$(vg 65 evpub -l < "$T/lines")
	[ "$(wc -l <<< "$out")" -eq 3 ]
	grep -q '^evpub: line 2:' "$T/err"
	grep -q '^evpub: line 6:' "$T/err"
	out=$(vg 0 evpub -l --no-sync vg.typed <<< $'1\n"two"\n{"x":3}')
	[ "$(wc -l <<< "$out")" -eq 3 ]

	out=$(vg 0 evpub --id dup-1 vg.id)
	[ "$out" = dup-1 ]
	out=$(vg 0 evpub --id dup-1 vg.id)
	[ "$out" = dup-1 ]
	[ "$(grep -l '"dup-1"' "$EV_SPOOL"/subs/all/queue/* | wc -l)" -eq 1 ]
	[ "$(grep -l '"line-id-1"' "$EV_SPOOL"/subs/all/queue/* | wc -l)" -eq 1 ]

	# A usage error and a refused payload exit with their own status.
	vg 64 evpub
	vg 65 evpub vg.bad '{"a":'
}

@test "valgrind: evsub --once, a handler that fails once then succeeds" {
	make_sub r 'r.#'
	evpub r.one n=1 > /dev/null
	evpub r.two n=2 > /dev/null
	# Fails on its first attempt, succeeds on the retry 5-10 ms later.
	cat > "$T/h" <<-'EOF'
	#!/bin/sh
	cat > /dev/null
	echo "$EV_ID $EV_ATTEMPT" >> "$0.log"
	[ "$EV_ATTEMPT" -ge 2 ]
	EOF
	chmod +x "$T/h"
	# --once exits 75 if a retry was not due yet when the queue ran dry
	# (or 0 if, valgrind being slow, it was); the next run handles it.
	vg 0,75 evsub -n r -e 'r.#' --once -q --backoff 10ms -- "$T/h"
	sleep 0.1
	vg 0 evsub -n r -e 'r.#' --once -q --backoff 10ms -- "$T/h"
	[ "$(count_files "$EV_SPOOL/subs/r/queue")" -eq 0 ]
	[ "$(count_files "$EV_SPOOL/subs/r/retry")" -eq 0 ]
	[ "$(count_files "$EV_SPOOL/subs/r/dead")" -eq 0 ]
	[ "$(awk '$2 == 1' "$T/h.log" | wc -l)" -eq 2 ]
	[ "$(awk '$2 == 2' "$T/h.log" | wc -l)" -eq 2 ]
	[ "$(wc -l < "$T/h.log")" -eq 4 ]
}

@test "valgrind: evsub streaming, and a handler sending to the dead letters" {
	local out pid rc=0
	make_sub st 'st.#'
	make_sub d 'st.dead'
	evpub st.a x=1 > /dev/null
	evpub st.dead x=2 > /dev/null
	evpub st.b.c '[1,2,3]' > /dev/null
	out=$(vg 0 evsub -n st -e 'st.#' --once)
	[ "$(jq -r .type <<< "$out" | tr '\n' ' ')" = "st.a st.dead st.b.c " ]
	out=$(vg 0 evsub -n st -e 'st.#' --once -F '%i %t %p')
	[ -z "$out" ]
	evpub st.f '{"k":"v"}' > /dev/null
	out=$(vg 0 evsub -n st -e 'st.#' -c 1 -F '%t %p')
	[ "$out" = 'st.f {"k":"v"}' ]

	# Ephemeral, streaming payloads until SIGTERM.
	ev_bg valgrind --error-exitcode=99 --leak-check=full \
	    --errors-for-leak-kinds=definite --quiet --log-file="$T/vg.eph" \
	    evsub -e 'st.later' --payload > "$T/eph.out"
	pid=$!
	for _ in $(seq 60); do
		evpub --no-sync st.later v=1 > /dev/null
		[ -s "$T/eph.out" ] && break
		sleep 0.5
	done
	grep -q '"v":"1"' "$T/eph.out"
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ] || { echo "ephemeral evsub exited $rc" >&2; cat "$T/vg.eph" >&2; false; }
	[ ! -s "$T/vg.eph" ] || { cat "$T/vg.eph" >&2; false; }

	# Handler exits 100: a dead letter at once, and --once exits 75.
	vg 75 evsub -n d -e 'st.dead' --once -q -- sh -c 'cat > /dev/null; exit 100'
	[ "$(count_files "$EV_SPOOL/subs/d/dead")" -eq 1 ]
}

@test "valgrind: evsub with handlers (-j 2) stopped by SIGTERM" {
	local pid rc=0
	make_sub w 'w.#'
	ev_bg valgrind --error-exitcode=99 --leak-check=full \
	    --errors-for-leak-kinds=definite --quiet --log-file="$T/vg.term" \
	    evsub -n w -j 2 -e 'w.#' -- sh -c 'cat > /dev/null; echo "$EV_ID" >> "$0"' "$T/w.got"
	pid=$!
	for i in 1 2 3 4; do evpub --no-sync w.x i=$i; done > "$T/w.pub"
	wait_until 60 bash -c "[ \"\$(sort '$T/w.got' 2>/dev/null)\" = \"\$(sort '$T/w.pub')\" ]"
	wait_until 10 bash -c "[ -z \"\$(ls '$EV_SPOOL/subs/w/cur')\" ]"
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ] || { echo "evsub exited $rc" >&2; cat "$T/vg.term" >&2; false; }
	[ ! -s "$T/vg.term" ] || { cat "$T/vg.term" >&2; false; }
}

@test "valgrind: evrun with output, success and failure" {
	local out
	make_sub runs 'job.#'
	out=$(vg 0 evrun -t job.ok -- sh -c 'echo out; echo err >&2')
	[ "$out" = out ]
	out=$(vg 3 evrun -t job.bad -- sh -c 'printf "%s\n" a b c; exit 3')
	[ "$out" = $'a\nb\nc' ]
	vg 127 evrun -t job.missing -- /nonexistent/command
	[ "$(count_files "$EV_SPOOL/subs/runs/queue")" -eq 3 ]
	grep -q '"job.ok.completed"' "$EV_SPOOL"/subs/runs/queue/*
	grep -q '"job.bad.failed"' "$EV_SPOOL"/subs/runs/queue/*
}

@test "valgrind: evctl status, ls, show, dead, trace, graph" {
	local out id child
	make_sub c 'c.#'
	id=$(evpub c.root k=v)
	child=$(EV_ID=$id EV_CORRELATION=$id evpub c.child k=w)
	evsub -n c -e 'c.#' --once -q -r 0 -- sh -c 'exit 1' || true
	[ "$(count_files "$EV_SPOOL/subs/c/dead")" -eq 2 ]

	out=$(vg 0 evctl status)
	[[ $out == *c* ]]
	vg 0 evctl status --json > /dev/null
	out=$(vg 0 evctl ls)
	[ "$(wc -l <<< "$out")" -ge 3 ]
	vg 0 evctl ls 'c.#' --json > /dev/null
	out=$(vg 0 evctl show "$id")
	[[ $out == *"$id"* ]]
	vg 0 evctl show "$child" --json > /dev/null
	out=$(vg 0 evctl dead c)
	[[ $out == *"$id"* ]]
	vg 0 evctl dead c --json > /dev/null
	out=$(vg 0 evctl trace "$id")
	[[ $out == *"$child"* ]]
	vg 0 evctl trace "$child" --json > /dev/null
	out=$(vg 0 evctl graph)
	[[ $out == *digraph* ]]
	# Not found: the tool's own status, still no leak.
	vg 0,1,2,65,66 evctl show no-such-id > /dev/null
}
