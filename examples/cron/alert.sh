#!/bin/sh
# alert.sh: the handler of the "alerts" subscription, which matches every
# TYPE.failed that evrun publishes:
#   evsub -n alerts -e '#.failed' -- alert.sh
# For each, it appends one line to $ALERT_LOG, standing in for a mail or a
# page: when, what, where, how it ended and the last line of its stderr.
set -eu
log=${ALERT_LOG:?set ALERT_LOG to the file to append alerts to}

jq -r '
    (.payload.stderr // "" | rtrimstr("\n") | split("\n") | last // "") as $why
    | (if .payload.signal != null then "killed by signal \(.payload.signal)"
       else "exit \(.payload.exit)" end) as $how
    | "\(.time) ALERT \(.type) on \(.source): \($how): \($why)"' >> "$log"
