#!/usr/bin/env bash
# Captures CPU profiles (and, for idle connections, a heap profile and the
# goroutine count) of parley under the load tool's scenarios.
#
# parley serves no pprof, and this script must not change the tree, so it
# builds a scratch copy of the tree outside the repository with one extra
# file that serves net/http/pprof on a loopback port when
# PARLEY_BENCH_PPROF is set. Nothing else differs from the measured build.
#
#   bench/profile.sh                        # from the repository root
#   SCENARIOS="fanout durable" bench/profile.sh
#
# Environment:
#   SCENARIOS  subset of: fanout rooms paced1000 durable idle reconnect (default all)
#   OUT        where profiles and their -top listings go (default bench/profiles)
#   PORT_BASE  parley on 127.0.0.1:PORT_BASE, pprof on +2 (default 18580)
#   REV        profile this git revision (git archive) instead of the working tree
#   KEEP=1     keep the temporary directory
#   SEED_DB, SEED_ACCOUNTS  a database and its -accounts file with the
#              10,000 bench accounts (run.sh with KEEP=1 leaves both), to
#              skip the sign-ups
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)
SCENARIOS=${SCENARIOS:-"fanout rooms paced1000 durable idle reconnect"}
OUT=${OUT:-$repo/bench/profiles}
PORT_BASE=${PORT_BASE:-18580}
pport=$PORT_BASE
pprof_addr=127.0.0.1:$((PORT_BASE + 2))
commit=$(git rev-parse --short "${REV:-HEAD}")
mkdir -p "$OUT"

work=$(mktemp -d /tmp/parley-prof.XXXXXX)
parley_pid=""
log() { printf '%s  %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
stop_parley() {
	if [ -n "$parley_pid" ]; then
		kill -TERM "$parley_pid" 2>/dev/null || true
		wait "$parley_pid" 2>/dev/null || true
		parley_pid=""
	fi
}
cleanup() {
	stop_parley
	if [ "${KEEP:-0}" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n "$(ulimit -Hn)"

# The same settings as run.sh.
export PARLEY_LIMITS_MESSAGES_PER_SECOND=0
export PARLEY_LIMITS_FRAMES_PER_SECOND=0
export PARLEY_LIMITS_CONNECTIONS_PER_IP=0
export PARLEY_LIMITS_ROOMS_CREATED_PER_HOUR=0
export PARLEY_AUTH_SIGNUPS_PER_IP_PER_HOUR=0
export PARLEY_AUTH_REGISTRATION=open # the load tool signs its accounts up
export PARLEY_LOG_LEVEL=warn

log "building a profiling copy of parley $commit in $work"
mkdir "$work/src"
if [ -n "${REV:-}" ]; then
	git archive "$REV" | tar -C "$work/src" -xf -
else
	tar -C "$repo" --exclude=.git --exclude=node_modules --exclude='*.db' -cf - . | tar -C "$work/src" -xf -
fi
cat >"$work/src/zz_bench_pprof.go" <<'GO'
package main

import (
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux
	"os"
)

// Profiling build only (bench/profile.sh): serve pprof on the loopback
// address in PARLEY_BENCH_PPROF for the life of the process.
func init() {
	addr := os.Getenv("PARLEY_BENCH_PPROF")
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		panic("bench pprof: " + err.Error())
	}
	go http.Serve(ln, http.DefaultServeMux)
}
GO
(cd "$work/src" && go build -o "$work/parley" .)
go build -o "$work/bench" ./bench

start_parley() {
	(cd "$work" && PARLEY_BENCH_PPROF=$pprof_addr exec "$work/parley" serve -addr "127.0.0.1:$pport" -db "$work/parley.db" >>"$work/parley.log" 2>&1) &
	parley_pid=$!
	for _ in $(seq 200); do
		curl -fs -o /dev/null "http://127.0.0.1:$pport/healthz" && return 0
		sleep 0.05
	done
	log "parley did not start; see $work/parley.log"
	return 1
}

# profile NAME ARGS...: a fresh parley, one scenario with a CPU profile of
# its measured phase, and the profile's top functions.
profile() {
	local name=$1
	shift
	start_parley
	"$work/bench" -target parley -url "ws://127.0.0.1:$pport/ws" -pid "$parley_pid" -accounts "$work/accounts.json" \
		-commit "$commit" -json "$OUT/profile-results.jsonl" -pprof "http://$pprof_addr" "$@" || log "FAILED: $name"
	stop_parley
	for p in "$OUT/$name".*.pprof; do
		[ -f "$p" ] || continue
		go tool pprof -top -nodecount=45 "$work/parley" "$p" >"${p%.pprof}.top.txt" 2>/dev/null || true
		go tool pprof -top -cum -nodecount=45 "$work/parley" "$p" >"${p%.pprof}.cum.txt" 2>/dev/null || true
	done
}

if [ -n "${SEED_DB:-}" ]; then
	cp "$SEED_DB" "$work/parley.db"
	cp "$SEED_ACCOUNTS" "$work/accounts.json"
fi
log "signing up the 10,000 accounts that are missing (argon2id: minutes)"
start_parley
"$work/bench" -scenario signup -users 10000 -url "ws://127.0.0.1:$pport/ws" -accounts "$work/accounts.json"
stop_parley

for s in $SCENARIOS; do
	log "profiling $s"
	case $s in
	fanout) profile fanout -scenario fanout -receivers 1000 -cpuprofile "$OUT/fanout.cpu.pprof" ;;
	rooms) profile rooms -scenario rooms -rooms 500 -members 10 -cpuprofile "$OUT/rooms.cpu.pprof" ;;
	paced1000) profile paced1000 -scenario paced -receivers 1000 -rate 100 -cpuprofile "$OUT/paced1000.cpu.pprof" ;;
	durable) profile durable -scenario durable -senders 500 -rooms 100 -cpuprofile "$OUT/durable.cpu.pprof" ;;
	idle) profile idle -scenario idle -conns 10000 -heapprofile "$OUT/idle.heap.pprof" ;;
	reconnect) profile reconnect -scenario reconnect -conns 5000 -members 10 -cpuprofile "$OUT/reconnect.cpu.pprof" ;;
	*) log "unknown scenario $s" && exit 2 ;;
	esac
done
log "profiles in $OUT"
