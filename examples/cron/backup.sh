#!/bin/sh
# backup.sh: the job cron runs, through evrun. Archives $BACKUP_SRC into a
# new file in $BACKUP_DEST and prints what it made as JSON, which evrun puts
# in backup.completed as payload.output. On failure, tar's complaint on
# stderr ends up in backup.failed as payload.stderr.
set -eu
src=${BACKUP_SRC:?set BACKUP_SRC to the directory to back up}
dest=${BACKUP_DEST:?set BACKUP_DEST to the directory for the archives}

mkdir -p "$dest"
archive=$dest/backup-$(date -u +%Y%m%dT%H%M%SZ)-$$.tar.gz
if ! tar -czf "$archive" -C "$src" . 2> "$archive.err"; then
	cat "$archive.err" >&2
	rm -f "$archive" "$archive.err"
	echo "backup.sh: cannot back up $src" >&2
	exit 1
fi
rm -f "$archive.err"
jq -cn --arg archive "$archive" --arg src "$src" \
    --argjson bytes "$(wc -c < "$archive")" \
    '{source: $src, archive: $archive, bytes: $bytes}'
