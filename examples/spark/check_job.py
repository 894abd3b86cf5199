"""Runs dragoman_spark.py on generated rows at local[2] and checks every row (test.sh runs it).

    python check_job.py --dragoman target/debug/dragoman --model tests/fixtures/marian/fr-en

Checks, for each input format (Parquet on --rows rows, then JSON lines and CSV on a few):
  - every row's translation equals `dragoman translate` of its text (same model and settings),
    multi-line texts included, and its error is null;
  - the ids are kept: the same set as the input, each once;
  - malformed rows (no text; a text over --max-request-bytes) land in the error column with a
    null translation.
Prints the Spark job's rows/s beside one `dragoman translate` process on the same rows.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SETTINGS = {"beams": 1, "max_new_tokens": 16}
MAX_REQUEST_BYTES = 20000

# Words of the project's own French sentences (not taken from anywhere).
SUBJECTS = ["Le maire", "La ministre", "Un voisin", "Les enfants", "Notre équipe",
            "La présidente du club", "Un agriculteur", "Les habitants du quartier"]
VERBS = ["annonce", "refuse", "prépare", "découvre", "défend", "critique", "attend"]
OBJECTS = ["un nouveau projet", "la réforme des retraites", "une fête au village",
           "le budget de la ville", "des travaux sur la route", "la saison prochaine",
           "un accord avec la région"]
ENDINGS = [".", " ce matin.", " depuis lundi.", " malgré la pluie.", " à Lyon.", " !"]


def sentence(rng):
    return (f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
            f"{rng.choice(ENDINGS)}")


def rows(count, seed):
    """(id, text) rows: mostly one or two sentences, some multi-line, then malformed ones."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        if i % 97 == 5:
            text = f"{sentence(rng)}\n\n  {sentence(rng)}"
        elif i % 3 == 0:
            text = f"{sentence(rng)} {sentence(rng)}"
        else:
            text = sentence(rng)
        out.append({"id": f"doc-{seed}-{i:05d}", "text": text})
    out.append({"id": f"doc-{seed}-no-text", "text": None})
    out.append({"id": f"doc-{seed}-too-long", "text": "mot " * (MAX_REQUEST_BYTES // 4 + 10)})
    return out


def cli_translations(dragoman, model, texts):
    """`dragoman translate` of each text: one-line texts in one process (its output is line by
    line), multi-line ones one process each. Returns the translations and the one process's
    time on the one-line texts."""
    command = [dragoman, "translate", "--model", model, "-q",
               "--beams", str(SETTINGS["beams"]),
               "--max-new-tokens", str(SETTINGS["max_new_tokens"])]
    single = [t for t in texts if "\n" not in t]
    started = time.perf_counter()
    out = subprocess.run(command, input="\n".join(single) + "\n", capture_output=True,
                         text=True, check=True).stdout
    took = time.perf_counter() - started
    lines = out.split("\n")
    assert lines[-1] == "" and len(lines) == len(single) + 1, "line count"
    by_text = dict(zip(single, lines))
    for text in texts:
        if "\n" in text:
            by_text[text] = subprocess.run(command, input=text, capture_output=True,
                                           text=True, check=True).stdout.rstrip("\n")
    return by_text, took


def write_input(frame, path, fmt):
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_csv(path, index=False)


def read_output(path, fmt):
    import pandas as pd
    if fmt == "parquet":
        return pd.read_parquet(path)
    parts = sorted(os.path.join(path, p) for p in os.listdir(path)
                   if p.startswith("part-"))
    if fmt == "jsonl":
        return pd.concat([pd.read_json(p, lines=True, dtype=False) for p in parts])
    return pd.concat([pd.read_csv(p, keep_default_na=False, na_values=[""],
                                  dtype=str) for p in parts])


def run_job(args, source, output, fmt):
    # The venv's spark-submit, run with this interpreter on driver and executors.
    command = [os.path.join(os.path.dirname(sys.executable), "spark-submit"),
               "--master", "local[2]", "--conf", "spark.ui.enabled=false",
                "--conf", "spark.sql.shuffle.partitions=2",
                os.path.join(HERE, "dragoman_spark.py"),
                "--input", source, "--input-format", fmt, "--output", output,
                "--dragoman", args.dragoman, "--model", args.model,
                "--max-request-bytes", str(MAX_REQUEST_BYTES), "--partitions", "2"]
    for key, value in SETTINGS.items():
        command += ["--set", f"{key}={json.dumps(value)}"]
    import pyspark
    env = dict(os.environ, SPARK_HOME=os.path.dirname(pyspark.__file__),
               PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    started = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, env=env)
    took = time.perf_counter() - started
    if run.returncode != 0:
        sys.stderr.write(run.stderr[-4000:])
        raise SystemExit(f"spark-submit failed with {run.returncode}")
    return took


def check(args, fmt, count, workdir):
    import pandas as pd
    data = rows(count, seed={"parquet": 1, "jsonl": 2, "csv": 3}[fmt])
    source = os.path.join(workdir, f"docs.{fmt}")
    output = os.path.join(workdir, f"out-{fmt}")
    write_input(pd.DataFrame(data), source, fmt)
    took = run_job(args, source, output, fmt)
    result = read_output(output, fmt)

    ids = [r["id"] for r in data]
    got_ids = result["id"].tolist()
    assert len(got_ids) == len(ids), f"{fmt}: {len(got_ids)} rows out of {len(ids)}"
    assert sorted(got_ids) == sorted(ids), f"{fmt}: the ids changed"
    good = [r for r in data if r["id"].split("-")[-1].isdigit()]
    expected, cli_took = cli_translations(args.dragoman, args.model, [r["text"] for r in good])
    by_id = {row["id"]: row for row in result.to_dict("records")}
    for r in good:
        row = by_id[r["id"]]
        assert row["text"] == r["text"], f"{fmt}: {r['id']}: the text changed"
        assert _null(row["error"]), f"{fmt}: {r['id']}: error {row['error']!r}"
        assert row["translation"] == expected[r["text"]], (
            f"{fmt}: {r['id']}: {row['translation']!r} != {expected[r['text']]!r}")
    for suffix, needle in [("no-text", "invalid type: null"), ("too-long", "over the 20000")]:
        row = next(v for k, v in by_id.items() if k.endswith(suffix))
        assert _null(row["translation"]), f"{fmt}: {suffix}: {row['translation']!r}"
        assert needle in str(row["error"]), f"{fmt}: {suffix}: {row['error']!r}"
    one_line = sum("\n" not in r["text"] for r in good)
    print(f"{fmt}: {len(data)} rows ({len(good)} translated, 2 malformed) checked; "
          f"Spark job {took:.1f} s ({len(data) / took:.0f} rows/s, start-up included); "
          f"one dragoman translate process on the {one_line} one-line rows: {cli_took:.2f} s "
          f"({one_line / cli_took:.0f} rows/s)")


def _null(value):
    return value is None or (isinstance(value, float) and value != value)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dragoman", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    args.dragoman = os.path.abspath(args.dragoman)
    args.model = os.path.abspath(args.model)
    workdir = tempfile.mkdtemp(prefix="dragoman-spark-")
    try:
        check(args, "parquet", args.rows, workdir)
        check(args, "jsonl", 40, workdir)
        check(args, "csv", 40, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("spark recipe: all checks passed")


if __name__ == "__main__":
    main()
