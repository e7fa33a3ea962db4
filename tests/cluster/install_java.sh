#!/usr/bin/env bash
# Make sure a Java 17+ runtime is available for pyspark 4 (Spark ETL tests, make bench-etl).
# Uses the java Spark would use ($JAVA_HOME/bin/java, else java on PATH); if it is missing or
# older than 17, apt-installs openjdk-17-jre-headless (running apt-get update first when the
# package lists are stale or empty).
#
# Exit codes: 0 Java 17+ is available (prints its path); 3 it cannot be installed here (not
# root, no apt-get, package not installable): callers should skip, not fail.
set -uo pipefail
log() { echo "[install_java $(date +%T)] $*" >&2; }

java_bin() {
  if [[ -n ${JAVA_HOME:-} ]]; then echo "$JAVA_HOME/bin/java"; else command -v java || true; fi
}
java_ok() {
  local j
  j=$(java_bin)
  [[ -n $j && -x $j ]] && "$j" -version 2>&1 | grep -qE 'version "(1[7-9]|[2-9][0-9])'
}

if java_ok; then java_bin; exit 0; fi
if [[ $(id -u) -ne 0 ]]; then log "Java 17+ missing and not root: install openjdk-17-jre-headless"; exit 3; fi
if ! command -v apt-get >/dev/null; then log "Java 17+ missing and no apt-get on this host"; exit 3; fi

export DEBIAN_FRONTEND=noninteractive
LOG=${TMPDIR:-/tmp}/install_java.$$.log
log "installing openjdk-17-jre-headless (apt log: $LOG)"
if ! apt-get install -y -q --no-install-recommends openjdk-17-jre-headless >"$LOG" 2>&1; then
  apt-get update -q >>"$LOG" 2>&1
  apt-get install -y -q --no-install-recommends openjdk-17-jre-headless >>"$LOG" 2>&1 || {
    tail -20 "$LOG" >&2; log "apt-get could not install openjdk-17-jre-headless"; exit 3; }
fi
# a stale JAVA_HOME would still hide the new runtime
if [[ -n ${JAVA_HOME:-} ]] && ! java_ok; then unset JAVA_HOME; fi
java_ok || { log "installed, but no Java 17+ found"; exit 3; }
java_bin
