#!/usr/bin/env python3
"""An independent reference for dattn on a GGUF model: shares no code with dattn.

- weights: the `gguf` package's GGUFReader and gguf.quants.dequantize, used in llama.cpp's own layout
  (q/k rows left in the converter's interleaved order, rotated with llama.cpp's adjacent-pair rope for
  llama, half-split rope for qwen2/qwen3), forward pass in float64 NumPy;
- tokenizer: the `tokenizers` library (Rust) built from the GGUF vocab and merges, with the pre-tokenizer
  the Hugging Face release of the model uses (SmolLM2: Digits(individual) + ByteLevel), not from
  llama.cpp's regex table that dattn maps.

Compares with `dattn tokenize`, `dattn logits --ids` and `dattn generate --greedy` and prints the numbers.
Needs: gguf, numpy, tokenizers. Usage:
  python tools/gguf_reference.py --dattn build/src/cli/dattn --model SmolLM2-135M-Instruct.Q4_1.gguf
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import gguf
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, AddedToken

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "In 2024, SmolLM2 had 135,000,000 parameters; π ≈ 3.14159!",
    "def add(a, b):\n    return a + b\n\n\nprint(add(2, 40))",
    "Ünïcödé façade, naïve café — 東京タワー と 😀 emoji\t\ttabs   spaces",
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "I'm sure you'll see they've done it. DON'T shout, we'd rather not.",
    "  leading spaces and trailing   ",
    "URL: https://example.com/a?b=1&c=2 #hash @user 1234567890",
]
PROMPT = "<|im_start|>user\nWrite one sentence about the ocean.<|im_end|>\n<|im_start|>assistant\n"


class GgufModel:
    def __init__(self, path):
        r = gguf.GGUFReader(path)
        self.fields = {k: f for k, f in r.fields.items()}
        self.arch = self.scalar("general.architecture")
        a = self.arch
        self.n_layer = self.scalar(f"{a}.block_count")
        self.n_head = self.scalar(f"{a}.attention.head_count")
        self.n_kv = self.scalar(f"{a}.attention.head_count_kv")
        self.hidden = self.scalar(f"{a}.embedding_length")
        self.head_dim = self.scalar(f"{a}.attention.key_length", self.hidden // self.n_head)
        self.eps = self.scalar(f"{a}.attention.layer_norm_rms_epsilon")
        self.theta = self.scalar(f"{a}.rope.freq_base", 10000.0)
        self.w = {}
        for t in r.tensors:
            values = gguf.quants.dequantize(t.data, t.tensor_type)
            self.w[t.name] = values.reshape([int(d) for d in reversed(t.shape)]).astype(np.float64)
        self.output = self.w.get("output.weight", self.w["token_embd.weight"])

    def scalar(self, key, default=None):
        f = self.fields.get(key)
        if f is None:
            return default
        v = f.contents()
        return v

    def rope(self, x, positions):
        # x: (n, heads, head_dim)
        half = self.head_dim // 2
        inv = 1.0 / (self.theta ** (np.arange(0, half) * 2.0 / self.head_dim))
        ang = positions[:, None] * inv[None, :]
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        if self.arch == "llama":  # llama.cpp rope mode NORM: adjacent pairs (2i, 2i+1)
            x0, x1 = x[..., 0::2], x[..., 1::2]
            out = np.empty_like(x)
            out[..., 0::2] = x0 * cos - x1 * sin
            out[..., 1::2] = x0 * sin + x1 * cos
            return out
        x0, x1 = x[..., :half], x[..., half:]  # NEOX: (i, i + half)
        return np.concatenate([x0 * cos - x1 * sin, x0 * sin + x1 * cos], axis=-1)

    def norm(self, x, weight):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * weight

    def linear(self, x, name):
        y = x @ self.w[name + ".weight"].T
        return y + self.w[name + ".bias"] if name + ".bias" in self.w else y

    def logits(self, ids):
        n = len(ids)
        x = self.w["token_embd.weight"][np.array(ids)]
        pos = np.arange(n, dtype=np.float64)
        mask = np.triu(np.full((n, n), -np.inf), 1)
        group = self.n_head // self.n_kv
        for i in range(self.n_layer):
            p = f"blk.{i}."
            h = self.norm(x, self.w[p + "attn_norm.weight"])
            q = self.linear(h, p + "attn_q").reshape(n, self.n_head, self.head_dim)
            k = self.linear(h, p + "attn_k").reshape(n, self.n_kv, self.head_dim)
            v = self.linear(h, p + "attn_v").reshape(n, self.n_kv, self.head_dim)
            if p + "attn_q_norm.weight" in self.w:
                q = self.norm(q, self.w[p + "attn_q_norm.weight"])
                k = self.norm(k, self.w[p + "attn_k_norm.weight"])
            q, k = self.rope(q, pos), self.rope(k, pos)
            k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
            s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(self.head_dim) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            o = np.einsum("hqk,khd->qhd", s, v).reshape(n, -1)
            x = x + self.linear(o, p + "attn_output")
            h = self.norm(x, self.w[p + "ffn_norm.weight"])
            g = self.linear(h, p + "ffn_gate")
            x = x + self.linear(g / (1 + np.exp(-g)) * self.linear(h, p + "ffn_up"), p + "ffn_down")
        return self.norm(x, self.w["output_norm.weight"]) @ self.output.T


def reference_tokenizer(m):
    tokens = list(m.scalar("tokenizer.ggml.tokens"))
    types = list(m.scalar("tokenizer.ggml.token_type"))
    merges = [tuple(s.split(" ", 1)) for s in m.scalar("tokenizer.ggml.merges")]
    vocab = {t: i for i, t in reversed(list(enumerate(tokens)))}
    tok = Tokenizer(models.BPE(vocab, merges))
    pre = m.scalar("tokenizer.ggml.pre")
    if pre != "smollm":
        sys.exit(f"this reference knows the SmolLM2 pre-tokenizer only, not '{pre}'")
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(tokens, types) if ty == gguf.TokenType.CONTROL])
    return tok


def dattn(binary, *args):
    return subprocess.run([binary, *args], check=True, capture_output=True, text=True).stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dattn", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--new-tokens", type=int, default=24)
    ap.add_argument("--logits-budget", type=float, default=1e-4)
    args = ap.parse_args()
    t0 = time.time()
    m = GgufModel(args.model)
    print(f"reference: {m.arch}, {m.n_layer} layers, {m.n_head}/{m.n_kv} heads of {m.head_dim}, "
          f"loaded in {time.time() - t0:.1f} s")
    ok = True
    tok = reference_tokenizer(m)
    equal = 0
    for text in TEXTS:
        want = tok.encode(text, add_special_tokens=False).ids
        got = json.loads(dattn(args.dattn, "tokenize", "--model", args.model, "--text", text, "--no-special"))
        equal += want == got
        if want != got:
            print(f"token ids differ for {text!r}:\n  reference {want}\n  dattn     {got}")
    print(f"tokenizer: {equal}/{len(TEXTS)} texts give the same ids")
    ok &= equal == len(TEXTS)

    ids = tok.encode(PROMPT + "The ocean is", add_special_tokens=False).ids
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "logits.npy"
        dattn(args.dattn, "logits", "--model", args.model, "--ids", ",".join(map(str, ids)), "--out", str(out))
        got = np.load(out).astype(np.float64)
    want = m.logits(ids)
    rel = np.linalg.norm(got - want) / np.linalg.norm(want)
    rows = [np.linalg.norm(got[i] - want[i]) / np.linalg.norm(want[i]) for i in range(len(ids))]
    argmax = int((got.argmax(-1) == want.argmax(-1)).sum())
    print(f"logits ({len(ids)} tokens): relative L2 {rel:.3g} (worst row {max(rows):.3g}, budget {args.logits_budget}),"
          f" max |diff| {np.abs(got - want).max():.3g}, argmax equal in {argmax}/{len(ids)} rows")
    ok &= rel <= args.logits_budget

    prompt_ids = tok.encode(PROMPT, add_special_tokens=False).ids
    ref_ids = list(prompt_ids)
    for _ in range(args.new_tokens):
        ref_ids.append(int(m.logits(ref_ids)[-1].argmax()))
    ref_text = tok.decode(ref_ids[len(prompt_ids):], skip_special_tokens=False)
    got_text = dattn(args.dattn, "generate", "--model", args.model, "--prompt", PROMPT, "--greedy",
                     "--max-new-tokens", str(args.new_tokens))
    eos = m.scalar("tokenizer.ggml.eos_token_id")
    stop = [i for i, t in enumerate(ref_ids[len(prompt_ids):]) if t == eos]
    ref_visible = tok.decode(ref_ids[len(prompt_ids):len(prompt_ids) + (stop[0] if stop else args.new_tokens)])
    same = got_text.strip() == ref_visible.strip()
    print(f"greedy continuation ({args.new_tokens} tokens): {'same' if same else 'DIFFERENT'}\n"
          f"  reference: {ref_visible!r}\n  dattn:     {got_text!r}")
    ok &= same
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
