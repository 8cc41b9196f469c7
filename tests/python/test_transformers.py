"""attn_implementation="dattn" on the committed fixture models (tests/fixtures/models, fp32 on the CPU).
Dense mode equals SDPA within fp32 rounding (logits atol 1e-4 on |logits| < 10: two layers of fp32 sums,
measured ~1e-6); delta mode equals `dattn logits --attention delta`, the project's own C++ forward pass
(atol 1e-3: a different GEMM and RoPE order, measured ~1e-5)."""
import subprocess

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from transformers import AutoModelForCausalLM, DynamicCache  # noqa: E402

import dattn.transformers  # noqa: E402
from conftest import FIXTURE_MODELS  # noqa: E402

MODELS = ["llama_linear_untied", "llama3_tied_sharded", "mistral_bf16", "qwen2_bias_tied", "qwen3_qknorm_fp16"]
DELTA = dict(mode="delta", window=8, sink=4, gamma=4, tail_min=4)  # 48 tokens: every row class present


@pytest.fixture(autouse=True)
def registered():
    dattn.transformers.register()
    yield
    dattn.transformers.register()  # back to no keyword settings


def load(name, attn, **dattn_config):
    model = AutoModelForCausalLM.from_pretrained(FIXTURE_MODELS / name, attn_implementation=attn,
                                                 dtype=torch.float32)
    if dattn_config:
        model.config.dattn = dattn_config
    return model.eval()


def token_ids(model, n=48, seed=1):
    return torch.randint(3, model.config.vocab_size, (1, n), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", MODELS)
def test_dense_mode_equals_sdpa(name):
    sdpa, ours = load(name, "sdpa"), load(name, "dattn", mode="dense")
    ids = token_ids(sdpa)
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, sdpa(ids).logits, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["llama_linear_untied", "qwen3_qknorm_fp16"])
@pytest.mark.parametrize("chunk", [0, 20])  # 20: prefill 20 tokens, then 20 and 8 more over the KV cache
def test_delta_mode_equals_dattn_logits(name, chunk, dattn_cli, tmp_path):
    model = load(name, "dattn", **DELTA)
    ids = token_ids(model)
    cli = [dattn_cli, "logits", "--model", str(FIXTURE_MODELS / name), "--ids", ",".join(map(str, ids[0].tolist())),
           "--out", str(tmp_path / "logits.npy"), "--attention", "delta", "--window", "8", "--sink", "4", "--gamma",
           "4", "--tail-min", "4", "--threads", "1"]
    if chunk:
        cli += ["--chunk", str(chunk)]
    subprocess.run(cli, check=True, capture_output=True)
    with torch.no_grad():
        if chunk:
            cache = DynamicCache(config=model.config)
            logits = torch.cat([model(part, past_key_values=cache, use_cache=True).logits
                                for part in ids.split(chunk, dim=1)], dim=1)
        else:
            logits = model(ids).logits
    expected = np.load(tmp_path / "logits.npy")
    np.testing.assert_allclose(logits[0].numpy(), expected, atol=1e-3, rtol=0)
    dense = load(name, "sdpa")(ids).logits.detach()
    assert not torch.allclose(logits, dense, atol=1e-3), "delta settings this small must differ from dense"


def test_gqa_keys_are_not_expanded(monkeypatch):
    model = load("llama_linear_untied", "dattn", **DELTA)  # 6 query heads, 2 kv heads
    seen = []
    operator = dattn.transformers._operator

    def recording(q, k, v, *args):
        seen.append((q.shape, k.shape, k.data_ptr()))
        return operator(q, k, v, *args)

    monkeypatch.setattr(dattn.transformers, "_operator", recording)
    with torch.no_grad():
        model(token_ids(model))
    assert seen and all(q[2] == 6 and k[2] == 2 for q, k, _ in seen)


def test_generate_prefills_with_dattn_and_decodes_dense():
    sdpa, ours = load("qwen2_bias_tied", "sdpa"), load("qwen2_bias_tied", "dattn", mode="dense")
    ids = token_ids(sdpa, n=40)
    kwargs = dict(max_new_tokens=8, do_sample=False, pad_token_id=0)
    assert ours.generate(ids, **kwargs).tolist() == sdpa.generate(ids, **kwargs).tolist()


def test_register_keywords_win_over_config():
    model = load("llama_linear_untied", "dattn", mode="dense", window=100)
    dattn.transformers.register(window=8)
    assert dattn.transformers.settings_for(model.config) == dict(mode="dense", window=8, sink=1024, gamma=64,
                                                                 tail_min=None)
    with pytest.raises(dattn.Error, match=r"unknown setting\(s\) \['windw'\]"):
        dattn.transformers.register(windw=8)
