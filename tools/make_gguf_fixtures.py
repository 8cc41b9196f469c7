#!/usr/bin/env python3
"""Writes the GGUF fixtures under tests/fixtures/gguf/ with the `gguf` package (llama.cpp's gguf-py).

- dequant.gguf: for every ggml type dattn reads, a tensor `q.<TYPE>` of 2 x 256 elements (quantized
  from random values with gguf.quants.quantize where gguf-py can quantize the type, random blocks with
  finite scales otherwise) and `expected.<TYPE>`, its fp32 dequantization by gguf.quants.dequantize.
- <fixture>.<TYPE>.gguf: a model fixture of tests/fixtures/models converted as llama.cpp's
  convert_hf_to_gguf.py writes it (metadata keys, tokenizer.ggml.*, llama q/k row permutation, llama3
  rope scaling as the rope_freqs tensor), its 2-D weights stored as TYPE where their rows are whole
  blocks and as F16 otherwise (llama.cpp's fallback), 1-D weights as F32.

Needs: gguf, numpy (pip install gguf numpy). Usage: python tools/make_gguf_fixtures.py
"""
import json
import math
import struct
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "tests" / "fixtures" / "models"
OUT = ROOT / "tests" / "fixtures" / "gguf"

# (fixture, weight type): F32 and the fixtures' own fp16/bf16 types are lossless.
MODEL_FIXTURES = [
    ("llama3_tied_sharded", Q.F32),
    ("llama3_tied_sharded", Q.Q4_1),
    ("qwen2_bias_tied", Q.Q8_0),
    ("qwen2_yarn", Q.Q4_0),
    ("qwen3_qknorm_fp16", Q.F16),
    ("mistral_bf16", Q.BF16),
]
QUANTIZABLE = {Q.F32, Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0}
DEQUANT_TYPES = [Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K,
                 Q.Q6_K]
# byte offsets of the f16 scale fields in a K-quant block (d, and dmin where present)
K_SCALE_FIELDS = {Q.Q2_K: (80, 82), Q.Q3_K: (108,), Q.Q4_K: (0, 2), Q.Q5_K: (0, 2), Q.Q6_K: (208,)}


def write_dequant(rng):
    w = gguf.GGUFWriter(str(OUT / "dequant.gguf"), "dequant-test")
    for qtype in DEQUANT_TYPES:
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        rows, cols = 2, 256
        if qtype in QUANTIZABLE:
            values = rng.standard_normal((rows, cols)).astype(np.float32)
            raw = gguf.quants.quantize(values, qtype)
        else:
            raw = rng.integers(0, 256, size=(rows, cols // block * size), dtype=np.uint8)
            blocks = raw.reshape(-1, size)
            for off in K_SCALE_FIELDS[qtype]:
                scale = rng.uniform(0.001, 0.05, size=len(blocks)).astype(np.float16)
                blocks[:, off:off + 2] = scale.view(np.uint8).reshape(-1, 2)
        expected = gguf.quants.dequantize(raw, qtype).astype(np.float32)
        assert expected.shape == (rows, cols) and np.isfinite(expected).all()
        w.add_tensor(f"q.{qtype.name}", raw, raw_dtype=qtype)
        w.add_tensor(f"expected.{qtype.name}", expected)
    finish(w)


def finish(w):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def read_safetensors(directory):
    """All tensors of a fixture as float32 numpy arrays (bf16 and f16 widened)."""
    index = directory / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() else ["model.safetensors"]
    out = {}
    for name in files:
        data = (directory / name).read_bytes()
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + n])
        for key, info in header.items():
            if key == "__metadata__":
                continue
            b, e = info["data_offsets"]
            raw = data[8 + n + b:8 + n + e]
            if info["dtype"] == "BF16":
                arr = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                arr = np.frombuffer(raw, {"F32": np.float32, "F16": np.float16}[info["dtype"]]).astype(np.float32)
            out[key] = arr.reshape(info["shape"])
    return out


def permute(w, n_head, n_head_kv):
    """convert_hf_to_gguf.py LlamaModel.permute: q/k rows in llama.cpp's rotary order."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


LAYER_NAMES = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm", "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
}


def gguf_name(hf):
    fixed = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    if hf in fixed:
        return fixed[hf]
    parts = hf.split(".")
    layer, rest, kind = parts[2], ".".join(parts[3:-1]), parts[-1]
    return f"blk.{layer}.{LAYER_NAMES[rest]}.{kind}"


def add_tokenizer(w, directory, arch_spm):
    tok = json.loads((directory / "tokenizer.json").read_text())
    cfg = json.loads((directory / "tokenizer_config.json").read_text())
    vocab = tok["model"]["vocab"]
    added = {a["id"]: a for a in tok.get("added_tokens", [])}
    size = max(list(vocab.values()) + list(added)) + 1
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [gguf.TokenType.UNUSED] * size
    for text, i in vocab.items():
        tokens[i] = text
        types[i] = gguf.TokenType.NORMAL
        if arch_spm and len(text) == 6 and text.startswith("<0x") and text.endswith(">"):
            types[i] = gguf.TokenType.BYTE
    for i, a in added.items():
        tokens[i] = a["content"]
        types[i] = gguf.TokenType.CONTROL if a["special"] else gguf.TokenType.USER_DEFINED
    unk = tok["model"].get("unk_token")
    if unk is not None and unk in vocab:
        types[vocab[unk]] = gguf.TokenType.UNKNOWN
    w.add_token_list(tokens)
    w.add_token_types(types)

    def token_id(field):
        v = cfg.get(field)
        if isinstance(v, dict):
            v = v["content"]
        return None if v is None else tokens.index(v)

    if arch_spm:
        w.add_tokenizer_model("llama")
        w.add_tokenizer_pre("default")
        # SentencePiece scores: a piece made by an earlier merge scores higher
        rank = {}
        for r, m in enumerate(tok["model"]["merges"]):
            a, b = m.split(" ", 1) if isinstance(m, str) else m
            rank.setdefault(a + b, r)
        w.add_token_scores([-float(rank.get(t, -1) + 1) if types[i] == gguf.TokenType.NORMAL else 0.0
                            for i, t in enumerate(tokens)])
        if unk is not None:
            w.add_unk_token_id(vocab[unk])
    else:
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("qwen2" if "qwen" in directory.name else "llama-bpe")
        w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]])
    bos, eos = token_id("bos_token"), token_id("eos_token")
    if bos is not None:
        w.add_bos_token_id(bos)
    if eos is not None:
        w.add_eos_token_id(eos)
    adds_bos = bool(tok.get("post_processor")) and "<s>" in json.dumps(tok["post_processor"]) or \
        "begin_of_text" in json.dumps(tok.get("post_processor"))
    w.add_add_bos_token(adds_bos)
    if isinstance(cfg.get("chat_template"), str):
        w.add_chat_template(cfg["chat_template"])


def write_model(name, qtype):
    directory = MODELS / name
    cfg = json.loads((directory / "config.json").read_text())
    arch = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2",
            "Qwen3ForCausalLM": "qwen3"}[cfg["architectures"][0]]
    n_head, n_kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // n_head
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    theta = cfg.get("rope_theta") or rope.get("rope_theta", 10000.0)
    w = gguf.GGUFWriter(str(OUT / f"{name}.{qtype.name}.gguf"), arch)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(theta)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_vocab_size(cfg["vocab_size"])
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(rope["factor"])
    elif rope_type == "yarn":
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(rope["factor"])
        w.add_rope_scaling_orig_ctx_len(rope["original_max_position_embeddings"])
    elif rope_type == "llama3":
        # convert_hf_to_gguf.py LlamaModel.generate_extra_tensors
        factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
        old = rope["original_max_position_embeddings"]
        freqs = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
        factors = []
        for f in freqs:
            wavelen = 2 * math.pi / f
            if wavelen < old / high:
                factors.append(1)
            elif wavelen > old / low:
                factors.append(factor)
            else:
                smooth = (old / wavelen - low) / (high - low)
                factors.append(1 / ((1 - smooth) / factor + smooth))
        w.add_tensor("rope_freqs.weight", np.array(factors, dtype=np.float32))
    if (directory / "tokenizer.json").exists():
        add_tokenizer(w, directory, arch_spm=name.startswith("mistral"))
    for hf, data in sorted(read_safetensors(directory).items()):
        if arch == "llama" and hf.endswith(("q_proj.weight", "q_proj.bias")):
            data = permute(data, n_head, n_head)
        if arch == "llama" and hf.endswith(("k_proj.weight", "k_proj.bias")):
            data = permute(data, n_head, n_kv)
        block = gguf.GGML_QUANT_SIZES[qtype][0]
        if data.ndim == 1:
            w.add_tensor(gguf_name(hf), data.astype(np.float32))
        elif data.shape[-1] % block == 0 and qtype != Q.F32:
            w.add_tensor(gguf_name(hf), gguf.quants.quantize(data, qtype), raw_dtype=qtype)
        elif qtype == Q.F32:
            w.add_tensor(gguf_name(hf), data.astype(np.float32))
        else:
            w.add_tensor(gguf_name(hf), data.astype(np.float16))
    finish(w)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    write_dequant(np.random.default_rng(13))
    for name, qtype in MODEL_FIXTURES:
        write_model(name, qtype)
    total = sum(p.stat().st_size for p in OUT.glob("*.gguf"))
    print(f"wrote {len(MODEL_FIXTURES) + 1} files, {total} bytes")


if __name__ == "__main__":
    main()
