# bench/lib.sh -- helpers for bench/run (sourced, bash only).
# shellcheck shell=bash

die() {
	printf 'bench/run: %s\n' "$*" >&2
	exit 2
}

say() {
	printf '%s\n' "$*" >&2
}

# A correctness failure (lost, duplicated or stuck events): recorded, reported
# at the end, and the script exits 1.  Timing never fails the run.
FAILS=()
fail() {
	FAILS+=("$*")
	printf 'bench/run: FAIL: %s\n' "$*" >&2
}

# jget JSON FIELD: the value of a number or string member of a one-line JSON
# object (the floors' and lat_probe's output)
jget() {
	local re="\"$2\":\"?([^,\"}]*)"
	[[ $1 =~ $re ]] || die "no \"$2\" in: $1"
	printf '%s' "${BASH_REMATCH[1]}"
}

# sleep without a process: read with a timeout on a pipe nobody writes to
exec {SNOOZE_FD}<> <(:)
snooze() {
	read -r -t "$1" -u "$SNOOZE_FD" || true
}

# count the entries of a directory (0 if it does not exist)
nfiles() {
	if [[ -d $1 ]]; then
		find "$1" -mindepth 1 -maxdepth 1 | wc -l
	else
		echo 0
	fi
}

# lines of a file (0 if missing), and distinct lines
nlines() {
	if [[ -f $1 ]]; then wc -l < "$1"; else echo 0; fi
}

# wait_count CMD... : poll "CMD" (which prints a number) until it prints
# $WANT, or it made no progress for $IDLE seconds, or $MAXWAIT seconds passed.
# Prints the last count.
wait_count() {
	local last=-1 cur t_prog t_start now
	t_start=$EPOCHREALTIME t_prog=$EPOCHREALTIME
	while :; do
		cur=$("$@")
		now=$EPOCHREALTIME
		if ((cur >= WANT)); then break; fi
		if ((cur != last)); then last=$cur t_prog=$now; fi
		if awk -v a="$now" -v b="$t_prog" -v c="$t_start" -v i="$IDLE" -v m="$MAXWAIT" \
			'BEGIN { exit !((a - b > i) || (a - c > m)) }'; then break; fi
		snooze 0.1
	done
	printf '%s' "$cur"
}

# wait until file $1 contains the text $2 (grep -F), at most $3 seconds
wait_grep() {
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		snooze 0.05
	done
	return 1
}

# ---- metrics: M[key] holds the per-round values, space separated ----------

declare -A M=()
add() {
	M[$1]+="$2 "
}

# stats KEY: "median min max" of the values (the median of an even count is
# the mean of the two middle ones); nothing if there are none
stats() {
	[[ -n ${M[$1]:-} ]] || return 0
	local -a v
	read -ra v <<<"${M[$1]}"
	printf '%s\n' "${v[@]}" | sort -g | awk '
		{ v[NR] = $1 }
		END {
			m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			print m, v[1], v[NR]
		}'
}

med() {
	local s
	s=$(stats "$1")
	printf '%s' "${s%% *}"
}

# fmt NUMBER: 3 significant figures or so, no exponent
fmt() {
	awk -v v="$1" 'BEGIN {
		a = v < 0 ? -v : v
		if (a >= 100) printf "%.0f", v
		else if (a >= 10) printf "%.1f", v
		else printf "%.2f", v
	}'
}

# cell KEY UNIT: "median UNIT (min–max)" for a table cell
cell() {
	local s m lo hi
	s=$(stats "$1")
	[[ -n $s ]] || { printf '—'; return; }
	read -r m lo hi <<<"$s"
	if ((R > 1)); then
		printf '%s %s (%s–%s)' "$(fmt "$m")" "$2" "$(fmt "$lo")" "$(fmt "$hi")"
	else
		printf '%s %s' "$(fmt "$m")" "$2"
	fi
}

# jstats KEY: {"median":..,"min":..,"max":..,"values":[..]} or null
jstats() {
	local s m lo hi v
	local -a a
	s=$(stats "$1")
	[[ -n $s ]] || { printf 'null'; return; }
	read -r m lo hi <<<"$s"
	read -ra a <<<"${M[$1]}"
	v=$(printf '%s\n' "${a[@]}" | paste -sd, -)
	printf '{"median":%s,"min":%s,"max":%s,"values":[%s]}' "$m" "$lo" "$hi" "$v"
}

# jstr TEXT: a JSON string
jstr() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\t'/ }
	s=${s//$'\n'/ }
	printf '"%s"' "$s"
}

# rate N T0 T1: N / (T1 - T0), as an integer
rate() {
	awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { if (b > a) printf "%.0f\n", n / (b - a); else print 0 }'
}

# pclean DIR: remove a tree, unlinking files 16 at a time.  On ext4 without a
# journal mounted with `discard`, each unlink that frees a data block waits
# for the device's discard; concurrent unlinks let the block layer merge
# them (20-30 times faster here than rm -rf).
pclean() {
	[[ -d $1 ]] || return 0
	find "$1" -type f -print0 | xargs -0 -r -P 16 -n 256 rm -f
	rm -rf "$1"
}

# cmp A OP B: numeric comparison with awk (A and B may be decimals)
cmp() {
	awk -v a="$1" -v b="$3" "BEGIN { exit !(a $2 b) }"
}

# div A B: A / B
div() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print 0; else printf "%.6g\n", a / b }'
}
