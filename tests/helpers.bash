# tests/helpers.bash: loaded by every bats file.
#
# Each test gets its own spool in its own temp dir, the built tools first in
# PATH, and a record of every background process it starts, so teardown
# stops each one by its pid.

: "${EV_BIN:?run the tests through make check, or set EV_BIN to the directory of the tools}"
export PATH="$EV_BIN:$PATH"

ev_setup() {
	export EV_SPOOL="$BATS_TEST_TMPDIR/spool"
	unset EV_ID EV_CORRELATION EV_SYNC
	EV_PIDS="$BATS_TEST_TMPDIR/pids"
	: > "$EV_PIDS"
}

# Start a command in the background; its pid is in $! and recorded. Its
# stdin is the caller's (`ev_bg evpub -l < file` works): without the
# explicit redirection bash would give a background command /dev/null.
ev_bg() {
	"$@" <&0 &
	echo $! >> "$EV_PIDS"
}

# Kill every recorded process that is still there, then wait for it.
ev_teardown() {
	local pid
	[ -f "${EV_PIDS:-/nonexistent}" ] || return 0
	while read -r pid; do
		kill -TERM "$pid" 2>/dev/null || true
	done < "$EV_PIDS"
	for _ in $(seq 50); do
		local alive=0
		while read -r pid; do
			kill -0 "$pid" 2>/dev/null && alive=1
		done < "$EV_PIDS"
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
	while read -r pid; do
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done < "$EV_PIDS"
}

# wait_until SECONDS COMMAND...: run COMMAND every 50 ms until it succeeds;
# fail (with a message) after SECONDS. A bound on waiting, not a timing
# assertion: a slow machine only waits longer.
wait_until() {
	local limit=$1 i
	shift
	for ((i = 0; i < limit * 20; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	echo "gave up after ${limit}s waiting for: $*" >&2
	return 1
}

# How many entries a directory holds (0 if it does not exist).
count_files() {
	local n
	n=$(find "$1" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
	echo "$n"
}

# Make a durable subscription NAME with PATTERNs, without handling anything.
make_sub() {
	local name=$1
	shift
	local args=()
	for p in "$@"; do args+=(-e "$p"); done
	evsub -n "$name" "${args[@]}" --once -q > /dev/null
}

# The path of the shared JSONTestSuite, or empty when it is not there.
json_suite_dir() {
	local d
	for d in "${EV_SRCDIR:-.}/../shared/testdata/JSONTestSuite/test_parsing" \
	    "/work/shared/testdata/JSONTestSuite/test_parsing"; do
		[ -d "$d" ] && { echo "$d"; return 0; }
	done
	return 0
}

# Every logged event of TYPE, one compact JSON line each, in publish order.
events_of() {
	local f
	for f in "$EV_SPOOL"/log/*; do
		[ -f "$f" ] || continue
		jq -c --arg t "$1" 'select(.type == $t)' "$f"
	done
}

# Build the fault-injection shim (tests/reliability/faultinject.c) into the
# file's temp dir; its path is $FI, for LD_PRELOAD.
build_fault_shim() {
	export FI="$BATS_FILE_TMPDIR/faultinject.so"
	cc -shared -fPIC -O2 -o "$FI" \
	    "${EV_SRCDIR:-.}/tests/reliability/faultinject.c" -ldl
}
