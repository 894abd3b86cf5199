"""Translate (or summarize) a DataFrame of documents with one warm dragoman worker per partition.

    spark-submit examples/spark/dragoman_spark.py \
        --input docs.parquet --output docs.en.parquet --to en

Reads Parquet, JSON lines or CSV with an id column and a text column, and writes the same rows
with two more columns: the translation (or summary) and an error, exactly one of them set per
row. Nothing is dropped and no row is duplicated: every row of a partition is sent to that
partition's `dragoman serve --stdio` as one request line, and its answer comes back on the
line of the same rank (the worker answers in order, and echoes the rank as the id, which is
checked). A row the worker refuses (no text, a text over --max-request-bytes, a model that
fails to load) carries the worker's message in the error column; a worker that dies fails the
Spark task, which Spark retries as a whole.

Where the executors find dragoman and the models (see README, "Beyond one machine"):
  - the binary: --dragoman PATH, else $DRAGOMAN_BIN, else ./dragoman/dragoman (what
    `--archives dragoman.tar.gz#dragoman` unpacks in each executor's working directory), else
    `dragoman` on PATH;
  - the models: the Hugging Face cache named by HF_HOME on the executors (a shared file
    system, or `--archives hf.tar.gz#hf --conf spark.executorEnv.HF_HOME=./hf`), filled once
    with `dragoman models pull`; the workers run with --offline unless --online is given.

Each worker gets spark.task.cpus threads (1 unless configured), so local[N] or N executor
cores run N workers side by side without oversubscribing the CPU.
"""

import argparse
import json
import os
import shutil
import subprocess
import threading


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="input path (file or directory)")
    parser.add_argument("--input-format", choices=["parquet", "jsonl", "csv"],
                        help="default: from the input's extension, else parquet")
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--output-format", choices=["parquet", "jsonl", "csv"],
                        help="default: the input's format")
    parser.add_argument("--id-column", default="id")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--result-column",
                        help="default: translation, or summary with --task summarize")
    parser.add_argument("--error-column", default="error")
    parser.add_argument("--task", choices=["translate", "summarize"], default="translate")
    parser.add_argument("--to", help="translate: target language (en, ru)")
    parser.add_argument("--from", dest="source", help="translate: source language (fr)")
    parser.add_argument("--lang", help="summarize: language of the summary (fr, en, ru)")
    parser.add_argument("--model", help="a hub id or a directory present on every executor")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any other request field, e.g. beams=1 or max_new_tokens=64")
    parser.add_argument("--dragoman", help="path of the dragoman binary on the executors")
    parser.add_argument("--dtype", default="f32", help="f32, int8 or bf16 (see dragoman)")
    parser.add_argument("--max-request-bytes", type=int, default=1 << 20)
    parser.add_argument("--partitions", type=int,
                        help="repartition to N (default: at least the default parallelism)")
    parser.add_argument("--online", action="store_true",
                        help="let workers download models (default: --offline)")
    parser.add_argument("--mode", default="errorifexists",
                        help="Spark save mode: errorifexists, overwrite, ...")
    return parser.parse_args(argv)


def request_fields(args):
    """The request fields every row shares."""
    fields = {"task": args.task}
    for key, value in [("to", args.to), ("from", args.source), ("lang", args.lang),
                       ("model", args.model)]:
        if value is not None:
            fields[key] = value
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        try:
            fields[key] = json.loads(value)
        except json.JSONDecodeError:
            fields[key] = value
    return fields


def find_dragoman(explicit):
    for candidate in [explicit, os.environ.get("DRAGOMAN_BIN"),
                      os.path.join(os.getcwd(), "dragoman", "dragoman")]:
        if candidate and os.path.isfile(candidate):
            return candidate
    found = shutil.which("dragoman")
    if found:
        return found
    raise RuntimeError("dragoman: no binary (give --dragoman, set DRAGOMAN_BIN, ship it with "
                       "--archives dragoman.tar.gz#dragoman, or put it on PATH)")


class Worker:
    """One `dragoman serve --stdio`, kept warm across a partition's batches."""

    def __init__(self, binary, threads, max_request_bytes, dtype, online):
        command = [binary, "serve", "--stdio", "-q", "--threads", str(threads),
                   "--max-request-bytes", str(max_request_bytes), "--dtype", dtype]
        if not online:
            command.append("--offline")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
        self.stderr = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _drain_stderr(self):
        for line in self.process.stderr:
            self.stderr.append(line.decode("utf-8", "replace").rstrip())
            del self.stderr[:-20]

    def _died(self, what):
        status = self.process.poll()
        tail = " | ".join(self.stderr[-5:])
        return RuntimeError(f"dragoman worker {what} (exit status {status}): {tail}")

    def answer(self, requests):
        """The answers to `requests` (dicts), in order; each request's id is its rank."""
        lines = []
        for rank, request in enumerate(requests):
            # ensure_ascii: a lone surrogate becomes \\udXXX, which dragoman refuses with an
            # error answer, instead of bytes Python cannot encode.
            # The id first: a line over the size limit is answered with the id read from
            # its head.
            lines.append(json.dumps({"id": rank, **request}, ensure_ascii=True) + "\n")

        def write():
            try:
                for line in lines:
                    self.process.stdin.write(line.encode("ascii"))
                self.process.stdin.flush()
            except (BrokenPipeError, OSError):
                pass  # reported by the reader below

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        answers = []
        for rank in range(len(requests)):
            line = self.process.stdout.readline()
            if not line:
                raise self._died(f"stopped after {rank} of {len(requests)} answers")
            answer = json.loads(line)
            unreadable = answer.get("id") is None and "error" in answer
            if answer.get("id") != rank and not unreadable:
                raise self._died(f"answered id {answer.get('id')!r} for request {rank}")
            answers.append(answer)
        writer.join()
        return answers

    def close(self):
        self.process.stdin.close()
        status = self.process.wait()
        if status != 0:
            raise self._died("ended badly")


def translate_partitions(args, text_column, result_column, error_column, fields):
    """The mapInPandas function: every batch of a partition through one worker."""
    max_request_bytes = args.max_request_bytes
    binary_option, dtype, online = args.dragoman, args.dtype, args.online

    def run(batches):
        from pyspark import TaskContext

        context = TaskContext.get()
        threads = context.cpus() if context is not None else 1
        worker = None
        try:
            for frame in batches:
                if worker is None:
                    worker = Worker(find_dragoman(binary_option), threads, max_request_bytes,
                                    dtype, online)
                texts = frame[text_column].tolist()
                requests = [dict(fields, text=None if _missing(t) else t) for t in texts]
                answers = worker.answer(requests)
                frame = frame.copy()
                frame[result_column] = [a.get("text") for a in answers]
                frame[error_column] = [a.get("error") for a in answers]
                yield frame
        finally:
            if worker is not None:
                worker.close()

    return run


def _missing(value):
    # None, or pandas' NaN/NA for a null cell.
    return value is None or (not isinstance(value, str) and value != value) or \
        type(value).__name__ == "NAType"


def input_format(args):
    if args.input_format:
        return args.input_format
    lower = args.input.lower().rstrip("/")
    if lower.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if lower.endswith(".csv"):
        return "csv"
    return "parquet"


def read(spark, path, fmt):
    if fmt == "parquet":
        return spark.read.parquet(path)
    if fmt == "jsonl":
        return spark.read.json(path)
    return (spark.read.option("header", True).option("multiLine", True)
            .option("escape", '"').csv(path))


def write(frame, path, fmt, mode):
    writer = frame.write.mode(mode)
    if fmt == "parquet":
        writer.parquet(path)
    elif fmt == "jsonl":
        writer.json(path)
    else:
        # Spark trims values when writing CSV unless told not to.
        (writer.option("header", True).option("escape", '"')
         .option("ignoreLeadingWhiteSpace", False).option("ignoreTrailingWhiteSpace", False)
         .csv(path))


def main(argv=None):
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StringType, StructField, StructType

    args = parse_args(argv)
    fields = request_fields(args)
    result_column = args.result_column or (
        "summary" if args.task == "summarize" else "translation")
    spark = SparkSession.builder.appName("dragoman").getOrCreate()
    fmt = input_format(args)
    frame = read(spark, args.input, fmt)
    for column in (args.id_column, args.text_column):
        if column not in frame.columns:
            raise SystemExit(f"{args.input}: no column {column!r} (columns: "
                             f"{', '.join(frame.columns)}; see --id-column/--text-column)")
    for column in (result_column, args.error_column):
        if column in frame.columns:
            raise SystemExit(f"{args.input}: already has a column {column!r} "
                             f"(see --result-column/--error-column)")
    partitions = args.partitions or max(frame.rdd.getNumPartitions(),
                                        spark.sparkContext.defaultParallelism)
    if partitions != frame.rdd.getNumPartitions():
        frame = frame.repartition(partitions)
    schema = StructType(frame.schema.fields + [StructField(result_column, StringType()),
                                               StructField(args.error_column, StringType())])
    result = frame.mapInPandas(
        translate_partitions(args, args.text_column, result_column, args.error_column, fields),
        schema)
    write(result, args.output, args.output_format or fmt, args.mode)
    spark.stop()


if __name__ == "__main__":
    main()
