#!/usr/bin/env bash
# Rehearse what Binder does, on this machine, without Binder:
#   1. a fresh venv from binder/runtime.txt's Python and binder/requirements.txt only,
#   2. binder/postBuild in a clean export of the committed tree (git archive HEAD),
#   3. execute demo/triage.ipynb top to bottom in that venv's kernel (widget state saved),
#   4. check its verdict cell against the simulator's truth JSON.
# Takes minutes (the venv install dominates); not part of `make test`.
#   usage: binder/check.sh [WORKDIR]      (default: a fresh temporary directory)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${1:-$(mktemp -d -t hawknb-binder-XXXX)}"
PY="${PYTHON3:-python3}"
mkdir -p "$WORK/repo"
t0=$(date +%s)

echo "== export of HEAD into $WORK/repo"
git -C "$REPO" archive --format=tar HEAD | tar -x -C "$WORK/repo"

echo "== fresh venv from binder/requirements.txt"
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q -r "$WORK/repo/binder/requirements.txt"
t1=$(date +%s)

echo "== postBuild"
(cd "$WORK/repo" && PATH="$WORK/venv/bin:$PATH" PYTHON="$WORK/venv/bin/python" bash binder/postBuild)
t2=$(date +%s)

echo "== execute demo/triage.ipynb"
cd "$WORK/repo/demo"
set +e
"$WORK/venv/bin/python" - <<'PY'
import json
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from hawknb._offline_html import has_widget_state
from hawknb.report import notebook_verdict

nb = nbformat.read("triage.ipynb", as_version=4)
NotebookClient(nb, kernel_name="python3", timeout=900, store_widget_state=True).execute()
nbformat.write(nb, "triage.executed.ipynb")
verdict = notebook_verdict(nb)
truth = json.loads(Path(".truth/workspace.truth.json").read_text())
print("verdict:", json.dumps(verdict))
keys = ("cause", "model", "affected_models", "snapshot", "upstream")
print("truth:  ", json.dumps({k: truth[k] for k in keys}))
# an upstream break degrades every model reading it: naming any affected model together with
# the planted upstream root is the right diagnosis; a snapshot cause must name the snapshot
ok = verdict.get("cause") == truth["cause"]
if truth["cause"] == "upstream_data":
    ok = ok and verdict.get("model") in truth["affected_models"]
    ok = ok and bool(set(truth["upstream"]) & set(verdict.get("upstream") or []))
else:
    ok = ok and verdict.get("model") == truth["model"]
    ok = ok and verdict.get("snapshot") == truth["snapshot"]
print("widget state saved:", has_widget_state(nb))
sys.exit(0 if ok and has_widget_state(nb) else 1)
PY
rc=$?
set -e
t3=$(date +%s)
result=$([ "$rc" = 0 ] && echo ok || echo FAILED)
echo "binder check $result: venv $((t1 - t0)) s, postBuild $((t2 - t1)) s, notebook $((t3 - t2)) s (in $WORK)"
exit "$rc"
