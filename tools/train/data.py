"""Training data for the embedded model: natural KJV text windows and RULER-style needle retrieval.

The needle documents are produced by a Python port of `src/eval/ruler_niah.cpp` (its SplitMix64
generator, seed mixing, haystack, sentence splitter, RULER depths, needle formats and template) and of
`fit_to_budget` in `src/eval/ruler_tasks.cpp`, so `generate_ruler_sample(task, i, length, seed, counter)`
returns the same prompt and answers as `dattn eval ruler` for the niah_* tasks (checked by
`smoke_test.sh` against the references in `dattn eval ruler`'s results.json). Training draws its own
seeds, so training documents are never the evaluation's samples.

`TrainStream` yields batches (ids, loss weights) for a context length that grows with training progress
(curriculum), deterministic per seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
HAYSTACK_FILE = ROOT / "data" / "haystack" / "kjv_narrative.txt"
WORDS_DIR = ROOT / "data" / "words"
MASK64 = (1 << 64) - 1

# ---------------------------------------------------------------------------------------------------
# src/eval/rng.cpp


class Rng:
    """SplitMix64, as dattn::eval::DeterministicRng."""

    def __init__(self, seed: int):
        self.state = seed & MASK64

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        assert n > 0
        limit = MASK64 - MASK64 % n
        while True:
            x = self.next_u64()
            if x < limit:
                return x % n

    def between(self, lo: int, hi: int) -> int:
        return lo + self.below(hi - lo + 1)

    def shuffle(self, items: list) -> None:
        for i in range(len(items), 1, -1):
            j = self.below(i)
            items[i - 1], items[j] = items[j], items[i - 1]

    def sample_indices(self, n: int, k: int) -> list[int]:
        assert 0 <= k <= n
        picked: list[int] = []
        if k * 4 >= n:
            allv = list(range(n))
            for i in range(k):
                j = i + self.below(n - i)
                allv[i], allv[j] = allv[j], allv[i]
                picked.append(allv[i])
            return picked
        seen: set[int] = set()
        while len(picked) < k:
            v = self.below(n)
            if v not in seen:
                seen.add(v)
                picked.append(v)
        return picked


def mix_seed(*parts: int) -> int:
    mixer = Rng(0x5EED)
    h = 0
    for p in parts:
        r = Rng(h ^ (p & MASK64))
        h = r.next_u64() ^ mixer.next_u64()
    return h


# ---------------------------------------------------------------------------------------------------
# src/eval/haystack.cpp, word_lists.cpp

_SPACE = " \t\n\r\v\f"


class Haystack:
    def __init__(self, text: str):
        self.paragraphs: list[list[str]] = []
        for line in text.split("\n"):
            words = [w for w in _split_ws(line)]
            if words:
                self.paragraphs.append(words)
        self.total_words = sum(len(p) for p in self.paragraphs)
        self._passes: list[list[str]] = []  # words of each pass, in order

    @staticmethod
    def builtin() -> "Haystack":
        global _BUILTIN
        if _BUILTIN is None:
            _BUILTIN = Haystack(HAYSTACK_FILE.read_text(encoding="utf-8"))
        return _BUILTIN

    def _pass_words(self, p: int) -> list[str]:
        while len(self._passes) <= p:
            q = len(self._passes)
            order = list(range(len(self.paragraphs)))
            if q > 0:
                Rng(mix_seed(0x4A757374, q)).shuffle(order)
            self._passes.append([w for i in order for w in self.paragraphs[i]])
        return self._passes[p]

    def first_words(self, n: int) -> str:
        out: list[str] = []
        p = 0
        while n > 0:
            words = self._pass_words(p)
            take = min(n, len(words))
            out.extend(words[:take])
            n -= take
            p += 1
        return " ".join(out)


_BUILTIN: Haystack | None = None


def _split_ws(s: str) -> list[str]:
    # C++ is_space: ' ', \t, \n, \r, \v, \f only (not Python's full Unicode whitespace set)
    out, i, n = [], 0, len(s)
    while i < n:
        while i < n and s[i] in _SPACE:
            i += 1
        b = i
        while i < n and s[i] not in _SPACE:
            i += 1
        if i > b:
            out.append(s[b:i])
    return out


def split_sentences(text: str) -> list[str]:
    sentences: list[str] = []
    n = len(text)
    begin = 0
    while begin < n and text[begin] in _SPACE:
        begin += 1
    i = begin
    while i < n:
        c = text[i]
        if c not in ".!?":
            i += 1
            continue
        end = i + 1
        while end < n and text[end] in "\"')]":
            end += 1
        if end < n and text[end] not in _SPACE:
            i += 1
            continue
        sentences.append(text[begin:end])
        begin = end
        while begin < n and text[begin] in _SPACE:
            begin += 1
        i = (0 if begin == 0 else begin - 1) + 1
    if begin < n:
        end = n
        while end > begin and text[end - 1] in _SPACE:
            end -= 1
        sentences.append(text[begin:end])
    return sentences


_WORDS: dict[str, list[str]] = {}


def word_list(name: str) -> list[str]:
    """'nouns', 'adjectives', 'verbs' (sorted, unique) or 'common' (their sorted union)."""
    if name not in _WORDS:
        if name == "common":
            _WORDS[name] = sorted(set(word_list("nouns")) | set(word_list("adjectives")) | set(word_list("verbs")))
        else:
            words: set[str] = set()
            for line in (WORDS_DIR / f"{name}.txt").read_text(encoding="utf-8").split("\n"):
                words.update(w for w in line.replace("\t", " ").replace("\r", " ").split(" ") if w)
            _WORDS[name] = sorted(words)
    return _WORDS[name]


# ---------------------------------------------------------------------------------------------------
# src/eval/ruler_niah.cpp

NOISE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
TEMPLATE = ("Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. "
            "I will quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic "
            "{type_needle_v} for {query} mentioned in the provided text? The special magic {type_needle_v} for "
            "{query} mentioned in the provided text are")
DEPTHS = [int(round(i * 100.0 / 39.0)) for i in range(40)]  # np.round (ties to even) never hits a .5 here


@dataclass(frozen=True)
class NiahConfig:
    haystack: str = "essay"  # essay | repeat | needle
    key_type: str = "words"
    value_type: str = "numbers"
    num_keys: int = 1
    num_values: int = 1
    num_queries: int = 1


TASKS = ["niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_1", "niah_multikey_2",
         "niah_multikey_3", "niah_multivalue", "niah_multiquery", "vt", "cwe", "fwe"]  # enum order
NIAH_CONFIGS = {
    "niah_single_1": NiahConfig(haystack="repeat"),
    "niah_single_2": NiahConfig(),
    "niah_single_3": NiahConfig(value_type="uuids"),
    "niah_multikey_1": NiahConfig(num_keys=4),
    "niah_multikey_2": NiahConfig(haystack="needle"),
    "niah_multikey_3": NiahConfig(haystack="needle", key_type="uuids", value_type="uuids"),
    "niah_multivalue": NiahConfig(num_values=4),
    "niah_multiquery": NiahConfig(num_queries=4),
}


def random_needle(kind: str, rng: Rng) -> str:
    if kind == "numbers":
        return str(rng.between(1000000, 9999999))
    if kind == "words":
        adjs, nouns = word_list("adjectives"), word_list("nouns")
        i = rng.below(len(adjs) * len(nouns))
        return adjs[i // len(nouns)] + "-" + nouns[i % len(nouns)]
    hi, lo = rng.next_u64(), rng.next_u64()
    hi = (hi & ~0xF000 & MASK64) | 0x4000
    lo = (lo & 0x3FFFFFFFFFFFFFFF) | 0x8000000000000000
    return f"{hi >> 32:08x}-{(hi >> 16) & 0xFFFF:04x}-{hi & 0xFFFF:04x}-{lo >> 48:04x}-{lo & 0xFFFFFFFFFFFF:012x}"


def _replace_all(text: str, old: str, new: str) -> str:
    return text.replace(old, new)  # C++ replace_all resumes after the replacement, as str.replace does


@dataclass
class Built:
    input: str
    outputs: list[str]
    answer_order: list[str]  # the answers in the order they appear in the context (training targets)


def build_niah(config: NiahConfig, seed: int, size: int, haystack: Haystack) -> Built:
    rng = Rng(seed)
    num_keys = max(config.num_keys, config.num_queries)
    type_v = config.value_type
    keys, values, needles = [], [], []
    for _ in range(num_keys):
        keys.append(random_needle(config.key_type, rng))
        values.append([])
        for _ in range(config.num_values):
            values[-1].append(random_needle(config.value_type, rng))
            needles.append(f"One of the special magic {type_v} for {keys[-1]} is: {values[-1][-1]}.")
    rng.shuffle(needles)

    if config.haystack == "essay":
        sentences = split_sentences(haystack.first_words(size))
        positions = [int(len(sentences) * (DEPTHS[pick] / 100.0))
                     for pick in rng.sample_indices(len(DEPTHS), len(needles))]
        positions.sort()
        positions = [0] + positions + [len(sentences)]
        pieces = []
        for i in range(1, len(positions)):
            pieces.append(" ".join(sentences[positions[i - 1]:positions[i]]))
            if i - 1 < len(needles):
                pieces.append(needles[i - 1])
        context = " ".join(pieces)
    else:
        lines = []
        for _ in range(size):
            if config.haystack == "repeat":
                lines.append(NOISE)
            else:
                k = random_needle(config.key_type, rng)
                lines.append(f"One of the special magic {type_v} for {k} is: {random_needle(config.value_type, rng)}.")
        idx = sorted(rng.sample_indices(size, len(needles)), reverse=True)
        for i, at in enumerate(idx):
            lines.insert(at, needles[i])
        context = "\n".join(lines)

    outputs, queries = [], []
    for i in rng.sample_indices(num_keys, config.num_queries):
        queries.append(keys[i])
        outputs.extend(values[i])
    query = queries[-1]
    if len(queries) > 1:
        query = ", ".join(queries[:-1]) + ", and " + query
    templ, type_shown = TEMPLATE, type_v
    if config.num_queries * config.num_values == 1:  # RULER's singular wording
        for a, b in (("Some", "A"), ("are all", "is"), ("are", "is"), ("answers", "answer")):
            templ = _replace_all(templ, a, b)
        type_shown = type_v[:-1]
    templ = templ.replace("{type_needle_v}", type_shown).replace("{query}", query)
    at = templ.find("{context}")
    text = templ[:at] + context + templ[at + 9:]
    order = sorted(outputs, key=lambda v: context.find(v))
    return Built(text, outputs, order)


def niah_min_size(config: NiahConfig) -> int:
    return 0 if config.haystack == "essay" else max(config.num_keys, config.num_queries) * config.num_values


def fit_to_budget(build: Callable[[int], Built], count: Callable[[str], int], budget: int, min_size: int,
                  max_size: int = 2**62) -> tuple[Built, int, int]:
    """Port of detail::fit_to_budget: the largest size whose prompt has at most `budget` tokens."""
    def measure(size):
        b = build(size)
        return b, size, count(b.input)

    best = measure(min_size)
    if best[2] > budget:
        raise ValueError(f"the smallest sample has {best[2]} tokens, more than the budget {budget}")
    hi, hi_tokens, step = -1, 0, 0
    while True:
        lo = best[1]
        if lo >= max_size or (hi >= 0 and hi - lo <= 1):
            break
        if hi < 0:
            rate = best[2] / best[1] if best[1] > 0 else 1.0
            guess = lo + max(1, int((budget - best[2]) / max(rate, 1e-3)))
            guess = max(guess, lo + 1)
            if step > 3:
                guess = max(guess, lo * 2)
            guess = min(guess, max_size)
        elif step % 2 == 0 and hi_tokens > best[2]:
            guess = lo + int((hi - lo) * (budget - best[2]) / (hi_tokens - best[2]))
            guess = min(max(guess, lo + 1), hi - 1)
        else:
            guess = lo + (hi - lo) // 2
        f = measure(guess)
        if f[2] <= budget:
            best = f
        else:
            hi, hi_tokens = guess, f[2]
        step += 1
    return best


def ruler_seed(task: str, index: int, length: int, seed: int) -> int:
    return mix_seed(seed, TASKS.index(task), index, length)


def generate_ruler_sample(task: str, index: int, length: int, seed: int, count: Callable[[str], int],
                          haystack: Haystack | None = None) -> tuple[Built, int]:
    """The prompt `dattn eval ruler --seed seed` generates for a niah_* task (prompt tokens, BOS included,
    + 128 tokens to generate <= length). Returns (sample, prompt tokens)."""
    config = NIAH_CONFIGS[task]
    hs = haystack or Haystack.builtin()
    s = ruler_seed(task, index, length, seed)
    built, _, tokens = fit_to_budget(lambda n: build_niah(config, s, n, hs), count, length - 128, niah_min_size(config))
    return built, tokens


def answer_text(built: Built) -> str:
    """What the model is trained to say after the prompt (the prompt ends with 'is' / 'are')."""
    vals = built.answer_order
    if len(vals) == 1:
        return " " + vals[0] + "."
    return " " + ", ".join(vals[:-1]) + ", and " + vals[-1] + "."


# ---------------------------------------------------------------------------------------------------
# training stream


def text_corpus_samples(n: int, seed: int = 0) -> list[str]:
    """Short retrieval documents of every niah task (no tokenizer needed), for tokenizer training."""
    hs = Haystack.builtin()
    out = []
    rng = Rng(seed)
    names = list(NIAH_CONFIGS)
    for i in range(n):
        task = names[i % len(names)]
        cfg = NIAH_CONFIGS[task]
        size = max(niah_min_size(cfg), 20 + rng.below(300)) if cfg.haystack != "essay" else 50 + rng.below(600)
        if cfg.haystack == "repeat":
            size = 3 + rng.below(10)
        b = build_niah(cfg, mix_seed(seed, 7, i), size, hs)
        out.append(b.input + answer_text(b))
    return out


@dataclass
class StreamConfig:
    seed: int = 0
    tokens_per_step: int = 65536
    min_len: int = 512
    max_len: int = 16384
    curriculum_frac: float = 0.6  # fraction of training over which the length cap grows min -> max
    retrieval_frac: float = 0.6   # fraction of documents that are retrieval documents
    answer_weight: float = 5.0    # loss weight of the answer tokens (and the end token after them)
    task_weights: dict | None = None  # niah task -> sampling weight


class TrainStream:
    """Deterministic batches: for step s and progress p in [0, 1], `batch(s, p)` returns
    (ids int64 [B, L], weights float32 [B, L]) where weights[b, t] weighs the prediction of ids[b, t]
    from ids[b, :t] (weight 0 at t = 0 and on padding)."""

    def __init__(self, tokenizer, cfg: StreamConfig):
        self.tok = tokenizer
        self.cfg = cfg
        self.bos = tokenizer.token_to_id("<|begin_of_text|>")
        self.eos = tokenizer.token_to_id("<|end_of_text|>")
        text = HAYSTACK_FILE.read_text(encoding="utf-8")
        self.text_ids = np.array(tokenizer.encode(text, add_special_tokens=False).ids, dtype=np.int64)
        self.haystack = Haystack.builtin()
        # haystack tokens per word, for a first guess of a document's size
        self.tokens_per_word = len(self.text_ids) / max(1, self.haystack.total_words)
        weights = cfg.task_weights or {
            "niah_single_1": 1.0, "niah_single_2": 2.0, "niah_single_3": 1.5, "niah_multikey_1": 1.5,
            "niah_multikey_2": 1.0, "niah_multikey_3": 1.0, "niah_multivalue": 1.0, "niah_multiquery": 1.0}
        self.tasks = list(weights)
        w = np.array([weights[t] for t in self.tasks], dtype=np.float64)
        self.task_cdf = np.cumsum(w / w.sum())

    def length_for(self, step: int, progress: float) -> int:
        """Sequence length of a step: the cap grows geometrically from min_len to max_len over the first
        curriculum_frac of training; each step draws a power-of-two length <= cap, favouring the cap."""
        c = self.cfg
        frac = min(1.0, progress / max(c.curriculum_frac, 1e-9))
        cap = c.min_len * (c.max_len / c.min_len) ** frac
        lengths = [l for l in (2 ** k for k in range(6, 20)) if c.min_len <= l <= cap] or [c.min_len]
        rng = Rng(mix_seed(c.seed, 1, step))
        # half the steps at the cap, the rest uniform over shorter lengths (keeps short contexts trained)
        if rng.below(2) == 0 or len(lengths) == 1:
            return lengths[-1]
        return lengths[rng.below(len(lengths) - 1)]

    def count(self, text: str) -> int:
        return len(self.tok.encode(text, add_special_tokens=True).ids)

    def retrieval_doc(self, seed: int, length: int) -> tuple[list[int], list[float]]:
        rng = Rng(seed)
        u = rng.next_u64() / 2**64
        task = self.tasks[int(np.searchsorted(self.task_cdf, u, side="right").clip(0, len(self.tasks) - 1))]
        cfg = NIAH_CONFIGS[task]
        # target prompt tokens: between 30% and 100% of the room, so every depth / length is seen
        room = length - 48 if cfg.num_values * cfg.num_queries == 1 else length - 128
        target = max(64, int(room * (0.3 + 0.7 * rng.next_u64() / 2**64)))
        doc_seed = rng.next_u64()
        hs = self.haystack
        if cfg.haystack == "essay":
            size = max(0, int((target - 150) / self.tokens_per_word))
        elif cfg.haystack == "repeat":
            size = max(niah_min_size(cfg), int((target - 150) / 25))
        else:
            size = max(niah_min_size(cfg), int((target - 150) / (40 if cfg.key_type == "uuids" else 25)))
        # two shrink passes at most (cheap, not the eval's exact fit)
        for _ in range(4):
            built = build_niah(cfg, doc_seed, size, hs)
            prompt = self.tok.encode(built.input, add_special_tokens=True).ids
            answer = self.tok.encode(answer_text(built), add_special_tokens=False).ids + [self.eos]
            total = len(prompt) + len(answer)
            if total <= length or size <= niah_min_size(cfg):
                break
            size = max(niah_min_size(cfg), int(size * (length / total) * 0.97) - 1)
        ids = (prompt + answer)[:length]
        w = [1.0] * len(prompt) + [self.cfg.answer_weight] * len(answer)
        w[0] = 0.0
        return ids, w[:length]

    def text_doc(self, seed: int, length: int) -> tuple[list[int], list[float]]:
        rng = Rng(seed)
        start = rng.below(max(1, len(self.text_ids) - length))
        ids = [self.bos] + self.text_ids[start:start + length - 1].tolist()
        w = [0.0] + [1.0] * (len(ids) - 1)
        return ids, w

    def batch(self, step: int, progress: float) -> tuple[np.ndarray, np.ndarray, int]:
        length = self.length_for(step, progress)
        rows = max(1, self.cfg.tokens_per_step // length)
        ids = np.full((rows, length), self.eos, dtype=np.int64)
        wts = np.zeros((rows, length), dtype=np.float32)
        for r in range(rows):
            seed = mix_seed(self.cfg.seed, 2, step, r)
            if Rng(seed ^ 0xD0C).next_u64() / 2**64 < self.cfg.retrieval_frac:
                d, w = self.retrieval_doc(seed, length)
            else:
                d, w = self.text_doc(seed, length)
            # fill the rest of the row with a KJV window of its own (BOS first), packed after the document
            while length - len(d) >= 64:
                fd, fw = self.text_doc(mix_seed(seed, 3, len(d)), length - len(d))
                d, w = d + fd, w + fw
            ids[r, :len(d)] = d
            wts[r, :len(w)] = w
        return ids, wts, length


def corpus_for_tokenizer(seed: int = 0) -> list[str]:
    """data/haystack paragraphs, the word lists and generated retrieval documents."""
    paragraphs = [p for p in HAYSTACK_FILE.read_text(encoding="utf-8").split("\n") if p.strip()]
    words = [" ".join(word_list(n)) for n in ("nouns", "adjectives", "verbs")]
    return paragraphs + words + text_corpus_samples(800, seed)


if __name__ == "__main__":  # quick look
    b = build_niah(NIAH_CONFIGS["niah_single_2"], 123, 60, Haystack.builtin())
    print(b.input + answer_text(b))
    print(math.nan if not b.outputs else b.outputs)
