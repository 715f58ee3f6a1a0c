#!/usr/bin/env bash
# Reproduces the table of BENCHMARKS.md.
#
# Builds parley from this tree and the load tool, starts parley on a
# temporary database and the tutorial's Node.js server from a temporary
# copy of the reference (npm install), runs every scenario RUNS times
# against each (one server at a time, a fresh process for every run),
# stops everything, and prints the tables (medians over the runs).
#
#   bench/run.sh                      # from the repository root
#   RUNS=5 bench/run.sh
#   SCENARIOS="fanout paced1000" RUNS=1 bench/run.sh
#
# Environment:
#   RUNS        runs of each scenario (default 3)
#   SCENARIOS   subset of: tcp fsync fanout rooms paced1000 paced200
#               durable idle reconnect coldstart (default all)
#   REFERENCE   the tutorial server (default ../shared/seed/reference)
#   RESULTS     JSON-lines file the runs are appended to
#               (default bench/results/results-<commit>-<time>.jsonl)
#   REV         build parley from this git revision (git archive) instead
#               of the working tree, e.g. REV=HEAD while others edit it
#   TUTORIAL_SLOW_RUNS  runs of the tutorial's rooms, idle and reconnect
#               scenarios, whose setup is quadratic there (every sign-in is
#               announced to every connection: minutes per run) (default 1)
#   KEEP=1      keep the temporary directory (databases, logs)
#   PORT_BASE   parley listens on 127.0.0.1:PORT_BASE, the tutorial on +1
#               (default 18480)
#   TUTORIAL=0  measure parley only (before and after a change of parley's)
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)
RUNS=${RUNS:-3}
SCENARIOS=${SCENARIOS:-"tcp fsync fanout rooms paced1000 paced200 durable idle reconnect coldstart"}
REFERENCE=${REFERENCE:-$repo/../shared/seed/reference}
PORT_BASE=${PORT_BASE:-18480}
pport=$PORT_BASE
tport=$((PORT_BASE + 1))

TUTORIAL_SLOW_RUNS=${TUTORIAL_SLOW_RUNS:-1}
if [ -n "${REV:-}" ]; then
	commit=$(git rev-parse --short "$REV")
elif [ -n "$(git status --porcelain -- '*.go' go.mod go.sum 2>/dev/null)" ]; then
	commit="$(git rev-parse --short HEAD)+dirty"
else
	commit=$(git rev-parse --short HEAD)
fi
mkdir -p bench/results
RESULTS=${RESULTS:-$repo/bench/results/results-${commit}-$(date -u +%Y%m%dT%H%M%SZ).jsonl}

work=$(mktemp -d /tmp/parley-bench.XXXXXX)
parley_pid=""
tutorial_pid=""

log() { printf '%s  %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

stop_parley() {
	if [ -n "$parley_pid" ]; then
		kill -TERM "$parley_pid" 2>/dev/null || true
		wait "$parley_pid" 2>/dev/null || true
		parley_pid=""
	fi
}

stop_tutorial() {
	if [ -n "$tutorial_pid" ]; then
		kill -TERM "$tutorial_pid" 2>/dev/null || true
		wait "$tutorial_pid" 2>/dev/null || true
		tutorial_pid=""
	fi
}

cleanup() {
	stop_parley
	stop_tutorial
	if [ "${KEEP:-0}" = 1 ]; then
		log "kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 10,000 connections need 10,000 descriptors in the tool and as many in
# the server; raise the soft limit as far as the hard one allows.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt 12000 ]; then
	log "warning: ulimit -n is $(ulimit -n); the idle scenario needs about 10,100"
fi

# The benchmark measures capacity, so parley's abuse limits, which would
# refuse this load from a handful of loopback addresses, are turned off
# (0) for the run; BENCHMARKS.md says what each would do. Everything else
# is parley's default. parley runs in $work, away from any config.yaml.
export PARLEY_LIMITS_MESSAGES_PER_SECOND=0
export PARLEY_LIMITS_FRAMES_PER_SECOND=0
export PARLEY_LIMITS_CONNECTIONS_PER_IP=0
export PARLEY_LIMITS_ROOMS_CREATED_PER_HOUR=0
export PARLEY_AUTH_SIGNUPS_PER_IP_PER_HOUR=0
# The load tool signs its accounts up itself (a new database takes members
# by invite link otherwise; "open" was the default before).
export PARLEY_AUTH_REGISTRATION=open
export PARLEY_LOG_LEVEL=warn

log "building parley $commit and the load tool in $work"
if [ -n "${REV:-}" ]; then
	mkdir "$work/src"
	git archive "$REV" | tar -C "$work/src" -xf -
	(cd "$work/src" && go build -o "$work/parley" .)
else
	go build -o "$work/parley" .
fi
go build -o "$work/bench" ./bench

if [ "${TUTORIAL:-1}" != 0 ]; then
	log "installing the tutorial server in $work/ref"
	cp -r "$REFERENCE" "$work/ref"
	(cd "$work/ref" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi

start_parley() {
	(cd "$work" && exec "$work/parley" serve -addr "127.0.0.1:$pport" -db "$work/parley.db" >>"$work/parley.log" 2>&1) &
	parley_pid=$!
	for _ in $(seq 200); do
		if curl -fs -o /dev/null "http://127.0.0.1:$pport/healthz"; then
			return 0
		fi
		sleep 0.05
	done
	log "parley did not start; see $work/parley.log"
	return 1
}

start_tutorial() {
	(cd "$work" && PORT=$tport HOST=127.0.0.1 exec node "$repo/bench/tutorial_loopback.js" "$work/ref" >>"$work/tutorial.log" 2>&1) &
	tutorial_pid=$!
	for _ in $(seq 200); do
		if curl -s -o /dev/null "http://127.0.0.1:$tport/"; then
			return 0
		fi
		sleep 0.05
	done
	log "the tutorial server did not start; see $work/tutorial.log"
	return 1
}

bench() {
	"$work/bench" -commit "$commit" -json "$RESULTS" -accounts "$work/accounts.json" "$@"
}

# on_parley and on_tutorial run one scenario against a freshly started
# server and stop it afterwards.
on_parley() {
	start_parley
	bench -target parley -url "ws://127.0.0.1:$pport/ws" -pid "$parley_pid" "$@" || log "FAILED: parley $*"
	stop_parley
}

on_tutorial() {
	if [ "${TUTORIAL:-1}" = 0 ]; then
		return 0
	fi
	start_tutorial
	bench -target tutorial -url "ws://127.0.0.1:$tport/" -pid "$tutorial_pid" "$@" || log "FAILED: tutorial $*"
	stop_tutorial
}

both() {
	on_parley "$@"
	on_tutorial "$@"
}

# both_slow is both, with the tutorial's side only in the first
# TUTORIAL_SLOW_RUNS runs.
both_slow() {
	on_parley "$@"
	if [ "$run" -le "$TUTORIAL_SLOW_RUNS" ]; then
		on_tutorial -timeout 40m "$@"
	fi
}

# Accounts: 10,000 sign-ups through the protocol, once; every later
# connection resumes with its token (no password hashing).
log "signing up 10,000 parley accounts (argon2id: minutes)"
on_parley -scenario signup -users 10000

for run in $(seq "$RUNS"); do
	for s in $SCENARIOS; do
		log "run $run/$RUNS: $s"
		case $s in
		tcp) bench -scenario tcp -receivers 1000 || log "FAILED: tcp" ;;
		fsync) bench -scenario fsync -fsync-dir "$work" || log "FAILED: fsync" ;;
		fanout) both -scenario fanout -receivers 1000 ;;
		rooms) both_slow -scenario rooms -rooms 500 -members 10 ;;
		paced1000) both -scenario paced -receivers 1000 -rate 100 ;;
		paced200) both -scenario paced -receivers 200 -rate 100 ;;
		durable) on_parley -scenario durable -senders 500 -rooms 100 ;;
		idle) both_slow -scenario idle -conns 10000 ;;
		reconnect) both_slow -scenario reconnect -conns 5000 -members 10 ;;
		coldstart)
			bench -scenario coldstart -target parley -parley-bin "$work/parley" -cold-db "$work/cold.db" \
				-gen-rooms 10000 -gen-messages 100 -starts 5 || log "FAILED: parley coldstart"
			if [ "${TUTORIAL:-1}" != 0 ]; then
				bench -scenario coldstart -target tutorial -tutorial-dir "$work/ref" \
					-tutorial-js "$repo/bench/tutorial_loopback.js" -starts 5 || log "FAILED: tutorial coldstart"
			fi
			;;
		*) log "unknown scenario $s" && exit 2 ;;
		esac
	done
done

log "results: $RESULTS"
"$work/bench" -summarize "$RESULTS"
