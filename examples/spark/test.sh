#!/usr/bin/env bash
# The Spark recipe, tested: pyspark in a venv, dragoman_spark.py at local[2] on 1000 generated
# rows (and a few in JSON lines and CSV) with the tiny fixture model, every row checked against
# `dragoman translate` (check_job.py). Needs Java 17 and python3 with venv; about 2 minutes,
# half of it installing pyspark the first time.
#
#     bash examples/spark/test.sh            # builds target/debug/dragoman if needed
#     SPARK_VENV=/path/venv bash examples/spark/test.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

venv="${SPARK_VENV:-target/spark-venv}"
command -v java >/dev/null || { echo "spark test: java (17) is not on PATH" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r examples/spark/requirements.txt

cargo build --locked --quiet --bin dragoman
"$venv/bin/python" examples/spark/check_job.py \
    --dragoman target/debug/dragoman --model tests/fixtures/marian/fr-en --rows 1000
