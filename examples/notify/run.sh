#!/bin/sh
# run.sh: the notify example from end to end. Publishes user events through
# the shell functions of users.sh while a notifier subscription turns each
# into a mail and a chat message (lines in two files), then shows them.
#
# Uses evpub and evsub from PATH, the spool in $EV_SPOOL (a new one in a
# temporary directory when unset), and writes mail.log and chat.log into
# $NOTIFY_DIR (a temporary directory when unset). Needs jq.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${EV_SPOOL:-}" ]; then
	EV_SPOOL=$(mktemp -d)/spool
	echo "== using a new spool: $EV_SPOOL"
fi
NOTIFY_DIR=${NOTIFY_DIR:-$(mktemp -d)}
export EV_SPOOL NOTIFY_DIR

# The durable subscription must exist before the events are published: it
# keeps every matching event from then on, whether a notifier runs or not.
# (--once on an empty queue: create it, handle nothing, exit.)
evsub -n notifier -e user.created -e user.deleted --once -- "$here/notify.sh"

# The notifier, live: it handles events as they arrive; -c 3 makes it exit
# after the three this demo publishes (a real one runs as a service, see
# contrib/systemd/). Stopped on any early exit of this script, ^C included:
# a command started with & by a script ignores SIGINT, so it gets a TERM.
evsub -n notifier -e user.created -e user.deleted -c 3 -- "$here/notify.sh" &
notifier=$!
trap 'kill "$notifier" 2> /dev/null || :' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

. "$here/users.sh"
create_user ann ann@example.org
create_user bob bob@example.org
delete_user bob

wait "$notifier"
trap - EXIT INT TERM

echo "== mail ($NOTIFY_DIR/mail.log)"
cat "$NOTIFY_DIR/mail.log"
echo "== chat webhook ($NOTIFY_DIR/chat.log)"
cat "$NOTIFY_DIR/chat.log"
