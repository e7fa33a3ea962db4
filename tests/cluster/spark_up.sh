#!/usr/bin/env bash
# Bring up a throw-away Spark standalone cluster (1 master + 1 worker) on 127.0.0.1 from the
# pyspark package installed in the project's venv (the pip wheel ships bin/spark-class but no
# sbin/start-*.sh, so the Master and Worker classes are launched through spark-class).
# Used by tests/test_spark_etl.py (the `spark_cluster` fixture); stop it with spark_down.sh.
#
# Env knobs (defaults):
#   SPARK_STATE_DIR     pid files, logs, worker dir    (${TMPDIR:-/tmp}/survival-workflow-spark)
#   PYTHON              python with pyspark            (.venv/bin/python of this repo)
#   SPARK_MASTER_PORT, SPARK_MASTER_WEBUI_PORT, SPARK_WORKER_WEBUI_PORT   (7077, 8080, 8081)
#   SPARK_WORKER_CORES, SPARK_WORKER_MEMORY           (2, 2g; keep spark.executor.memory below)
# Exit codes: 0 up (writes $SPARK_STATE_DIR/run/spark-env.sh with SPARK_MASTER_URL, JAVA_HOME,
# SPARK_HOME, PYSPARK_PYTHON, SPARK_LOCAL_IP); 3 Java cannot be provided here (skip); 1 failure.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STATE=${SPARK_STATE_DIR:-${TMPDIR:-/tmp}/survival-workflow-spark}
RUN=$STATE/run
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
MPORT=${SPARK_MASTER_PORT:-7077}
MUI=${SPARK_MASTER_WEBUI_PORT:-8080}
WUI=${SPARK_WORKER_WEBUI_PORT:-8081}
mkdir -p "$RUN" "$STATE/work"
log() { echo "[spark_up $(date +%T)] $*"; }
alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
T0=$(date +%s)

# 1. Java 17+ (installed with apt where missing)
rc=0; JAVA=$("$HERE/install_java.sh") || rc=$?
[[ $rc -eq 0 ]] || exit "$rc"
JAVA_HOME=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$JAVA")")")}

# 2. Spark from the venv's pyspark
SPARK_HOME=$("$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
cat >"$RUN/spark-env.sh" <<ENV
export SPARK_HOME=$SPARK_HOME
export JAVA_HOME=$JAVA_HOME
export PYSPARK_PYTHON=$PYTHON
export PYSPARK_DRIVER_PYTHON=$PYTHON
export SPARK_LOCAL_IP=127.0.0.1
export SPARK_MASTER_URL=spark://127.0.0.1:$MPORT
ENV
# shellcheck disable=SC1091
source "$RUN/spark-env.sh"
export SPARK_LOG_DIR=$STATE/logs SPARK_WORKER_DIR=$STATE/work

wait_for() {  # pidfile logfile pattern what
  for _ in $(seq 480); do
    grep -q "$3" "$2" && return 0
    alive "$1" || { tail -30 "$2"; log "$4 died"; return 1; }
    sleep 0.25
  done
  tail -30 "$2"; log "$4 not ready after 120 s"; return 1
}

# 3. master, then worker (spark-class execs java, so $! is the JVM's pid)
if ! alive "$RUN/spark-master.pid"; then
  : >"$RUN/spark-master.log"
  nohup "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
    --host 127.0.0.1 --port "$MPORT" --webui-port "$MUI" >"$RUN/spark-master.log" 2>&1 </dev/null &
  echo $! >"$RUN/spark-master.pid"
  log "master pid $(cat "$RUN/spark-master.pid")"
fi
wait_for "$RUN/spark-master.pid" "$RUN/spark-master.log" "elected leader" master

if ! alive "$RUN/spark-worker.pid"; then
  : >"$RUN/spark-worker.log"
  nohup "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
    --host 127.0.0.1 --cores "${SPARK_WORKER_CORES:-2}" --memory "${SPARK_WORKER_MEMORY:-2g}" \
    --webui-port "$WUI" --work-dir "$STATE/work" "spark://127.0.0.1:$MPORT" \
    >"$RUN/spark-worker.log" 2>&1 </dev/null &
  echo $! >"$RUN/spark-worker.pid"
  log "worker pid $(cat "$RUN/spark-worker.pid")"
fi
wait_for "$RUN/spark-worker.pid" "$RUN/spark-worker.log" "Successfully registered with master" worker

# 4. confirm through the master's JSON endpoint
"$PYTHON" - "$MUI" <<'PY'
import json, sys, time, urllib.request
for _ in range(40):
    try:
        j = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/json/", timeout=2))
        if j.get("aliveworkers", 0) >= 1:
            print(f"master {j['url']} {j['status']}: {j['aliveworkers']} worker(s), "
                  f"{j['cores']} cores, {j['memory']} MB")
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.5)
sys.exit("master has no alive worker")
PY
log "Spark standalone up in $(($(date +%s) - T0)) s: $SPARK_MASTER_URL (source $RUN/spark-env.sh)"
