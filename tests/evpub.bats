#!/usr/bin/env bats
# evpub: the forms of man/evpub.1, the stored event, ids, -l, limits, the
# usage and data errors, fan-out, modes, symlinks, JSONTestSuite and
# concurrent publishers. Everything runs the real tools on a fresh spool.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	ev_setup
	unset EV_SUBSCRIPTION
	T=$BATS_TEST_TMPDIR
}

teardown() {
	ev_teardown
}

# ---- helpers of this file ----------------------------------------------

UUID7='^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'

# The one stored line of event ID (its file in log/ is named by key; an
# event with a chosen id is found through ids/ID, a link of the same file).
stored() {
	if [ -f "$EV_SPOOL/log/$1" ]; then
		cat "$EV_SPOOL/log/$1"
	else
		cat "$EV_SPOOL/ids/$1"
	fi
}

# The payload text of event ID exactly as stored: payload is last, so it is
# what follows the last-written "payload": member up to the closing brace.
payload_of() {
	local line
	line=$(stored "$1")
	line=${line%\}}
	printf '%s\n' "${line#*\"source\":*,\"payload\":}"
}

# Files of events anywhere in the spool: log/, every queue, tmp/.
landed() {
	find "$EV_SPOOL/log" "$EV_SPOOL/tmp" "$EV_SPOOL"/subs/*/queue \
	    "$EV_SPOOL"/eph/*/queue -mindepth 1 2>/dev/null | wc -l
}

# Every stderr line is "evpub: ..." and there is exactly one.
one_error_line() {
	[ "${#stderr_lines[@]}" -eq 1 ] || {
		echo "expected one line on stderr, got: '$stderr'" >&2
		return 1
	}
	[[ ${stderr_lines[0]} == "evpub: "* ]] || {
		echo "stderr line not prefixed 'evpub: ': $stderr" >&2
		return 1
	}
}

# refused STATUS ARGS...: evpub ARGS exits STATUS with one "evpub: " line on
# stderr, prints nothing on stdout, and no event file appears in the spool.
# Standard input is $T/stdin when that file exists, else empty.
refused() {
	local want=$1 in=/dev/null
	shift
	[ -f "$T/stdin" ] && in=$T/stdin
	run --separate-stderr evpub "$@" < "$in"
	[ "$status" -eq "$want" ] || {
		echo "evpub $* exited $status, expected $want: $stderr" >&2
		return 1
	}
	one_error_line
	[ -z "$output" ] || { echo "stdout: $output" >&2; return 1; }
	[ "$(landed)" -eq 0 ] || {
		echo "files landed after evpub $*:" >&2
		find "$EV_SPOOL" -type f >&2
		return 1
	}
}

# The types in a subscription's queue, sorted.
queue_types() {
	local f
	for f in "$EV_SPOOL/subs/$1/queue"/*; do
		[ -f "$f" ] && jq -r .type "$f"
	done | sort
}

# ---- the forms -----------------------------------------------------------

@test "evpub TYPE alone publishes an event with the empty object as payload and prints its key" {
	make_sub all '#'
	run --separate-stderr evpub user.created
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[[ $output =~ $UUID7 ]]
	[ -f "$EV_SPOOL/log/$output" ]
	[ -f "$EV_SPOOL/subs/all/queue/$output" ]
	[ "$(payload_of "$output")" = '{}' ]
	[ "$(jq -r .type "$EV_SPOOL/log/$output")" = user.created ]
	# One file, linked into the queue: the same inode.
	[ "$EV_SPOOL/log/$output" -ef "$EV_SPOOL/subs/all/queue/$output" ]
}

@test "evpub TYPE PAYLOAD stores every JSON kind with its spelling, blanks removed" {
	while IFS='|' read -r given want; do
		id=$(evpub t.kind "$given")
		got=$(payload_of "$id")
		[ "$got" = "$want" ] || {
			echo "payload '$given' stored as '$got', want '$want'" >&2
			return 1
		}
	done <<'EOF'
{ "a" : 1 , "b" : [ 1 , 2 ] }|{"a":1,"b":[1,2]}
[ ]|[]
[ "x" , null ]|["x",null]
"a string  with  blanks"|"a string  with  blanks"
"esc \" \\ \n \u00e9 é"|"esc \" \\ \n \u00e9 é"
42|42
-1|-1
1.0|1.0
1.10|1.10
1e400|1e400
-0.0e-5|-0.0e-5
123456789012345678901234567890|123456789012345678901234567890
true|true
false|false
null|null
  {"n":{"m":{}}}  |{"n":{"m":{}}}
EOF
}

@test "evpub TYPE KEY=VALUE and KEY:=JSON words build an object with members in the order given" {
	id=$(evpub t.words name=ann n=1 e= 'url=http://host/?a=b' a.b=1 \
	    num:=1 'tags:=[ "a", "b" ]' 'big:=1e400' 'ok:=true')
	[ "$(payload_of "$id")" = \
	    '{"name":"ann","n":"1","e":"","url":"http://host/?a=b","a.b":"1","num":1,"tags":["a","b"],"big":1e400,"ok":true}' ]
	# A JSON string holding '=' is written with its quotes.
	id=$(evpub t.words '"a=b"')
	[ "$(payload_of "$id")" = '"a=b"' ]
	id=$(evpub t.words 'a=b')
	[ "$(payload_of "$id")" = '{"a":"b"}' ]
	# A key or value that is not UTF-8 is an invalid payload.
	run --separate-stderr evpub t.words $'k=\xff'
	[ "$status" -eq 65 ]
	run --separate-stderr evpub t.words $'\xff=v'
	[ "$status" -eq 65 ]
	# Values are escaped as JSON strings.
	id=$(evpub t.words 'q=say "hi"\now')
	[ "$(jq -r .payload.q "$EV_SPOOL/log/$id")" = 'say "hi"\now' ]
}

@test "evpub rejects a key given twice among words with exit 65 and stores nothing" {
	make_sub all '#'
	refused 65 t a=1 b=2 a=3
	refused 65 t a=1 a:=2
}

@test "evpub rejects a bad JSON value after := with exit 65 and stores nothing" {
	make_sub all '#'
	refused 65 t n:=1x
	refused 65 t 'n:={'
}

@test "evpub rejects words mixed with other text with exit 64 and stores nothing" {
	make_sub all '#'
	refused 64 t a=1 '{}'
	refused 64 t '"x"' a=1
	refused 64 t 1 2
}

@test "evpub refuses a bare word payload with exit 65 and stores nothing" {
	make_sub all '#'
	refused 65 t hello
	refused 65 t ''
	refused 65 t =x
	refused 65 t :=1
}

@test "evpub TYPE - reads one JSON text spanning lines from stdin and stores it compacted" {
	printf '{\n  "a": [1,\n 2.50],\r\n\t"b": "x y"\n}\n' > "$T/in"
	id=$(evpub t.stdin - < "$T/in")
	[ "$(payload_of "$id")" = '{"a":[1,2.50],"b":"x y"}' ]
	id=$(printf '"s"' | evpub t.stdin -)
	[ "$(payload_of "$id")" = '"s"' ]
}

@test "evpub TYPE - with empty stdin is an invalid payload, exit 65, nothing stored" {
	make_sub all '#'
	: > "$T/stdin"
	refused 65 t -
}

@test "options after TYPE are payload: evpub t -1 publishes -1 and evpub t -q is an invalid payload" {
	make_sub all '#'
	id=$(evpub t -1)
	[ "$(payload_of "$id")" = -1 ]
	rm -f "$EV_SPOOL/log/$id" "$EV_SPOOL/subs/all/queue/$id"
	refused 65 t -q
	# A word that looks like a long option is a KEY=VALUE word.
	id=$(evpub t --id=x)
	[ "$(payload_of "$id")" = '{"--id":"x"}' ]
	[ ! -e "$EV_SPOOL/ids/x" ]
}

@test "-- ends the options and long options take their value after =" {
	id=$(evpub --source=src-eq --id=my-id -- t.dd)
	[ "$id" = my-id ]
	[ "$(jq -r .source "$EV_SPOOL/ids/my-id")" = src-eq ]
}

# ---- the stored event ----------------------------------------------------

@test "the stored event is one line with id, type, time, source, payload in that order, time RFC 3339 UTC with microseconds" {
	before=$(date -u +%s)
	id=$(evpub order.paid '{"order": 1234, "amount": 19.90}')
	after=$(date -u +%s)
	f=$EV_SPOOL/log/$id
	[ "$(wc -l < "$f")" -eq 1 ]
	[ "$(tail -c 1 "$f" | od -An -c | tr -d ' ')" = '\n' ]
	[ "$(jq -c 'keys_unsorted' "$f")" = '["id","type","time","source","payload"]' ]
	[ "$(jq -r .id "$f")" = "$id" ]
	[ "$(jq -r .type "$f")" = order.paid ]
	[ "$(jq -r .source "$f")" = "$(hostname)" ]
	t=$(jq -r .time "$f")
	[[ $t =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$ ]]
	# And it is the time of publishing (to the second).
	secs=$(date -u -d "${t%.*}Z" +%s)
	[ "$secs" -ge "$before" ] && [ "$secs" -le "$after" ]
	# The whole line, byte for byte, but for the time.
	[ "$(cat "$f")" = "{\"id\":\"$id\",\"type\":\"order.paid\",\"time\":\"$t\",\"source\":$(jq -n --arg h "$(hostname)" '$h'),\"payload\":{\"order\":1234,\"amount\":19.90}}" ]
}

@test "keys of events of one process sort in publish order" {
	for i in 1 2 3 4 5; do evpub t.order n:=$i; done > "$T/ids"
	[ "$(sort "$T/ids")" = "$(cat "$T/ids")" ]
	[ "$(sort -u "$T/ids" | wc -l)" -eq 5 ]
}

@test "--source is recorded as the source, any UTF-8 text, and a non-UTF-8 one is a usage error" {
	make_sub all '#'
	id=$(evpub --source 'build host "é"' t.src)
	[ "$(jq -r .source "$EV_SPOOL/log/$id")" = 'build host "é"' ]
	rm -f "$EV_SPOOL"/log/* "$EV_SPOOL"/subs/all/queue/*
	refused 64 --source $'\xff' t.src
}

@test "-q prints nothing and still publishes" {
	run --separate-stderr evpub -q t.quiet
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ -z "$stderr" ]
	[ "$(count_files "$EV_SPOOL/log")" -eq 1 ]
	printf '1\n2\n' | evpub -q -l t.quiet > "$T/out"
	[ ! -s "$T/out" ]
	[ "$(count_files "$EV_SPOOL/log")" -eq 3 ]
}

@test "EV_ID and EV_CORRELATION become causationid and correlationid before the payload" {
	id=$(EV_ID=cause-1 EV_CORRELATION=root-0 evpub t.chain k=v)
	f=$EV_SPOOL/log/$id
	[ "$(jq -c 'keys_unsorted' "$f")" = '["id","type","time","source","causationid","correlationid","payload"]' ]
	[ "$(jq -r .causationid "$f")" = cause-1 ]
	[ "$(jq -r .correlationid "$f")" = root-0 ]
	[ "$(payload_of "$id")" = '{"k":"v"}' ]
}

@test "correlationid falls back to EV_ID when EV_CORRELATION is unset or empty" {
	id=$(EV_ID=cause-2 evpub t.chain)
	[ "$(jq -c '[.causationid, .correlationid]' "$EV_SPOOL/log/$id")" = '["cause-2","cause-2"]' ]
	id=$(EV_ID=cause-3 EV_CORRELATION= evpub t.chain)
	[ "$(jq -c '[.causationid, .correlationid]' "$EV_SPOOL/log/$id")" = '["cause-3","cause-3"]' ]
	# Without EV_ID (or with it empty) there is no causationid.
	id=$(EV_ID= evpub t.chain)
	[ "$(jq -c 'keys_unsorted' "$EV_SPOOL/log/$id")" = '["id","type","time","source","payload"]' ]
}

@test "EV_SUBSCRIPTION with EV_ID is recorded as subscription before the payload, and ignored without EV_ID" {
	id=$(EV_ID=c EV_SUBSCRIPTION=thumbs evpub t.chain)
	f=$EV_SPOOL/log/$id
	[ "$(jq -c 'keys_unsorted' "$f")" = '["id","type","time","source","causationid","correlationid","subscription","payload"]' ]
	[ "$(jq -r .subscription "$f")" = thumbs ]
	id=$(EV_SUBSCRIPTION=thumbs evpub t.chain)
	[ "$(jq -r 'has("subscription")' "$EV_SPOOL/log/$id")" = false ]
}

# ---- chosen ids ------------------------------------------------------------

@test "evpub --id twice publishes one event, prints the id both times and exits 0" {
	make_sub all '#'
	run --separate-stderr evpub --id nightly-2026-11-23 backup.due
	[ "$status" -eq 0 ]
	[ "$output" = nightly-2026-11-23 ]
	[ -z "$stderr" ]
	run --separate-stderr evpub --id nightly-2026-11-23 backup.due '{"x":2}'
	[ "$status" -eq 0 ]
	[ "$output" = nightly-2026-11-23 ]
	[ -z "$stderr" ]
	[ "$(count_files "$EV_SPOOL/log")" -eq 1 ]
	[ "$(count_files "$EV_SPOOL/subs/all/queue")" -eq 1 ]
	[ "$(count_files "$EV_SPOOL/tmp")" -eq 0 ]
	# The first one is the one kept; the stored id is the chosen one.
	f=$(find "$EV_SPOOL/log" -type f)
	[ "$(jq -r .id "$f")" = nightly-2026-11-23 ]
	[ "$(jq -c .payload "$f")" = '{}' ]
	[ "$EV_SPOOL/ids/nightly-2026-11-23" -ef "$f" ]
}

@test "evpub rejects an invalid --id with exit 64 and stores nothing" {
	make_sub all '#'
	for bad in '' -x .x a/b 'a b' '$(id)' é "$(printf 'a%.0s' $(seq 201))"; do
		refused 64 --id "$bad" t
	done
	# 200 bytes is the longest id.
	long=$(printf 'a%.0s' $(seq 200))
	[ "$(evpub --id "$long" t)" = "$long" ]
	[ "$(evpub --id 'A_0.b:c-d' t)" = 'A_0.b:c-d' ]
}

@test "6 concurrent publishers of one id make exactly one event, in the log and in each queue" {
	make_sub q1 '#'
	make_sub q2 'race.*'
	pids=()
	for i in 1 2 3 4 5 6; do
		ev_bg evpub --id race-1 race.id n:=$i > "$T/out.$i" 2> "$T/err.$i"
		pids+=($!)
	done
	for i in 1 2 3 4 5 6; do
		rc=0
		wait "${pids[$((i - 1))]}" || rc=$?
		[ "$rc" -eq 0 ] || { echo "publisher $i: $rc $(cat "$T/err.$i")" >&2; return 1; }
		[ "$(cat "$T/out.$i")" = race-1 ]
		[ ! -s "$T/err.$i" ]
	done
	[ "$(count_files "$EV_SPOOL/log")" -eq 1 ]
	[ "$(count_files "$EV_SPOOL/subs/q1/queue")" -eq 1 ]
	[ "$(count_files "$EV_SPOOL/subs/q2/queue")" -eq 1 ]
	[ "$(count_files "$EV_SPOOL/tmp")" -eq 0 ]
	f=$(find "$EV_SPOOL/log" -type f)
	[ "$EV_SPOOL/ids/race-1" -ef "$f" ]
	[ "$EV_SPOOL/subs/q1/queue/$(basename "$f")" -ef "$f" ]
}

@test "the leftover reservation of a killed publisher does not block its id: evpub --id publishes" {
	make_sub all '#'
	key=01a208c0-0000-7000-8000-000000000000
	mkdir -p "$EV_SPOOL/tmp" "$EV_SPOOL/ids"
	# Written by a publisher whose pid no longer exists, reserved as
	# ids/job-7 and linked into the queue, then killed before the log.
	# Made outside tmp/ and shown there last: the background cleanup that
	# make_sub's evsub may have started must find it whole, or not at all.
	printf '{"id":"job-7","type":"t.dead","time":"2026-11-23T13:30:40.099214Z","source":"x","payload":{"dead":true}}\n' \
	    > "$BATS_TEST_TMPDIR/leftover"
	! kill -0 999999 2>/dev/null
	ln "$BATS_TEST_TMPDIR/leftover" "$EV_SPOOL/ids/job-7"
	ln "$BATS_TEST_TMPDIR/leftover" "$EV_SPOOL/subs/all/queue/$key"
	ln "$BATS_TEST_TMPDIR/leftover" "$EV_SPOOL/tmp/$key.999999"
	run --separate-stderr evpub --id job-7 t.live '{"live":true}'
	[ "$status" -eq 0 ]
	[ "$output" = job-7 ]
	[ -z "$stderr" ]
	# The new event is published; the dead one is rolled back everywhere.
	[ "$(jq -c .payload "$EV_SPOOL/ids/job-7")" = '{"live":true}' ]
	[ "$(count_files "$EV_SPOOL/log")" -eq 1 ]
	[ "$(count_files "$EV_SPOOL/tmp")" -eq 0 ]
	[ ! -e "$EV_SPOOL/subs/all/queue/$key" ]
	[ "$(count_files "$EV_SPOOL/subs/all/queue")" -eq 1 ]
	# And it is now taken.
	[ "$(evpub --id job-7 t.live)" = job-7 ]
	[ "$(count_files "$EV_SPOOL/log")" -eq 1 ]
}

@test "a symlink planted as ids/ID is not taken for a published event: evpub --id fails with 73 and stores nothing" {
	make_sub all '#'
	mkdir -p "$EV_SPOOL/ids" "$T/target"
	ln -s "$T/target/ev" "$EV_SPOOL/ids/planted"
	refused 73 --id planted t.sym
	[ ! -e "$T/target/ev" ]
	printf '{"type":"t.sym","id":"planted"}\n' > "$T/stdin"
	refused 73 -l
	[ -L "$EV_SPOOL/ids/planted" ]
}

@test "concurrent evpub -l with the same chosen ids in opposite orders publish each id once and both exit 0" {
	make_sub all '#'
	seq 300 | sed 's/.*/{"type":"t.same","id":"s-&","payload":&}/' > "$T/fwd"
	tac "$T/fwd" > "$T/rev"
	ev_bg sh -c 'exec evpub -l < "$0"' "$T/fwd" > "$T/out.1" 2> "$T/err.1"
	p1=$!
	ev_bg sh -c 'exec evpub -l < "$0"' "$T/rev" > "$T/out.2" 2> "$T/err.2"
	p2=$!
	rc1=0 rc2=0
	wait "$p1" || rc1=$?
	wait "$p2" || rc2=$?
	[ "$rc1" -eq 0 ] || { echo "first: $rc1 $(cat "$T/err.1")" >&2; return 1; }
	[ "$rc2" -eq 0 ] || { echo "second: $rc2 $(cat "$T/err.2")" >&2; return 1; }
	[ ! -s "$T/err.1" ] && [ ! -s "$T/err.2" ]
	# Each printed every id of its input, in its order.
	[ "$(cat "$T/out.1")" = "$(seq 300 | sed 's/^/s-/')" ]
	[ "$(cat "$T/out.2")" = "$(seq 300 | tac | sed 's/^/s-/')" ]
	[ "$(count_files "$EV_SPOOL/log")" -eq 300 ]
	[ "$(count_files "$EV_SPOOL/subs/all/queue")" -eq 300 ]
	[ "$(count_files "$EV_SPOOL/tmp")" -eq 0 ]
	[ -z "$(cat "$EV_SPOOL"/log/* | jq -r .id | sort | uniq -d)" ]
}

@test "a stale ids/ID left alone with one link does not block the id" {
	mkdir -p "$EV_SPOOL/ids"
	echo junk > "$EV_SPOOL/ids/lonely"
	[ "$(evpub --id lonely t.x)" = lonely ]
	[ "$(jq -r .type "$EV_SPOOL/ids/lonely")" = t.x ]
	[ "$(count_files "$EV_SPOOL/log")" -eq 1 ]
}

# ---- -l ------------------------------------------------------------------

@test "evpub -l TYPE publishes each line as a payload and prints the ids one a line in input order" {
	make_sub all '#'
	printf '%s\n' '{"n": 1}' '[2]' '"three"' '4.0' 'null' > "$T/in"
	run --separate-stderr evpub -l t.lines < "$T/in"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "${#lines[@]}" -eq 5 ]
	want=('{"n":1}' '[2]' '"three"' '4.0' 'null')
	for i in 0 1 2 3 4; do
		[[ ${lines[$i]} =~ $UUID7 ]]
		[ "$(payload_of "${lines[$i]}")" = "${want[$i]}" ]
		[ -f "$EV_SPOOL/subs/all/queue/${lines[$i]}" ]
	done
	[ "$(count_files "$EV_SPOOL/log")" -eq 5 ]
}

@test "evpub -l without TYPE takes type, payload, id and source from each object and ignores other members" {
	cat > "$T/in" <<'EOF'
{"type":"job.queued","id":"job-17","payload":{"n":17}}
{"type":"job.queued","payload":[1, 2.50],"source":"line-src"}
{"type":"job.bare","data":{"not":"payload"},"specversion":"1.0"}
{"payload":1e400,"type":"job.big"}
EOF
	run --separate-stderr evpub -l --source def-src < "$T/in"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "${#lines[@]}" -eq 4 ]
	[ "${lines[0]}" = job-17 ]
	[ "$(jq -c '[.id,.type,.source]' "$EV_SPOOL/ids/job-17")" = '["job-17","job.queued","def-src"]' ]
	[ "$(payload_of job-17)" = '{"n":17}' ]
	[ "$(jq -r .source "$EV_SPOOL/log/${lines[1]}")" = line-src ]
	[ "$(payload_of "${lines[1]}")" = '[1,2.50]' ]
	[ "$(payload_of "${lines[2]}")" = '{}' ]
	[ "$(jq -r 'has("data")' "$EV_SPOOL/log/${lines[2]}")" = false ]
	[ "$(payload_of "${lines[3]}")" = '1e400' ]
}

@test "evpub -l rejects a bad line alone with 'evpub: line N:', publishes the others and exits 65" {
	make_sub all '#'
	cat > "$T/in" <<'EOF'
{"type":"ok.one"}

not json
{"type":"a.*"}
{"type":1}
[1]
{"type":"ok.two","id":7}
{"type":"ok.two","source":false}
{"type":"ok.two","id":"bad/id"}
{"type":"ok.two","payload":{"a":1,"a":2}}
{"type":"ok.two","payload":[1,}
{"type":"ok.three"} trailing
{"type":"ok.four","payload":"fine"}
EOF
	run --separate-stderr evpub -l < "$T/in"
	[ "$status" -eq 65 ]
	[ "${#lines[@]}" -eq 2 ]
	[ "$(jq -r .type "$EV_SPOOL/log/${lines[0]}")" = ok.one ]
	[ "$(jq -r .type "$EV_SPOOL/log/${lines[1]}")" = ok.four ]
	[ "$(count_files "$EV_SPOOL/log")" -eq 2 ]
	[ "$(count_files "$EV_SPOOL/subs/all/queue")" -eq 2 ]
	[ "$(count_files "$EV_SPOOL/tmp")" -eq 0 ]
	# One message per bad line, numbered counting the blank one too.
	[ "${#stderr_lines[@]}" -eq 10 ]
	n=3
	for l in "${stderr_lines[@]}"; do
		[[ $l == "evpub: line $n: "* ]] || {
			echo "expected 'evpub: line $n: ...', got '$l'" >&2
			return 1
		}
		n=$((n + 1))
	done
}

@test "evpub -l TYPE rejects an invalid payload line alone, with its line number" {
	printf '%s\n' 1 '{"a":' 2 $'"\xff"' 3 > "$T/in"
	run --separate-stderr evpub -l t.pl < "$T/in"
	[ "$status" -eq 65 ]
	[ "${#lines[@]}" -eq 3 ]
	[ "${#stderr_lines[@]}" -eq 2 ]
	[[ ${stderr_lines[0]} == "evpub: line 2: "* ]]
	[[ ${stderr_lines[1]} == "evpub: line 4: "* ]]
	[ "$(for id in "${lines[@]}"; do payload_of "$id"; done)" = "$(printf '1\n2\n3')" ]
}

@test "evpub -l prints the id of a duplicate line, publishes it once and exits 0" {
	make_sub all '#'
	evpub --id old-1 t.dup > /dev/null
	cat > "$T/in" <<'EOF'
{"type":"t.dup","id":"new-1","payload":1}
{"type":"t.dup","id":"old-1","payload":2}
{"type":"t.dup","id":"new-1","payload":3}
{"type":"t.dup","payload":4}
EOF
	run --separate-stderr evpub -l < "$T/in"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "${#lines[@]}" -eq 4 ]
	[ "${lines[0]}" = new-1 ]
	[ "${lines[1]}" = old-1 ]
	[ "${lines[2]}" = new-1 ]
	[[ ${lines[3]} =~ $UUID7 ]]
	[ "$(count_files "$EV_SPOOL/log")" -eq 3 ]
	[ "$(count_files "$EV_SPOOL/subs/all/queue")" -eq 3 ]
	[ "$(payload_of new-1)" = 1 ]
	[ "$(payload_of old-1)" = '{}' ]
}

@test "evpub -l rejects a type, id or source holding \\u0000 instead of publishing it cut short" {
	make_sub all '#'
	evpub --id a t.nul > /dev/null
	cat > "$T/in" <<'EOF'
{"type":"t.nul","id":"a\u0000b","payload":1}
{"type":"t.nul\u0000x","payload":2}
{"type":"t.nul","source":"s\u0000t","payload":3}
{"type":"t.nul","payload":{"k\u0000":"v\u0000"}}
EOF
	run --separate-stderr evpub -l < "$T/in"
	[ "$status" -eq 65 ]
	[ "${#stderr_lines[@]}" -eq 3 ]
	[[ ${stderr_lines[0]} == "evpub: line 1: "* ]]
	[[ ${stderr_lines[1]} == "evpub: line 2: "* ]]
	[[ ${stderr_lines[2]} == "evpub: line 3: "* ]]
	# Only the last line (a \u0000 inside the payload is fine) and the
	# first event are there; "a" was not reported as a duplicate.
	[ "${#lines[@]}" -eq 1 ]
	[ "$(payload_of "${lines[0]}")" = '{"k\u0000":"v\u0000"}' ]
	[ "$(count_files "$EV_SPOOL/log")" -eq 2 ]
	! grep -q '"source":"s"' "$EV_SPOOL"/log/*
}

@test "evpub -l accepts a number too large for a double in a member it ignores" {
	skip "BUG: jansson refuses 1e400 outside \"payload\" (numeric overflow), so a valid line whose ignored member holds one is rejected with 65; see parse_line() in bin/evpub.c"
	printf '%s\n' '{"type":"t.big","other":1e400,"payload":1}' > "$T/in"
	run --separate-stderr evpub -l < "$T/in"
	[ "$status" -eq 0 ]
	[ "$(payload_of "$output")" = 1 ]
}

@test "evpub -l commits a slow producer's events as they come, without waiting for more input" {
	make_sub all '#'
	mkfifo "$T/fifo"
	ev_bg sh -c 'exec evpub -l < "$0"' "$T/fifo" > "$T/out" 2> "$T/err"
	pid=$!
	exec 7> "$T/fifo"
	echo '{"type":"slow.one"}' >&7
	# The id is printed, and the event published, while stdin is open.
	wait_until 10 test -s "$T/out"
	id=$(cat "$T/out")
	[ -f "$EV_SPOOL/subs/all/queue/$id" ]
	echo '{"type":"slow.two"}' >&7
	wait_until 10 eval '[ "$(wc -l < "$T/out")" -eq 2 ]'
	exec 7>&-
	wait "$pid"
	[ ! -s "$T/err" ]
	[ "$(count_files "$EV_SPOOL/subs/all/queue")" -eq 2 ]
}

@test "evpub -l: a batch that cannot be committed is withdrawn, exits 73, and the events printed before stay published" {
	make_sub all '#'
	make_sub victim 'late.*'
	mkfifo "$T/fifo"
	ev_bg sh -c 'exec evpub -l < "$0"' "$T/fifo" > "$T/out" 2> "$T/err"
	pid=$!
	exec 7> "$T/fifo"
	echo '{"type":"early.one"}' >&7
	wait_until 10 test -s "$T/out"
	first=$(cat "$T/out")
	# Now the queue of a matching subscription is a planted symlink.
	mkdir "$T/target"
	rmdir "$EV_SPOOL/subs/victim/queue"
	ln -s "$T/target" "$EV_SPOOL/subs/victim/queue"
	printf '%s\n' '{"type":"late.two"}' '{"type":"late.three"}' >&7
	exec 7>&-
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 73 ]
	[ "$(wc -l < "$T/err")" -eq 1 ]
	grep -q '^evpub: ' "$T/err"
	[ "$(cat "$T/out")" = "$first" ]
	[ "$(ls "$EV_SPOOL/log")" = "$first" ]
	[ "$(ls "$EV_SPOOL/subs/all/queue")" = "$first" ]
	[ "$(count_files "$EV_SPOOL/tmp")" -eq 0 ]
	[ "$(count_files "$T/target")" -eq 0 ]
}

@test "evpub -l skips empty and blank lines and counts them in line numbers" {
	printf '\n   \n\t\r\n{"type":"x.y"}\n\n' > "$T/in"
	run --separate-stderr evpub -l < "$T/in"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "${#lines[@]}" -eq 1 ]
	[ "$(count_files "$EV_SPOOL/log")" -eq 1 ]
	printf '\n\n\nbad\n' | {
		run --separate-stderr evpub -l
		[ "$status" -eq 65 ]
		[[ $stderr == "evpub: line 4: "* ]]
	}
}

@test "evpub -l publishes a last line without a newline" {
	printf '{"type":"a"}\n{"type":"b"}' > "$T/in"
	run --separate-stderr evpub -l < "$T/in"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 2 ]
	[ "$(jq -r .type "$EV_SPOOL/log/${lines[1]}")" = b ]
}

@test "evpub -l with payload arguments or with --id is a usage error, exit 64, nothing stored" {
	make_sub all '#'
	printf '{"type":"x"}\n' > "$T/stdin"
	refused 64 -l t '{}'
	refused 64 -l --id x
	refused 64 --id x -l t
}

@test "evpub -l skips a line much longer than the payload limit with a message and goes on" {
	mkdir -p "$EV_SPOOL"
	echo 'payload_max = 100' > "$EV_SPOOL/config"
	{
		echo '{"type":"a"}'
		printf '{"type":"b","payload":"%s"}\n' "$(head -c 300000 /dev/zero | tr '\0' x)"
		echo '{"type":"c"}'
		printf '"%s"\n' "$(head -c 150 /dev/zero | tr '\0' y)"
	} > "$T/in"
	run --separate-stderr evpub -l < "$T/in"
	[ "$status" -eq 65 ]
	[ "${#lines[@]}" -eq 2 ]
	[ "$(jq -r .type "$EV_SPOOL/log/${lines[0]}")" = a ]
	[ "$(jq -r .type "$EV_SPOOL/log/${lines[1]}")" = c ]
	[ "${#stderr_lines[@]}" -eq 2 ]
	[[ ${stderr_lines[0]} == "evpub: line 2: "* ]]
	[[ ${stderr_lines[1]} == "evpub: line 4: "* ]]
	# The same with a TYPE: each line is checked against the limit.
	run --separate-stderr evpub -l t.big < "$T/in"
	[ "$status" -eq 65 ]
	[ "${#lines[@]}" -eq 2 ]
	[ "${#stderr_lines[@]}" -eq 2 ]
	[[ ${stderr_lines[0]} == "evpub: line 2: "* ]]
	[[ ${stderr_lines[1]} == "evpub: line 4: "* ]]
}

# ---- limits and config -------------------------------------------------------

@test "payload_max in the config is enforced on every form with exit 65, and a payload at the limit passes" {
	mkdir -p "$EV_SPOOL"
	echo 'payload_max = 100' > "$EV_SPOOL/config"
	make_sub all '#'
	s98=$(head -c 98 /dev/zero | tr '\0' a)
	s99=$(head -c 99 /dev/zero | tr '\0' a)
	id=$(evpub t "\"$s98\"")          # exactly 100 bytes
	[ "$(payload_of "$id")" = "\"$s98\"" ]
	rm -f "$EV_SPOOL"/log/* "$EV_SPOOL"/subs/all/queue/*
	refused 65 t "\"$s99\""
	# White space counts for a JSON text as given.
	refused 65 t "$(printf '%101s' 1)"
	printf '"%s"' "$s99" > "$T/stdin"
	refused 65 t -
	rm "$T/stdin"
	refused 65 t "k=$(head -c 100 /dev/zero | tr '\0' a)"
	printf '"%s"\n' "$s99" > "$T/stdin"
	run --separate-stderr evpub -l t < "$T/stdin"
	[ "$status" -eq 65 ]
	[[ $stderr == "evpub: line 1: "* ]]
	[ "$(landed)" -eq 0 ]
}

@test "the default payload limit is 1 MiB" {
	head -c 1048574 /dev/zero | tr '\0' a | sed 's/.*/"&"/' | tr -d '\n' > "$T/in"
	[ "$(wc -c < "$T/in")" -eq 1048576 ]
	id=$(evpub --no-sync t - < "$T/in")
	[ "$(jq -r '.payload | length' "$EV_SPOOL/log/$id")" -eq 1048574 ]
	rm -f "$EV_SPOOL"/log/*
	{ cat "$T/in"; echo; } > "$T/stdin"
	refused 65 t -
}

@test "a malformed config is exit 78 with one message and nothing stored" {
	mkdir -p "$EV_SPOOL"
	for bad in 'payload_max = lots' 'no_such_key = 1' 'payload_max' \
	    'log_max_age = 3x'; do
		echo "$bad" > "$EV_SPOOL/config"
		refused 78 t.cfg
	done
	printf '# comment\n\npayload_max = 4M\n' > "$EV_SPOOL/config"
	evpub t.cfg > /dev/null
}

# ---- usage and data errors -------------------------------------------------

@test "evpub rejects invalid types with exit 64 and stores nothing" {
	make_sub all '#'
	long=$(printf 'a%.0s' $(seq 201))
	for bad in 'a.*' 'a.#' '#' '*' 'a..b' '..' '.' '.a' 'a.' 'a/b' '/' \
	    '' "$long" 'é' 'ü.x' 'a b' ' a' '$(id)' 'a;b' 'A.b*'; do
		refused 64 "$bad"
	done
	refused 64
	# A type of exactly 200 bytes, with every allowed character, passes.
	ok=$(printf 'a%.0s' $(seq 192)).B-_9.0z
	[ "${#ok}" -eq 200 ]
	evpub "$ok" > /dev/null
}

@test "evpub rejects invalid JSON with exit 65 and stores nothing" {
	make_sub all '#'
	for bad in '{' '[1,2' '{"a":1} x' '{"a":1}{}' '1 2' "'x'" '{a:1}' \
	    '[1,]' '01' '1.' '.5' 'NaN' 'tru' '"abc' '{"a":1,"a":2}' \
	    '{"x":{"a":[],"a":{}}}' $'"\xff"' $'"\xc3"' $'["\xed\xa0\x80"]' \
	    '"\x"' $'"tab\there"'; do
		refused 65 t "$bad"
	done
}

@test "evpub rejects a raw NUL, invalid UTF-8, a truncated text or trailing garbage on stdin with exit 65" {
	make_sub all '#'
	for bad in '1\0' '{"a":"x\0y"}' '\0' '"\xff\xfe"' '{"a":[1,2' \
	    '{"a":1}\n{"b":2}' '{"a":1} //c' '[1]]'; do
		printf "$bad" > "$T/stdin"
		refused 65 t -
	done
}

@test "-h and -V print to stdout and exit 0" {
	run --separate-stderr evpub -h
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == "usage: evpub "* ]]
	[ -z "$stderr" ]
	run --separate-stderr evpub --help
	[ "$status" -eq 0 ]
	run --separate-stderr evpub -V
	[ "$status" -eq 0 ]
	[[ $output =~ ^evpub\ \(evspool\)\ [0-9]+\.[0-9]+ ]]
	[ -z "$stderr" ]
	# Neither touched a spool.
	[ ! -e "$EV_SPOOL" ]
}

@test "an unknown option or a missing value is exit 64 with one line and nothing stored" {
	make_sub all '#'
	refused 64 -Z t
	refused 64 --bogus t
	refused 64 --id
	refused 64 --source
	refused 64 -s
	refused 64 --no-sync=1 t
}

@test "a spool below a regular file is exit 73 with one line" {
	touch "$T/file"
	run --separate-stderr evpub -s "$T/file/spool" t.x
	[ "$status" -eq 73 ]
	one_error_line
	[ -z "$output" ]
	EV_SPOOL=$T/file run --separate-stderr evpub t.x
	[ "$status" -eq 73 ]
	one_error_line
}

@test "-s names the spool and creates it with its parents" {
	id=$(evpub -s "$T/a/b/spool" t.s)
	[ -f "$T/a/b/spool/log/$id" ]
	[ ! -e "$EV_SPOOL" ]
}

# ---- durability switches -----------------------------------------------------

@test "--no-sync and EV_SYNC=0 publish without flushing, and by default evpub flushes" {
	command -v strace > /dev/null || skip "strace is not installed"
	make_sub all '#'
	sync_calls() {
		strace -f -qq -e trace=fsync,fdatasync,syncfs,sync -o "$T/trace" "$@" \
		    > "$T/out"
		grep -cE '^[0-9 ]*(fsync|fdatasync|syncfs|sync)\(' "$T/trace" || true
	}
	[ "$(sync_calls evpub t.sync)" -gt 0 ]
	[ "$(sync_calls evpub --no-sync t.sync)" -eq 0 ]
	[ "$(EV_SYNC=0 sync_calls evpub t.sync)" -eq 0 ]
	[ "$(printf '1\n2\n' | EV_SYNC=0 sync_calls evpub -l t.sync)" -eq 0 ]
	# Other values of EV_SYNC are ignored.
	[ "$(EV_SYNC=1 sync_calls evpub t.sync)" -gt 0 ]
	# The unsynced events are published all the same.
	[ "$(count_files "$EV_SPOOL/log")" -eq 6 ]
	[ "$(count_files "$EV_SPOOL/subs/all/queue")" -eq 6 ]
}

# ---- fan-out -------------------------------------------------------------------

@test "an event is queued only for the subscriptions with a pattern that matches its type" {
	make_sub all '#'
	make_sub one '*'
	make_sub ab 'a.#.b'
	make_sub user 'user.*' 'x.#'
	for t in a a.b a.x.b a.x.y.b a.x.y b.a.b user user.created user.a.b \
	    x x.y.z users.created; do
		evpub --no-sync "$t" > /dev/null
	done
	[ "$(queue_types all | wc -l)" -eq 12 ]
	[ "$(queue_types one)" = "$(printf '%s\n' a user x | sort)" ]
	[ "$(queue_types ab)" = "$(printf '%s\n' a.b a.x.b a.x.y.b | sort)" ]
	[ "$(queue_types user)" = "$(printf '%s\n' user.created x x.y.z | sort)" ]
	[ "$(count_files "$EV_SPOOL/log")" -eq 12 ]
}

@test "a subscription made after a publish gets only the later events" {
	evpub t.early > /dev/null
	make_sub late '#'
	id=$(evpub t.later)
	[ "$(ls "$EV_SPOOL/subs/late/queue")" = "$id" ]
}

@test "files are 0644 and directories 0755 under umask 022" {
	umask 022
	make_sub all '#'
	evpub --id m-1 t.mode > /dev/null
	printf '1\n2\n' | evpub -l t.mode > /dev/null
	[ "$(count_files "$EV_SPOOL/log")" -eq 3 ]
	bad=$(find "$EV_SPOOL" \( -type f ! -perm 0644 \) -o \( -type d ! -perm 0755 \))
	[ -z "$bad" ] || { ls -ld $bad >&2; return 1; }
	# Even under a umask that would give more.
	rm -rf "$EV_SPOOL"
	(umask 0; evpub t.mode > /dev/null)
	bad=$(find "$EV_SPOOL" \( -type f -perm /022 \) -o \( -type d -perm /022 \))
	[ -z "$bad" ] || { ls -ld $bad >&2; return 1; }
}

# ---- symlinks planted in the spool ------------------------------------------------

@test "a symlink planted in place of tmp/ is not followed: the publish fails with 73 and nothing appears at its target" {
	make_sub all '#'
	mkdir "$T/target"
	rm -rf "$EV_SPOOL/tmp"
	ln -s "$T/target" "$EV_SPOOL/tmp"
	run --separate-stderr evpub t.sym
	[ "$status" -eq 73 ]
	one_error_line
	[ -z "$output" ]
	[ "$(count_files "$T/target")" -eq 0 ]
	[ "$(count_files "$EV_SPOOL/log")" -eq 0 ]
	[ "$(count_files "$EV_SPOOL/subs/all/queue")" -eq 0 ]
	[ -L "$EV_SPOOL/tmp" ]
}

@test "a symlink planted in place of a subscription's queue is not followed: the publish fails with 73 and is withdrawn everywhere" {
	make_sub a1 '#'
	make_sub victim '#'
	make_sub z9 '#'
	mkdir "$T/target"
	rmdir "$EV_SPOOL/subs/victim/queue"
	ln -s "$T/target" "$EV_SPOOL/subs/victim/queue"
	run --separate-stderr evpub t.sym
	[ "$status" -eq 73 ]
	one_error_line
	[[ $stderr == *victim* ]]
	[ "$(count_files "$T/target")" -eq 0 ]
	# Withdrawn: no queue keeps a trace of it, and it is not in the log.
	[ "$(landed)" -eq 0 ]
	# Same with -l: the batch fails whole.
	printf '{"type":"a"}\n{"type":"b"}\n' | {
		run --separate-stderr evpub -l
		[ "$status" -eq 73 ]
	}
	[ "$(count_files "$T/target")" -eq 0 ]
	[ "$(landed)" -eq 0 ]
}

@test "a symlink planted as a subscription directory is not followed" {
	make_sub all '#'
	make_sub other '#'
	mkdir -p "$T/target/queue"
	rm -rf "$EV_SPOOL/subs/other"
	ln -s "$T/target" "$EV_SPOOL/subs/other"
	run --separate-stderr evpub t.sym
	[ "$status" -eq 73 ]
	one_error_line
	[ "$(count_files "$T/target/queue")" -eq 0 ]
	[ "$(landed)" -eq 0 ]
}

@test "a subscription whose directory was removed is skipped and the others still get the event" {
	make_sub gone '#'
	make_sub kept '#'
	rm -rf "$EV_SPOOL/subs/gone"
	id=$(evpub t.gone)
	[ -f "$EV_SPOOL/subs/kept/queue/$id" ]
	[ -f "$EV_SPOOL/log/$id" ]
	[ ! -e "$EV_SPOOL/subs/gone" ]
}

# ---- JSONTestSuite -----------------------------------------------------------------

suite() {
	JS=$(json_suite_dir)
	[ -n "$JS" ] || skip "JSONTestSuite not found (see json_suite_dir in tests/helpers.bash)"
}

@test "JSONTestSuite: every y_ file is accepted and stored with the same JSON value" {
	suite
	fails=()
	for f in "$JS"/y_*.json; do
		name=$(basename "$f")
		case $name in
		# Valid JSON, but evpub.1 refuses a repeated key on purpose.
		y_object_duplicated_key.json | y_object_duplicated_key_and_value.json)
			rc=0
			timeout 10 evpub --no-sync t.suite - < "$f" > /dev/null 2>&1 || rc=$?
			[ "$rc" -eq 65 ] || fails+=("$name: duplicate key exit $rc, want 65")
			continue ;;
		esac
		rc=0
		id=$(timeout 10 evpub --no-sync t.suite - < "$f" 2> "$T/err") || rc=$?
		if [ "$rc" -ne 0 ]; then
			fails+=("$name: exit $rc: $(cat "$T/err")")
			continue
		fi
		ev=$EV_SPOOL/log/$id
		if ! jq -e '.id and .type and has("payload")' "$ev" > /dev/null 2>&1; then
			fails+=("$name: stored event does not parse")
			continue
		fi
		if want=$(jq -S . "$f" 2> /dev/null); then
			got=$(jq -S .payload "$ev")
			[ "$got" = "$want" ] || fails+=("$name: payload differs")
		fi
	done
	[ "${#fails[@]}" -eq 0 ] || { printf '%s\n' "${fails[@]}" >&2; return 1; }
}

@test "JSONTestSuite: every n_ file is refused with 65 and nothing is stored" {
	suite
	make_sub all '#'
	fails=()
	for f in "$JS"/n_*.json; do
		rc=0
		timeout 10 evpub --no-sync t.suite - < "$f" > "$T/out" 2> "$T/err" || rc=$?
		[ "$rc" -eq 65 ] || fails+=("$(basename "$f"): exit $rc")
		[ ! -s "$T/out" ] || fails+=("$(basename "$f"): printed $(cat "$T/out")")
		[ "$(wc -l < "$T/err")" -eq 1 ] && grep -q '^evpub: ' "$T/err" ||
		    fails+=("$(basename "$f"): stderr '$(cat "$T/err")'")
	done
	[ "$(landed)" -eq 0 ] || fails+=("$(landed) files landed")
	[ "${#fails[@]}" -eq 0 ] || { printf '%s\n' "${fails[@]}" >&2; return 1; }
}

@test "JSONTestSuite: every i_ file is accepted or refused with 65, never a crash" {
	suite
	fails=()
	for f in "$JS"/i_*.json; do
		rc=0
		id=$(timeout 10 evpub --no-sync t.suite - < "$f" 2> /dev/null) || rc=$?
		case $rc in
		0)
			# (jq itself gives up beyond 256 levels of nesting.)
			! jq . "$f" > /dev/null 2>&1 ||
			    jq -e 'has("payload")' "$EV_SPOOL/log/$id" > /dev/null 2>&1 ||
			    fails+=("$(basename "$f"): accepted but stored event does not parse") ;;
		65) ;;
		*) fails+=("$(basename "$f"): exit $rc") ;;
		esac
	done
	[ "${#fails[@]}" -eq 0 ] || { printf '%s\n' "${fails[@]}" >&2; return 1; }
}

# ---- concurrency ----------------------------------------------------------------------

@test "8 concurrent publishers of 500 events each: every queue holds exactly its matching events, each once" {
	make_sub all '#'
	make_sub ab 'a.#.b'
	make_sub one '*'
	types=(a a.b a.x.b c.d)
	for p in 1 2 3 4 5 6 7 8; do
		for i in $(seq 500); do
			echo "{\"type\":\"${types[$((i % 4))]}\",\"payload\":{\"p\":$p,\"i\":$i}}"
		done > "$T/in.$p"
	done
	pids=()
	for p in 1 2 3 4 5 6 7 8; do
		sync=
		[ $((p % 2)) -eq 0 ] && sync=--no-sync
		# (a background command's stdin is /dev/null unless redirected
		# inside: hence sh -c)
		ev_bg sh -c 'exec evpub $1 -l < "$2"' sh "$sync" "$T/in.$p" \
		    > "$T/ids.$p" 2> "$T/err.$p"
		pids+=($!)
	done
	for p in 1 2 3 4 5 6 7 8; do
		rc=0
		wait "${pids[$((p - 1))]}" || rc=$?
		[ "$rc" -eq 0 ] || { echo "publisher $p: $rc $(cat "$T/err.$p")" >&2; return 1; }
		[ "$(wc -l < "$T/ids.$p")" -eq 500 ]
	done
	[ "$(cat "$T"/ids.* | sort -u | wc -l)" -eq 4000 ]
	[ "$(count_files "$EV_SPOOL/log")" -eq 4000 ]
	[ "$(count_files "$EV_SPOOL/tmp")" -eq 0 ]
	# What each queue should hold: "p i", from the input.
	for p in 1 2 3 4 5 6 7 8; do
		jq -r '"\(.type) \(.payload.p) \(.payload.i)"' "$T/in.$p"
	done > "$T/all.want"
	cut -d' ' -f2- "$T/all.want" | sort > "$T/want.all"
	grep -E '^(a\.b|a\.x\.b) ' "$T/all.want" | cut -d' ' -f2- | sort > "$T/want.ab"
	grep -E '^a ' "$T/all.want" | cut -d' ' -f2- | sort > "$T/want.one"
	[ "$(wc -l < "$T/want.ab")" -eq 2000 ]
	[ "$(wc -l < "$T/want.one")" -eq 1000 ]
	for s in all ab one; do
		find "$EV_SPOOL/subs/$s/queue" -type f -exec cat {} + |
		    jq -r '"\(.payload.p) \(.payload.i)"' | sort > "$T/got.$s"
		[ -z "$(uniq -d "$T/got.$s")" ] || { echo "$s: duplicates" >&2; return 1; }
		cmp "$T/want.$s" "$T/got.$s" || { echo "$s: differs" >&2; return 1; }
	done
	# The printed ids name the events in the log, and each is queued in "#".
	for p in 1 2 3 4 5 6 7 8; do
		while read -r id; do
			[ -f "$EV_SPOOL/subs/all/queue/$id" ] || {
				echo "printed id $id not queued" >&2; return 1; }
		done < "$T/ids.$p"
	done
}
