#!/usr/bin/env python3
"""Load generator for `dattn serve` (docs/SERVER.md): streams completions from several clients at once and
reports throughput, time to first token (TTFT) and inter-token latency (ITL) percentiles.

Loopback only, bounded in requests (--requests) and time (--time-limit). Standard library only.

    python3 bench/serve_load.py --start-server build/src/cli/dattn          # the embedded model on the CPU
    python3 bench/serve_load.py --port 8080 --requests 64 --concurrency 16 --prompt-tokens 2048 --max-tokens 128
"""
import argparse
import http.client
import ipaddress
import json
import random
import re
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

MAX_REQUESTS = 100_000
MAX_TIME_S = 3600


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def is_loopback(host):
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback
                   for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP))
    except (socket.gaierror, ValueError):
        return False


def start_server(binary, extra):
    """`dattn serve --port 0` on the embedded model; returns (process, port)."""
    proc = subprocess.Popen([binary, "serve", "--port", "0", *extra], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    for line in proc.stderr:
        match = re.search(r"listening on http://[^:]+:(\d+)", line)
        if match:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, int(match.group(1))
        if time.monotonic() > deadline:
            break
    proc.kill()
    sys.exit("dattn serve did not start")


def model_id(host, port, headers):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", "/v1/models", headers=headers)
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        sys.exit(f"GET /v1/models: HTTP {response.status}: {body[:200]!r}")
    return json.loads(body)["data"][0]["id"]


def sse_data(response, stop=None):
    """The JSON objects of an SSE response's `data:` events as they arrive (comments and [DONE] skipped);
    stops early once the threading.Event `stop` is set."""
    buffer = b""
    while stop is None or not stop.is_set():
        chunk = response.read1(65536)
        if not chunk:
            return
        buffer += chunk
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            if event.startswith(b"data: ") and event != b"data: [DONE]":
                yield json.loads(event[6:])


def one_request(host, port, headers, body, timeout_s):
    """Streams one completion; returns a dict of timings, or an error string."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("POST", "/v1/completions", body=json.dumps(body), headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            return {"error": f"HTTP {response.status}: {response.read()[:200]!r}"}
        arrivals, usage = [], None
        for data in sse_data(response):
            if data.get("usage"):
                usage = data["usage"]
            if data.get("choices") and data["choices"][0].get("text"):
                arrivals.append(time.perf_counter())
        end = time.perf_counter()
    except (OSError, http.client.HTTPException) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    finally:
        conn.close()
    if not arrivals or usage is None:
        return {"error": "the stream carried no text or no usage"}
    return {"ttft": arrivals[0] - start, "itl": [b - a for a, b in zip(arrivals, arrivals[1:])],
            "latency": end - start, "prompt_tokens": usage["prompt_tokens"],
            "completion_tokens": usage["completion_tokens"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1", help="a loopback address of the server")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--start-server", metavar="DATTN", help="start `DATTN serve` on a free port for the run")
    ap.add_argument("--server-args", default="", help="extra flags for --start-server, e.g. '--max-batch 8'")
    ap.add_argument("--api-key")
    ap.add_argument("--requests", type=int, default=32, help=f"requests in all (at most {MAX_REQUESTS})")
    ap.add_argument("--concurrency", type=int, default=8, help="clients sending at once")
    ap.add_argument("--prompt-tokens", type=int, default=256, help="prompt length (token ids)")
    ap.add_argument("--max-tokens", type=int, default=64, help="completion tokens per request")
    ap.add_argument("--time-limit", type=float, default=300, help=f"seconds for the whole run (at most {MAX_TIME_S})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = ap.parse_args()
    if not 1 <= args.requests <= MAX_REQUESTS or not 0 < args.time_limit <= MAX_TIME_S or args.concurrency < 1:
        sys.exit(f"--requests must be in [1, {MAX_REQUESTS}], --time-limit in (0, {MAX_TIME_S}], --concurrency >= 1")
    if not is_loopback(args.host):
        sys.exit(f"--host {args.host} is not a loopback address: this tool only loads a server on this machine")

    proc = None
    if args.start_server:
        proc, args.port = start_server(args.start_server, args.server_args.split())
    try:
        headers = {"Content-Type": "application/json"}
        if args.api_key:
            headers["Authorization"] = f"Bearer {args.api_key}"
        model = model_id(args.host, args.port, headers)
        rng = random.Random(args.seed)
        # Random ids below 256 exist in every byte-level vocabulary; greedy with no stop: every request runs
        # to max_tokens unless the model emits an end token.
        bodies = [{"model": model, "prompt": [rng.randrange(3, 256) for _ in range(args.prompt_tokens)],
                   "max_tokens": args.max_tokens, "temperature": 0, "stream": True,
                   "stream_options": {"include_usage": True}} for _ in range(args.requests)]
        deadline = time.monotonic() + args.time_limit

        def run(body):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return {"error": "skipped: time limit"}
            return one_request(args.host, args.port, headers, body, remaining)

        start = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            results = list(pool.map(run, bodies))
        wall = time.perf_counter() - start
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    ok = [r for r in results if "error" not in r]
    errors = [r["error"] for r in results if "error" in r]
    ttft = [r["ttft"] * 1e3 for r in ok]
    itl = [x * 1e3 for r in ok for x in r["itl"]]
    latency = [r["latency"] * 1e3 for r in ok]
    completion = sum(r["completion_tokens"] for r in ok)
    summary = {
        "requests": len(results), "succeeded": len(ok), "failed": len(errors), "concurrency": args.concurrency,
        "prompt_tokens": args.prompt_tokens, "max_tokens": args.max_tokens, "wall_s": round(wall, 3),
        "requests_per_s": round(len(ok) / wall, 3),
        "completion_tokens_per_s": round(completion / wall, 1),
        "prompt_tokens_per_s": round(sum(r["prompt_tokens"] for r in ok) / wall, 1),
        **{f"ttft_ms_p{p}": round(percentile(ttft, p), 2) for p in (50, 90, 99)},
        **{f"itl_ms_p{p}": round(percentile(itl, p), 2) for p in (50, 90, 99)},
        **{f"latency_ms_p{p}": round(percentile(latency, p), 2) for p in (50, 90, 99)},
    }
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key:>24}: {value}")
        for error in sorted(set(errors))[:5]:
            print(f"error: {error} ({errors.count(error)}x)")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
