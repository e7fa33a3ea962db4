#!/usr/bin/env bash
# Stop exactly what tests/cluster/spark_up.sh started, by the PIDs it recorded in
# $SPARK_STATE_DIR/run: the worker (and the executor JVMs it forked, collected as its
# children before it stops), then the master. Safe to run repeatedly.
set -uo pipefail
STATE=${SPARK_STATE_DIR:-${TMPDIR:-/tmp}/survival-workflow-spark}
RUN=$STATE/run
log() { echo "[spark_down $(date +%T)] $*"; }
rc=0

stop_pid() {  # name pid: TERM, wait up to 10 s, then KILL; only a java process (pid reuse)
  local name=$1 pid=$2
  kill -0 "$pid" 2>/dev/null || { log "$name ($pid) not running"; return 0; }
  if [[ $(cat "/proc/$pid/comm" 2>/dev/null) != java ]]; then
    log "$name: pid $pid is '$(cat "/proc/$pid/comm" 2>/dev/null)', not java; left alone"; return 0
  fi
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { log "stopped $name ($pid)"; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null; sleep 0.2
  if kill -0 "$pid" 2>/dev/null; then log "could not stop $name ($pid)"; rc=1; else log "killed $name ($pid)"; fi
}

for name in spark-worker spark-master; do
  f=$RUN/$name.pid
  [[ -s $f ]] || continue
  pid=$(cat "$f")
  kids=""
  [[ $name == spark-worker ]] && kids=$(pgrep -P "$pid" 2>/dev/null || true)
  stop_pid "$name" "$pid"
  for k in $kids; do stop_pid "$name-executor" "$k"; done
  rm -f "$f"
done
exit $rc
