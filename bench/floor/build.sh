#!/bin/sh
# Build every bench/floor/floor_*.c into bench/floor/floor_* (binary next to
# its source).  Uses $CC if set, else cc; extra flags may come from $CFLAGS.
set -eu
cd "$(dirname "$0")"
for src in floor_*.c; do
	bin=${src%.c}
	echo "${CC:-cc} -O2 -Wall -Wextra -std=c11 ${CFLAGS:-} -o $bin $src"
	# shellcheck disable=SC2086  # CFLAGS is a list of words
	${CC:-cc} -O2 -Wall -Wextra -std=c11 ${CFLAGS:-} -o "$bin" "$src"
done
