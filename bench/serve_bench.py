#!/usr/bin/env python3
"""`dattn serve` under load on a GPU, with transformers' continuous batching as the baseline (docs/BENCHMARKS.md).

Makes a Llama-3.1-8B-shaped model with random bf16 weights on the device (transformers, saved under /tmp with a
synthetic byte-level tokenizer of the same 128256 ids, so prompts can be text or token ids), then measures:

  streams     --streams concurrent streaming requests of --stream-prompt token ids, --new-tokens each (greedy,
              ignore_eos): aggregate decode tokens/s while all of them decode, against the HBM bound (weight bytes
              + KV bytes read per decode step at the device's measured copy bandwidth); whole-run throughput;
  ttft        one --long-prompt token request (text) on the idle server: time to first token, against
              `dattn generate`'s prefill of the same prompt;
  interleave  --side-streams streams decoding while that long request prefills: their largest inter-token gap;
  transformers  the `streams` workload through `model.generate_batch` (transformers' continuous batching) on the
              same weights, in a subprocess with a time limit.

Writes OUT/serve_bench.json as it goes and prints a summary. GPU use:
    python3 bench/serve_bench.py --dattn build/src/cli/dattn --out /tmp/serve
A small CPU rehearsal of the whole flow (tiny random model):
    python3 bench/serve_bench.py --dattn build/src/cli/dattn --out /tmp/serve --shape tiny --device cpu \
        --streams 4 --stream-prompt 256 --new-tokens 16 --long-prompt 2048 --side-streams 2 --kv-memory 1
"""
import argparse
import http.client
import json
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import percentile, sse_data  # noqa: E402

GIB = float(1 << 30)
HOST = "127.0.0.1"


def log(*args):
    print(*args, flush=True)


# ---- the model: random weights and a byte-level tokenizer of the full vocabulary ----

def bytes_to_unicode():
    """GPT-2's byte-level alphabet: byte b -> one printable character."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(keep, chars)}


def synthetic_tokenizer(vocab_size, bos, eos):
    """A byte-level BPE without merges: every byte of a text is one token (ids 0-255), so a text of n ASCII
    characters is exactly n tokens after BOS; ids 256 .. bos-1 are distinct letter strings (what the random
    model emits decodes to text), bos .. vocab-1 special tokens."""
    alphabet = bytes_to_unicode()
    vocab = {alphabet[b]: b for b in range(256)}
    letters = "abcdefghijklmnopqrstuvwxyz"
    for i in range(256, bos):
        word, x = "", i
        while True:
            word = letters[x % 26] + word
            x //= 26
            if x == 0:
                break
        vocab["Ġ" + word] = i  # a space and a word: never one of the 256 single characters
    special = [(bos, "<|begin_of_text|>"), (eos, "<|end_of_text|>")]
    special += [(i, f"<|reserved_special_token_{i - eos - 1}|>") for i in range(eos + 1, vocab_size)]
    added = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for i, c in special]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": special[0][1], "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": special[0][1], "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {special[0][1]: {"id": special[0][1], "ids": [bos],
                                                              "tokens": [special[0][1]]}}},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": []},
    }


def make_model(model_dir, shape, device, max_context):
    import torch
    import transformers
    from model_bench import llama31_8b_config, make_model as make_random

    config = llama31_8b_config()
    if shape == "tiny":  # same vocabulary and rope, a few small layers: a CPU rehearsal
        config.hidden_size, config.intermediate_size, config.num_hidden_layers = 64, 128, 2
        config.num_attention_heads, config.num_key_value_heads, config.head_dim = 4, 2, 16
    config.max_position_embeddings = max_context
    t = time.perf_counter()
    model = make_random(config, device)
    model.save_pretrained(model_dir)
    (Path(model_dir) / "tokenizer.json").write_text(
        json.dumps(synthetic_tokenizer(config.vocab_size, config.bos_token_id, config.eos_token_id)))
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    embed = model.model.embed_tokens.weight
    info = {"weight_bytes": weights, "embedding_bytes": embed.numel() * embed.element_size(),
            "layers": config.num_hidden_layers, "kv_heads": config.num_key_value_heads, "head_dim": config.head_dim,
            "vocab": config.vocab_size, "made_in_s": round(time.perf_counter() - t, 1)}
    (Path(model_dir) / "bench_info.json").write_text(json.dumps(info))
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return info


def copy_bandwidth_gbs():
    """Device-to-device copy of 4 GiB: bytes read + written per second (the HBM rate a decode step can reach)."""
    import torch
    a = torch.empty(1 << 31, dtype=torch.int16, device="cuda")
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(10):
        start.record()
        b.copy_(a)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    del a, b
    torch.cuda.empty_cache()
    return 2 * (1 << 32) / sorted(times)[len(times) // 2] / 1e9


# ---- the server and its clients ----

def start_server(args, model_dir):
    cmd = [args.dattn, "serve", "--model", str(model_dir), "--model-name", "m", "--device", args.device,
           "--port", "0", "--attention", "delta", "--max-batch", str(args.max_batch), "--kv-memory",
           str(args.kv_memory), "--max-context", str(args.max_context), "--max-queue", "256",
           "--read-timeout", "600", "--write-timeout", "600", *args.server_args.split()]
    log("$", " ".join(cmd))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        match = re.search(r"listening on http://[^:]+:(\d+)", line)
        if match:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, int(match.group(1)), "".join(lines)
    proc.wait()
    sys.exit("dattn serve did not start:\n" + "".join(lines))


class Stream:
    """One streaming completion on its own thread: absolute arrival time of each text chunk (one token each,
    with this tokenizer, but for the rare byte that begins a multi-byte character) and the usage."""

    def __init__(self, port, body):
        self.port, self.body = port, body
        self.sent = self.first = None
        self.arrivals, self.usage, self.error = [], None, None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def run(self):
        conn = http.client.HTTPConnection(HOST, self.port, timeout=900)
        try:
            self.sent = time.perf_counter()
            conn.request("POST", "/v1/completions", body=json.dumps(self.body),
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            if response.status != 200:
                self.error = f"HTTP {response.status}: {response.read()[:300]!r}"
                return
            for data in sse_data(response, self.stop):
                now = time.perf_counter()
                if self.first is None:
                    self.first = now
                if data.get("usage"):
                    self.usage = data["usage"]
                if data.get("choices") and data["choices"][0].get("text"):
                    self.arrivals.append(now)
        except (OSError, http.client.HTTPException) as e:
            self.error = f"{type(e).__name__}: {e}"
        finally:
            conn.close()  # with stop set: the server sees the client leave and cancels the sequence

    def join(self, timeout=None):
        self.thread.join(timeout)
        return self


def metric(port, name):
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


def ids_prompt(rng, n, vocab_low=256, vocab_high=128000):
    return [rng.randrange(vocab_low, vocab_high) for _ in range(n)]


def text_prompt(rng, tokens):
    """tokens - 1 ASCII characters (BOS makes the rest): words of letters between spaces."""
    chars = []
    while len(chars) < tokens - 1:
        chars += [rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randrange(2, 9))] + [" "]
    return "".join(chars[:tokens - 2]) + "x"


def body(prompt, max_tokens):
    return {"model": "m", "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True,
            "stream": True, "stream_options": {"include_usage": True}}


def streams_workload(port, prompts, new_tokens, kv_token_bytes, info, bandwidth_gbs):
    streams = [Stream(port, body(p, new_tokens)) for p in prompts]
    start = time.perf_counter()
    for s in streams:
        s.start()
    for s in streams:
        s.join()
    errors = [s.error for s in streams if s.error]
    if errors:
        return {"errors": errors[:5]}
    end = max(s.arrivals[-1] for s in streams)
    all_decoding = max(s.arrivals[0] for s in streams)  # every prompt prefilled: pure batched decode from here
    first_done = min(s.arrivals[-1] for s in streams)
    in_window = sum(sum(1 for t in s.arrivals if all_decoding < t <= first_done) for s in streams)
    completion = sum(s.usage["completion_tokens"] for s in streams)
    chunks = sum(len(s.arrivals) for s in streams)
    decode_rate = in_window / (first_done - all_decoding) if first_done > all_decoding else float("nan")
    # HBM bound of one batched decode step: every weight but the embedding table (a gather of n rows) and
    # every cached K/V byte of every stream, at the measured copy rate; contexts at the window's middle
    mid_context = len(prompts[0]) + 1 + new_tokens / 2
    step_bytes = (info["weight_bytes"] - info["embedding_bytes"]) + len(prompts) * mid_context * kv_token_bytes
    bound = len(prompts) / (step_bytes / (bandwidth_gbs * 1e9)) if bandwidth_gbs else None
    itl = [(b - a) * 1e3 for s in streams for a, b in zip(s.arrivals, s.arrivals[1:])]
    ttft = [(s.arrivals[0] - s.sent) * 1e3 for s in streams]
    return {
        "streams": len(prompts), "prompt_tokens": len(prompts[0]), "new_tokens": new_tokens,
        "completion_tokens": completion, "text_chunks": chunks, "wall_s": round(end - start, 3),
        "throughput_tokens_per_s": round(completion / (end - start), 1),
        "decode_window_s": round(first_done - all_decoding, 3), "decode_tokens_in_window": in_window,
        "decode_tokens_per_s": round(decode_rate, 1),
        "hbm_step_bytes": step_bytes, "hbm_bound_tokens_per_s": round(bound, 1) if bound else None,
        "fraction_of_bound": round(decode_rate / bound, 3) if bound else None,
        "ttft_ms_p50": round(percentile(ttft, 50), 1), "ttft_ms_max": round(max(ttft), 1),
        "itl_ms_p50": round(percentile(itl, 50), 2), "itl_ms_p99": round(percentile(itl, 99), 2),
    }


def generate_prefill_ms(args, model_dir, prompt_file):
    cmd = [args.dattn, "generate", "--model", str(model_dir), "--device", args.device, "--attention", "delta",
           "--prompt-file", str(prompt_file), "--max-new-tokens", "1", "--greedy", *args.generate_args.split()]
    log("$", " ".join(cmd))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.step_timeout)
    match = re.search(r"prefill: (\d+) tokens in ([\d.]+) ms", out.stderr)
    if not match:
        raise RuntimeError(f"dattn generate printed no prefill time (rc {out.returncode}): {out.stderr[-1500:]}")
    return int(match.group(1)), float(match.group(2))


def long_request(port, text):
    s = Stream(port, body(text, 1)).start().join()
    if s.error:
        raise RuntimeError(f"long request: {s.error}")
    return {"ttft_ms": round((s.first - s.sent) * 1e3, 1), "prompt_tokens": s.usage["prompt_tokens"]}


def interleave_workload(port, rng, side_streams, side_prompt, side_tokens, text):
    """Side streams decode (they run until closed, at most side_tokens tokens), then the long request comes."""
    side = [Stream(port, body(ids_prompt(rng, side_prompt), side_tokens)).start() for _ in range(side_streams)]
    deadline = time.perf_counter() + 300
    while any(not s.arrivals for s in side) and time.perf_counter() < deadline:
        if any(s.error for s in side):
            break
        time.sleep(0.05)
    begin = time.perf_counter()
    long = Stream(port, body(text, 1)).start().join()
    end = time.perf_counter()
    time.sleep(0.5)
    for s in side:
        s.stop.set()
    for s in side:
        s.join(30)
    errors = [s.error for s in side + [long] if s.error]
    gaps = [(b - a) * 1e3 for s in side for a, b in zip(s.arrivals, s.arrivals[1:]) if b > begin and a < end]
    return {"side_streams": side_streams, "side_prompt_tokens": side_prompt, "errors": errors[:5],
            "long_ttft_ms": round((long.first - long.sent) * 1e3, 1) if long.first else None,
            "long_prompt_tokens": long.usage["prompt_tokens"] if long.usage else None,
            "side_tokens_during_prefill": len(gaps), "max_gap_ms": round(max(gaps), 1) if gaps else None,
            "gap_ms_p50": round(percentile(gaps, 50), 1), "gap_ms_p99": round(percentile(gaps, 99), 1)}


def wait_for_blocks_free(port, timeout_s=10):
    deadline = time.perf_counter() + timeout_s
    used = None
    while time.perf_counter() < deadline:
        used = metric(port, "dattn_kv_cache_blocks_used")
        if used == 0:
            break
        time.sleep(0.2)
    return used


# ---- the baseline: transformers' continuous batching (run as a subprocess: `--baseline`) ----

def transformers_baseline(args):
    import torch
    import transformers

    report = {"torch": torch.__version__, "transformers": transformers.__version__}
    t = time.perf_counter()
    # loaded on the host, then moved (device_map would need accelerate)
    model = transformers.AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.bfloat16).to(args.device)
    report["load_s"] = round(time.perf_counter() - t, 1)
    rng = random.Random(args.seed)
    prompts = [ids_prompt(rng, args.stream_prompt) for _ in range(args.streams)]
    config = transformers.GenerationConfig(max_new_tokens=args.new_tokens, do_sample=False, eos_token_id=-1,
                                           pad_token_id=0)
    t = time.perf_counter()
    outputs = model.generate_batch(inputs=prompts, generation_config=config)
    wall = time.perf_counter() - t
    report["attn_implementation"] = model.config._attn_implementation
    done = list(outputs.values())
    tokens = sum(len(o.generated_tokens) for o in done)
    begin = min(o.lifespan[0] for o in done if o.lifespan[0] > 0)
    finish = max(o.lifespan[1] for o in done)
    report.update({"streams": len(prompts), "prompt_tokens": args.stream_prompt, "new_tokens": args.new_tokens,
                   "completion_tokens": tokens, "errors": [o.error for o in done if o.error][:5],
                   "call_s": round(wall, 3), "requests_span_s": round(finish - begin, 3),
                   "throughput_tokens_per_s": round(tokens / (finish - begin), 1),
                   "throughput_with_warmup_tokens_per_s": round(tokens / wall, 1)})
    print("BASELINE " + json.dumps(report), flush=True)


def run_baseline(args, model_dir):
    cmd = [sys.executable, __file__, "--baseline", "--model-dir", str(model_dir), "--device", args.device,
           "--streams", str(args.streams), "--stream-prompt", str(args.stream_prompt),
           "--new-tokens", str(args.new_tokens), "--seed", str(args.seed), "--dattn", args.dattn, "--out", args.out]
    log("$", " ".join(cmd))
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.baseline_timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {args.baseline_timeout} s"}
    for line in out.stdout.splitlines():
        if line.startswith("BASELINE "):
            return {**json.loads(line[9:]), "log_tail": out.stderr[-1500:]}
    return {"error": f"rc {out.returncode}: {out.stderr[-2000:]}"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dattn", required=True, help="the dattn binary")
    ap.add_argument("--out", required=True)
    ap.add_argument("--model-dir", default="/tmp/dattn_serve_bench_model")
    ap.add_argument("--shape", choices=["llama31-8b", "tiny"], default="llama31-8b")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--streams", type=int, default=32)
    ap.add_argument("--stream-prompt", type=int, default=8192)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--long-prompt", type=int, default=131072)
    ap.add_argument("--side-streams", type=int, default=16)
    ap.add_argument("--side-prompt", type=int, default=1024)
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--kv-memory", type=float, default=56)
    ap.add_argument("--max-context", type=int, default=135168)
    ap.add_argument("--server-args", default="", help="more `dattn serve` flags")
    ap.add_argument("--generate-args", default="", help="more `dattn generate` flags")
    ap.add_argument("--phases", default="streams,ttft,interleave,transformers")
    ap.add_argument("--step-timeout", type=float, default=300)
    ap.add_argument("--baseline-timeout", type=float, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.baseline:
        return transformers_baseline(args)

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_dir = Path(args.model_dir)
    report = {"settings": vars(args)}
    save = lambda: (out_dir / "serve_bench.json").write_text(json.dumps(report, indent=1))  # noqa: E731
    if (model_dir / "bench_info.json").exists():
        info = json.loads((model_dir / "bench_info.json").read_text())
        log(f"reusing the model in {model_dir}")
    else:
        info = make_model(model_dir, args.shape, args.device, args.max_context)
        log(f"random model made and saved in {info['made_in_s']} s: {info['weight_bytes'] / GIB:.2f} GiB")
    report["model"] = info
    kv_token_bytes = 2 * info["layers"] * info["kv_heads"] * info["head_dim"] * 2  # bf16 K and V
    if args.device == "cuda":
        import torch
        report["device"] = torch.cuda.get_device_name()
        report["copy_bandwidth_gbs"] = round(copy_bandwidth_gbs(), 1)
        log(f"{report['device']}: device-to-device copy {report['copy_bandwidth_gbs']} GB/s")
    phases = set(args.phases.split(","))
    rng = random.Random(args.seed)
    long_text = text_prompt(random.Random(args.seed + 1), args.long_prompt)
    prompt_file = out_dir / "long_prompt.txt"
    prompt_file.write_text(long_text)
    if "ttft" in phases:
        tokens, ms = generate_prefill_ms(args, model_dir, prompt_file)
        report["generate"] = {"prompt_tokens": tokens, "prefill_ms": ms}
        log(f"dattn generate: prefill of {tokens} tokens in {ms} ms")
        save()

    proc, port, startup = start_server(args, model_dir)
    report["server_startup"] = startup.strip().splitlines()[-3:]
    try:
        if "streams" in phases:
            prompts = [ids_prompt(rng, args.stream_prompt) for _ in range(args.streams)]
            report["streams"] = streams_workload(port, prompts, args.new_tokens, kv_token_bytes, info,
                                                 report.get("copy_bandwidth_gbs"))
            report["streams"]["kv_blocks_used_after"] = wait_for_blocks_free(port)
            log("streams:", json.dumps(report["streams"]))
            save()
        if "ttft" in phases:
            # generate's very prompt first, then another of the same length (a repeat would hit the prefix cache)
            second = text_prompt(random.Random(args.seed + 2), args.long_prompt)
            report["ttft"] = [long_request(port, text) for text in (long_text, second)]
            log("long request on the idle server:", json.dumps(report["ttft"]))
            save()
        if "interleave" in phases:
            third = text_prompt(random.Random(args.seed + 3), args.long_prompt)
            side_tokens = min(4096, args.max_context - args.side_prompt - 1)
            report["interleave"] = interleave_workload(port, rng, args.side_streams, args.side_prompt, side_tokens,
                                                       third)
            report["interleave"]["kv_blocks_used_after"] = wait_for_blocks_free(port)
            log("interleave:", json.dumps(report["interleave"]))
            save()
    finally:
        proc.terminate()
        try:
            report["server_exit"] = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            report["server_exit"] = "killed"
    if "transformers" in phases:
        report["transformers"] = run_baseline(args, model_dir)
        log("transformers:", json.dumps(report["transformers"]))
        save()
    save()
    s, b = report.get("streams", {}), report.get("transformers", {})
    if s.get("throughput_tokens_per_s") and b.get("throughput_tokens_per_s"):
        log(f"dattn / transformers throughput: {s['throughput_tokens_per_s'] / b['throughput_tokens_per_s']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
