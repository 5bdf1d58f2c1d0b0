#!/bin/sh
# run.sh: the cron example from end to end, without waiting for 03:17.
# Creates the "alerts" subscription, runs the job line of crontab.example
# twice as cron would (its environment lines, /bin/sh, no stdin): once with
# a source that does not exist, once with a real one; then lets the alerts
# subscription handle what it got and shows the alert file and the runs.
#
# Uses evsub, evrun and evctl from PATH and the spool in $EV_SPOOL (a new one
# in a temporary directory when unset); archives and alerts go to $OUT (a
# temporary directory when unset). Needs jq.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${EV_SPOOL:-}" ]; then
	EV_SPOOL=$(mktemp -d)/spool
	echo "== using a new spool: $EV_SPOOL"
fi
OUT=${OUT:-$(mktemp -d)}
ALERT_LOG=$OUT/alerts.log
export EV_SPOOL ALERT_LOG

# The durable subscription first: it keeps every failure from then on.
evsub -n alerts -e '#.failed' --once -- "$here/alert.sh"

# The job line of the crontab, and its environment lines, with the paths
# that point at an installation pointed at this checkout instead.
job=$(grep -Ev '^[[:space:]]*(#|$)|^[A-Za-z_][A-Za-z0-9_]*=' \
    "$here/crontab.example" | sed -E 's/^([^[:space:]]+[[:space:]]+){5}//')
as_cron() {    # as_cron BACKUP_SRC: the job line, run as cron would
	src=$1
	set --
	while IFS= read -r assignment; do
		set -- "$@" "$assignment"
	done <<-EOF
	$(grep -E '^[A-Za-z_][A-Za-z0-9_]*=' "$here/crontab.example")
	EOF
	env -i "$@" PATH="$PATH" EV_SPOOL="$EV_SPOOL" JOBS="$here" \
	    BACKUP_SRC="$src" BACKUP_DEST="$OUT/backups" \
	    /bin/sh -c "$job" < /dev/null
}

echo "== cron runs: $job"
as_cron /nonexistent-source || echo "(the job failed with status $?)"
as_cron "$here"

# The alerts subscription handles the one failure.
evsub -n alerts -e '#.failed' --once -- "$here/alert.sh"

echo "== the runs (evctl ls 'backup.*')"
evctl ls 'backup.*'
echo "== alerts ($ALERT_LOG)"
cat "$ALERT_LOG"
