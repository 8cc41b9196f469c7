"""Train the embedded model's tokenizer: byte-level BPE in the Llama 3 style (the Llama 3 split regex,
ByteLevel without regex, BOS added by the post-processor, ignore_merges) with a small vocabulary, on the
project's own text (data/haystack, data/words and generated needle documents).

    python tools/train/make_tokenizer.py --out DIR [--vocab 2048]

Writes DIR/tokenizer.json and DIR/tokenizer_config.json. Deterministic for a given corpus.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data  # noqa: E402

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"


def build(vocab: int, seed: int = 0) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab - 2, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(data.corpus_for_tokenizer(seed), trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in (BOS, EOS)])
    bos = tok.token_to_id(BOS)
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B:1", special_tokens=[(BOS, bos)])])
    d = json.loads(tok.to_str())
    d["model"]["ignore_merges"] = True  # as in Llama 3's tokenizer.json
    return Tokenizer.from_str(json.dumps(d))


def save(tok: Tokenizer, out: Path, model_max_length: int = 16384) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenizer.json").write_text(tok.to_str(), encoding="utf-8")
    config = {"bos_token": BOS, "eos_token": EOS, "pad_token": EOS, "add_bos_token": True, "add_eos_token": False,
              "clean_up_tokenization_spaces": False, "model_max_length": model_max_length,
              "tokenizer_class": "PreTrainedTokenizerFast"}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--vocab", type=int, default=2048, help="vocabulary size, the 2 special tokens included")
    ap.add_argument("--seed", type=int, default=0, help="seed of the generated needle documents in the corpus")
    args = ap.parse_args()
    tok = build(args.vocab, args.seed)
    save(tok, args.out)
    sample = "The special magic number for wise-river is: 7271829."
    enc = tok.encode(sample)
    print(f"vocab {tok.get_vocab_size()} -> {args.out}; bos {tok.token_to_id(BOS)} eos {tok.token_to_id(EOS)}")
    print(f"{sample!r}: {len(enc.ids)} tokens {enc.tokens}")


if __name__ == "__main__":
    main()
