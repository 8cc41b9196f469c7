"""The CUDA path (GPU machine only): torch CUDA tensors on their own device and the current stream,
torch.compile with inductor, and generate with attn_implementation="dattn". The cpu backend is the
baseline: bf16 inputs, both accumulate in fp32; outputs agree to bf16 output rounding (atol 1.6e-2 on
|out| < 1, 2 ulps) and LSE to 1e-3 (fp32 sums over 4K keys, different summation order)."""
import pytest

torch = pytest.importorskip("torch")
import dattn  # noqa: E402

pytestmark = pytest.mark.cuda  # the marker, for `pytest -m cuda` / `-m "not cuda"` outside ctest

SETTINGS = dict(mode="delta", window=256, sink=64, gamma=64)


def qkv(device, n=4096, h_q=8, h_kv=2, d=128, dtype=torch.bfloat16):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(1, n, h, d, generator=g).to(dtype).to(device) for h in (h_q, h_kv, h_kv)]


def test_cuda_matches_cpu_backend(cuda_device):
    q, k, v = qkv(cuda_device)
    out, lse = dattn.attention(q, k, v, **SETTINGS, return_lse=True)
    assert out.device == q.device and out.dtype == torch.bfloat16
    cpu_out, cpu_lse = dattn.attention(q.cpu(), k.cpu(), v.cpu(), **SETTINGS, return_lse=True)
    torch.testing.assert_close(out.cpu().float(), cpu_out.float(), atol=1.6e-2, rtol=0)
    torch.testing.assert_close(lse.cpu(), cpu_lse, atol=1e-3, rtol=0)
    # without return_lse the kernels skip the LSE stores only: out is bit-identical
    torch.testing.assert_close(dattn.attention(q, k, v, **SETTINGS), out, atol=0, rtol=0)


def test_cuda_bhsd_view_needs_no_copy(cuda_device):
    q, k, v = qkv(cuda_device)
    q_view = q.transpose(1, 2).contiguous().transpose(1, 2)
    torch.testing.assert_close(dattn.attention(q_view, k, v, **SETTINGS), dattn.attention(q, k, v, **SETTINGS),
                               atol=0, rtol=0)


def test_cuda_runs_on_the_current_stream_and_the_tensors_device(cuda_device):
    q, k, v = qkv(cuda_device)
    expected = dattn.attention(q, k, v, **SETTINGS)
    stream = torch.cuda.Stream(cuda_device)
    stream.wait_stream(torch.cuda.current_stream(cuda_device))
    with torch.cuda.stream(stream):
        out = dattn.attention(q, k, v, **SETTINGS)
    torch.cuda.current_stream(cuda_device).wait_stream(stream)
    torch.testing.assert_close(out, expected, atol=0, rtol=0)
    if torch.cuda.device_count() > 1:  # tensors on device 1 while device 0 is current
        q1, k1, v1 = (t.to("cuda:1") for t in (q, k, v))
        out1 = dattn.attention(q1, k1, v1, **SETTINGS)
        assert out1.device == q1.device
        torch.testing.assert_close(out1.cpu(), expected.cpu(), atol=0, rtol=0)


def test_cuda_errors_carry_the_library_message(cuda_device):
    q, k, v = qkv(cuda_device)
    with pytest.raises(ValueError, match=r"gamma must be >= 1, got 0"):
        dattn.attention(q, k, v, gamma=0)


def test_compile_inductor_fullgraph(cuda_device):
    q, k, v = qkv(cuda_device)
    proj = torch.nn.Linear(128, 128, device=cuda_device, dtype=torch.bfloat16)

    def block(q, k, v):
        return proj(dattn.attention(q, k, v, **SETTINGS)).relu()

    with torch.no_grad():
        torch.testing.assert_close(torch.compile(block, fullgraph=True)(q, k, v), block(q, k, v), atol=1.6e-2, rtol=0)


def test_compile_inductor_fullgraph_calls_the_custom_op(cuda_device):
    """torch.ops.dattn.attention itself in a compiled graph (LSE output used too), a (b, h, s, d) view as
    input: the fake kernel's shapes must match the real ones for inductor's buffers."""
    q, k, v = qkv(cuda_device)
    q_view = q.transpose(1, 2).contiguous().transpose(1, 2)

    def block(q, k, v):
        out, lse = torch.ops.dattn.attention(q, k, v, "delta", 256, 64, 64, -1, 0.0)
        return out.float().sum(dim=-1) * 2.0, lse.exp()

    with torch.no_grad():
        expected = block(q_view, k, v)
        compiled = torch.compile(block, fullgraph=True)(q_view, k, v)
    assert compiled[0].shape == (1, 4096, 8) and compiled[1].shape == (1, 8, 4096)
    # the same kernels on the same inputs; only inductor's fused sum/exp may round differently
    torch.testing.assert_close(compiled[0], expected[0], atol=1e-3, rtol=1e-5)
    torch.testing.assert_close(compiled[1], expected[1], atol=0, rtol=1e-5)


def load_kwargs():
    """bf16 weights: transformers >= 4.56 calls the argument dtype, older ones torch_dtype."""
    major, minor = (int(x) for x in pytest.importorskip("transformers").__version__.split(".")[:2])
    return {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": torch.bfloat16}


def test_generate_with_the_backend_on_cuda(cuda_device, tmp_path, monkeypatch):
    """A random Llama with head_dim 128 (the CUDA kernels' head sizes are 64 and 128), saved and loaded back:
    dense mode equals sdpa, and generate prefills with dattn (one call per layer) and decodes with sdpa."""
    transformers = pytest.importorskip("transformers")
    import dattn.transformers
    dattn.transformers.register()
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=512, hidden_size=512, intermediate_size=1024, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, head_dim=128)
    transformers.LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(tmp_path)
    ours = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="dattn",
                                                             **load_kwargs()).to(cuda_device)
    sdpa = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="sdpa",
                                                             **load_kwargs()).to(cuda_device)
    ids = torch.randint(3, 512, (1, 1000), generator=torch.Generator().manual_seed(1)).to(cuda_device)
    ours.config.dattn = {"mode": "dense"}
    with torch.no_grad():  # bf16 activations through two layers: compare logits at bf16 resolution
        torch.testing.assert_close(ours(ids).logits.float(), sdpa(ids).logits.float(), atol=5e-2, rtol=0)
    ours.config.dattn = {"mode": "delta", "window": 128, "sink": 64, "gamma": 64}
    calls = []
    operator = dattn.transformers._operator

    def recording(q, k, v, mode, *args):
        calls.append((q.shape[1], q.device.type, mode))
        return operator(q, k, v, mode, *args)

    monkeypatch.setattr(dattn.transformers, "_operator", recording)
    out = ours.generate(ids, max_new_tokens=16, do_sample=False, pad_token_id=0)
    assert out.shape == (1, 1016) and torch.equal(out[:, :1000], ids)
    assert calls == [(1000, "cuda", "delta")] * 2, "the prefill (1000 rows, 2 layers) only; decode runs sdpa"
