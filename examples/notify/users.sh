# shellcheck shell=sh
# users.sh: the publisher side of the notify example, to be sourced by the
# application's scripts (`. ./users.sh`). Each function does its work (here,
# one line in $USERS_DB) and then says what happened by publishing an event;
# who gets told, and how, is the subscribers' business, not the publisher's.
# evpub finds the spool in $EV_SPOOL (or takes its default).

# create_user NAME EMAIL: publishes user.created {"name":...,"email":...}.
create_user() {
	[ $# -eq 2 ] || { echo "usage: create_user NAME EMAIL" >&2; return 64; }
	if [ -n "${USERS_DB:-}" ]; then
		printf '%s %s\n' "$1" "$2" >> "$USERS_DB" || return
	fi
	evpub -q user.created name="$1" email="$2"
}

# delete_user NAME: publishes user.deleted {"name":...}.
delete_user() {
	[ $# -eq 1 ] || { echo "usage: delete_user NAME" >&2; return 64; }
	if [ -n "${USERS_DB:-}" ] && [ -f "$USERS_DB" ]; then
		awk -v name="$1" '$1 != name' "$USERS_DB" > "$USERS_DB.new" &&
		    mv "$USERS_DB.new" "$USERS_DB" || return
	fi
	evpub -q user.deleted name="$1"
}
