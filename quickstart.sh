#!/bin/sh
# quickstart.sh: the README's first command. On a fresh Debian 12 machine:
# install what evspool needs, build it, and run a short demo on the default
# spool (/var/spool/evspool for root, ~/.local/state/evspool otherwise).
set -eu
cd "$(dirname "$0")"

# Everything the build, the tests and the benchmarks need, from Debian.
PACKAGES="build-essential autoconf automake libtool pkg-config libjansson-dev
bats jq inotify-tools graphviz systemd valgrind"

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null

[ -x configure ] || autoreconf -fi
# shellcheck disable=SC2086
[ -f Makefile ] || ./configure -q ${EV_CONFIGURE_FLAGS:-}
make -j"$(nproc)" >/dev/null

echo "== demo: a durable subscription 'quickstart' to user.* events"
bin/evsub -n quickstart -e 'user.*' --once
echo "== evpub user.created / user.deleted (each prints the new event's id)"
bin/evpub user.created name=ann email=ann@example.org
bin/evpub user.deleted name=bob
echo "== what landed for the subscription (evsub prints them as NDJSON)"
bin/evsub -n quickstart -e 'user.*' --once
echo "== done; run the test suite with: make check"
