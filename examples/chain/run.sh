#!/bin/sh
# run.sh: the chain example from end to end. A process.requested event
# starts a three-step workflow; each step is a durable subscription whose
# handler is the step's script wrapped in evrun, so each step's outcome is
# the next step's trigger, and its JSON output the next step's input:
#
#   process.requested       -> step1 -> process.step1.completed
#   process.step1.completed -> step2 -> process.step2.completed
#   process.step2.completed -> step3 -> process.completed
#
# Here each step runs with --once, in order, so the run is deterministic;
# live, each `evsub` line below runs as a service (without --once) and the
# chain flows on its own as events arrive.
#
# Uses evpub, evsub, evrun and evctl from PATH and the spool in $EV_SPOOL
# (a new one in a temporary directory when unset). Needs jq.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${EV_SPOOL:-}" ]; then
	EV_SPOOL=$(mktemp -d)/spool
	echo "== using a new spool: $EV_SPOOL"
fi
export EV_SPOOL

step() {    # step NAME PATTERN TYPE SCRIPT [EVSUB OPTION]...
	name=$1 pattern=$2 type=$3 script=$4
	shift 4
	evsub -n "$name" -e "$pattern" "$@" -- \
	    evrun -q -t "$type" -- "$here/$script"
}

# Create the three durable subscriptions before anything is published.
step step1 process.requested process.step1 step1.sh --once
step step2 process.step1.completed process.step2 step2.sh --once
step step3 process.step2.completed process step3.sh --once

root=$(evpub process.requested - < "${ORDER:-$here/order.json}")
echo "== published process.requested $root"

# Each step handles what its subscription holds, then exits (75 if an event
# failed: evsub has said why on stderr, and the trace below shows it). The
# handler's stdout, the step's JSON, is also passed through: not shown here.
step step1 process.requested process.step1 step1.sh --once > /dev/null || :
step step2 process.step1.completed process.step2 step2.sh --once > /dev/null || :
step step3 process.step2.completed process step3.sh --once > /dev/null || :

echo "== the chain (evctl trace $root)"
evctl trace "$root"
result=$(evctl ls process.completed --json | jq -c \
    --arg root "$root" 'select(.correlationid == $root) | .payload.output')
if [ -n "$result" ]; then
	echo "== the result: payload.output of process.completed"
	echo "$result"
else
	echo "== no process.completed: see evctl status, evctl dead step1"
fi
