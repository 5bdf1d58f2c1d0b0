#!/usr/bin/env bats
# evpub killed with SIGKILL at random moments while it publishes -l input:
# an id it printed names an event that is in every matching queue exactly
# once, no queue or log file is ever a partial event, a chosen id is never
# published twice even when its earlier publisher died holding it, and the
# clean-up rolls back what the dead publishers left in tmp/.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	ev_setup
	T=$BATS_TEST_TMPDIR
}

teardown() {
	ev_teardown
}

RUNS=${EV_CRASH_RUNS:-60}   # kills; CI runs 60, more is one variable away
LINES=2000

# The -l input of run R, written to stdout slowly: 20 lines, then a pause,
# so evpub commits small batches (it commits when stdin has nothing ready)
# and a kill finds some batches acknowledged and one in flight. Line I has
# type crash.a, crash.x.b or solo by I mod 3; every 10th line chooses the id
# c-I, the same in every run, so a later run publishes again what a killed
# one may have held.
producer() {
	awk -v r="$1" -v n="$LINES" 'BEGIN {
		for (i = 1; i <= n; i++) {
			t = i % 3 == 0 ? "crash.x.b" : i % 3 == 1 ? "crash.a" : "solo"
			id = i % 10 == 0 ? sprintf(",\"id\":\"c-%d\"", i) : ""
			printf "{\"type\":\"%s\"%s,\"payload\":{\"r\":%d,\"i\":%d}}\n", t, id, r, i
			if (i % 20 == 0) {
				fflush()
				system("sleep 0.02")
			}
		}
	}'
}

# Does pattern of subscription S match type T? (all: #, ab: crash.#.b,
# one: *)
matches() {
	case $1:$2 in
	all:*) return 0 ;;
	ab:crash.x.b) return 0 ;;
	one:solo) return 0 ;;
	esac
	return 1
}

# "ID TYPE" of every event file in DIR, one a line; also checks that each
# file is one whole event: one line, newline-terminated, an object with id,
# type, time and payload. Fails with the name of a bad file.
events_in() {
	local dir=$1 n bad
	n=$(find "$dir" -mindepth 1 -maxdepth 1 | wc -l)
	[ "$n" -gt 0 ] || return 0
	# Exactly one line per file, ending with a newline.
	bad=$(find "$dir" -mindepth 1 -maxdepth 1 -type f -exec awk '
	    FNR == 2 { print FILENAME; nextfile }' {} + | head -1)
	[ -z "$bad" ] || { echo "more than one line: $bad" >&2; return 1; }
	bad=$(find "$dir" -mindepth 1 -maxdepth 1 \( ! -type f -o -empty \) | head -1)
	[ -z "$bad" ] || { echo "not a regular file, or empty: $bad" >&2; return 1; }
	# None has more than one line (above), so as many newlines as files
	# means each ends with its newline.
	[ "$(find "$dir" -mindepth 1 -maxdepth 1 -type f -exec cat {} + |
	    wc -l)" -eq "$n" ] || { echo "$dir: a file without its newline" >&2
		return 1; }
	# Each line is a whole event; as many as there are files.
	find "$dir" -mindepth 1 -maxdepth 1 -type f -exec cat {} + |
	    jq -r 'if (.id|type) == "string" and (.type|type) == "string"
		and (.time|type) == "string" and has("payload")
		then "\(.id) \(.type)" else error("not an event") end' \
	    > "$T/events" || { echo "a file in $dir is not an event" >&2; return 1; }
	[ "$(wc -l < "$T/events")" -eq "$n" ] ||
	    { echo "$dir: $n files but $(wc -l < "$T/events") events" >&2; return 1; }
	cat "$T/events"
}

@test "evpub -l killed with SIGKILL again and again: acknowledged ids are queued exactly once, nothing partial, chosen ids once, gc rolls back the rest" {
	make_sub all '#'
	make_sub ab 'crash.#.b'
	make_sub one '*'
	killed=0
	for r in $(seq "$RUNS"); do
		sync=
		[ $((r % 2)) -eq 0 ] && sync=--no-sync
		rm -f "$T/fifo"
		mkfifo "$T/fifo"
		ev_bg sh -c 'exec evpub $1 -l < "$2"' sh "$sync" "$T/fifo" \
		    > "$T/out.$r" 2> "$T/err.$r"
		pid=$!
		ev_bg producer "$r" > "$T/fifo"
		prod=$!
		sleep "$(printf '0.%03d' $((RANDOM % 200)))"
		kill -KILL "$pid" 2> /dev/null && killed=$((killed + 1))
		rc=0
		wait "$pid" || rc=$?
		wait "$prod" 2> /dev/null || true
		# Killed (137), or it had finished: nothing else.
		[ "$rc" -eq 137 ] || [ "$rc" -eq 0 ] || {
			echo "run $r: evpub exited $rc: $(cat "$T/err.$r")" >&2
			return 1
		}
		[ "$rc" -ne 0 ] || [ ! -s "$T/err.$r" ]
	done
	# Most runs were really killed in the middle.
	[ "$killed" -ge $((RUNS / 2)) ]

	# The acknowledged ids: complete lines of each run's output (a line
	# cut by the kill names an acknowledged event too, but cannot be read).
	for r in $(seq "$RUNS"); do
		f=$T/out.$r
		if [ -s "$f" ] && [ "$(tail -c 1 "$f" | od -An -tx1 | tr -d ' ')" != 0a ]; then
			sed '$d' "$f"
		else
			cat "$f"
		fi
	done | sort -u > "$T/acked"
	[ "$(wc -l < "$T/acked")" -gt 0 ]

	# Every file in log/ and in every queue is a whole event.
	events_in "$EV_SPOOL/log" | sort > "$T/log.events"
	for s in all ab one; do
		events_in "$EV_SPOOL/subs/$s/queue" | sort > "$T/q.$s"
	done

	# Every acknowledged id is in the log, and in every matching queue
	# exactly once (by the id inside the files), in no other queue.
	join -j 1 "$T/acked" <(cut -d' ' -f1,2 "$T/log.events" | sort -u -k1,1) \
	    > "$T/acked.types"
	[ "$(wc -l < "$T/acked.types")" -eq "$(wc -l < "$T/acked")" ] || {
		echo "acknowledged but not in log/:" >&2
		comm -23 "$T/acked" <(cut -d' ' -f1 "$T/acked.types") | head >&2
		return 1
	}
	for s in all ab one; do
		cut -d' ' -f1 "$T/q.$s" | sort | uniq -c |
		    awk '{ print $2, $1 }' > "$T/count.$s"
		bad=$(awk -v s="$s" 'FNR == NR { n[$1] = $2; next }
		    { want = s == "all" || (s == "ab" && $2 == "crash.x.b") ||
			(s == "one" && $2 == "solo")
		      if (n[$1] + 0 != want)
			print $1 " (" $2 ") queued " n[$1] + 0 " times"
		    }' "$T/count.$s" "$T/acked.types" | head)
		[ -z "$bad" ] || { echo "$s: acknowledged but $bad" >&2; return 1; }
		# Nothing queued twice, acknowledged or not, and nothing
		# misrouted.
		[ -z "$(cut -d' ' -f1 "$T/q.$s" | sort | uniq -d)" ] || {
			echo "$s: an id queued twice" >&2; return 1; }
		while read -r id type; do
			matches "$s" "$type" || { echo "$s: $id ($type) misrouted" >&2; return 1; }
		done < <(sort -u -k2,2 "$T/q.$s")
	done
	# A chosen id is in the log at most once.
	[ -z "$(cut -d' ' -f1 "$T/log.events" | sort | uniq -d)" ]

	# The clean-up rolls back what the dead publishers left.
	rm -f "$EV_SPOOL/gc.stamp"
	run --separate-stderr evctl gc
	[ "$status" -eq 0 ]
	[ "$(count_files "$EV_SPOOL/tmp")" -eq 0 ] || {
		ls -l "$EV_SPOOL/tmp" | head >&2; return 1; }
	for s in all ab one; do
		extra=$(comm -23 <(ls "$EV_SPOOL/subs/$s/queue" | sort) \
		    <(ls "$EV_SPOOL/log" | sort))
		[ -z "$extra" ] || {
			echo "$s: queued but not in log/ after gc: $extra" | head >&2
			return 1
		}
		for k in $(ls "$EV_SPOOL/subs/$s/queue" | head -200); do
			[ "$EV_SPOOL/subs/$s/queue/$k" -ef "$EV_SPOOL/log/$k" ]
		done
	done
	# Every id reservation names a logged event, with that id.
	# (find, not globs: a long run leaves more names than argv holds)
	[ "$(find "$EV_SPOOL/ids" -type f -exec cat {} + | jq -r .id | sort)" = \
	    "$(ls "$EV_SPOOL/ids" | sort)" ]
	[ -z "$(comm -23 <(find "$EV_SPOOL/ids" -type f -printf '%i\n' | sort) \
	    <(find "$EV_SPOOL/log" -type f -printf '%i\n' | sort))" ]
	# Still every acknowledged id is there.
	[ -z "$(comm -23 "$T/acked" <(find "$EV_SPOOL/log" -type f -exec cat {} + |
	    jq -r .id | sort -u))" ]

	# Publishing every chosen id again, to the end, publishes each exactly
	# once overall: the dead runs' reservations block nothing.
	producer final | grep '"id"' > "$T/again"
	run --separate-stderr evpub -l < "$T/again"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "${#lines[@]}" -eq $((LINES / 10)) ]
	find "$EV_SPOOL/log" -type f -exec cat {} + | jq -r 'select(.id | startswith("c-")) | .id' |
	    sort > "$T/chosen"
	[ "$(wc -l < "$T/chosen")" -eq $((LINES / 10)) ]
	[ -z "$(uniq -d "$T/chosen")" ]
	for s in all ab one; do
		find "$EV_SPOOL/subs/$s/queue" -type f -exec cat {} + |
		    jq -r 'select(.id | startswith("c-")) | .id' | sort > "$T/qc.$s"
		[ -z "$(uniq -d "$T/qc.$s")" ]
	done
	[ "$(wc -l < "$T/qc.all")" -eq $((LINES / 10)) ]
	# c-I has type crash.x.b when I mod 3 is 0, solo when it is 2.
	[ "$(wc -l < "$T/qc.ab")" -eq "$(seq 10 10 "$LINES" | awk '$1 % 3 == 0' | wc -l)" ]
	[ "$(wc -l < "$T/qc.one")" -eq "$(seq 10 10 "$LINES" | awk '$1 % 3 == 2' | wc -l)" ]
	[ "$(count_files "$EV_SPOOL/tmp")" -eq 0 ]
}
