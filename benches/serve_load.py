"""Requests/s of `dragoman serve --http` replicas under concurrent clients (standard library only).

    python3 benches/serve_load.py --dragoman target/release/dragoman \
        --model target/tmp/throughput/opus-mt-fr-en-random --sentences target/tmp/throughput/sentences.txt

For each layout (default: 1 replica with all threads, then 2 replicas sharing them), it starts
the replicas on loopback ports, loads the model in each with one request, then runs --clients
client threads for --seconds, each sending one sentence per request to the replicas in turn
(what a round-robin load balancer does), and prints requests/s and latency percentiles. Layouts
alternate over --rounds rounds, since this machine's speed drifts over minutes. Replicas are
stopped with SIGTERM and must exit 0.
"""

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import threading
import time


def start_replica(dragoman, model, threads):
    process = subprocess.Popen(
        [dragoman, "serve", "--http", "127.0.0.1:0", "--model", model, "--threads", str(threads)],
        stderr=subprocess.PIPE, text=True)
    line = process.stderr.readline().strip()
    prefix = "dragoman: listening on http://"
    if not line.startswith(prefix):
        raise SystemExit(f"unexpected first line from the replica: {line!r}")
    threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()
    host, port = line[len(prefix):].rsplit(":", 1)
    return process, (host, int(port))


def post(connection, body):
    connection.request("POST", "/v1/translate", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{response.status}: {data[:200]!r}")
    return json.loads(data)


def run_layout(args, replicas, threads, sentences):
    started = [start_replica(args.dragoman, args.model, threads) for _ in range(replicas)]
    addresses = [address for _, address in started]
    fields = dict(args.fields, model=args.model)
    try:
        for address in addresses:  # load the model in every replica
            post(http.client.HTTPConnection(*address), json.dumps(dict(fields, text="Bonjour.")))
        latencies = []
        lock = threading.Lock()
        stop_at = time.perf_counter() + args.seconds

        def client(number):
            connections = [http.client.HTTPConnection(*a) for a in addresses]
            turn, done = number, []
            while time.perf_counter() < stop_at:
                text = sentences[turn % len(sentences)]
                body = json.dumps(dict(fields, id=turn, text=text))
                begin = time.perf_counter()
                post(connections[turn % len(connections)], body)
                done.append(time.perf_counter() - begin)
                turn += args.clients
            with lock:
                latencies.extend(done)

        begin = time.perf_counter()
        clients = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        took = time.perf_counter() - begin
    finally:
        for process, _ in started:
            process.send_signal(signal.SIGTERM)
        statuses = [process.wait(timeout=60) for process, _ in started]
    if any(statuses):
        raise SystemExit(f"a replica exited with {statuses} after SIGTERM")
    latencies.sort()
    return {
        "requests": len(latencies),
        "per_second": len(latencies) / took,
        "p50": statistics.median(latencies),
        "p95": latencies[int(0.95 * (len(latencies) - 1))],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dragoman", default="target/release/dragoman")
    parser.add_argument("--model", required=True)
    parser.add_argument("--sentences", required=True, help="one sentence per line")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="CPU threads shared by the replicas of a layout")
    parser.add_argument("--layouts", default="1,2", help="replica counts, e.g. 1,2")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="request fields (default: beams=1 max_new_tokens=24 "
                             "min_new_tokens=24)")
    args = parser.parse_args()
    args.model = os.path.abspath(args.model)
    args.fields = {"beams": 1, "max_new_tokens": 24, "min_new_tokens": 24}
    for item in args.set:
        key, _, value = item.partition("=")
        args.fields[key] = json.loads(value)
    with open(args.sentences, encoding="utf-8") as f:
        sentences = [line.strip() for line in f if line.strip()]
    layouts = [int(n) for n in args.layouts.split(",")]
    results = {n: [] for n in layouts}
    for round_number in range(1, args.rounds + 1):
        for replicas in layouts:
            threads = max(1, args.threads // replicas)
            result = run_layout(args, replicas, threads, sentences)
            results[replicas].append(result)
            print(f"round {round_number}: {replicas} replica(s) × {threads} thread(s): "
                  f"{result['requests']} requests, {result['per_second']:.1f} req/s, "
                  f"p50 {result['p50'] * 1000:.0f} ms, p95 {result['p95'] * 1000:.0f} ms",
                  flush=True)
    print(f"{args.clients} clients, {args.seconds:.0f} s per run, fields {args.fields}")
    for replicas in layouts:
        rates = [r["per_second"] for r in results[replicas]]
        print(f"{replicas} replica(s): median {statistics.median(rates):.1f} req/s "
              f"(runs: {', '.join(f'{r:.1f}' for r in rates)})")


if __name__ == "__main__":
    main()
