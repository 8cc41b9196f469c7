"""Train the small long-context Llama model that dattn embeds, and export it as a Hugging Face directory.

    python tools/train/train.py --out models/dattn-tiny-16k --minutes 12            # GPU (CUDA, bf16 autocast)
    python tools/train/train.py --out /tmp/m --device cpu --max-steps 30 --max-len 512 --tokens-per-step 2048 ...

Data: tools/train/data.py (KJV text windows + RULER-style needle documents, curriculum short -> long).
The learning-rate schedule (warmup + cosine) and the length curriculum follow `progress`, the larger of
step / --max-steps and elapsed / --minutes; training stops when either reaches 1.

Writes into --out: config.json, model.safetensors (bf16 by default), generation_config.json,
tokenizer.json, tokenizer_config.json, and train/ with loss.csv, eval.csv, loss.svg, train_args.json.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import multiprocessing
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data  # noqa: E402
import make_tokenizer  # noqa: E402

from tokenizers import Tokenizer  # noqa: E402

# ---------------------------------------------------------------------------------------------------
# data workers (processes on the GPU machine, inline on CPU)

_STREAM: data.TrainStream | None = None


def _init_worker(tokenizer_path: str, cfg: data.StreamConfig) -> None:
    global _STREAM
    torch.set_num_threads(1)
    _STREAM = data.TrainStream(Tokenizer.from_file(tokenizer_path), cfg)


def _make_batch(step: int, progress: float):
    return _STREAM.batch(step, progress)


class Batches:
    def __init__(self, tokenizer_path: str, cfg: data.StreamConfig, workers: int, prefetch: int):
        self.workers = workers
        self.prefetch = prefetch
        if workers > 0:
            # spawn: no fork of a process holding CUDA or tokenizers threads
            self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_init_worker, initargs=(tokenizer_path, cfg))
            self.pending: dict[int, object] = {}
        else:
            _init_worker(tokenizer_path, cfg)
        self.next_submit = 0

    def get(self, step: int, progress: float):
        if self.workers == 0:
            return _make_batch(step, progress)
        # batches ahead of `step` are drawn with the progress known when they are submitted
        while self.next_submit < step + self.prefetch:
            self.pending[self.next_submit] = self.pool.submit(_make_batch, self.next_submit, progress)
            self.next_submit += 1
        return self.pending.pop(step).result()

    def close(self):
        if self.workers > 0:
            self.pool.shutdown(wait=False, cancel_futures=True)


# ---------------------------------------------------------------------------------------------------
# model


def make_model(args, vocab: int, bos: int, eos: int):
    from transformers import LlamaConfig, LlamaForCausalLM
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
        num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
        head_dim=args.head_dim, hidden_act="silu", max_position_embeddings=args.max_position,
        rms_norm_eps=1e-5, rope_theta=args.rope_theta, tie_word_embeddings=True, attention_bias=False,
        mlp_bias=False, bos_token_id=bos, eos_token_id=eos, pad_token_id=eos,
        architectures=["LlamaForCausalLM"])
    config._attn_implementation = "sdpa"  # flash / memory-efficient causal kernels on CUDA
    torch.manual_seed(args.seed)
    model = LlamaForCausalLM(config)
    return model


def param_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------------
# needle eval: RULER prompts exactly as `dattn eval ruler` builds them (another seed), answer checked
# teacher-forced (every answer token must be the argmax: what greedy decoding would produce)


def build_eval_set(tok: Tokenizer, lengths: list[int], tasks: list[str], samples: int, seed: int):
    count = lambda text: len(tok.encode(text, add_special_tokens=True).ids)  # noqa: E731
    eos = tok.token_to_id("<|end_of_text|>")
    out = []
    for length in lengths:
        for task in tasks:
            for i in range(samples):
                built, _ = data.generate_ruler_sample(task, i, length, seed, count)
                prompt = tok.encode(built.input, add_special_tokens=True).ids
                answer = tok.encode(data.answer_text(built), add_special_tokens=False).ids + [eos]
                out.append((length, task, prompt, answer))
    return out


@torch.no_grad()
def needle_eval(model, eval_set, device, autocast) -> dict:
    model.eval()
    hits: dict[tuple[int, str], list[int]] = {}
    for length, task, prompt, answer in eval_set:
        ids = torch.tensor([prompt + answer], device=device)
        with autocast():
            hidden = model.model(input_ids=ids).last_hidden_state
            n = len(answer)
            logits = model.lm_head(hidden[:, -n - 1:-1]).float()
        pred = logits.argmax(-1)[0].tolist()
        hits.setdefault((length, task), []).append(int(pred == answer))
    model.train()
    return {k: sum(v) / len(v) for k, v in hits.items()}


# ---------------------------------------------------------------------------------------------------
# plots (hand-written SVG: no matplotlib needed)


def loss_svg(rows: list[dict], path: Path) -> None:
    if not rows:
        return
    W, H, L, R, T, B = 720, 420, 70, 20, 40, 50
    xs = [r["tokens"] / 1e6 for r in rows]
    series = [("loss (weighted, all tokens)", [r["loss"] for r in rows], "#1f77b4"),
              ("answer-token loss", [r["answer_loss"] for r in rows], "#d62728")]
    ys = [y for _, s, _ in series for y in s if math.isfinite(y)]
    x0, x1 = 0.0, max(xs) or 1.0
    y0, y1 = 0.0, max(ys) * 1.05 if ys else 1.0
    sx = lambda x: L + (x - x0) / (x1 - x0) * (W - L - R)  # noqa: E731
    sy = lambda y: H - B - (y - y0) / (y1 - y0) * (H - T - B)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="14">training loss vs tokens seen</text>',
             f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>',
             f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>',
             f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">tokens (millions)</text>',
             f'<text x="16" y="{(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 16 {(T + H - B) / 2})">'
             'cross-entropy (nats)</text>']
    for i in range(6):
        xv, yv = x0 + (x1 - x0) * i / 5, y0 + (y1 - y0) * i / 5
        parts.append(f'<text x="{sx(xv):.1f}" y="{H - B + 16}" text-anchor="middle">{xv:.3g}</text>')
        parts.append(f'<text x="{L - 6}" y="{sy(yv) + 4:.1f}" text-anchor="end">{yv:.2f}</text>')
        parts.append(f'<line x1="{L}" y1="{sy(yv):.1f}" x2="{W - R}" y2="{sy(yv):.1f}" stroke="#ddd"/>')
    for k, (name, s, color) in enumerate(series):
        pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, s) if math.isfinite(y))
        if pts:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{pts}"/>')
        parts.append(f'<text x="{W - R - 220}" y="{T + 16 + 16 * k}" fill="{color}">{name}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------------


def export(model, tok_dir: Path, out: Path, dtype: str, max_position: int) -> None:
    from transformers import GenerationConfig
    out.mkdir(parents=True, exist_ok=True)
    m = model.to(torch.bfloat16 if dtype == "bf16" else torch.float32)
    m.config.use_cache = True
    m.save_pretrained(out, safe_serialization=True)
    gen = GenerationConfig(bos_token_id=m.config.bos_token_id, eos_token_id=m.config.eos_token_id,
                           pad_token_id=m.config.pad_token_id, do_sample=False)
    gen.save_pretrained(out)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        if (tok_dir / f).resolve() != (out / f).resolve():
            shutil.copy(tok_dir / f, out / f)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="export directory (Hugging Face layout)")
    ap.add_argument("--tokenizer", type=Path, help="directory with tokenizer.json (default: train one into --out)")
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--minutes", type=float, default=12.0, help="wall-clock budget of the training loop")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0 = time only)")
    ap.add_argument("--seed", type=int, default=0)
    # model
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--intermediate", type=int, default=1024)
    ap.add_argument("--rope-theta", type=float, default=1_000_000.0)
    ap.add_argument("--max-position", type=int, default=16384)
    # optimisation
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup-steps", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing (less memory, ~30%% slower)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (recompiles per length)")
    # data
    ap.add_argument("--tokens-per-step", type=int, default=65536)
    ap.add_argument("--min-len", type=int, default=512)
    ap.add_argument("--max-len", type=int, default=16384)
    ap.add_argument("--curriculum-frac", type=float, default=0.6)
    ap.add_argument("--retrieval-frac", type=float, default=0.6)
    ap.add_argument("--answer-weight", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=-1, help="data processes (-1: min(12, cores-2) on cuda, 0 on cpu)")
    ap.add_argument("--prefetch", type=int, default=24)
    # eval / logging
    ap.add_argument("--eval-every", type=float, default=2.0, help="minutes between needle evals (0 = only at the end)")
    ap.add_argument("--eval-lengths", default="1024,4096,8192,16384")
    ap.add_argument("--eval-tasks", default="niah_single_1,niah_single_2,niah_single_3,niah_multikey_1")
    ap.add_argument("--eval-samples", type=int, default=4)
    ap.add_argument("--eval-seed", type=int, default=7, help="not dattn eval's default 42: a held-out dev set")
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--export-dtype", choices=["bf16", "fp32"], default="bf16")
    args = ap.parse_args()

    t_start = time.time()
    out: Path = args.out
    logdir = out / "train"
    logdir.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    tok_dir = args.tokenizer
    if tok_dir is None:
        tok_dir = out
        make_tokenizer.save(make_tokenizer.build(args.vocab, args.seed), out, args.max_position)
        print(f"[train] tokenizer trained -> {out}/tokenizer.json", flush=True)
    tok = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    vocab = tok.get_vocab_size()
    bos, eos = tok.token_to_id("<|begin_of_text|>"), tok.token_to_id("<|end_of_text|>")

    model = make_model(args, vocab, bos, eos).to(device)
    n_params = param_count(model)
    print(f"[train] model: {n_params / 1e6:.2f}M parameters, {args.layers} layers, hidden {args.hidden}, "
          f"{args.heads} heads / {args.kv_heads} kv heads of {args.head_dim}, vocab {vocab}, device {device}", flush=True)
    if args.grad_ckpt:
        model.gradient_checkpointing_enable()
    model.config.use_cache = False
    fwd = torch.compile(model) if args.compile else model

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=cuda)

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)

    workers = args.workers if args.workers >= 0 else (max(1, min(12, (os.cpu_count() or 4) - 2)) if cuda else 0)
    cfg = data.StreamConfig(seed=args.seed, tokens_per_step=args.tokens_per_step, min_len=args.min_len,
                            max_len=args.max_len, curriculum_frac=args.curriculum_frac,
                            retrieval_frac=args.retrieval_frac, answer_weight=args.answer_weight)
    batches = Batches(str(tok_dir / "tokenizer.json"), cfg, workers, args.prefetch)

    eval_lengths = [int(x) for x in args.eval_lengths.split(",") if x and int(x) <= args.max_position]
    eval_tasks = [t for t in args.eval_tasks.split(",") if t]
    t0 = time.time()
    eval_set = build_eval_set(tok, eval_lengths, eval_tasks, args.eval_samples, args.eval_seed)
    print(f"[train] eval set: {len(eval_set)} prompts ({time.time() - t0:.1f}s)", flush=True)
    (logdir / "train_args.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items()} |
                                                       {"parameters": n_params, "workers": workers}, indent=1) + "\n")

    loss_rows: list[dict] = []
    eval_rows: list[dict] = []
    budget_s = args.minutes * 60.0
    step, tokens_seen, last_eval = 0, 0, time.time()
    t_train = time.time()

    def progress_now() -> float:
        p = (time.time() - t_train) / budget_s if budget_s > 0 else 0.0
        if args.max_steps > 0:
            p = max(p, step / args.max_steps)
        return p

    def run_eval(tag: str):
        res = needle_eval(model, eval_set, device, autocast)
        for (length, task), acc in sorted(res.items()):
            eval_rows.append({"step": step, "tokens": tokens_seen, "elapsed_s": round(time.time() - t_train, 1),
                              "length": length, "task": task, "accuracy": acc})
        by_len: dict[int, list[float]] = {}
        for (length, _), acc in res.items():
            by_len.setdefault(length, []).append(acc)
        print(f"[eval {tag}] step {step}: " + "  ".join(f"{l}: {100 * sum(v) / len(v):.0f}%" for l, v in sorted(by_len.items())),
              flush=True)

    model.train()
    while True:
        progress = progress_now()
        if progress >= 1.0:
            break
        lr_scale = min(1.0, (step + 1) / max(1, args.warmup_steps))
        lr_scale *= args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        for g in opt.param_groups:
            g["lr"] = args.lr * lr_scale
        ids_np, w_np, length = batches.get(step, progress)
        ids = torch.from_numpy(ids_np).to(device, non_blocking=True)
        w = torch.from_numpy(w_np).to(device, non_blocking=True)
        with autocast():
            logits = fwd(input_ids=ids).logits
        ce = F.cross_entropy(logits[:, :-1].float().reshape(-1, vocab), ids[:, 1:].reshape(-1), reduction="none")
        wt = w[:, 1:].reshape(-1)
        loss = (ce * wt).sum() / wt.sum().clamp_min(1e-6)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        tokens_seen += int((w_np > 0).sum())
        step += 1
        if step % args.log_every == 0 or step == 1:
            ans = wt > 1.0
            answer_loss = float(ce[ans].detach().mean()) if bool(ans.any()) else float("nan")
            row = {"step": step, "elapsed_s": round(time.time() - t_train, 2), "tokens": tokens_seen, "seq_len": length,
                   "lr": args.lr * lr_scale, "loss": loss.item(), "answer_loss": answer_loss, "grad_norm": gnorm.item()}
            loss_rows.append(row)
            print(f"[train] step {step} len {length} loss {row['loss']:.4f} answer {answer_loss:.4f} "
                  f"lr {row['lr']:.2e} tok {tokens_seen / 1e6:.2f}M {row['elapsed_s']:.0f}s", flush=True)
        if args.eval_every > 0 and time.time() - last_eval >= args.eval_every * 60:
            run_eval("periodic")
            last_eval = time.time()

    batches.close()
    train_s = time.time() - t_train
    print(f"[train] stopped at step {step} after {train_s:.0f}s, {tokens_seen / 1e6:.2f}M tokens", flush=True)
    run_eval("final")

    with open(logdir / "loss.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(loss_rows[0]) if loss_rows else ["step"])
        wr.writeheader()
        wr.writerows(loss_rows)
    with open(logdir / "eval.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=["step", "tokens", "elapsed_s", "length", "task", "accuracy"])
        wr.writeheader()
        wr.writerows(eval_rows)
    loss_svg(loss_rows, logdir / "loss.svg")
    export(model, tok_dir, out, args.export_dtype, args.max_position)
    size = (out / "model.safetensors").stat().st_size
    summary = {"steps": step, "train_seconds": round(train_s, 1), "tokens": tokens_seen, "parameters": n_params,
               "model_safetensors_bytes": size, "device": torch.cuda.get_device_name() if cuda else "cpu",
               "final_eval": [r for r in eval_rows if r["step"] == step]}
    (logdir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"[train] exported {out} (model.safetensors {size / 1e6:.1f} MB); total {time.time() - t_start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
