"""dattn.attention and torch.ops.dattn.attention on torch CPU tensors. Dense mode is compared with
torch's SDPA: both fp32, tolerance 2e-6 (fp32 rounding of sums over at most 300 keys, measured 5e-7)."""
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import dattn  # noqa: E402


def qkv(n_q=300, n_kv=None, h_q=4, h_kv=2, d=16, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    n_kv = n_kv or n_q
    return (torch.randn(1, n_q, h_q, d, generator=g, dtype=dtype), torch.randn(1, n_kv, h_kv, d, generator=g, dtype=dtype),
            torch.randn(1, n_kv, h_kv, d, generator=g, dtype=dtype))


def sdpa(q, k, v):  # causal with query rows at the end of the keys (continued prefill)
    n_q, n_kv = q.shape[1], k.shape[1]
    mask = torch.ones(n_q, n_kv, dtype=torch.bool).tril(n_kv - n_q)
    return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask,
                                          enable_gqa=True).transpose(1, 2)


@pytest.mark.parametrize("n_q, n_kv", [(300, 300), (120, 300)])
def test_dense_equals_sdpa(n_q, n_kv):
    q, k, v = qkv(n_q, n_kv)
    out = dattn.attention(q, k, v, mode="dense")
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == q.shape
    torch.testing.assert_close(out, sdpa(q, k, v), atol=2e-6, rtol=0)


def test_bhsd_views_and_custom_op_agree_with_numpy_path():
    q, k, v = qkv()
    q_view = q.transpose(1, 2).contiguous().transpose(1, 2)  # (b, h, s, d) storage, head_dim contiguous
    out, lse = torch.ops.dattn.attention(q_view, k, v, "delta", 16, 4, 8, 16, 0.0)
    out_np, lse_np = dattn.attention(q.numpy(), k.numpy(), v.numpy(), window=16, sink=4, gamma=8, tail_min=16,
                                     return_lse=True)
    torch.testing.assert_close(out, torch.from_numpy(out_np), atol=0, rtol=0)
    torch.testing.assert_close(lse, torch.from_numpy(lse_np), atol=0, rtol=0)


def test_head_dim_not_contiguous_is_copied_first():
    q, k, v = qkv()
    k_strided = k.transpose(-1, -2).contiguous().transpose(-1, -2)  # head_dim stride != 1
    assert k_strided.stride(-1) != 1
    torch.testing.assert_close(dattn.attention(q, k_strided, v, window=16, sink=4, gamma=8),
                               dattn.attention(q, k, v, window=16, sink=4, gamma=8), atol=0, rtol=0)


def test_without_lse_the_output_is_the_same():
    """return_lse=False has the library skip the LSE (the op returns an empty one); out is bit-identical."""
    q, k, v = qkv()
    settings = ("delta", 16, 4, 8, 16, 0.0)
    out, lse = torch.ops.dattn.attention(q, k, v, *settings)
    out_only, no_lse = torch.ops.dattn.attention(q, k, v, *settings, False)
    assert lse.shape == (1, 4, 300) and no_lse.shape == (0,) and no_lse.dtype == torch.float32
    torch.testing.assert_close(out_only, out, atol=0, rtol=0)
    torch.testing.assert_close(dattn.attention(q, k, v, window=16, sink=4, gamma=8, tail_min=16), out, atol=0, rtol=0)


def test_bfloat16_in_bfloat16_out():
    q, k, v = qkv(dtype=torch.bfloat16)
    out = dattn.attention(q, k, v, mode="dense")
    assert out.dtype == torch.bfloat16
    # bf16 output rounding (2^-8 relative) on |out| < 1
    torch.testing.assert_close(out.float(), sdpa(q.float(), k.float(), v.float()), atol=8e-3, rtol=0)


def test_errors_carry_the_library_message():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"gamma must be >= 1, got 0"):
        dattn.attention(q, k, v, gamma=0)


def test_backward_raises_a_clear_error():
    q, k, v = (t.requires_grad_() for t in qkv())
    out = dattn.attention(q, k, v, mode="dense")
    with pytest.raises(RuntimeError, match="inference-only"):
        out.sum().backward()


def test_compile_fullgraph_traces_the_op():
    """The fake kernel lets dynamo trace through the op (aot_eager: the graph, no C++ codegen on CI)."""
    q, k, v = qkv()
    proj = torch.nn.Linear(16, 16)

    def block(q, k, v):
        return proj(dattn.attention(q, k, v, window=16, sink=4, gamma=8, tail_min=16))

    compiled = torch.compile(block, fullgraph=True, backend="aot_eager")
    with torch.no_grad():
        torch.testing.assert_close(compiled(q, k, v), block(q, k, v), atol=0, rtol=0)


def test_fake_kernel_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode():
        q, k, v = torch.empty(2, 64, 8, 32), torch.empty(2, 80, 2, 32), torch.empty(2, 80, 2, 32)
        out, lse = torch.ops.dattn.attention(q, k, v, "delta", 16, 4, 8, -1, 0.0)
        _, no_lse = torch.ops.dattn.attention(q, k, v, "delta", 16, 4, 8, -1, 0.0, False)
    assert out.shape == (2, 64, 8, 32) and lse.shape == (2, 8, 64) and lse.dtype == torch.float32
    assert no_lse.shape == (0,) and no_lse.dtype == torch.float32
