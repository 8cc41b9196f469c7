"""Checks of an exported model against the C++ runtime (used by smoke_test.sh).

    python check_export.py logits   --model DIR --dattn BIN            # dattn logits == transformers (rel L2)
    python check_export.py tokenize --model DIR --dattn BIN            # dattn tokenize == tokenizers
    python check_export.py ruler    --model DIR --results results.json # data.py's niah prompts == dattn eval ruler's
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data  # noqa: E402

from tokenizers import Tokenizer  # noqa: E402


def check_logits(args) -> bool:
    import torch
    from transformers import AutoModelForCausalLM
    tok = Tokenizer.from_file(str(args.model / "tokenizer.json"))
    b = data.build_niah(data.NIAH_CONFIGS["niah_single_2"], 99, 120, data.Haystack.builtin())
    ids = tok.encode(b.input + data.answer_text(b)).ids[: args.tokens]
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0].float().numpy()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "L.npy"
        subprocess.run([str(args.dattn), "logits", "--model", str(args.model), "--ids", ",".join(map(str, ids)),
                        "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
        got = np.load(out)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    rel = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))
    same_argmax = float((got.argmax(-1) == ref.argmax(-1)).mean())
    ok = rel < 1e-4
    print(f"logits: {len(ids)} tokens, relative L2 (dattn vs transformers fp32) = {rel:.3e}, "
          f"argmax agreement {100 * same_argmax:.1f}% -> {'OK' if ok else 'FAIL'}")
    return ok


def check_tokenize(args) -> bool:
    tok = Tokenizer.from_file(str(args.model / "tokenizer.json"))
    b = data.build_niah(data.NIAH_CONFIGS["niah_multikey_3"], 5, 12, data.Haystack.builtin())
    texts = ["Hello world 1234567 wise-river's <|end_of_text|> done.", "  spaces\n\nand\ttabs  ",
             "caf\u00e9 na\u00efve \u65e5\u672c \U0001F600 ok", b.input + data.answer_text(b)]
    ok = True
    for t in texts:
        got = json.loads(subprocess.run([str(args.dattn), "tokenize", "--model", str(args.model), "--text", t],
                                        check=True, capture_output=True, text=True).stdout)
        want = tok.encode(t).ids
        ok &= got == want
        print(f"tokenize: {len(want):4d} ids {'OK' if got == want else 'FAIL'}  {t[:40]!r}")
    return ok


def check_ruler(args) -> bool:
    tok = Tokenizer.from_file(str(args.model / "tokenizer.json"))
    count = lambda text: len(tok.encode(text, add_special_tokens=True).ids)  # noqa: E731
    res = json.loads(args.results.read_text())
    seed = int(res["run"]["seed"])
    ok, seen = True, set()
    for s in res["samples"]:
        key = (s["task"], s["sample"], s["length"])
        if key in seen or s["task"] not in data.NIAH_CONFIGS:
            continue
        seen.add(key)
        built, tokens = data.generate_ruler_sample(s["task"], s["sample"], s["length"], seed, count)
        same = built.outputs == s["references"] and tokens == s["prompt_tokens"]
        ok &= same
        print(f"ruler prompt: {s['task']:16s} #{s['sample']} @{s['length']}: python {tokens} tokens {built.outputs} "
              f"| dattn {s['prompt_tokens']} tokens {s['references']} -> {'OK' if same else 'FAIL'}")
    return ok and bool(seen)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["logits", "tokenize", "ruler"])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--dattn", type=Path, default=Path("build/src/cli/dattn"))
    ap.add_argument("--results", type=Path)
    ap.add_argument("--tokens", type=int, default=200)
    args = ap.parse_args()
    ok = {"logits": check_logits, "tokenize": check_tokenize, "ruler": check_ruler}[args.what](args)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
