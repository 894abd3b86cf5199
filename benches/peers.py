#!/usr/bin/env python3
"""The optional peers of benches/throughput.rs: CTranslate2 (float32, int8) and transformers,
on the same model directory, sentences and forced output length as dragoman.

    pip install ctranslate2 transformers torch sentencepiece   # versions are printed
    python3 benches/peers.py --model DIR --sentences FILE [--tokens 48] [--threads 2]

Each engine and column runs in a fresh subprocess, so that its peak RSS is its own (the whole
Python process, as the issue measures it). Only CTranslate2's translate_batch call, or
transformers' generate() calls, are timed; loading is timed separately. One JSON object per
line on stdout: {"engine", "column", "seconds", "tokens", "load_seconds", "peak_rss_mb"}.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

COLUMNS = {  # name: (beam size, sentences per batch; 0: the whole input in one call)
    "greedy_b1": (1, 1),
    "greedy_b16": (1, 16),
    "greedy_defaults": (1, 0),
    "beam4_b16": (4, 16),
    "defaults": (4, 0),  # the model's beams, translate_batch's own default batching
}


def source_tokens(model: str, sentences: list[str]) -> list[list[str]]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    return [tok.convert_ids_to_tokens(tok(s).input_ids) for s in sentences]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def convert_ct2(model: str, ct2_dir: Path, quantization: str) -> None:
    import ctranslate2

    if not (ct2_dir / "model.bin").exists():
        ctranslate2.converters.TransformersConverter(model).convert(str(ct2_dir), quantization=quantization, force=True)


def run_ct2(ct2_dir: Path, quantization: str, column: str, src: list[list[str]], tokens: int, threads: int):
    import ctranslate2

    t0 = time.perf_counter()
    translator = ctranslate2.Translator(str(ct2_dir), device="cpu", compute_type=quantization, inter_threads=1,
                                        intra_threads=threads)
    load = time.perf_counter() - t0
    beam, batch = COLUMNS[column]
    t0 = time.perf_counter()
    results = translator.translate_batch(src, max_batch_size=batch, beam_size=beam, min_decoding_length=tokens,
                                         max_decoding_length=tokens)
    seconds = time.perf_counter() - t0
    produced = sum(len(r.hypotheses[0]) for r in results)
    return {"engine": f"ctranslate2 {ctranslate2.__version__} {quantization}", "column": column, "seconds": seconds,
            "tokens": produced, "load_seconds": load, "peak_rss_mb": peak_rss_mb()}


def run_transformers(model: str, column: str, sentences, tokens: int, threads: int):
    import torch
    import transformers
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(model)
    net = AutoModelForSeq2SeqLM.from_pretrained(model, dtype=torch.float32).eval()
    load = time.perf_counter() - t0
    beam, batch = COLUMNS[column]
    produced = 0
    t0 = time.perf_counter()
    with torch.no_grad():
        step = batch or len(sentences)
        for i in range(0, len(sentences), step):
            enc = tok(sentences[i : i + step], return_tensors="pt", padding=True)
            out = net.generate(**enc, num_beams=beam, min_new_tokens=tokens, max_new_tokens=tokens)
            produced += (out.shape[1] - 1) * out.shape[0]
    seconds = time.perf_counter() - t0
    return {"engine": f"transformers {transformers.__version__} float32", "column": column, "seconds": seconds,
            "tokens": produced, "load_seconds": load, "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--sentences", required=True)
    p.add_argument("--tokens", type=int, default=48)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", default=None, help="where converted CTranslate2 models go (default: beside the model)")
    p.add_argument("--transformers-columns", default="beam4_b16")
    p.add_argument("--one", nargs=2, metavar=("ENGINE", "COLUMN"), help=argparse.SUPPRESS)
    a = p.parse_args()
    sentences = [s for s in Path(a.sentences).read_text(encoding="utf-8").splitlines() if s.strip()]
    work = Path(a.work or Path(a.model).parent)

    ct2_dir = lambda quant: work / f"{Path(a.model).name}-ct2-{quant}"  # noqa: E731
    tokens_file = work / "source_tokens.json"
    if a.one:
        engine, column = a.one
        if engine == "transformers":
            result = run_transformers(a.model, column, sentences, a.tokens, a.threads)
        elif engine == "convert":
            convert_ct2(a.model, ct2_dir(column), column)
            return
        elif engine == "tokens":
            tokens_file.write_text(json.dumps(source_tokens(a.model, sentences)), encoding="utf-8")
            return
        else:
            quant = engine.split("-", 1)[1]
            src = json.loads(tokens_file.read_text(encoding="utf-8"))
            result = run_ct2(ct2_dir(quant), quant, column, src, a.tokens, a.threads)
        print(json.dumps(result), flush=True)
        return

    # Tokens and conversions first, each in a process of its own, and this process stays
    # small: Linux carries a parent's peak RSS into a forked child, so the timed processes
    # must not start from a big one.
    runs = [("tokens", "-")] + [("convert", q) for q in ("float32", "int8")]
    runs += [(f"ct2-{q}", c) for q in ("float32", "int8") for c in COLUMNS]
    runs += [("transformers", c) for c in a.transformers_columns.split(",") if c]
    for engine, column in runs:
        cmd = [sys.executable, __file__, "--model", a.model, "--sentences", a.sentences, "--tokens", str(a.tokens),
               "--threads", str(a.threads), "--work", str(work), "--one", engine, column]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if engine in ("tokens", "convert") and done.returncode == 0:
            continue
        if done.returncode != 0:
            print(json.dumps({"engine": engine, "column": column, "error": done.stderr.strip().splitlines()[-1:]}),
                  flush=True)
        else:
            print(done.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
