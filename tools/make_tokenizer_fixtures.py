#!/usr/bin/env python3
"""Train small tokenizers in the styles of Llama 3, Qwen2, Llama 2 and Mistral with the Hugging Face
`tokenizers` library and record what that library returns for tricky texts, so the C++ tokenizer can be
checked against it id for id.

Writes tests/fixtures/tokenizers/<name>/{tokenizer.json, tokenizer_config.json, expected.json}.
Needs: pip install tokenizers jinja2.  Deterministic: fixed seeds, training text made here.
"""
import argparse
import json
import random
from pathlib import Path

import jinja2
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# Chat templates as published with the models (tool branches dropped); rendered with jinja2 below.
LLAMA31_TEMPLATE = (
    "{{- bos_token }}\n{%- if not date_string is defined %}{%- set date_string = \"26 Jul 2024\" %}{%- endif %}\n"
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content']|trim %}"
    "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = \"\" %}{%- endif %}\n"
    "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n"
    "{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n"
    "{{- system_message }}\n{{- \"<|eot_id|>\" }}\n"
    "{%- for message in messages %}\n"
    "    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n{%- endif %}\n")
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
# Mistral v0.1 layout; a system message is put before the first user message, separated by a blank line.
MISTRAL_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}"
    "{%- set loop_messages = messages[1:] %}{%- else %}{%- set loop_messages = messages %}{%- endif %}"
    "{{ bos_token }}{% for message in loop_messages %}"
    "{% if message['role'] == 'user' %}"
    "{% if loop.first and system_message is defined %}{{ '[INST] ' + system_message + '\n\n' + message['content'] + ' [/INST]' }}"
    "{% else %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}")
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"},
     {"role": "assistant", "content": "4"}, {"role": "user", "content": "  And 3+3?  "}],
    [{"role": "user", "content": "Explain\nthis:\tcode"}, {"role": "assistant", "content": "Sure."},
     {"role": "user", "content": "Thanks — 日本語 😀"}],
]

WORDS = ("the of and to in is was for on that with as by it at from this be are have or an not which but all "
         "they were one their there been has more when will who would other into time only some could new "
         "about these two may first then do any like my now over such our man me even most made after also "
         "did many before must through back years where much your way well down should because each just "
         "those people how too little state good very make world still own see men work long get here "
         "between both life being under never day same another know while last might us great old year off "
         "come since against go came right used take three attention delta sparse dense prefill decode token "
         "model layer window sink gamma kernel tensor matrix vector Llama Mistral Qwen GPU CUDA").split()
EXTRA_LINES = [
    "I'm sure it's fine, they'll say we've done what you'd want, can't they? She's here. WE'LL SEE.",
    "naïve café résumé façade coöperate Ünïcödé straße ĳ Ångström",
    "日本語のテキストを少し書きます。東京は大きい都市です。中文的句子也在这里。",
    "emoji 😀 🎉 👍🏽 👨‍👩‍👧 ❤️ ✨ and more 😀😀",
    "numbers 0 1 12 123 1234 12345 3.14159 2,718 1e-9 0xFF 2024-06-01 +44 20 7946 0958",
    "def f(x):\n    return x ** 2  # square\n\tif x > 0:\n\t\tprint(x)\n",
    "Привет мир, это тест. Γειά σου κόσμε. مرحبا بالعالم. 안녕하세요 세계. שלום עולם.",
    "tabs\there\tand\tthere,   multiple   spaces,\n\n\nblank lines\r\nwindows line\u00a0nbsp\u2003em",
]

TEXTS = [
    "", " ", "  ", "   ", "\n", "\n\n", "\t", " \n \t ",
    "Hello world", " Hello world", "Hello world ", "Hello   world", "  leading and trailing  ",
    "line1\nline2\n\n\nline3\n", "a\r\nb\rc", "\ttab\tseparated\t\tvalues\t",
    "12345678901234567890", "3.14159 and 2,718 and 1000000", "x1y22z333w4444",
    "I'm can't won't they'll we've she'd it's", "HELLO'S WORLD'LL DON'T", "don't'", "''''",
    "naïve café résumé", "combining e\u0301 vs precomposed \u00e9", "Ünïcödé ßtraße ĳ",
    "日本語のテキストです。", "中文测试句子", "안녕하세요", "مرحبا بالعالم", "Привет, мир!",
    "emoji 😀🎉👍🏽 and family 👨‍👩‍👧", "😀", "🧑🏿‍🚀 ✨", "\u200bzero\u200dwidth\ufeff",
    "def f(x):\n    return x**2  # comment", "{\"json\": [1, 2, 3]}", "https://example.com/a?b=c&d=e",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "the the the the the", "attention attentions attentional",
    "nbsp\u00a0and\u2003em\u3000ideographic space", "▁ literal metaspace ▁▁", "<0x41> <unk> literal",
    "Ġ Ċ byte-level lookalikes", "\x00\x01 control \x7f chars",
]

LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                  "<|eot_id|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>"]
# Written with merges in the older "a b" string form (files from tokenizers < 0.20 look like this).
STRING_MERGES = {"llama2_bpe"}
QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def make_corpus(seed: int) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(3000):
        n = rng.randint(3, 16)
        words = [rng.choice(WORDS) for _ in range(n)]
        if rng.random() < 0.3:
            words[0] = words[0].capitalize()
        sentence = " ".join(words) + rng.choice([".", ".", "!", "?", ",", ":"])
        if rng.random() < 0.2:
            sentence += " " + str(rng.randint(0, 99999))
        lines.append(sentence)
    lines += EXTRA_LINES * 20
    rng.shuffle(lines)
    return lines


def texts_for(special_tokens: list[str]) -> list[str]:
    """The shared tricky texts plus ones that embed this tokenizer's special and added tokens."""
    texts = list(TEXTS)
    first, last = special_tokens[0], special_tokens[-1]
    texts += [f"{first}Hello{last}", f"text {first} in {last}the middle", f"{first}{first}", f" {last} ",
              f"partial {first[:-1]} token", f"{first}\n{last}\n"]
    return texts


def bytes_level_tokenizer(split_regex: str, normalizer, vocab_size: int, seed: int) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split_regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(make_corpus(seed), trainer=trainer)
    return tok


def make_llama3() -> tuple[Tokenizer, dict, list[str]]:
    tok = bytes_level_tokenizer(LLAMA3_SPLIT, None, 900, seed=1)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in LLAMA3_SPECIAL])
    # Non-special added tokens exercising the matching options.
    tok.add_tokens([AddedToken("<tool_call>", special=False, lstrip=True, rstrip=True, normalized=False),
                    AddedToken("dattn", special=False, single_word=True, normalized=False),
                    AddedToken("hello world", special=False, normalized=True)])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    data = json.loads(tok.to_str())
    data["model"]["ignore_merges"] = True  # as in Llama 3's tokenizer.json
    tok = Tokenizer.from_str(json.dumps(data))
    config = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "chat_template": LLAMA31_TEMPLATE,
              "model_max_length": 131072, "tokenizer_class": "PreTrainedTokenizerFast"}
    extra = ["<tool_call>", "say <tool_call>  now", "a   <tool_call>\n\nb", "dattn", "use dattn now", "xdattn dattnx dattn.",
             "hello world", "say hello world!", "hello  world"]
    return tok, config, texts_for(LLAMA3_SPECIAL) + extra


def make_qwen2() -> tuple[Tokenizer, dict, list[str]]:
    tok = bytes_level_tokenizer(QWEN2_SPLIT, normalizers.NFC(), 800, seed=2)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN_SPECIAL])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    config = {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
              "chat_template": CHATML_TEMPLATE, "add_bos_token": False}
    return tok, config, texts_for(QWEN_SPECIAL) + ["<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"]


def with_byte_fallback_vocab(tok: Tokenizer, specials: list[str]) -> Tokenizer:
    """Renumber as SentencePiece-converted Llama 2 / Mistral vocabularies are: specials, then the 256
    <0xXX> byte tokens, then the learned pieces."""
    data = json.loads(tok.to_str())
    learned = sorted(data["model"]["vocab"].items(), key=lambda kv: kv[1])
    vocab = {s: i for i, s in enumerate(specials)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for piece, _ in learned:
        if piece not in vocab:
            vocab[piece] = len(vocab)
    data["model"]["vocab"] = vocab
    data["added_tokens"] = [{"id": vocab[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                             "normalized": False, "special": True} for s in specials]
    return Tokenizer.from_str(json.dumps(data))


def metaspace_trained(vocab_size: int, seed: int, limit_alphabet: int) -> Tokenizer:
    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=limit_alphabet)
    tok.train_from_iterator(make_corpus(seed), trainer=trainer)
    return tok


def llama2_template_processing(tok: Tokenizer):
    return processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B:1",
                                         special_tokens=[("<s>", tok.token_to_id("<s>"))])


def make_llama2() -> tuple[Tokenizer, dict, list[str]]:
    tok = metaspace_trained(700, seed=3, limit_alphabet=90)
    tok = with_byte_fallback_vocab(tok, ["<unk>", "<s>", "</s>"])
    # Llama 2's tokenizer.json: the prefix and the spaces are handled by normalizers, no pre-tokenizer.
    tok.pre_tokenizer = None
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(content=" ", left=1, right=0)])
    tok.post_processor = llama2_template_processing(tok)
    config = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True,
              "add_eos_token": False, "chat_template": MISTRAL_TEMPLATE}
    return tok, config, texts_for(["<s>", "</s>"]) + ["<s>[INST] hi [/INST]", "</s><s>"]


def make_mistral() -> tuple[Tokenizer, dict, list[str]]:
    tok = metaspace_trained(800, seed=4, limit_alphabet=100)
    tok = with_byte_fallback_vocab(tok, ["<unk>", "<s>", "</s>"])
    # Newer conversions (legacy=False): Metaspace pre-tokenizer, prefix only on the text's first piece.
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False),
                                     decoders.ByteFallback(), decoders.Fuse()])
    tok.add_tokens([AddedToken("[INST]", special=False, normalized=False),
                    AddedToken("[/INST]", special=False, normalized=False)])
    tok.post_processor = llama2_template_processing(tok)
    config = {"bos_token": {"content": "<s>", "lstrip": False, "normalized": False, "rstrip": False,
                            "single_word": False, "__type": "AddedToken"},
              "eos_token": "</s>", "chat_template": MISTRAL_TEMPLATE}
    return tok, config, texts_for(["<s>", "</s>"]) + ["[INST] hi [/INST]", "<s>[INST]x[/INST] y</s>"]


def make_metaspace_unk() -> tuple[Tokenizer, dict, list[str]]:
    """No byte fallback: unknown characters become one fused <unk>; also Digits, Punctuation and Strip."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Strip(left=True, right=True), normalizers.NFKC()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.Punctuation(behavior="isolated"),
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)])
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=600, min_frequency=2, show_progress=False,
                                  special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=60)
    tok.train_from_iterator(make_corpus(5), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1",
                                                       special_tokens=[("<s>", 1), ("</s>", 2)])
    config = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    return tok, config, texts_for(["<s>", "</s>"]) + ["ＦＵＬＬＷＩＤＴＨ ① ﬁ", "Hello, world!!! (yes)."]


def render_chats(config: dict, specials: dict) -> list[dict]:
    """Expected chat strings, rendered by jinja2 from the published templates."""
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    templates = {"llama3": LLAMA3_TEMPLATE, "llama31": LLAMA31_TEMPLATE, "mistral": MISTRAL_TEMPLATE,
                 "chatml": CHATML_TEMPLATE}
    out = []
    for family, source in templates.items():
        template = env.from_string(source)
        for messages in CONVERSATIONS:
            for add_generation_prompt in (False, True):
                if family == "mistral" and add_generation_prompt:
                    continue  # the Mistral layout has no generation prompt
                text = template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                       bos_token=specials[family][0], eos_token=specials[family][1])
                out.append({"family": family, "messages": messages,
                            "add_generation_prompt": add_generation_prompt, "text": text})
    return out


def record(tok: Tokenizer, texts: list[str], seed: int) -> dict:
    cases = []
    for text in texts:
        with_special = tok.encode(text, add_special_tokens=True).ids
        without_special = tok.encode(text, add_special_tokens=False).ids
        cases.append({"text": text, "ids_with_special": with_special, "ids_without_special": without_special,
                      "decoded": tok.decode(with_special, skip_special_tokens=False),
                      "decoded_skip_special": tok.decode(with_special, skip_special_tokens=True)})
    rng = random.Random(seed)
    size = tok.get_vocab_size(with_added_tokens=True)
    decode_cases = []
    for _ in range(40):
        ids = [rng.randrange(size) for _ in range(rng.randint(1, 12))]
        for skip in (False, True):
            decode_cases.append({"ids": ids, "skip_special_tokens": skip, "text": tok.decode(ids, skip_special_tokens=skip)})
    return {"vocab_size": size, "cases": cases, "decode_cases": decode_cases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests/fixtures/tokenizers")
    args = parser.parse_args()
    builders = {"llama3_bpe": make_llama3, "qwen2_bpe": make_qwen2, "llama2_bpe": make_llama2,
                "mistral_bpe": make_mistral, "metaspace_unk": make_metaspace_unk}
    specials = {"llama3": ("<|begin_of_text|>", "<|eot_id|>"), "llama31": ("<|begin_of_text|>", "<|eot_id|>"),
                "mistral": ("<s>", "</s>"), "chatml": ("", "<|im_end|>")}
    for index, (name, build) in enumerate(builders.items()):
        tok, config, texts = build()
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        data = json.loads(tok.to_str())
        if name in STRING_MERGES:
            data["model"]["merges"] = [f"{a} {b}" for a, b in data["model"]["merges"]]
        (folder / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        expected = record(tok, texts, seed=100 + index)
        if name == "llama3_bpe":
            expected["chats"] = render_chats(config, specials)
        (folder / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        sizes = {p.name: p.stat().st_size for p in folder.iterdir()}
        print(f"{name}: vocab {expected['vocab_size']}, {len(texts)} texts, bytes {sizes}")


if __name__ == "__main__":
    main()
