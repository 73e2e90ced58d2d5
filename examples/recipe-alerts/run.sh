#!/usr/bin/env bash
# Runs the recipe-alert pipeline (raw producer -> parser -> notifier) against a broker and checks
# the alerts against expected-alerts.txt. Usage: run.sh [BOOTSTRAP]  (default $BOOTSTRAP or localhost:9092)
set -u

here=$(cd "$(dirname "$0")" && pwd)
bootstrap=${1:-${BOOTSTRAP:-localhost:9092}}
# The Python to run the stages: $PYTHON, else the repository's test virtualenv (make test-deps)
# when there is one, else python3.
venv_python="$here/../../.venv/bin/python"
if [ -n "${PYTHON:-}" ]; then python=$PYTHON
elif [ -x "$venv_python" ]; then python=$venv_python
else python=python3; fi
stage_timeout=${STAGE_TIMEOUT:-120}   # seconds; a stage that hangs on the broker fails instead
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The stages need kafka-python and BeautifulSoup: say exactly what to install rather than die
# halfway with a traceback.
if ! "$python" -c 'import kafka, bs4' 2>/dev/null; then
    echo "run.sh: $python lacks kafka-python and/or beautifulsoup4. Install them with one of:" >&2
    echo "  make test-deps                      (from the repository root: a virtualenv .venv with both)" >&2
    echo "  $python -m pip install kafka-python==2.0.2 beautifulsoup4" >&2
    echo "  apt-get install python3-bs4 python3-kafka   (Debian packages)" >&2
    exit 2
fi

run_stage() {
    local script=$1 out="$work/$1.out" rc
    echo "== $script ($bootstrap)"
    timeout "$stage_timeout" "$python" "$here/$script" "$bootstrap" >"$out" 2>&1
    rc=$?
    cat "$out"
    if [ "$rc" -ne 0 ]; then
        echo "run.sh: $script failed with exit code $rc" >&2
        exit 1
    fi
}

run_stage producer-raw-recipes.py
run_stage producer_consumer_parse_recipes.py
run_stage consumer-notification.py

# Both consumers read from the earliest offset, so on a broker that kept earlier runs' messages
# every alert shows up once per run; compare the distinct alerts, in order, and say so.
grep '^Alert: ' "$work/consumer-notification.py.out" >"$work/alerts.all" || true
awk '!seen[$0]++' "$work/alerts.all" >"$work/alerts"
all=$(wc -l <"$work/alerts.all")
distinct=$(wc -l <"$work/alerts")
if [ "$all" -ne "$distinct" ]; then
    echo "note: $all alert lines, $distinct distinct (the topics already held messages from earlier runs)"
fi

if diff -u "$here/expected-alerts.txt" "$work/alerts" >"$work/diff"; then
    echo "== OK: $distinct alerts as expected"
    exit 0
fi
echo "== FAIL: alerts differ from expected-alerts.txt" >&2
cat "$work/diff" >&2
exit 1
