#!/bin/sh
# notify.sh: the handler of the "notifier" subscription. evsub runs it once
# per user.created or user.deleted event, with the event (JSON) on stdin and
# its type in $EV_TYPE. It "sends" a mail and a chat message; here each is a
# line appended to a file standing in for them: $NOTIFY_DIR/mail.log for
# sendmail, $NOTIFY_DIR/chat.log for the body POSTed to a chat webhook.
#
# Exit 0: done. Exit 100: this event can never be handled (a dead letter at
# once). Anything else: evsub retries later, with backoff.
set -eu
dir=${NOTIFY_DIR:?set NOTIFY_DIR to the directory for mail.log and chat.log}

event=$(cat)
name=$(printf '%s\n' "$event" | jq -r '.payload.name // empty')
email=$(printf '%s\n' "$event" | jq -r '.payload.email // empty')
if [ -z "$name" ]; then
	echo "notify.sh: event $EV_ID has no payload.name" >&2
	exit 100
fi
case $EV_TYPE in
user.created)
	what=created
	text="New user $name <$email>" ;;
user.deleted)
	what=deleted
	text="User $name was deleted" ;;
*)
	echo "notify.sh: not an event for me: $EV_TYPE" >&2
	exit 100 ;;
esac

# In real life: sendmail -t, and curl -d @- "$WEBHOOK_URL".
printf 'To: admins@example.org | Subject: user %s %s | event %s\n' \
    "$name" "$what" "$EV_ID" >> "$dir/mail.log"
jq -cn --arg text "$text" --arg id "$EV_ID" '{text: $text, event: $id}' \
    >> "$dir/chat.log"
