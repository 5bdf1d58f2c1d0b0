# bench/peers.sh -- sourced by bench/run: the brokers and tools that people
# shellcheck shell=bash
# use instead of evspool, each started by the run on loopback, on a free
# port, with its data under the run's work directory, and stopped at exit
# (bench/run's cleanup stops every pid given to track()).
#
# A peer that is not installed, or does not start, is skipped: peer_ok says
# whether it is there, PEER_WHY[name] says why not, for the table.
# Needs from bench/run: WORK, HERE, track, die, say, snooze.

declare -A PEER_UP=() PEER_WHY=() PEER_PORT=()

peer_ok() { [[ -n ${PEER_UP[$1]:-} ]]; }

# why NAME: the reason a peer has no figure, for a table cell
why() { printf '%s' "${PEER_WHY[$1]:-not measured}"; }

# free_port: a loopback TCP port nobody listens on (a probe, not a
# reservation: the broker that binds it next is started at once)
free_port() {
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			printf '%s' "$p"
			return 0
		fi
	done
	return 1
}

# listening PORT SECONDS: wait until something accepts on PORT
listening() {
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		snooze 0.05
	done
	return 1
}

# need NAME CMD...: record why NAME cannot run unless every CMD exists
need() {
	local name=$1 c
	shift
	for c; do
		if ! command -v "$c" >/dev/null; then
			PEER_WHY[$name]="not installed ($c)"
			return 1
		fi
	done
}

# start_peer NAME PORT CMD...: start a server, wait for its port
start_peer() {
	local name=$1 port=$2 pid
	shift 2
	"$@" </dev/null >"$WORK/$name.log" 2>&1 &
	pid=$!
	track "$pid"
	if ! listening "$port" 10; then
		PEER_WHY[$name]="did not start (see $name.log: $(tail -1 "$WORK/$name.log" 2>/dev/null))"
		kill -TERM "$pid" 2>/dev/null || true
		return 1
	fi
	PEER_UP[$name]=$pid PEER_PORT[$name]=$port
}

start_mosquitto() {
	local d=$WORK/mosquitto port
	need mosquitto mosquitto mosquitto_pub mosquitto_sub || return 0
	port=$(free_port) || { PEER_WHY[mosquitto]="no free port"; return 0; }
	mkdir -p "$d"
	# Queued messages of an offline persistent session unbounded, so that
	# a backlog is kept whole as evspool keeps it; in memory, as mosquitto
	# does by default (no persistence file is written per message).
	cat >"$d/mosquitto.conf" <<-EOF
		listener $port 127.0.0.1
		allow_anonymous true
		persistence false
		max_queued_messages 0
		max_queued_bytes 0
		max_inflight_messages 0
	EOF
	start_peer mosquitto "$port" mosquitto -c "$d/mosquitto.conf" || true
}

# start_redis NAME ARGS...: a redis-server with its data in WORK/NAME
start_redis() {
	local name=$1 d=$WORK/$1 port
	shift
	need "$name" redis-server redis-cli || return 0
	port=$(free_port) || { PEER_WHY[$name]="no free port"; return 0; }
	mkdir -p "$d"
	start_peer "$name" "$port" redis-server --port "$port" --bind 127.0.0.1 \
		--save '' --dir "$d" --daemonize no "$@" || true
}

start_nats() {
	local d=$WORK/nats port
	need nats nats-server || return 0
	if [[ ! -x $HERE/peer/nats_pub || ! -x $HERE/peer/nats_sub ]]; then
		PEER_WHY[nats]="nats.c programs not built (libnats-dev missing)"
		return 0
	fi
	port=$(free_port) || { PEER_WHY[nats]="no free port"; return 0; }
	mkdir -p "$d"
	start_peer nats "$port" nats-server -a 127.0.0.1 -p "$port" -js -sd "$d" || true
}

# incron can run in the foreground (incrond -n) with a configuration file
# of our own (-f), as root only: its tables are checked against /etc users
incron_usable() {
	need incron incrond || return 1
	if ((EUID != 0)); then
		PEER_WHY[incron]="incrond needs root here"
		return 1
	fi
}

start_peers() {
	if [[ -x $HERE/peer/build.sh ]]; then
		"$HERE/peer/build.sh" >/dev/null 2>"$WORK/peer-build.err" || true
	fi
	start_mosquitto
	start_redis redis --appendonly no
	# the same server, but durable: every write appended and fsynced
	start_redis redis_aof --appendonly yes --appendfsync always
	start_nats
	incron_usable || true
	local p list=""
	for p in mosquitto redis redis_aof nats; do
		if peer_ok "$p"; then list+=" $p:${PEER_PORT[$p]}"; else list+=" $p (${PEER_WHY[$p]})"; fi
	done
	if incron_usable; then list+=" incron"; else list+=" incron (${PEER_WHY[incron]})"; fi
	say "peers:$list"
}

# rcli NAME ARGS...: redis-cli against peer NAME
rcli() {
	local name=$1
	shift
	redis-cli -p "${PEER_PORT[$name]}" "$@"
}

NATS_URL() { printf 'nats://127.0.0.1:%s' "${PEER_PORT[nats]}"; }

# resp_xadd IN OUT KEY: turn payload lines into the RESP commands
# "XADD KEY * payload LINE", for redis-cli --pipe
resp_xadd() {
	awk -v key="$3" 'BEGIN { ORS = "" } {
		print "*5\r\n$4\r\nXADD\r\n$" length(key) "\r\n" key "\r\n$1\r\n*\r\n$7\r\npayload\r\n"
		print "$" length($0) "\r\n" $0 "\r\n"
	}' "$1" >"$2"
}
