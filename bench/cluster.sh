#!/usr/bin/env bash
# Measures parley as a cluster of three nodes on this machine (embedded
# NATS servers, replicas 3), for BENCHMARKS.md, "Several nodes":
#
#   - paced 1->200 at 100 msg/s: the sender on node 1, the receivers on
#     nodes 2 and 3 (cross-node), and all on node 1 (one node), p99;
#   - durable: 500 senders over 100 rooms, spread over the three nodes,
#     acknowledgements/s (each after a quorum fsync and its node's apply);
#   - catch-up: node 3 stopped while 20,000 commands are applied, then
#     started again: commands applied per second until it is ready.
#
# The time from killing the log's leader to the next acknowledgement is
# measured by TestCluster_KillNodeLosesNothing (cluster_kill_test.go).
# All three nodes and the load tool share this machine's cores: compare
# ratios, not absolute figures, with a machine where each node has its own.
#
#   bench/cluster.sh                  # from the repository root
#   RUNS=3 bench/cluster.sh
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)
RUNS=${RUNS:-3}
commit=$(git rev-parse --short HEAD)
RESULTS=${RESULTS:-$repo/bench/results/cluster-${commit}-$(date -u +%Y%m%dT%H%M%SZ).jsonl}
work=$(mktemp -d /tmp/parley-cluster-bench.XXXXXX)
pids=("" "" "")

log() { printf '%s  %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

stop_node() { # $1: 1..3
	local i=$(($1 - 1))
	if [ -n "${pids[$i]}" ]; then
		kill -TERM "${pids[$i]}" 2>/dev/null || true
		wait "${pids[$i]}" 2>/dev/null || true
		pids[$i]=""
	fi
}

cleanup() {
	for n in 1 2 3; do stop_node $n; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n "$(ulimit -Hn)"

# Node n: HTTP on 1848n, NATS clients on 1849n, routes on 1850n.
start_node() { # $1: 1..3
	local n=$1 routes=""
	for m in 1 2 3; do
		if [ "$m" != "$n" ]; then routes="${routes:+$routes,}nats://127.0.0.1:1850$m"; fi
	done
	(cd "$work" && PARLEY_CLUSTER_NODE="n$n" PARLEY_CLUSTER_REPLICAS=3 \
		PARLEY_CLUSTER_NATS_EMBEDDED_LISTEN="127.0.0.1:1849$n" \
		PARLEY_CLUSTER_NATS_EMBEDDED_CLUSTER_LISTEN="127.0.0.1:1850$n" \
		PARLEY_CLUSTER_NATS_EMBEDDED_ROUTES="$routes" \
		PARLEY_CLUSTER_NATS_EMBEDDED_STORE_DIR="$work/nats-n$n" \
		exec "$work/parley" serve -addr "127.0.0.1:1848$n" -db "$work/n$n.db" >>"$work/n$n.log" 2>&1) &
	pids[$((n - 1))]=$!
}

wait_ready() { # $1: 1..3
	for _ in $(seq 1200); do
		if curl -fs -o /dev/null "http://127.0.0.1:1848$1/readyz"; then
			return 0
		fi
		sleep 0.1
	done
	log "node $1 did not become ready; see $work/n$1.log"
	return 1
}

applied() { # $1: 1..3; the stream position (a position may hold a batch of commands)
	curl -fs "http://127.0.0.1:1848$1/metrics" | awk '$1 == "parley_cluster_applied_seq" { print $2 }'
}

commands() { # $1: 1..3; commands this node's process has applied
	curl -fs "http://127.0.0.1:1848$1/metrics" | awk '$1 == "parley_store_commit_batch_messages_sum" { printf "%d\n", $2 }'
}

# The benchmark measures capacity: the abuse limits are off, as in run.sh.
export PARLEY_LIMITS_MESSAGES_PER_SECOND=0 PARLEY_LIMITS_FRAMES_PER_SECOND=0 PARLEY_LIMITS_CONNECTIONS_PER_IP=0
export PARLEY_LIMITS_ROOMS_CREATED_PER_HOUR=0 PARLEY_AUTH_SIGNUPS_PER_IP_PER_HOUR=0 PARLEY_LIMITS_SIGN_INS_PER_MINUTE=0
# The load tool signs its accounts up itself (a new database takes members
# by invite link otherwise).
export PARLEY_AUTH_REGISTRATION=open
export PARLEY_LIMITS_SEARCHES_PER_MINUTE=0 PARLEY_LOG_LEVEL=warn

log "building parley $commit and the load tool in $work"
go build -o "$work/parley" .
go build -o "$work/bench" ./bench
mkdir -p bench/results

for n in 1 2 3; do start_node $n; done
for n in 1 2 3; do wait_ready $n; done
log "three nodes ready"

bench() {
	"$work/bench" -commit "$commit" -json "$RESULTS" -accounts "$work/accounts.json" "$@"
}
u1=ws://127.0.0.1:18481/ws u2=ws://127.0.0.1:18482/ws u3=ws://127.0.0.1:18483/ws

log "signing up 1,000 accounts through node 1"
bench -scenario signup -users 1000 -url "$u1"

for run in $(seq "$RUNS"); do
	log "run $run/$RUNS: paced, one node"
	bench -scenario paced -receivers 200 -rate 100 -url "$u1" -label "cluster paced 1->200 @100/s, all on node 1" || log "FAILED"
	log "run $run/$RUNS: paced, across nodes"
	bench -scenario paced -receivers 200 -rate 100 -sender-url "$u1" -url "$u2,$u3" \
		-label "cluster paced 1->200 @100/s, sender on node 1, receivers on nodes 2 and 3" || log "FAILED"
	log "run $run/$RUNS: durable"
	bench -scenario durable -senders 500 -rooms 100 -first-user 400 -url "$u1,$u2,$u3" \
		-label "cluster durable 500 senders/100 rooms over 3 nodes" || log "FAILED"

	log "run $run/$RUNS: catch-up"
	stop_node 3
	before=$(commands 1)
	bench -scenario durable -senders 200 -rooms 50 -first-user 400 -url "$u1,$u2" -duration 10s \
		-label "cluster durable while node 3 is down" >/dev/null || log "FAILED"
	target=$(applied 1)
	count=$(($(commands 1) - before))
	start=$(date +%s.%N)
	start_node 3
	wait_ready 3
	for _ in $(seq 3000); do
		[ "$(applied 3)" -ge "$target" ] && break
		sleep 0.05
	done
	took=$(echo "$(date +%s.%N) - $start" | bc)
	log "node 3 applied $count commands in ${took}s after its start"
	printf '{"label":"cluster catch-up","commit":"%s","commands":%d,"seconds":%s,"per_second":%s}\n' \
		"$commit" "$count" "$took" "$(echo "$count / $took" | bc)" >>"$RESULTS"
done

log "results in $RESULTS"
"$work/bench" -summarize "$RESULTS" || true
