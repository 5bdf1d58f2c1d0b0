#!/usr/bin/env bats
# The library's pure functions: the TAP table of tests/topic_table.c (types,
# patterns, matching, names, ids, durations, keys), and the same rules seen
# through the tools on a real spool.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	ev_setup
	T=$BATS_TEST_TMPDIR
}

teardown() {
	ev_teardown
}

# The types in a subscription's queue, one a line, sorted.
queue_types() {
	local f
	for f in "$EV_SPOOL/subs/$1/queue"/*; do
		[ -f "$f" ] && jq -r .type "$f"
	done | sort
}

@test "the topic table (types, patterns, matching, names, ids, durations, keys) passes every case" {
	tt=${EV_TESTS:-}/topic_table
	[ -n "${EV_TESTS:-}" ] && [ -x "$tt" ] ||
	    skip "no topic_table: build it with 'make tests/topic_table' and set EV_TESTS"
	run --separate-stderr "$tt"
	[ "$status" -eq 0 ] || {
		echo "topic_table exited $status; failing cases:" >&2
		printf '%s\n' "${lines[@]}" | grep '^not ok' >&2
		return 1
	}
	# Well-formed TAP: a plan 1..N and N lines "ok", none "not ok".
	plan=$(printf '%s\n' "${lines[@]}" | grep -E '^1\.\.[0-9]+$')
	n=${plan#1..}
	[ "$n" -gt 0 ]
	[ "$(printf '%s\n' "${lines[@]}" | grep -c '^ok ')" -eq "$n" ]
	! printf '%s\n' "${lines[@]}" | grep -q '^not ok'
}

@test "# alone matches every type, of one segment or many" {
	make_sub every '#'
	for t in a a.b a.b.c.d.e x-1 Z_9.q; do
		evpub --no-sync "$t" > /dev/null
	done
	[ "$(queue_types every)" = "$(printf '%s\n' a a.b a.b.c.d.e x-1 Z_9.q | sort)" ]
}

@test "a.#.b matches a.b, a.x.b and a.x.y.b, and not a.x.y, b.a.b or a.bc" {
	make_sub ab 'a.#.b'
	for t in a.b a.x.b a.x.y.b a.x.y b.a.b a.bc a ab.b a.b.c; do
		evpub --no-sync "$t" > /dev/null
	done
	[ "$(queue_types ab)" = "$(printf '%s\n' a.b a.x.b a.x.y.b | sort)" ]
}

@test "* matches exactly one segment and #.done matches done at any depth" {
	make_sub star 'user.*'
	make_sub done '#.done'
	for t in user user.created user.a.b users.created done job.done \
	    a.b.done done.x; do
		evpub --no-sync "$t" > /dev/null
	done
	[ "$(queue_types star)" = user.created ]
	[ "$(queue_types done)" = "$(printf '%s\n' a.b.done done job.done | sort)" ]
}

@test "types and patterns are case-sensitive" {
	make_sub lower 'user.*'
	evpub --no-sync User.created > /dev/null
	evpub --no-sync user.Created > /dev/null
	[ "$(queue_types lower)" = user.Created ]
}

@test "evsub -e refuses a wildcard that is not a whole segment with exit 64 and registers nothing" {
	for bad in 'a.b*' '*a' 'a.#b' 'a..b' '' 'a/b' '..'; do
		run --separate-stderr evsub -n bad -e "$bad" --once -q
		[ "$status" -eq 64 ] || {
			echo "pattern '$bad': exit $status" >&2
			return 1
		}
		[ "${#stderr_lines[@]}" -eq 1 ]
		[[ $stderr == "evsub: "* ]]
		[ ! -e "$EV_SPOOL/subs/bad" ]
		! grep -q '^subs/bad ' "$EV_SPOOL/subs.idx" 2> /dev/null
	done
}

@test "a type of exactly 200 bytes is accepted and one of 201 bytes refused with 64" {
	make_sub all '#'
	t200=$(printf 'a%.0s' $(seq 98)).$(printf 'b%.0s' $(seq 101))
	[ "${#t200}" -eq 200 ]
	id=$(evpub "$t200")
	[ "$(jq -r .type "$EV_SPOOL/log/$id")" = "$t200" ]
	[ "$(queue_types all)" = "$t200" ]
	run --separate-stderr evpub "${t200}c"
	[ "$status" -eq 64 ]
	[[ $stderr == "evpub: "* ]]
	[ "$(count_files "$EV_SPOOL/log")" -eq 1 ]
	# The same bound holds for patterns.
	p200=$(printf 'a%.0s' $(seq 198)).#
	[ "${#p200}" -eq 200 ]
	evsub -n long -e "$p200" --once -q
	run --separate-stderr evsub -n longer -e "a$p200" --once -q
	[ "$status" -eq 64 ]
}

@test "a type of one segment of 200 characters and one of 100 one-letter segments are both valid" {
	t1=$(printf 'x%.0s' $(seq 200))
	tdots=$(printf 'a.%.0s' $(seq 99))a
	[ "${#tdots}" -eq 199 ]
	evpub --no-sync "$t1" > /dev/null
	evpub --no-sync "$tdots" > /dev/null
	[ "$(count_files "$EV_SPOOL/log")" -eq 2 ]
}
