#!/usr/bin/env python3
"""Writes the tiny model fixtures under tests/fixtures/models/ that the C++ model tests compare against.

Each fixture is a randomly initialised Hugging Face causal LM saved with save_pretrained, plus
expected.json (the id sequences) and logits_<i>.npy: float32 logits of every position, computed by
transformers in float32 with eager attention. The set covers every architecture and config style the
runtime supports: Llama (llama3 and linear rope scaling, tied and untied, 2 safetensors shards),
Mistral (bf16 weights), Qwen2 (q/k/v bias; yarn rope scaling), Qwen3 (q/k RMSNorm, explicit head_dim, fp16 weights),
GQA and odd sizes, rope config written both as transformers 5.x does (rope_parameters) and as 4.x did
(rope_theta + rope_scaling).

Needs: torch, transformers, safetensors, numpy. Usage: python tools/make_fixtures.py [--out DIR]
"""
import argparse
import json
import math
import shutil
from pathlib import Path

import numpy as np
import torch
import transformers

ROOT = Path(__file__).resolve().parent.parent
TOKENIZERS = ROOT / "tests" / "fixtures" / "tokenizers"

# Sequence lengths of the recorded logits: short, and long enough for several prefill chunks.
SEQUENCE_LENGTHS = (9, 40)


def tokenizer_vocab(name):
    """Size of the tokenizer fixture's id space (base vocab and added tokens) and its eos id."""
    tok = json.loads((TOKENIZERS / name / "tokenizer.json").read_text())
    ids = list(tok["model"]["vocab"].values()) + [a["id"] for a in tok.get("added_tokens", [])]
    cfg = json.loads((TOKENIZERS / name / "tokenizer_config.json").read_text())
    eos = cfg.get("eos_token")
    if isinstance(eos, dict):
        eos = eos["content"]
    eos_id = next(a["id"] for a in tok["added_tokens"] if a["content"] == eos)
    return max(ids) + 1, eos_id


def randomize(model, seed):
    """Replaces the tiny init std with weights that give peaked attention and varied logits."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))


def to_legacy_rope(config_path):
    """Rewrites rope_parameters (5.x) as rope_theta + rope_scaling, the way 4.x checkpoints store it."""
    cfg = json.loads(config_path.read_text())
    params = dict(cfg.pop("rope_parameters"))
    cfg["rope_theta"] = params.pop("rope_theta")
    cfg["rope_scaling"] = None if params.get("rope_type", "default") == "default" else params
    config_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def logits_of(model, ids):
    with torch.no_grad():
        out = model(torch.tensor([ids], dtype=torch.long), use_cache=False)
    return out.logits[0].to(torch.float32).numpy()


def make(out_root, only, name, model_cls, config, *, seed, dtype=torch.float32, shard_size=None, legacy_rope=False,
         tokenizer=None):
    if only and name not in only:
        return
    torch.manual_seed(seed)
    config._attn_implementation = "eager"
    model = model_cls(config).eval()
    randomize(model, seed)
    model = model.to(dtype)

    out = out_root / name
    if out.exists():
        shutil.rmtree(out)
    kwargs = {"max_shard_size": shard_size} if shard_size else {}
    model.save_pretrained(out, **kwargs)
    if legacy_rope:
        to_legacy_rope(out / "config.json")
    if tokenizer:
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(TOKENIZERS / tokenizer / f, out / f)

    # The reference is the checkpoint as written, reloaded in float32 (bf16/fp16 weights widened exactly).
    reloaded = model_cls.from_pretrained(out, dtype=torch.float32, attn_implementation="eager").eval()
    gen = np.random.default_rng(seed)
    if dtype == torch.float32:
        # the rewritten (legacy) config must describe the same model as the one saved
        probe = [int(t) for t in gen.integers(0, config.vocab_size, size=SEQUENCE_LENGTHS[-1])]
        np.testing.assert_allclose(logits_of(reloaded, probe), logits_of(model, probe), rtol=1e-5, atol=1e-5)
    cases = []
    for i, n in enumerate(SEQUENCE_LENGTHS):
        ids = [int(t) for t in gen.integers(0, config.vocab_size, size=n)]
        logits = logits_of(reloaded, ids)
        np.save(out / f"logits_{i}.npy", logits.astype(np.float32))
        cases.append({"ids": ids, "logits": f"logits_{i}.npy"})
    expected = {
        "architecture": config.architectures[0] if config.architectures else model_cls.__name__,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "cases": cases,
    }
    (out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"{name}: {size / 1024:.0f} KiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "models")
    parser.add_argument("--only", nargs="*", default=[], help="fixture names to (re)write; default all")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    T = transformers

    llama3_vocab, llama3_eos = tokenizer_vocab("llama3_bpe")
    make(args.out, args.only, "llama3_tied_sharded", T.LlamaForCausalLM,
         T.LlamaConfig(vocab_size=llama3_vocab, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                       max_position_embeddings=256, eos_token_id=llama3_eos, bos_token_id=llama3_vocab - 10,
                       rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                        "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                        "original_max_position_embeddings": 64},
                       architectures=["LlamaForCausalLM"]),
         seed=1, shard_size="300KB", legacy_rope=True, tokenizer="llama3_bpe")

    make(args.out, args.only, "llama_linear_untied", T.LlamaForCausalLM,
         T.LlamaConfig(vocab_size=256, hidden_size=72, intermediate_size=100, num_hidden_layers=2,
                       num_attention_heads=6, num_key_value_heads=2, tie_word_embeddings=False,
                       rms_norm_eps=1e-5, eos_token_id=[1, 2],
                       rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0},
                       architectures=["LlamaForCausalLM"]),
         seed=2)

    mistral_vocab, mistral_eos = tokenizer_vocab("mistral_bpe")
    make(args.out, args.only, "mistral_bf16", T.MistralForCausalLM,
         T.MistralConfig(vocab_size=mistral_vocab, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=1, sliding_window=None,
                         eos_token_id=mistral_eos, bos_token_id=1, architectures=["MistralForCausalLM"]),
         seed=3, dtype=torch.bfloat16, tokenizer="mistral_bpe")

    qwen2_vocab, qwen2_eos = tokenizer_vocab("qwen2_bpe")
    make(args.out, args.only, "qwen2_bias_tied", T.Qwen2ForCausalLM,
         T.Qwen2Config(vocab_size=qwen2_vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                       eos_token_id=qwen2_eos, bos_token_id=None, architectures=["Qwen2ForCausalLM"]),
         seed=4, legacy_rope=True, tokenizer="qwen2_bpe")

    make(args.out, args.only, "qwen3_qknorm_fp16", T.Qwen3ForCausalLM,
         T.Qwen3Config(vocab_size=200, hidden_size=64, intermediate_size=88, num_hidden_layers=3,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=24, tie_word_embeddings=False,
                       rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
                       architectures=["Qwen3ForCausalLM"]),
         seed=5, dtype=torch.float16)

    make(args.out, args.only, "qwen2_yarn", T.Qwen2ForCausalLM,
         T.Qwen2Config(vocab_size=160, hidden_size=64, intermediate_size=72, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                       max_position_embeddings=256,
                       rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                                        "original_max_position_embeddings": 64},
                       architectures=["Qwen2ForCausalLM"]),
         seed=6, legacy_rope=True)


if __name__ == "__main__":
    main()
