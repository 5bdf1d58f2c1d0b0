#!/usr/bin/env bats
# evsub: subscriptions, handlers, retries, dead letters, streaming, signals.
# Everything runs the real tools on a fresh spool per test.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	ev_setup
	T=$BATS_TEST_TMPDIR
}

teardown() {
	ev_teardown
}

# ---- helpers of this file ----------------------------------------------

# The keys in a subscription's directory (queue, cur, retry, dead, state),
# one a line, in publish order.
keys_in() {
	ls "$EV_SPOOL/subs/$1/$2" 2>/dev/null | sort
}

# How many ephemeral subscriptions the index lists.
eph_listed() {
	cat "$EV_SPOOL/subs.idx" 2>/dev/null | grep -c '^eph/' || true
}

# Does the index list an ephemeral subscription (one evsub without -n
# has registered)?
eph_present() {
	[ "$(eph_listed)" -gt 0 ]
}

# has_lines FILE N: FILE has at least N lines.
has_lines() {
	[ -f "$1" ] && [ "$(wc -l < "$1")" -ge "$2" ]
}

# Is process PID still running (a zombie is not)?
alive() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "${st#Z}" = "$st" ]
}

# A handler that appends "ID ATTEMPT ok|fail" to $T/log, and fails (exit 1)
# on the first attempt of an event whose payload is {"fail":true}, on every
# attempt of one whose payload is {"die":true}.
write_flaky_handler() {
	cat > "$T/flaky" <<'EOF'
#!/bin/sh
in=$(cat)
case $in in
*'"die":true'*)
	echo "$EV_ID $EV_ATTEMPT fail" >> "$T/log"
	exit 1 ;;
*'"fail":true'*)
	if [ ! -e "$T/marker" ]; then
		touch "$T/marker"
		echo "$EV_ID $EV_ATTEMPT fail" >> "$T/log"
		exit 1
	fi ;;
esac
echo "$EV_ID $EV_ATTEMPT ok" >> "$T/log"
EOF
	chmod +x "$T/flaky"
	export T
}

# Every stderr line is "evsub: ..." and there is exactly one.
one_error_line() {
	[ "${#stderr_lines[@]}" -eq 1 ] || {
		echo "expected one line on stderr, got: $stderr" >&2
		return 1
	}
	[[ ${stderr_lines[0]} == "evsub: "* ]] || {
		echo "stderr line not prefixed 'evsub: ': $stderr" >&2
		return 1
	}
}

# ---- durable and ephemeral subscriptions -------------------------------

@test "a durable subscription keeps events published while no evsub runs and delivers them in publish order when one starts" {
	make_sub d 'user.*'
	[ -z "$(keys_in d queue)" ]
	a=$(evpub user.created n=1)
	evpub other.thing n=2 > /dev/null
	b=$(evpub user.deleted n=3)
	c=$(evpub user.created n=4)
	# Nothing runs, yet the subscription has kept the three that match.
	[ "$(keys_in d queue | wc -l)" -eq 3 ]

	run --separate-stderr evsub -n d -e 'user.*' --once -- \
	    sh -c 'echo "$EV_ID" >> "$1"' sh "$T/log"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "$(cat "$T/log")" = "$(printf '%s\n' "$a" "$b" "$c")" ]
	[ -z "$(keys_in d queue)" ]
	[ -z "$(keys_in d cur)" ]

	# Stopped again: what comes now waits for the next start, the rest is
	# not delivered twice.
	d=$(evpub user.created n=5)
	: > "$T/log"
	run evsub -n d -e 'user.*' --once -- sh -c 'echo "$EV_ID" >> "$1"' sh \
	    "$T/log"
	[ "$status" -eq 0 ]
	[ "$(cat "$T/log")" = "$d" ]
}

@test "a durable subscription receives nothing published before it was first created" {
	evpub user.created n=1 > /dev/null
	run --separate-stderr evsub -n late -e 'user.*' --once
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ -d "$EV_SPOOL/subs/late/queue" ]
	grep -qx 'subs/late user.\*' "$EV_SPOOL/subs.idx"
}

@test "an ephemeral subscription sees only events published after it started, and is gone when it exits" {
	evpub x '{"n":"before"}' > /dev/null
	ev_bg evsub -e x -c 1 -F '%p' > "$T/out"
	pid=$!
	wait_until 10 eph_present
	evpub x '{"n":"after"}' > /dev/null
	wait "$pid"
	[ "$(cat "$T/out")" = '{"n":"after"}' ]
	# Its registration and directory went with it.
	[ "$(eph_listed)" -eq 0 ]
	[ "$(count_files "$EV_SPOOL/eph")" -eq 0 ]
}

@test "several -e patterns: a type matching any of them is delivered, with * one segment and # zero or more" {
	make_sub p 'user.*' 'order.#'
	for t in user.created user.a.b user order order.paid order.x.y \
	    shop.order other.user; do
		evpub "$t" > /dev/null
	done
	run --separate-stderr evsub -n p -e 'user.*' -e 'order.#' --once -F '%t'
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf '%s\n' user.created order order.paid order.x.y)" ]
}

# ---- what a handler gets ------------------------------------------------

@test "a handler's environment holds exactly the EV_ variables of its event, none leaked from evsub's own" {
	make_sub env 'app.*'
	id=$(evpub --source src-1 app.started k=v)
	ev_time=$(jq -r .time "$EV_SPOOL/log/$id")
	EV_FOO=1 EV_ID=stale EV_CORRELATION=stale EV_ATTEMPT=9 \
	    run --separate-stderr evsub -n env -e 'app.*' --once -- \
	    sh -c 'env > "$1"' sh "$T/env"
	[ "$status" -eq 0 ]
	expected=$(printf '%s\n' "EV_ATTEMPT=1" "EV_CORRELATION=$id" \
	    "EV_ID=$id" "EV_SOURCE=src-1" "EV_SPOOL=$EV_SPOOL" \
	    "EV_SUBSCRIPTION=env" "EV_TIME=$ev_time" "EV_TYPE=app.started")
	[ "$(grep '^EV_' "$T/env" | sort)" = "$expected" ]
	# The rest of the environment is passed on.
	grep -qx "PATH=$PATH" "$T/env"
}

@test "a handler inherits no descriptor of evsub's own" {
	make_sub fds '#'
	evpub f.e > /dev/null
	# What any child of this test inherits, stdin aside...
	sh -c 'ls /proc/$$/fd > "$0"' "$T/plain"
	# ...is all a handler gets.
	evsub -n fds -e '#' -j 2 --once -- sh -c 'ls /proc/$$/fd > "$0"' \
	    "$T/handler"
	grep -vx 0 "$T/plain" | sort > "$T/plain.fds"
	[ "$(grep -vx 0 "$T/handler" | sort)" = "$(cat "$T/plain.fds")" ]
	grep -qx 0 "$T/handler"
}

@test "the event is the handler's stdin and its payload never reaches argv or a shell" {
	make_sub inj '#'
	payload=$(jq -cn --arg t "$T" '{cmd: "$(touch \($t)/pwned1)",
	    tick: "`touch \($t)/pwned2`", q: "\u0027; touch \($t)/pwned3 #\"",
	    nl: "a\nb"}')
	id=$(evpub evil.event "$payload")
	run --separate-stderr evsub -n inj -e '#' --once -- \
	    sh -c 'printf "%s\n" "$@" > "$0.argv"; cat > "$0.stdin"' "$T/h" fixed
	[ "$status" -eq 0 ]
	[ "$(cat "$T/h.argv")" = fixed ]
	# stdin is the event exactly as logged, payload intact.
	cmp "$T/h.stdin" "$EV_SPOOL/log/$id"
	[ "$(jq -c .payload "$T/h.stdin")" = "$payload" ]
	[ ! -e "$T/pwned1" ]
	[ ! -e "$T/pwned2" ]
	[ ! -e "$T/pwned3" ]
}

@test "--payload makes the handler's stdin, or each printed record, the payload alone" {
	make_sub pl '#'
	evpub a.b '{"k":"v","n":[1,2]}' > /dev/null
	evpub a.c '"just text"' > /dev/null
	run --separate-stderr evsub -n pl -e '#' --once --payload -- \
	    sh -c 'cat >> "$0"' "$T/in"
	[ "$status" -eq 0 ]
	[ "$(cat "$T/in")" = "$(printf '%s\n' '{"k":"v","n":[1,2]}' '"just text"')" ]

	evpub a.d '{"x":true}' > /dev/null
	run --separate-stderr evsub -n pl -e '#' --once --payload
	[ "$status" -eq 0 ]
	[ "$output" = '{"x":true}' ]
}

# ---- failures: retries, backoff, dead letters, timeouts ----------------

@test "evsub retries a failing handler and dead-letters it after -r retries, recording why in state/" {
	make_sub r '#'
	id=$(evpub job.run n=1)
	ev_bg evsub -n r -e '#' -r 2 --backoff 300ms:300ms -- \
	    sh -c 'echo "$EV_ATTEMPT $(date +%s%N)" >> "$0"; exit 3' "$T/att" \
	    2> "$T/err"
	pid=$!
	wait_until 20 test -e "$EV_SPOOL/subs/r/dead/$id"
	kill -TERM "$pid"
	wait "$pid"
	# Three attempts: the first and two retries, counted in EV_ATTEMPT.
	[ "$(cut -d' ' -f1 "$T/att" | tr '\n' ' ')" = "1 2 3 " ]
	# Each retry waited: at least half of MIN (the jitter's lower bound).
	t1=$(sed -n 1p "$T/att" | cut -d' ' -f2)
	t2=$(sed -n 2p "$T/att" | cut -d' ' -f2)
	t3=$(sed -n 3p "$T/att" | cut -d' ' -f2)
	[ $(((t2 - t1) / 1000000)) -ge 140 ]
	[ $(((t3 - t2) / 1000000)) -ge 140 ]
	# The dead letter is the event, with its state.
	cmp "$EV_SPOOL/subs/r/dead/$id" "$EV_SPOOL/log/$id"
	st=$EV_SPOOL/subs/r/state/$id
	[ "$(jq -r .key "$st")" = "$id" ]
	[ "$(jq -r .attempts "$st")" -eq 3 ]
	[ "$(jq -r '.dead_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T.*Z$")' "$st")" = true ]
	[ "$(jq -c '.last_failure | [.exit, .signal, .timeout]' "$st")" = '[3,null,false]' ]
	[ "$(jq -r '.last_failure.time | type' "$st")" = string ]
	[ "$(jq -r '.last_failure.reason | length > 0' "$st")" = true ]
	[ -z "$(keys_in r queue)$(keys_in r cur)$(keys_in r retry)" ]
	# One report per failure, each one line naming the event.
	[ "$(grep -c "^evsub: event $id (job.run): " "$T/err")" -eq 3 ]
	[ "$(wc -l < "$T/err")" -eq 3 ]
}

@test "a handler exiting 100 sends its event straight to the dead letters after one attempt" {
	make_sub perm '#'
	id=$(evpub job.bad)
	ok=$(evpub job.good)
	run --separate-stderr evsub -n perm -e '#' -r 5 --backoff 50ms:200ms \
	    --once -- sh -c 'echo "$EV_ID" >> "$0"; [ "$EV_TYPE" = job.good ] || exit 100' "$T/log"
	[ "$status" -eq 75 ]
	[ "$(cat "$T/log")" = "$(printf '%s\n' "$id" "$ok")" ]
	[ "$(keys_in perm dead)" = "$id" ]
	st=$EV_SPOOL/subs/perm/state/$id
	[ "$(jq -r .attempts "$st")" -eq 1 ]
	[ "$(jq -r .last_failure.exit "$st")" -eq 100 ]
	[ -z "$(keys_in perm queue)$(keys_in perm retry)$(keys_in perm cur)" ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ ${stderr_lines[0]} == "evsub: event $id (job.bad): "*"dead letter"* ]]
}

@test "-t stops a handler that runs too long, with its whole process group, and counts it as a failure" {
	make_sub to '#'
	id=$(evpub slow.job)
	run --separate-stderr evsub -n to -e '#' -r 0 -t 300ms --grace 2s \
	    --once -- sh -c 'sleep 30 & echo $! > "$0"; wait' "$T/child"
	[ "$status" -eq 75 ]
	st=$EV_SPOOL/subs/to/state/$id
	[ "$(jq -r .last_failure.timeout "$st")" = true ]
	[ "$(jq -r .last_failure.signal "$st")" -eq 15 ]
	[ "$(keys_in to dead)" = "$id" ]
	# The sleep in the handler's process group was stopped too.
	wait_until 5 eval '! alive "$(cat "$T/child")"'
}

@test "-t kills a handler that ignores TERM once the grace is over" {
	make_sub tk '#'
	id=$(evpub stubborn.job)
	run --separate-stderr evsub -n tk -e '#' -r 0 -t 200ms --grace 300ms \
	    --once -- sh -c 'trap "" TERM; sleep 30'
	[ "$status" -eq 75 ]
	st=$EV_SPOOL/subs/tk/state/$id
	[ "$(jq -c '.last_failure | [.timeout, .signal]' "$st")" = '[true,9]' ]
}

@test "--once exits 0 when all went well, 75 when an event waits for a retry, and leaves the others done" {
	make_sub once '#'
	run --separate-stderr evsub -n once -e '#' --once -- true
	[ "$status" -eq 0 ]

	a=$(evpub t.a)
	b=$(evpub t.b fail:=true)
	c=$(evpub t.c)
	run --separate-stderr evsub -n once -e '#' --once --backoff 5s -- \
	    sh -c 'cat | grep -q "\"fail\":true" && exit 7; echo "$EV_ID" >> "$0"' "$T/log"
	[ "$status" -eq 75 ]
	[ "$(cat "$T/log")" = "$(printf '%s\n' "$a" "$c")" ]
	[ "$(keys_in once retry)" = "$b" ]
	[ "$(jq -r .attempts "$EV_SPOOL/subs/once/state/$b")" -eq 1 ]
	[ "$(jq -r .last_failure.exit "$EV_SPOOL/subs/once/state/$b")" -eq 7 ]
	one_error_line
	[[ $stderr == "evsub: event $b (t.b): exit 7; retry 1 of 5 in "* ]]
}

@test "--once exits 0 when a failed event's retry came due and succeeded in the same run" {
	write_flaky_handler
	make_sub again '#'
	a=$(evpub o.a fail:=true)
	run --separate-stderr evsub -n again -e '#' --once --backoff 0ms -- \
	    "$T/flaky"
	[ "$status" -eq 0 ]
	[ "$(cat "$T/log")" = "$(printf '%s\n' "$a 1 fail" "$a 2 ok")" ]
	[ -z "$(keys_in again retry)$(keys_in again state)$(keys_in again dead)" ]
}

@test "default order: an event waiting for a retry lets later events pass" {
	write_flaky_handler
	make_sub def '#'
	a=$(evpub o.a fail:=true)
	b=$(evpub o.b)
	c=$(evpub o.c)
	# A fails; B and C do not wait for its retry, seconds away.
	run --separate-stderr evsub -n def -e '#' --once --backoff 10s -- \
	    "$T/flaky"
	[ "$status" -eq 75 ]
	[ "$(cat "$T/log")" = "$(printf '%s\n' "$a 1 fail" "$b 1 ok" "$c 1 ok")" ]
	[ "$(keys_in def retry)" = "$a" ]
	[ -z "$(keys_in def queue)$(keys_in def cur)" ]
	# Its retry is due later, as the state says.
	[ "$(jq -r '.next_try_ms > (now * 1000)' "$EV_SPOOL/subs/def/state/$a")" = true ]
}

@test "--ordered: a failing event holds back later ones until it succeeds" {
	write_flaky_handler
	make_sub ord '#'
	a=$(evpub o.a fail:=true)
	b=$(evpub o.b)
	c=$(evpub o.c)
	ev_bg evsub -n ord -e '#' --ordered --backoff 50ms:200ms -- "$T/flaky" \
	    2> /dev/null
	pid=$!
	wait_until 10 has_lines "$T/log" 4
	kill -TERM "$pid"
	wait "$pid"
	[ "$(cat "$T/log")" = "$(printf '%s\n' "$a 1 fail" "$a 2 ok" "$b 1 ok" "$c 1 ok")" ]
	[ -z "$(keys_in ord queue)$(keys_in ord retry)$(keys_in ord state)" ]
}

@test "--ordered: a failing event holds back later ones until it dies" {
	write_flaky_handler
	make_sub ordd '#'
	a=$(evpub o.a die:=true)
	b=$(evpub o.b)
	ev_bg evsub -n ordd -e '#' --ordered -r 1 --backoff 50ms:200ms -- \
	    "$T/flaky" 2> /dev/null
	pid=$!
	wait_until 10 has_lines "$T/log" 3
	kill -TERM "$pid"
	wait "$pid"
	[ "$(cat "$T/log")" = "$(printf '%s\n' "$a 1 fail" "$a 2 fail" "$b 1 ok")" ]
	[ "$(keys_in ordd dead)" = "$a" ]
}

@test "--ordered with --once: later events stay queued behind the one waiting for its retry" {
	write_flaky_handler
	make_sub ordq '#'
	a=$(evpub o.a fail:=true)
	b=$(evpub o.b)
	run --separate-stderr evsub -n ordq -e '#' --ordered --once \
	    --backoff 10s -- "$T/flaky"
	[ "$status" -eq 75 ]
	[ "$(cat "$T/log")" = "$a 1 fail" ]
	[ "$(keys_in ordq retry)" = "$a" ]
	[ "$(keys_in ordq queue)" = "$b" ]
}

@test "-q keeps failure reports off stderr and -v reports every handled event" {
	make_sub qv '#'
	a=$(evpub q.a)
	run --separate-stderr evsub -n qv -e '#' -q --once --backoff 1s -- false
	[ "$status" -eq 75 ]
	[ -z "$stderr" ]
	b=$(evpub q.b)
	run --separate-stderr evsub -n qv -e 'q.b' -v --once -- true
	[ "$status" -eq 0 ]
	one_error_line
	[[ $stderr == "evsub: event $b (q.b): "* ]]
}

@test "a file in the queue that is not an event goes to the dead letters with a report, and the rest is handled" {
	make_sub g 'a.*'
	k=$(evpub unrelated.x)   # a valid key for the planted file
	echo garbage > "$EV_SPOOL/subs/g/queue/$k"
	id=$(evpub a.b)
	run --separate-stderr evsub -n g -e 'a.*' --once -- \
	    sh -c 'echo "$EV_ID" >> "$0"' "$T/log"
	[ "$status" -eq 0 ] || [ "$status" -eq 75 ]
	[ "$(cat "$T/log")" = "$id" ]
	[ "$(keys_in g dead)" = "$k" ]
	[ "$(jq -r '.last_failure.reason | startswith("not an event")' \
	    "$EV_SPOOL/subs/g/state/$k")" = true ]
	one_error_line
	[[ $stderr == *"$k"*"dead letter"* ]]
}

# ---- concurrency --------------------------------------------------------

@test "-j 4 runs up to four handlers at once, started in publish order" {
	make_sub j '#'
	for i in $(seq 8); do evpub w.job i:=$i; done > "$T/ids"
	mkdir "$T/c"
	echo 0 > "$T/c/n"
	echo 0 > "$T/c/max"
	: > "$T/c/running"
	cat > "$T/h" <<'EOF'
#!/bin/sh
# Count the handlers running now; the one that makes four records who they
# are. The first ones wait (bounded) for that, so four must overlap.
d=$1
flock "$d/lock" sh -c '
	d=$1
	n=$(($(cat "$d/n") + 1)); echo $n > "$d/n"
	echo "$EV_ID" >> "$d/running"
	[ $n -gt "$(cat "$d/max")" ] && echo $n > "$d/max"
	if [ $n -ge 4 ] && [ ! -e "$d/first" ]; then
		cp "$d/running" "$d/first"; touch "$d/go"
	fi' sh "$d"
i=0
while [ ! -e "$d/go" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
sleep 0.2
flock "$d/lock" sh -c '
	d=$1
	echo $(($(cat "$d/n") - 1)) > "$d/n"
	grep -vx "$EV_ID" "$d/running" > "$d/r.tmp"; mv "$d/r.tmp" "$d/running"
	echo "$EV_ID" >> "$d/done"' sh "$d"
EOF
	chmod +x "$T/h"
	run --separate-stderr evsub -n j -e '#' -j 4 --once -- "$T/h" "$T/c"
	[ "$status" -eq 0 ]
	[ "$(cat "$T/c/max")" -eq 4 ]
	# The four running together were the first four published.
	[ "$(sort "$T/c/first")" = "$(head -n 4 "$T/ids" | sort)" ]
	[ "$(sort "$T/c/done")" = "$(sort "$T/ids")" ]
	[ -z "$(keys_in j queue)$(keys_in j cur)" ]
}

# ---- stopping: --once, -c, -w, signals, locks --------------------------

@test "-c N exits 0 after N events and leaves the rest queued" {
	make_sub cnt '#'
	for i in 1 2 3 4 5; do evpub c.e i:=$i; done > "$T/ids"
	run --separate-stderr evsub -n cnt -e '#' -c 2 -F '%i'
	[ "$status" -eq 0 ]
	[ "$output" = "$(head -n 2 "$T/ids")" ]
	[ "$(keys_in cnt queue)" = "$(tail -n 3 "$T/ids" | sort)" ]
}

@test "-c N in a live subscription waits for events to arrive, then exits" {
	make_sub live '#'
	ev_bg evsub -n live -e '#' -c 2 -- sh -c 'echo "$EV_ID" >> "$0"' "$T/log"
	pid=$!
	a=$(evpub l.a)
	b=$(evpub l.b)
	wait "$pid"
	[ "$(cat "$T/log")" = "$(printf '%s\n' "$a" "$b")" ]
}

@test "-w exits 124 when no event arrived for the given time" {
	make_sub w '#'
	run --separate-stderr evsub -n w -e '#' -w 300ms
	[ "$status" -eq 124 ]
	[ -z "$output" ]
	id=$(evpub w.e)
	run --separate-stderr evsub -n w -e '#' -w 300ms -F '%i'
	[ "$status" -eq 124 ]
	[ "$output" = "$id" ]
	[ -z "$stderr" ]
}

@test "--since replays matching logged events, then follows new ones" {
	a=$(evpub r.a)
	evpub s.other > /dev/null
	b=$(evpub r.b)
	ev_bg evsub -e 'r.*' --since 1h -c 3 -F '%i' > "$T/out"
	pid=$!
	wait_until 10 eph_present
	c=$(evpub r.c)
	wait "$pid"
	[ "$(cat "$T/out")" = "$(printf '%s\n' "$a" "$b" "$c")" ]

	run --separate-stderr evsub -e 'r.*' --since all --once -F '%i'
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf '%s\n' "$a" "$b" "$c")" ]
}

@test "--since on a durable subscription delivers again events it handled already" {
	make_sub again 'r.*'
	a=$(evpub r.a)
	run --separate-stderr evsub -n again -e 'r.*' --once -F '%i'
	[ "$output" = "$a" ]
	run --separate-stderr evsub -n again -e 'r.*' --once -F '%i'
	[ -z "$output" ]
	run --separate-stderr evsub -n again -e 'r.*' --since all --once -F '%i'
	[ "$status" -eq 0 ]
	[ "$output" = "$a" ]
}

@test "--since DUR leaves out logged events older than DUR" {
	old=$(evpub r.old)
	sleep 1.2
	new=$(evpub r.new)
	run --separate-stderr evsub -e 'r.*' --since 1s --once -F '%i'
	[ "$status" -eq 0 ]
	# The new one is in unless this machine took a second to get here;
	# the old one is out in any case.
	[ "$output" = "$new" ] || [ -z "$output" ]
	run --separate-stderr evsub -e 'r.*' --since 1h --once -F '%i'
	[ "$output" = "$(printf '%s\n' "$old" "$new")" ]
}

@test "a second evsub on the same -n NAME is refused with 75 and the holder's pid" {
	make_sub held '#'
	ev_bg evsub -n held -e '#' -F '%i' > "$T/out"
	pid=$!
	wait_until 10 grep -qx "$pid" "$EV_SPOOL/subs/held/lock"
	run --separate-stderr evsub -n held -e '#' --once
	[ "$status" -eq 75 ]
	one_error_line
	[[ $stderr == "evsub: "*"'held'"*"$pid"* ]]
	# The holder is unharmed and still serves the subscription.
	id=$(evpub h.e)
	wait_until 10 grep -qx "$id" "$T/out"
	alive "$pid"
}

@test "SIGTERM lets the running handler finish, exits 0 and leaves the other events queued" {
	make_sub term '#'
	a=$(evpub t.a)
	b=$(evpub t.b)
	c=$(evpub t.c)
	ev_bg evsub -n term -e '#' -- sh -c '
		touch "$0/started.$EV_ID"
		i=0; while [ ! -e "$0/release" ] && [ $i -lt 200 ]; do
			sleep 0.05; i=$((i + 1)); done
		echo "$EV_ID" >> "$0/done"' "$T"
	pid=$!
	wait_until 10 test -e "$T/started.$a"
	kill -TERM "$pid"
	sleep 0.3
	# Still waiting for its handler.
	alive "$pid"
	touch "$T/release"
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ]
	[ "$(cat "$T/done")" = "$a" ]
	[ "$(keys_in term queue)" = "$(printf '%s\n' "$b" "$c")" ]
	[ -z "$(keys_in term cur)$(keys_in term retry)" ]
	[ ! -e "$T/started.$b" ]
}

@test "SIGINT stops a waiting evsub with 0, and an ephemeral one unregisters itself" {
	make_sub int '#'
	ev_bg evsub -n int -e '#' -- true
	pid=$!
	ev_bg evsub -e '#' -F '%i'
	eph=$!
	wait_until 10 grep -qx "$pid" "$EV_SPOOL/subs/int/lock"
	wait_until 10 eph_present
	kill -INT "$pid" "$eph"
	wait "$pid"
	wait "$eph"
	[ "$(eph_listed)" -eq 0 ]
	[ "$(count_files "$EV_SPOOL/eph")" -eq 0 ]
	# The durable one keeps receiving while no evsub runs.
	id=$(evpub i.e)
	[ "$(keys_in int queue)" = "$id" ]
}

@test "SIGTERM: a handler still running after --grace is stopped and its event is delivered again" {
	make_sub grace '#'
	a=$(evpub g.a)
	ev_bg evsub -n grace -e '#' --grace 300ms --backoff 50ms:50ms -- \
	    sh -c 'echo "$EV_ATTEMPT" >> "$0"; exec sleep 30' "$T/att"
	pid=$!
	wait_until 10 test -s "$T/att"
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ]
	[ -z "$(keys_in grace cur)" ]
	run --separate-stderr evsub -n grace -e '#' --ordered -c 1 -- \
	    sh -c 'echo "$EV_ID $EV_ATTEMPT" > "$0"' "$T/again"
	[ "$status" -eq 0 ]
	[ "$(cat "$T/again")" = "$a 2" ]
}

# ---- streaming ----------------------------------------------------------

@test "without a command each event is printed as its JSON line" {
	make_sub nd '#'
	a=$(evpub n.a k=v)
	b=$(evpub n.b '[1,"x"]')
	run --separate-stderr evsub -n nd -e '#' --once
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "$(cat "$EV_SPOOL/log/$a")" ]
	[ "${lines[1]}" = "$(cat "$EV_SPOOL/log/$b")" ]
	[ "${#lines[@]}" -eq 2 ]
	[ "$(printf '%s\n' "$output" | jq -r .id | tr '\n' ' ')" = "$a $b " ]
}

@test "-F prints each directive and -0 ends records with NUL" {
	make_sub fmt '#'
	id=$(evpub --source here f.one '{"k":"v w","n":1}')
	ev=$EV_SPOOL/log/$id
	run --separate-stderr evsub -n fmt -e '#' --once \
	    -F '%i|%t|%T|%s|%p|%j|%%|%q'
	[ "$status" -eq 0 ]
	expected="$id|f.one|$(jq -r .time "$ev")|here|{\"k\":\"v w\",\"n\":1}|$(cat "$ev")|%|%q"
	[ "$output" = "$expected" ]

	evpub f.two x=1 > /dev/null
	evpub f.three x=2 > /dev/null
	evsub -n fmt -e '#' --once -0 -F '%t' > "$T/out"
	[ "$(tr '\0' '\n' < "$T/out")" = "$(printf '%s\n' f.two f.three)" ]
	[ "$(tr -cd '\0' < "$T/out" | wc -c)" -eq 2 ]
	[ "$(tr -cd '\n' < "$T/out" | wc -c)" -eq 0 ]
}

@test "streaming into head -n 1 stops cleanly and leaves the unprinted events queued" {
	make_sub hd '#'
	for i in $(seq 2000); do echo "{\"type\":\"h.e\",\"payload\":{\"i\":$i}}"; done |
	    evpub -l > "$T/ids"
	[ "$(wc -l < "$T/ids")" -eq 2000 ]
	timeout 30 evsub -n hd -e '#' 2> "$T/err" | head -n 1 > "$T/out"
	rc=("${PIPESTATUS[@]}")
	[ "${rc[0]}" -eq 0 ]
	[ ! -s "$T/err" ]
	[ "$(jq -r .id "$T/out")" = "$(head -n 1 "$T/ids")" ]
	# What is left is the tail of the publish order, without holes: the
	# events evsub wrote before the pipe broke are gone, no others.
	left=$(keys_in hd queue | wc -l)
	[ "$left" -gt 0 ]
	[ "$left" -lt 2000 ]
	[ "$(keys_in hd queue)" = "$(tail -n "$left" "$T/ids")" ]
	[ -z "$(keys_in hd cur)" ]
}

@test "streaming into head -n 1 stops when the reader goes away even if no other event comes" {
	make_sub hd1 '#'
	id=$(evpub h.one)
	timeout 20 evsub -n hd1 -e '#' 2> "$T/err" | head -n 1 > "$T/out"
	rc=("${PIPESTATUS[@]}")
	[ "${rc[0]}" -eq 0 ]
	[ ! -s "$T/err" ]
	[ "$(jq -r .id "$T/out")" = "$id" ]
	# The lock went with it: the subscription can be served again.
	run evsub -n hd1 -e '#' --once
	[ "$status" -eq 0 ]
}

@test "an ephemeral evsub streaming into head -n 1 unregisters itself when the pipe breaks" {
	ev_bg bash -c 'timeout 30 evsub -e x 2> "$1/err" | head -n 1 > "$1/out"
	    echo "${PIPESTATUS[0]}" > "$1/rc"' sh "$T"
	pid=$!
	wait_until 10 eph_present || { cat "$T/err"; false; }
	for i in $(seq 2000); do echo '{"type":"x","payload":{}}'; done |
	    evpub -l -q
	wait "$pid"
	[ "$(cat "$T/rc")" -eq 0 ]
	[ ! -s "$T/err" ]
	[ "$(jq -r .type "$T/out")" = x ]
	[ "$(eph_listed)" -eq 0 ]
}

# ---- usage errors -------------------------------------------------------

@test "usage errors exit 64 with one line and create no subscription" {
	echo 'echo hi' > "$T/noexec"
	chmod -x "$T/noexec"
	while IFS= read -r args; do
		eval "set -- $args"
		run --separate-stderr evsub -n u "$@"
		echo "evsub $args -> $status: $stderr" >&2
		[ "$status" -eq 64 ]
		one_error_line
		[ -z "$output" ]
		[ ! -e "$EV_SPOOL/subs/u" ]
	done <<EOF
--once
-e 'a.b*' --once
-e 'a..b' --once
-e x -j 0 -- true
-e x -j two -- true
-e x -j -1 -- true
-e x -r -1 -- true
-e x --bogus
-e x -t 5q -- true
-e x -t '' -- true
-e x -w 1x
-e x --backoff 1s:oops -- true
-e x --backoff 2s:1s -- true
-e x --grace soon
-e x --since yesterday
-e x -c 0
-e x -- no-such-command-evsub
-e x -- $T/noexec
-e x -- $T
-e x stray-argument
-e x -F '%i' -- true
-e x -j 2
-e x -t
EOF
	run --separate-stderr evsub -n 'bad/name' -e x --once
	[ "$status" -eq 64 ]
	one_error_line
	# A command that cannot run says why.
	run --separate-stderr evsub -e x -- no-such-command-evsub
	[[ $stderr == *"'no-such-command-evsub'"*"not found"* ]]
	run --separate-stderr evsub -e x -- "$T"
	[[ $stderr == *"'$T'"*"Permission denied"* ]]
	run --separate-stderr evsub -e x -- "$T/noexec"
	[[ $stderr == *"'$T/noexec'"*"Permission denied"* ]]
}

@test "evsub started with SIGCHLD ignored still sees its handlers exit" {
	# An ignored SIGCHLD survives exec; evsub must reset it, or the kernel
	# reaps handlers itself and evsub waits for them forever.
	make_sub ig 'ig.#'
	evpub -q ig.x a=1
	run timeout 20 perl -e '$SIG{CHLD} = "IGNORE"; exec @ARGV' -- \
	    evsub -n ig -e 'ig.#' --once -- /bin/true
	[ "$status" -eq 0 ]
	[ "$(count_files "$EV_SPOOL/subs/ig/queue")" -eq 0 ]
}

@test "a handler killed because evsub is stopping is retried later, never a dead letter, even with -r 0" {
	make_sub stopr 'st.#'
	evpub -q st.x
	ev_bg evsub -q -n stopr -e 'st.#' -r 0 --grace 300ms -- sleep 30
	pid=$!
	in_flight() { [ "$(count_files "$EV_SPOOL/subs/stopr/cur")" -eq 1 ]; }
	wait_until 10 in_flight
	kill -TERM "$pid"
	status=0
	wait "$pid" || status=$?
	[ "$status" -eq 0 ]
	[ "$(count_files "$EV_SPOOL/subs/stopr/dead")" -eq 0 ]
	[ "$(count_files "$EV_SPOOL/subs/stopr/retry")" -eq 1 ]
}

# ---- races with evctl -------------------------------------------------

# A handler that records "ID ATTEMPT" in $T/log and, while $T/hold-ID
# exists, keeps running (until its evsub is gone, so a failing test leaves
# nothing behind).
write_holding_handler() {
	cat > "$T/hold" <<'EOF2'
#!/bin/sh
cat > /dev/null
echo "$EV_ID $EV_ATTEMPT" >> "$T/log"
while [ -e "$T/hold-$EV_ID" ] && kill -0 $PPID 2>/dev/null; do
	sleep 0.05
done
EOF2
	chmod +x "$T/hold"
	export T
}

# How many times KEY was delivered, by $T/log.
deliveries() {
	grep -c "^$1 " "$T/log" 2>/dev/null || true
}

@test "evsub_take_never_replaces_inflight: an event queued again while it is in flight waits in the queue, never renamed over the delivery, and comes once that one settled" {
	make_sub rr 'x.#'
	write_holding_handler
	k=$(evpub x.k)
	m=$(evpub x.m)
	touch "$T/hold-$k"
	ev_bg evsub -q -n rr -e 'x.#' -j 2 -- "$T/hold"
	# k is in flight and stays; m, taken after it, is done.
	wait_until 10 grep -q "^$m 1\$" "$T/log"
	[ -e "$EV_SPOOL/subs/rr/cur/$k" ]
	# What evctl replay writes when it loses its race with a take (it
	# looked in cur/ before the event got there): queue/KEY, a link of
	# log/KEY, beside the same event in flight.
	ln "$EV_SPOOL/log/$k" "$EV_SPOOL/subs/rr/queue/$k"
	# A later event is handled: the queued copy of k was passed over, not
	# taken over the delivery in flight, which holds no second slot.
	j=$(evpub x.j)
	wait_until 10 grep -q "^$j 1\$" "$T/log"
	[ "$(deliveries "$k")" -eq 1 ]
	[ -e "$EV_SPOOL/subs/rr/queue/$k" ]
	[ -e "$EV_SPOOL/subs/rr/cur/$k" ]
	# Once the first delivery is settled, the queued copy is delivered.
	rm "$T/hold-$k"
	two() { [ "$(deliveries "$k")" -eq 2 ]; }
	wait_until 10 two
	settled() {
		[ "$(count_files "$EV_SPOOL/subs/rr/queue")" -eq 0 ] &&
		    [ "$(count_files "$EV_SPOOL/subs/rr/cur")" -eq 0 ]
	}
	wait_until 10 settled
	[ "$(count_files "$EV_SPOOL/subs/rr/dead")" -eq 0 ]
	[ "$(deliveries "$k")" -eq 2 ]
}

@test "evsub_start_after_rm_recreates: an evsub that gets the lock of a subscription evctl rm removed meanwhile makes the subscription anew and serves it, never the deleted directory" {
	command -v flock > /dev/null || skip "flock(1) is not installed"
	make_sub gone 'x.#'
	lock=$(readlink -f "$EV_SPOOL/subs/gone/lock")
	# The lock names make_sub's evsub, which is gone: a starting evsub
	# waits a moment for such a holder to let go rather than refuse.
	! kill -0 "$(cat "$lock")" 2>/dev/null
	# Hold the lock, as evctl rm does while it removes the subscription.
	ev_bg flock "$lock" sh -c 'while [ ! -e "$1" ]; do sleep 0.05; done' \
	    sh "$T/release"
	holder=$!
	lock_busy() { ! flock -n "$lock" true; }
	wait_until 10 lock_busy
	printf '#!/bin/sh\ncat > /dev/null\necho "$EV_ID" >> "%s/handled"\n' \
	    "$T" > "$T/h"
	chmod +x "$T/h"
	ev_bg evsub -n gone -e 'x.#' -c 1 -- "$T/h" 2> "$T/err"
	pid=$!
	# Freeze it once it has opened the lock file and waits for the flock.
	has_lock_open() {
		local f
		for f in /proc/"$pid"/fd/*; do
			[ "$(readlink "$f")" = "$lock" ] && return 0
		done
		return 1
	}
	wait_until 10 has_lock_open
	kill -STOP "$pid"
	alive "$pid" || { echo "evsub gave up: $(cat "$T/err")" >&2; return 1; }
	# The holder lets go, and evctl rm removes the subscription.
	touch "$T/release"
	wait "$holder"
	run evctl rm gone
	[ "$status" -eq 0 ]
	[ ! -e "$EV_SPOOL/subs/gone" ]
	# Now evsub gets the flock, of a file that is no longer linked.
	kill -CONT "$pid"
	served() {
		[ "$(cat "$EV_SPOOL/subs/gone/lock" 2>/dev/null)" = "$pid" ] &&
		    grep -q '^subs/gone x\.#$' "$EV_SPOOL/subs.idx"
	}
	wait_until 10 served
	k=$(evpub x.after)
	wait_until 10 grep -qx "$k" "$T/handled"
	status=0
	wait "$pid" || status=$?
	[ "$status" -eq 0 ] || { echo "exit $status: $(cat "$T/err")" >&2; return 1; }
	[ ! -s "$T/err" ]
}
