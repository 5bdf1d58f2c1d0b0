#!/bin/sh
# Build bench/peer/nats_pub and bench/peer/nats_sub (binaries next to their
# sources) against nats.c (libnats).  Uses $CC if set, else cc; extra flags
# may come from $CFLAGS.  Exit 3, with one line on stderr, if pkg-config does
# not know libnats: the caller then skips the NATS peers.
set -eu
cd "$(dirname "$0")"
if ! nats=$(pkg-config --cflags --libs libnats 2>/dev/null); then
	echo "bench/peer: libnats not found, NATS peers skipped" >&2
	exit 3
fi
for bin in nats_pub nats_sub; do
	echo "${CC:-cc} -O2 -Wall -Wextra -std=c11 ${CFLAGS:-} -o $bin $bin.c $nats"
	# shellcheck disable=SC2086  # CFLAGS and the pkg-config output are lists of words
	${CC:-cc} -O2 -Wall -Wextra -std=c11 ${CFLAGS:-} -o "$bin" "$bin.c" $nats
done
