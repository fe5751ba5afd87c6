# bench/rabbitmq_node.sh - a private RabbitMQ node for bench/compare.sh (sourced, bash).
# It never touches a system RabbitMQ: its own node name, data, log and config under a
# directory we make in /tmp, its own AMQP/distribution ports, and the STOMP and Web-STOMP
# plugins on loopback only. It is stopped by the PID it was started with.
#
#   rmq_start DIR   -> sets RMQ_PID (the Erlang VM), RMQ_STOMP_PORT, RMQ_WS_PORT
#   rmq_stop        -> TERM, then KILL after 30 s; also an epmd that rmq_start had to start
#
# Ports (override before sourcing): RMQ_NODE_PORT 5700, RMQ_DIST_PORT 25700,
# RMQ_STOMP_PORT 61700, RMQ_WS_PORT 15700. Node name: herald-bench-$$@localhost.

RMQ_NODE_PORT=${RMQ_NODE_PORT:-5700}
RMQ_DIST_PORT=${RMQ_DIST_PORT:-25700}
RMQ_STOMP_PORT=${RMQ_STOMP_PORT:-61700}
RMQ_WS_PORT=${RMQ_WS_PORT:-15700}
RMQ_PID=
RMQ_EPMD_PID=
RMQ_LAUNCHER_PID=

rmq_port_busy() {
	ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

rmq_start() {
	local dir=$1
	local epmd_before
	mkdir -p "$dir/mnesia" "$dir/log"
	for p in $RMQ_NODE_PORT $RMQ_DIST_PORT $RMQ_STOMP_PORT $RMQ_WS_PORT; do
		if rmq_port_busy "$p"; then
			echo "rabbitmq: port $p is in use; set RMQ_*_PORT" >&2
			return 1
		fi
	done
	cat >"$dir/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:$RMQ_NODE_PORT
stomp.listeners.tcp.1 = 127.0.0.1:$RMQ_STOMP_PORT
web_stomp.tcp.ip = 127.0.0.1
web_stomp.tcp.port = $RMQ_WS_PORT
loopback_users.guest = true
log.console = false
log.file.level = warning
CONF
	echo "[rabbitmq_stomp,rabbitmq_web_stomp]." >"$dir/enabled_plugins"
	epmd_before=$(pgrep -x epmd || true)
	(
		export RABBITMQ_NODENAME="herald-bench-$$@localhost"
		export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
		export RABBITMQ_NODE_PORT=$RMQ_NODE_PORT
		export RABBITMQ_DIST_PORT=$RMQ_DIST_PORT
		export RABBITMQ_MNESIA_BASE="$dir/mnesia"
		export RABBITMQ_LOG_BASE="$dir/log"
		export RABBITMQ_CONFIG_FILE="$dir/rabbitmq"
		export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
		export RABBITMQ_PID_FILE="$dir/pid"
		export HOME="$dir"
		export ERL_EPMD_ADDRESS=127.0.0.1
		# exec: the shell scripts exec erl, erl execs the VM, so $! is the VM's PID
		exec /usr/lib/rabbitmq/bin/rabbitmq-server >"$dir/server.out" 2>&1
	) &
	RMQ_LAUNCHER_PID=$!
	# ready when both STOMP listeners accept (bounded: 90 s)
	for _ in $(seq 900); do
		if rmq_port_busy "$RMQ_STOMP_PORT" && rmq_port_busy "$RMQ_WS_PORT"; then
			break
		fi
		if ! kill -0 "$RMQ_LAUNCHER_PID" 2>/dev/null; then
			echo "rabbitmq: node exited during boot; see $dir/server.out" >&2
			tail -20 "$dir/server.out" >&2
			return 1
		fi
		sleep 0.1
	done
	if ! rmq_port_busy "$RMQ_STOMP_PORT"; then
		echo "rabbitmq: STOMP listener not up after 90 s; see $dir/log" >&2
		return 1
	fi
	RMQ_PID=$(cat "$dir/pid" 2>/dev/null || echo "$RMQ_LAUNCHER_PID")
	local epmd_now
	epmd_now=$(pgrep -x epmd || true)
	if [ -z "$epmd_before" ] && [ -n "$epmd_now" ]; then
		RMQ_EPMD_PID=$epmd_now
	fi
	echo "rabbitmq: pid $RMQ_PID, stomp 127.0.0.1:$RMQ_STOMP_PORT, web-stomp 127.0.0.1:$RMQ_WS_PORT/ws"
}

rmq_stop_pid() {
	local pid=$1
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

rmq_stop() {
	rmq_stop_pid "$RMQ_PID"
	[ "$RMQ_LAUNCHER_PID" != "$RMQ_PID" ] && rmq_stop_pid "$RMQ_LAUNCHER_PID"
	rmq_stop_pid "$RMQ_EPMD_PID"
	RMQ_PID=
	RMQ_LAUNCHER_PID=
	RMQ_EPMD_PID=
}
