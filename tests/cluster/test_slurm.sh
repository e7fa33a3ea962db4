#!/usr/bin/env bash
# End-to-end test of profiles/slurm on a throw-away one-node Slurm cluster.
#
#   1. tests/cluster/slurm_up.sh brings Slurm up (exit 3 there = Slurm cannot be provided on
#      this host: print "SKIP: ..." and exit 0)
#   2. copies the workflow (Snakefile, rules/, scripts/, config/, profiles/, envs/) into a
#      scratch dir and runs it through Slurm:
#        snakemake --profile profiles/slurm --configfile config/test/config.yaml config/test/tuned.yaml
#      (exactly what users type; profiles/default is merged in as the workflow profile and sets
#      disjoint keys: threads, per-rule limits, retries)
#      (the overlay tunes coxnet: nested tuning's jobs go through Slurm as well)
#   3. runs a second copy locally: snakemake --cores 2 with the same config files
#   4. checks: every fit_model (model x fold) job was submitted to Slurm and COMPLETED there,
#      results/cv_metrics.csv of both runs are identical (keys exact, values within 1e-12),
#      and so are the tuning selections, whose jobs also ran through Slurm
#   5. always stops the daemons again (tests/cluster/slurm_down.sh, via trap)
#
# Run from anywhere (as root):  bash tests/cluster/test_slurm.sh
# Env knobs: WORKFLOW_DIR (workflow to copy, default this repo); SLURM_STATE_DIR, SLURM_CPUS
# (see slurm_up.sh); SNAKEMAKE (snakemake executable, default .venv/bin/snakemake of the repo,
# else the one on PATH); SLURM_RUN_TIMEOUT (s, 900);
# LOCAL_RUN_TIMEOUT (s, 900); KEEP_SCRATCH=1 keeps the scratch dir (it is kept on failure
# anyway); KEEP_SLURM=1 leaves the daemons running (debugging only).
# Last line: "slurm: N passed, M failed" (or "slurm: SKIP ..."); exit status 0 iff M == 0.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# the workflow to test (default: this repo)
WF=$(cd "${WORKFLOW_DIR:-$REPO}" && pwd)
export SLURM_STATE_DIR=${SLURM_STATE_DIR:-${TMPDIR:-/tmp}/survival-workflow-slurm}
SLURM_RUN_TIMEOUT=${SLURM_RUN_TIMEOUT:-900}
LOCAL_RUN_TIMEOUT=${LOCAL_RUN_TIMEOUT:-900}
CONFIG=config/test/config.yaml
TUNED=config/test/tuned.yaml

if [[ -n ${SNAKEMAKE:-} ]]; then :
elif [[ -x $REPO/.venv/bin/snakemake ]]; then SNAKEMAKE=$REPO/.venv/bin/snakemake
else SNAKEMAKE=$(command -v snakemake || true)
fi
[[ -n $SNAKEMAKE ]] || { echo "slurm: 0 passed, 1 failed (no snakemake found)"; exit 1; }
# the Snakemake that Slurm jobs start, and `python` in shell: rules, come from the same env
PY=$(dirname "$SNAKEMAKE")/python
[[ -x $PY ]] || PY=$(command -v python3)
export PATH="$(dirname "$SNAKEMAKE"):$PATH"

log() { echo "[test_slurm $(date +%T)] $*"; }
PASSED=0; FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/survival-slurm-test.XXXXXX")
RUN_PID=""
# run_bounded DIR SECONDS LOGFILE SNAKEMAKE-ARGS...: snakemake in DIR under `timeout -k 20`.
# Runs in the background and is waited for, so that INT/TERM to this script act at once
# (bash delays traps while a foreground child runs); cleanup stops it.
run_bounded() {
  local dir=$1 secs=$2 logfile=$3; shift 3
  ( cd "$dir" && exec timeout -k 20 "$secs" "$SNAKEMAKE" "$@" ) >"$logfile" 2>&1 </dev/null &
  RUN_PID=$!
  wait "$RUN_PID"
  local rc=$?
  RUN_PID=""
  return $rc
}
# stop_run: TERM the running `timeout` (it passes TERM on to snakemake, which cancels its
# Slurm jobs), then KILL it and its children after 20 s
stop_run() {
  [[ -n $RUN_PID ]] && kill -0 "$RUN_PID" 2>/dev/null || return 0
  log "stopping the running snakemake (timeout pid $RUN_PID)"
  local kids; kids=$(pgrep -P "$RUN_PID" 2>/dev/null || true)
  kill -TERM "$RUN_PID" 2>/dev/null
  for _ in $(seq 200); do kill -0 "$RUN_PID" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$RUN_PID" $kids 2>/dev/null || true
}
cleanup() {
  local rc=$?
  stop_run
  if [[ ${KEEP_SLURM:-0} == 1 ]]; then
    log "KEEP_SLURM=1: Slurm left running; stop it with $HERE/slurm_down.sh"
  else
    bash "$HERE/slurm_down.sh" || true
  fi
  if [[ ${KEEP_SCRATCH:-0} == 1 || $FAILED -gt 0 || $rc -ne 0 ]]; then
    log "scratch dir kept: $SCRATCH"
  else
    rm -rf "$SCRATCH"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# sbatch/srun drop slurm-N.out files into the current folder: never work in the repo
cd "$SCRATCH"

# copy_workflow DEST: the workflow files only (no results/, logs/, .snakemake/, .venv/);
# envs/ too when present: rules name `conda:` env files, and Snakemake records their hashes
# in its metadata even without --sdm conda (the run fails if the file is missing)
copy_workflow() {
  local dest=$1 item
  mkdir -p "$dest"
  for item in Snakefile rules scripts config profiles; do
    [[ -e $WF/$item ]] || { log "missing $WF/$item"; return 1; }
    cp -r "$WF/$item" "$dest/"
  done
  for item in envs; do
    [[ -e $WF/$item ]] && cp -r "$WF/$item" "$dest/"
  done
  find "$dest" -name __pycache__ -type d -prune -exec rm -rf {} +
}

# 1. Slurm ----------------------------------------------------------------------------------
log "bringing up Slurm (state: $SLURM_STATE_DIR)"
T0=$(date +%s)
bash "$HERE/slurm_up.sh"
up_rc=$?
T_UP=$(( $(date +%s) - T0 ))
if (( up_rc == 3 )); then
  echo "SKIP: Slurm cannot be provided on this host (slurm_up.sh exit 3; see its message above)"
  echo "slurm: SKIP (0 passed, 0 failed)"
  exit 0
elif (( up_rc != 0 )); then
  fail "slurm_up.sh exited $up_rc"
  echo "slurm: $PASSED passed, $FAILED failed"
  exit 1
fi
log "Slurm up in ${T_UP} s"
JOBCOMP=$SLURM_STATE_DIR/log/jobcomp.log
JOBCOMP_START=$( [[ -f $JOBCOMP ]] && wc -l <"$JOBCOMP" || echo 0 )

# 2. Slurm run ------------------------------------------------------------------------------
copy_workflow "$SCRATCH/slurm-run" || { fail "copying the workflow"; echo "slurm: $PASSED passed, $FAILED failed"; exit 1; }
copy_workflow "$SCRATCH/local-run" || { fail "copying the workflow"; echo "slurm: $PASSED passed, $FAILED failed"; exit 1; }
log "Slurm run in $SCRATCH/slurm-run (log: $SCRATCH/slurm-run.log)"
T0=$(date +%s)
run_bounded "$SCRATCH/slurm-run" "$SLURM_RUN_TIMEOUT" "$SCRATCH/slurm-run.log" \
  --profile profiles/slurm --configfile "$CONFIG" "$TUNED"
slurm_rc=$?
T_SLURM=$(( $(date +%s) - T0 ))
if (( slurm_rc == 0 )); then
  pass "Slurm run finished (${T_SLURM} s)"
else
  fail "Slurm run exited $slurm_rc after ${T_SLURM} s$( (( slurm_rc == 124 || slurm_rc == 137 )) && echo " (timeout ${SLURM_RUN_TIMEOUT} s)")"
  tail -40 "$SCRATCH/slurm-run.log" | sed 's/^/    | /'
  for f in $(find "$SCRATCH/slurm-run/.snakemake/slurm_logs" -name '*.log' 2>/dev/null | head -3); do
    echo "    --- $f"; tail -15 "$f" | sed 's/^/    | /'
  done
fi

# 3. local run ------------------------------------------------------------------------------
log "local run in $SCRATCH/local-run (log: $SCRATCH/local-run.log)"
T0=$(date +%s)
run_bounded "$SCRATCH/local-run" "$LOCAL_RUN_TIMEOUT" "$SCRATCH/local-run.log" \
  --cores 2 --configfile "$CONFIG" "$TUNED"
local_rc=$?
T_LOCAL=$(( $(date +%s) - T0 ))
if (( local_rc == 0 )); then
  pass "local run finished (${T_LOCAL} s)"
else
  fail "local run exited $local_rc after ${T_LOCAL} s"
  tail -40 "$SCRATCH/local-run.log" | sed 's/^/    | /'
fi

# 4a. every fit_model job went through Slurm ------------------------------------------------
# Evidence: the plugin's "Job N has been submitted with SLURM jobid J (log: .../rule_fit_model/
# <wildcards>/J.log)" lines, each J COMPLETED in Slurm's own records (squeue --states=all keeps
# finished jobs for MinJobAge=600 s; the jobcomp text log keeps them for good). Expected count:
# fit_model in Snakemake's job-stats table == metrics.json files written.
squeue --states=all -h -o '%i|%T|%k' >"$SCRATCH/squeue.txt" 2>&1 || true
tail -n +"$((JOBCOMP_START + 1))" "$JOBCOMP" >"$SCRATCH/jobcomp.txt" 2>/dev/null || true
if "$PY" - "$SCRATCH" <<'EOF'
import pathlib, re, sys
scratch = pathlib.Path(sys.argv[1])
log = (scratch / "slurm-run.log").read_text(errors="replace")

# expected number of fit_model jobs: Snakemake's "Job stats" table of this run
m = re.search(r"^fit_model\s+(\d+)\s*$", log, re.M)
expected = int(m.group(1)) if m else None
written = len(list((scratch / "slurm-run" / "results" / "cv").glob("*/fold_*/metrics.json")))

# fit_model submissions: wildcards -> slurm job ids (several if a job was retried)
subs = {}
for jid, wc in re.findall(
        r"submitted with SLURM jobid (\d+) \(log: \S*/rule_fit_model/([^/\s]+)/\d+\.log\)", log):
    subs.setdefault(wc, []).append(jid)
all_rules = re.findall(r"submitted with SLURM jobid \d+ \(log: \S*/rule_([A-Za-z0-9_]+)/", log)

# Slurm's view: job id -> state (squeue, then the jobcomp log of this run)
state = {}
for line in (scratch / "squeue.txt").read_text(errors="replace").splitlines():
    parts = line.split("|")
    if len(parts) >= 2 and parts[0].strip().isdigit():
        state[parts[0].strip()] = parts[1].strip()
for line in (scratch / "jobcomp.txt").read_text(errors="replace").splitlines():
    j = re.search(r"\bJobId=(\d+)", line)
    s = re.search(r"\bJobState=(\S+)", line)
    if j and s:
        state.setdefault(j.group(1), s.group(1))

completed = {wc for wc, ids in subs.items() if any(state.get(i) == "COMPLETED" for i in ids)}
print(f"    fit_model jobs: expected {expected} (job stats), metrics.json written {written}, "
      f"submitted to Slurm {len(subs)}, COMPLETED in Slurm {len(completed)}; "
      f"all Slurm submissions by rule: "
      + ", ".join(f"{r}={all_rules.count(r)}" for r in sorted(set(all_rules))))
missing = sorted(set(subs) - completed)
if missing:
    print("    not COMPLETED in Slurm:", ", ".join(f"{wc}->{[(i, state.get(i)) for i in subs[wc]]}" for wc in missing))
ok = expected is not None and expected > 0 and len(completed) == expected == written == len(subs)

# Both profiles reached sbatch: the partition comes from profiles/slurm (default-resources),
# validate_data's 15-minute limit from profiles/default (set-resources, merged as the workflow
# profile). Slurm records both in the job-completion log.
limits = {}
for line in (scratch / "jobcomp.txt").read_text(errors="replace").splitlines():
    j, p, t = (re.search(rf"\b{k}=(\S+)", line) for k in ("JobId", "Partition", "TimeLimit"))
    if j and p and t:
        limits[j.group(1)] = (p.group(1), t.group(1))
vd = re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_validate_data/", log)
vd_limits = [limits.get(i) for i in vd]
print(f"    validate_data (partition, time limit in min) as Slurm saw it: {vd_limits}")
ok = ok and bool(vd_limits) and all(v == ("debug", "15") for v in vd_limits)
sys.exit(0 if ok else 1)
EOF
then pass "every fit_model job ran through Slurm"
else fail "fit_model jobs through Slurm (see counts above)"
fi

# 4b. identical cv_metrics.csv --------------------------------------------------------------
if "$PY" - "$SCRATCH/slurm-run/results/cv_metrics.csv" "$SCRATCH/local-run/results/cv_metrics.csv" <<'EOF'
import sys
import numpy as np
import pandas as pd
a_path, b_path = sys.argv[1:3]
try:
    a, b = pd.read_csv(a_path), pd.read_csv(b_path)
except FileNotFoundError as e:
    print(f"    missing: {e.filename}"); sys.exit(1)
if list(a.columns) != list(b.columns) or a.shape != b.shape:
    print(f"    shape/columns differ: {a.shape} {list(a.columns)} vs {b.shape} {list(b.columns)}")
    sys.exit(1)
if a.empty:
    print("    cv_metrics.csv is empty"); sys.exit(1)
# keys = the non-float columns (model, fold, metric, ...): compared exactly;
# float columns: equal within 1e-12 (NaN == NaN)
keys = [c for c in a.columns if not pd.api.types.is_float_dtype(a[c])]
vals = [c for c in a.columns if c not in keys]
if keys:
    a = a.sort_values(keys, kind="mergesort").reset_index(drop=True)
    b = b.sort_values(keys, kind="mergesort").reset_index(drop=True)
    if not a[keys].astype(str).equals(b[keys].astype(str)):
        diff = (a[keys].astype(str) != b[keys].astype(str)).any(axis=1)
        print("    key columns differ:\n", pd.concat([a[keys][diff], b[keys][diff]], axis=1).head(10))
        sys.exit(1)
bad = []
for c in vals:
    x, y = a[c].to_numpy(float), b[c].to_numpy(float)
    same = np.isclose(x, y, rtol=0.0, atol=1e-12, equal_nan=True)
    if not same.all():
        bad.append(c)
        print(f"    column {c}: {int((~same).sum())} values differ, max |diff| "
              f"{np.nanmax(np.abs(x - y)):.3g}")
print(f"    {len(a)} rows, key columns {keys}, value columns {vals}")
sys.exit(1 if bad else 0)
EOF
then pass "results/cv_metrics.csv identical in the Slurm and the local run"
else fail "results/cv_metrics.csv of the Slurm and the local run differ"
fi

# 4c. tuning through Slurm, the same choices ------------------------------------------------
if "$PY" - "$SCRATCH" <<'EOF'
import pathlib, re, sys
scratch = pathlib.Path(sys.argv[1])
log = (scratch / "slurm-run.log").read_text(errors="replace")
ok = True
for rule in ("split_inner_folds", "score_candidates", "select_parameters"):
    m = re.search(rf"^{rule}\s+(\d+)\s*$", log, re.M)
    expected = int(m.group(1)) if m else 0
    submitted = len(set(re.findall(
        rf"submitted with SLURM jobid \d+ \(log: \S*/rule_{rule}/([^/\s]+)/\d+\.log\)", log)))
    print(f"    {rule}: {expected} jobs (job stats), {submitted} submitted to Slurm")
    ok = ok and expected > 0 and submitted == expected
a = sorted((scratch / "slurm-run/results/tuning").glob("*/fold_*/selection.json"))
b = sorted((scratch / "local-run/results/tuning").glob("*/fold_*/selection.json"))
names = lambda paths, root: [p.relative_to(scratch / root) for p in paths]
same = names(a, "slurm-run") == names(b, "local-run") and all(
    x.read_bytes() == y.read_bytes() for x, y in zip(a, b))
print(f"    selections: {len(a)} in the Slurm run, {len(b)} local, identical: {same}")
sys.exit(0 if ok and same and a else 1)
EOF
then pass "tuning jobs ran through Slurm and chose as the local run did"
else fail "tuning through Slurm (see counts above)"
fi

log "times: Slurm bring-up ${T_UP} s, Slurm run ${T_SLURM} s, local run ${T_LOCAL} s"
echo "slurm: $PASSED passed, $FAILED failed"
(( FAILED == 0 ))
