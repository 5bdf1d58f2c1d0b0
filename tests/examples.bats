#!/usr/bin/env bats
# examples/ and contrib/systemd/: each example run end to end on the test's
# spool, with the tools from EV_BIN in PATH, and the systemd units checked by
# systemd-analyze and run the way systemd would run them.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	ev_setup
	T=$BATS_TEST_TMPDIR
	EX=${EV_SRCDIR:?set EV_SRCDIR to the source tree}/examples
	SD=$EV_SRCDIR/contrib/systemd
}

teardown() {
	ev_teardown
}

# ---- helpers of this file ----------------------------------------------


# Is the durable subscription NAME free, no evsub holding it?
sub_free() {
	local name=$1
	shift
	evsub -n "$name" "$@" --once -q > /dev/null
}

# ---- notify ------------------------------------------------------------------

@test "notify: run.sh turns each user event into one mail line and one chat message, and leaves nothing running" {
	NOTIFY_DIR=$T/out
	mkdir "$NOTIFY_DIR"
	export NOTIFY_DIR
	run --separate-stderr "$EX/notify/run.sh"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	# The events, published by create_user and delete_user.
	[ "$(events_of user.created | jq -c .payload)" = "$(printf '%s\n' \
	    '{"name":"ann","email":"ann@example.org"}' \
	    '{"name":"bob","email":"bob@example.org"}')" ]
	[ "$(events_of user.deleted | jq -c .payload)" = '{"name":"bob"}' ]
	# One mail line and one chat message per event, in order.
	[ "$(wc -l < "$NOTIFY_DIR/mail.log")" -eq 3 ]
	grep -q 'Subject: user ann created' "$NOTIFY_DIR/mail.log"
	[ "$(sed -n 3p "$NOTIFY_DIR/mail.log" | grep -c 'Subject: user bob deleted')" -eq 1 ]
	[ "$(jq -r .text "$NOTIFY_DIR/chat.log")" = "$(printf '%s\n' \
	    'New user ann <ann@example.org>' 'New user bob <bob@example.org>' \
	    'User bob was deleted')" ]
	# The chat message names the event it came from.
	[ "$(jq -r .event "$NOTIFY_DIR/chat.log" | tail -n 1)" = \
	    "$(events_of user.deleted | jq -r .id)" ]
	# run.sh shows both files.
	[[ $output == *"Subject: user bob deleted"* ]]
	[[ $output == *'"text":"User bob was deleted"'* ]]
	# Nothing queued, nothing left running: the notifier is free to start.
	[ "$(count_files "$EV_SPOOL/subs/notifier/queue")" -eq 0 ]
	sub_free notifier -e user.created -e user.deleted
}

@test "notify: users.sh's functions publish from any shell, and the notifier catches up on what it missed" {
	NOTIFY_DIR=$T/out USERS_DB=$T/users
	mkdir "$NOTIFY_DIR"
	export NOTIFY_DIR USERS_DB
	"$EX/notify/run.sh" > /dev/null
	# The notifier is stopped; the application goes on publishing.
	(
		. "$EX/notify/users.sh"
		create_user carl carl@example.org
		create_user dora dora@example.org
		delete_user carl
	)
	# Their work is done (ann is run.sh's), then the event published.
	[ "$(cat "$USERS_DB")" = "$(printf '%s\n' 'ann ann@example.org' \
	    'dora dora@example.org')" ]
	# Started again, it tells of each, in order.
	run --separate-stderr evsub -n notifier -e user.created \
	    -e user.deleted --once -- "$EX/notify/notify.sh"
	[ "$status" -eq 0 ]
	[ "$(wc -l < "$NOTIFY_DIR/mail.log")" -eq 6 ]
	[ "$(tail -n 3 "$NOTIFY_DIR/mail.log" | sed 's/ | event.*//')" = \
	    "$(printf '%s\n' \
	    'To: admins@example.org | Subject: user carl created' \
	    'To: admins@example.org | Subject: user dora created' \
	    'To: admins@example.org | Subject: user carl deleted')" ]
	# A wrong call publishes nothing.
	(
		. "$EX/notify/users.sh"
		run create_user only-a-name
		[ "$status" -eq 64 ]
	)
	[ "$(events_of user.created | wc -l)" -eq 4 ]
}

# ---- chain -------------------------------------------------------------------

@test "chain: run.sh carries a request through three steps to process.completed, each step's JSON the next one's input" {
	run --separate-stderr "$EX/chain/run.sh"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	for t in process.requested process.step1.completed \
	    process.step2.completed process.completed; do
		[ "$(events_of "$t" | wc -l)" -eq 1 ]
	done
	# Step 1 priced the order from the request...
	[ "$(events_of process.step1.completed | jq -c .payload.output)" = \
	    '{"order":"A-17","lines":2,"subtotal_cents":700}' ]
	# ...step 2 added the tax to step 1's output...
	[ "$(events_of process.step2.completed | jq -c .payload.output)" = \
	    '{"order":"A-17","lines":2,"subtotal_cents":700,"tax_cents":140,"total_cents":840}' ]
	# ...and step 3's result is the outcome of the whole process.
	p=$(events_of process.completed | jq -c .payload)
	[ "$(jq -c .output <<< "$p")" = \
	    '{"order":"A-17","invoice":"INV-A-17","total_cents":840,"status":"invoiced"}' ]
	# run.sh names its scripts by their physical path (cd && pwd).
	[ "$(jq -c '[.exit, .command[0]]' <<< "$p")" = \
	    "[0,\"$(cd "$EX/chain" && pwd -P)/step3.sh\"]" ]
	# No step failed, nothing is left queued.
	[ -z "$(cat "$EV_SPOOL"/log/* | jq -r 'select(.type | endswith(".failed")) | .id')" ]
	for s in step1 step2 step3; do
		[ "$(count_files "$EV_SPOOL/subs/$s/queue")" -eq 0 ]
		[ "$(count_files "$EV_SPOOL/subs/$s/dead")" -eq 0 ]
	done
	[[ $output == *'{"order":"A-17","invoice":"INV-A-17","total_cents":840,"status":"invoiced"}'* ]]
}

@test "chain: all events of a run share one correlationid, and evctl trace shows the chain step by step" {
	"$EX/chain/run.sh" > /dev/null
	root=$(events_of process.requested | jq -r .id)
	s1=$(events_of process.step1.completed | jq -r .id)
	s2=$(events_of process.step2.completed | jq -r .id)
	done_id=$(events_of process.completed | jq -r .id)
	# The root is the correlation of every other event, each caused by the
	# one before and published by the step's subscription.
	[ "$(events_of process.requested | jq -c '[.correlationid, .causationid]')" = '[null,null]' ]
	[ "$(events_of process.step1.completed | jq -c '[.correlationid, .causationid, .subscription]')" = "[\"$root\",\"$root\",\"step1\"]" ]
	[ "$(events_of process.step2.completed | jq -c '[.correlationid, .causationid, .subscription]')" = "[\"$root\",\"$s1\",\"step2\"]" ]
	[ "$(events_of process.completed | jq -c '[.correlationid, .causationid, .subscription]')" = "[\"$root\",\"$s2\",\"step3\"]" ]

	# The tree, from any event of the run.
	for id in "$root" "$done_id"; do
		run --separate-stderr evctl trace "$id"
		[ "$status" -eq 0 ]
		[ "${#lines[@]}" -eq 4 ]
		[[ ${lines[0]} == "process.requested  $root  "*"[step1: done]" ]]
		[[ ${lines[1]} == "   └─ process.step1.completed  $s1  "*"(from step1)  [step2: done]" ]]
		[[ ${lines[2]} == "      └─ process.step2.completed  $s2  "*"(from step2)  [step3: done]" ]]
		[[ ${lines[3]} == "         └─ process.completed  $done_id  "*"(from step3)" ]]
	done
	run --separate-stderr evctl trace --json "$s1"
	[ "$status" -eq 0 ]
	[ "$(jq -c '[.correlationid, .events]' <<< "$output")" = "[\"$root\",4]" ]
	[ "$(jq -r '.chain[0] | [.type, .effects[0].type, .effects[0].effects[0].type,
	    .effects[0].effects[0].effects[0].type] | join(" ")' <<< "$output")" = \
	    "process.requested process.step1.completed process.step2.completed process.completed" ]
}

@test "chain: a request step 1 can never handle is its dead letter at once, and the chain goes no further" {
	echo '{"order": "B-2", "items": []}' > "$T/empty-order.json"
	ORDER=$T/empty-order.json run --separate-stderr "$EX/chain/run.sh"
	[ "$status" -eq 0 ]
	[ "$(count_files "$EV_SPOOL/subs/step1/dead")" -eq 1 ]
	[ "$(events_of process.step1.failed | jq -c '.payload.exit')" = 100 ]
	[ -z "$(events_of process.step1.completed)" ]
	[ -z "$(events_of process.completed)" ]
	[[ $stderr == *"step1.sh: event "*" is not an order with items"* ]]
	[[ $output == *"[step1: dead (exit 100)]"* ]]
	[[ $output == *"no process.completed"* ]]
}

# ---- cron --------------------------------------------------------------------

# The job lines of crontab.example, their five time fields removed.
cron_jobs() {
	grep -Ev '^[[:space:]]*(#|$)|^[A-Za-z_][A-Za-z0-9_]*=' \
	    "$EX/cron/crontab.example" |
	    sed -E 's/^([^[:space:]]+[[:space:]]+){5}//'
}

# run_as_cron BACKUP_SRC: the crontab's job line as cron runs it: /bin/sh -c,
# the crontab's environment lines and nothing else, no stdin; with the
# paths that point at an installation pointed at this test instead.
run_as_cron() {
	local env=()
	mapfile -t env < <(grep -E '^[A-Za-z_][A-Za-z0-9_]*=' \
	    "$EX/cron/crontab.example")
	run --separate-stderr env -i "${env[@]}" PATH="$EV_BIN:/usr/bin:/bin" \
	    EV_SPOOL="$EV_SPOOL" JOBS="$EX/cron" BACKUP_SRC="$1" \
	    BACKUP_DEST="$T/backups" /bin/sh -c "$(cron_jobs)" < /dev/null
}

@test "cron: the crontab wraps one job in evrun, for cron's /bin/sh and PATH" {
	[ "$(cron_jobs | wc -l)" -eq 1 ]
	[[ $(cron_jobs) == "evrun -q -t backup -- "* ]]
	# cron runs commands with /bin/sh and turns '%' into a newline.
	grep -qx 'SHELL=/bin/sh' "$EX/cron/crontab.example"
	grep -q '^PATH=' "$EX/cron/crontab.example"
	grep -q '^EV_SPOOL=' "$EX/cron/crontab.example"
	[[ $(cron_jobs) != *%* ]]
}

@test "cron: the job run as cron would publishes backup.failed or backup.completed and exits as the job did" {
	run_as_cron "$T/no-such-dir"
	[ "$status" -eq 1 ]
	# Quiet but for the job's own complaint, which cron would mail.
	[ -z "$output" ]
	[[ $stderr == *"backup.sh: cannot back up $T/no-such-dir"* ]]
	p=$(events_of backup.failed | jq -c .payload)
	[ "$(jq -c .exit <<< "$p")" = 1 ]
	[[ $(jq -r .stderr <<< "$p") == *"cannot back up $T/no-such-dir"* ]]

	mkdir "$T/data"
	echo precious > "$T/data/file"
	run_as_cron "$T/data"
	[ "$status" -eq 0 ]
	# Nothing printed, so nothing mailed: the job's output is in the event.
	[ -z "$output" ]
	[ -z "$stderr" ]
	out=$(events_of backup.completed | jq -c .payload.output)
	archive=$(jq -r .archive <<< "$out")
	[ "$(jq -r .source <<< "$out")" = "$T/data" ]
	[ "$(jq -r .bytes <<< "$out")" -eq "$(wc -c < "$archive")" ]
	[ "$(tar -xOzf "$archive" ./file)" = precious ]
}

@test "cron: the alerts subscription writes one line for the failed run and none for the one that succeeded" {
	export ALERT_LOG=$T/alerts.log
	# The durable subscription exists before the jobs run.
	evsub -n alerts -e '#.failed' --once -- "$EX/cron/alert.sh"
	run_as_cron "$T/no-such-dir"
	[ "$status" -eq 1 ]
	mkdir "$T/data"
	run_as_cron "$T/data"
	[ "$status" -eq 0 ]
	run --separate-stderr evsub -n alerts -e '#.failed' --once -- \
	    "$EX/cron/alert.sh"
	[ "$status" -eq 0 ]
	[ "$(wc -l < "$ALERT_LOG")" -eq 1 ]
	failed=$(events_of backup.failed)
	[ "$(cat "$ALERT_LOG")" = "$(jq -r .time <<< "$failed") ALERT backup.failed on $(jq -r .source <<< "$failed"): exit 1: backup.sh: cannot back up $T/no-such-dir" ]
	# A job killed by a signal says so.
	run env ALERT_LOG="$ALERT_LOG" evrun -q -t db.vacuum -- sh -c 'kill -TERM $$'
	[ "$status" -eq 143 ]
	evsub -n alerts -e '#.failed' --once -- "$EX/cron/alert.sh"
	[[ $(tail -n 1 "$ALERT_LOG") == *"ALERT db.vacuum.failed on "*": killed by signal 15: " ]]
}

@test "cron: run.sh runs the job failing and succeeding and shows the one alert" {
	OUT=$T/out run --separate-stderr "$EX/cron/run.sh"
	[ "$status" -eq 0 ]
	[ "$(events_of backup.failed | wc -l)" -eq 1 ]
	[ "$(events_of backup.completed | wc -l)" -eq 1 ]
	[ "$(wc -l < "$T/out/alerts.log")" -eq 1 ]
	[[ $output == *"ALERT backup.failed on "* ]]
	sub_free alerts -e '#.failed'
}

# ---- contrib/systemd -------------------------------------------------------------

# The value of KEY in a config file or unit, as systemd reads it: the last
# KEY= line, trailing blanks removed.
unit_value() {
	sed -n "s/^$2=//p" "$1" | tail -n 1 | sed 's/[[:space:]]*$//'
}

# The argv of UNIT's ExecStart= for instance NAME with config CONF, one word
# a line, as systemd makes it of a config in the documented format: %i is
# NAME, an unbraced $KEY alone is CONF's value split at blanks (no globbing),
# and the binary is the one under test.
exec_start() {
	local unit=$1 name=$2 conf=$3 line w v
	line=$(unit_value "$unit" ExecStart)
	line=${line//%i/$name}
	set -f
	for w in $line; do
		if [[ $w =~ ^\$[A-Za-z_][A-Za-z0-9_]*$ ]]; then
			for v in $(unit_value "$conf" "${w#\$}"); do
				printf '%s\n' "$v"
			done
		elif [ "$w" = /usr/local/bin/evsub ]; then
			printf '%s\n' "$EV_BIN/evsub"
		else
			printf '%s\n' "$w"
		fi
	done
	set +f
}

# The example config, pointed at this checkout and this test.
test_conf() {
	sed -e "s|/usr/local/share/evspool/examples|$EX|" \
	    -e "s|^NOTIFY_DIR=.*|NOTIFY_DIR=$T/out|" "$SD/example.conf" > "$T/notifier.conf"
	mkdir -p "$T/out"
}

# The duration in seconds of a value like 30s or 2min.
seconds() {
	case $1 in
	*min) echo $((${1%min} * 60)) ;;
	*s) echo "${1%s}" ;;
	*) echo "$1" ;;
	esac
}

@test "systemd: the units pass systemd-analyze verify" {
	command -v systemd-analyze > /dev/null ||
	    skip "systemd-analyze is not installed (apt-get install systemd)"
	mkdir "$T/units"
	for f in evsub@.service evsub-once@.service evsub-once@.timer; do
		# verify wants the binary of ExecStart= to exist.
		sed "s|/usr/local/bin/evsub|$EV_BIN/evsub|" "$SD/$f" > "$T/units/$f"
	done
	cd "$T/units"
	run systemd-analyze verify --man=no "$T/units/evsub@demo.service" \
	    "$T/units/evsub-once@demo.service" "$T/units/evsub-once@demo.timer"
	if [ "$status" -ne 0 ] && [[ $output == *"System has not been booted with systemd"* ||
	    $output == *"Failed to connect to bus"* ]]; then
		skip "systemd-analyze cannot run here: $output"
	fi
	[ "$status" -eq 0 ]
	# Not even a warning (an unknown key is only a warning).
	[ -z "$output" ]
}

@test "systemd: the units stop evsub with SIGTERM to it alone and wait longer than its --grace" {
	for f in evsub@.service evsub-once@.service; do
		[ "$(unit_value "$SD/$f" KillSignal)" = SIGTERM ]
		[ "$(unit_value "$SD/$f" KillMode)" = mixed ]
		[ "$(unit_value "$SD/$f" EnvironmentFile)" = '/etc/evspool/%i.conf' ]
		grace=$(unit_value "$SD/$f" ExecStart | sed -E 's/.*--grace ([^ ]+).*/\1/')
		stop=$(unit_value "$SD/$f" TimeoutStopSec)
		# The grace, the second between a handler's TERM and KILL, a margin.
		[ "$(seconds "$stop")" -ge $(($(seconds "$grace") + 5)) ]
	done
	[ "$(unit_value "$SD/evsub@.service" Restart)" = on-failure ]
	grep -qx '#User=evspool' "$SD/evsub@.service"
	grep -qx '#Group=evspool' "$SD/evsub@.service"
	[[ $(unit_value "$SD/evsub-once@.service" ExecStart) == *" --once "* ]]
}

@test "systemd: evsub-once@'s ExecStart with the example config handles the queued events and exits 0" {
	test_conf
	mapfile -t argv < <(exec_start "$SD/evsub-once@.service" notifier \
	    "$T/notifier.conf")
	[ "${argv[0]}" = "$EV_BIN/evsub" ]
	# The patterns came through as separate words, untouched.
	[[ " ${argv[*]} " == *" -e user.created -e user.deleted "* ]]
	# The rest of the config is the environment, as EnvironmentFile= does.
	NOTIFY_DIR=$(unit_value "$T/notifier.conf" NOTIFY_DIR)
	export NOTIFY_DIR
	"${argv[@]}"    # creates the subscription
	evpub user.created name=eve email=eve@example.org > /dev/null
	evpub user.other name=zed > /dev/null
	evpub user.deleted name=eve > /dev/null
	run --separate-stderr "${argv[@]}"
	[ "$status" -eq 0 ]
	[ "$(sed 's/ | event.*//' "$T/out/mail.log")" = "$(printf '%s\n' \
	    'To: admins@example.org | Subject: user eve created' \
	    'To: admins@example.org | Subject: user eve deleted')" ]
}

@test "systemd: evsub@'s ExecStart runs until SIGTERM, lets the running handler finish, and exits 0" {
	test_conf
	mapfile -t argv < <(exec_start "$SD/evsub@.service" notifier \
	    "$T/notifier.conf")
	[[ " ${argv[*]} " != *" --once "* ]]
	export NOTIFY_DIR=$T/out
	# A handler that takes its time: the notifier's, once a go file exists.
	cat > "$T/slow-notify" <<EOF
#!/bin/sh
touch "$T/started"
while [ ! -e "$T/go" ]; do sleep 0.05; done
exec "$EX/notify/notify.sh"
EOF
	chmod +x "$T/slow-notify"
	for i in "${!argv[@]}"; do
		[ "${argv[i]}" = "$EX/notify/notify.sh" ] && argv[i]=$T/slow-notify
	done
	# The subscription exists before anything is published (started in the
	# background, evsub may not have made it yet).
	make_sub notifier user.created user.deleted
	ev_bg "${argv[@]}"
	pid=$!
	evpub user.created name=fay email=fay@example.org > /dev/null
	evpub user.deleted name=fay > /dev/null
	wait_until 10 test -e "$T/started"
	# systemctl stop: SIGTERM to evsub alone. The handler, still running,
	# is let finish; the event after it stays queued for the next start.
	kill -TERM "$pid"
	touch "$T/go"
	status=0
	wait "$pid" || status=$?
	[ "$status" -eq 0 ]
	[ "$(wc -l < "$T/out/mail.log")" -eq 1 ]
	grep -q 'user fay created' "$T/out/mail.log"
	[ "$(count_files "$EV_SPOOL/subs/notifier/queue")" -eq 1 ]
}
