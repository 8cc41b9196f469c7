"""dattn.attention on NumPy arrays (the DLPack path) against the library's reference backend and an
independent fp64 NumPy implementation. Tolerance 2e-5 absolute: the cpu backend accumulates in fp32 over at
most a few hundred keys of O(1) values (measured max error ~1e-6); the reference backend is fp64."""
import numpy as np
import pytest

import dattn
from dattn._array import attention_arrays
from attention_reference import spec_attention

SMALL = dict(window=16, sink=4, gamma=8, tail_min=16)  # a few hundred rows exercise every row class


def qkv(n_q=200, n_kv=None, h_q=4, h_kv=2, d=16, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    n_kv = n_kv or n_q
    return (rng.standard_normal((2, n_q, h_q, d)).astype(dtype), rng.standard_normal((2, n_kv, h_kv, d)).astype(dtype),
            rng.standard_normal((2, n_kv, h_kv, d)).astype(dtype))


@pytest.mark.parametrize("mode", dattn.MODES)
def test_modes_match_reference_backend(mode):
    q, k, v = qkv()
    out, lse = dattn.attention(q, k, v, mode=mode, **SMALL, return_lse=True)
    ref_out, ref_lse = attention_arrays(q, k, v, mode, SMALL["window"], SMALL["sink"], SMALL["gamma"],
                                        SMALL["tail_min"], 0.0, backend="reference")
    assert out.dtype == np.float32 and out.shape == q.shape and lse.shape == (2, 4, 200)
    np.testing.assert_allclose(out, ref_out, atol=2e-5, rtol=0)
    np.testing.assert_allclose(lse, ref_lse, atol=2e-5, rtol=0)


@pytest.mark.parametrize("mode", ["dense", "sparse", "delta"])
def test_modes_match_numpy_spec(mode):
    q, k, v = qkv(n_q=150, n_kv=190)  # continued prefill: 40 cached keys before the first query row
    out, lse = dattn.attention(q, k, v, mode=mode, **SMALL, scale=0.3, return_lse=True)
    ref_out, ref_lse = spec_attention(q, k, v, mode, **SMALL, scale=0.3)
    np.testing.assert_allclose(out, ref_out, atol=2e-5, rtol=0)
    np.testing.assert_allclose(lse, ref_lse, atol=2e-5, rtol=0)


def test_strided_views_equal_contiguous_copies():
    q, k, v = qkv()
    # (batch, heads, seq, dim) storage seen as (batch, seq, heads, dim): head_dim contiguous, no copy needed
    q_bhsd = np.ascontiguousarray(q.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    assert not q_bhsd.flags.c_contiguous
    # head_dim not contiguous: the package copies it first
    k_strided = np.asfortranarray(k)
    expected = dattn.attention(q, k, v, **SMALL)
    np.testing.assert_array_equal(dattn.attention(q_bhsd, k_strided, v, **SMALL), expected)


def test_float16_in_float16_out():
    q, k, v = qkv(dtype=np.float16)
    out = dattn.attention(q, k, v, mode="dense")
    assert out.dtype == np.float16
    ref, _ = spec_attention(q, k, v, "dense")
    np.testing.assert_allclose(out.astype(np.float32), ref, atol=2e-3, rtol=0)  # fp16 output rounding: 2^-11


@pytest.mark.parametrize("call, message", [
    (lambda q, k, v: dattn.attention(q, k, v, gamma=0), "gamma must be >= 1, got 0"),
    (lambda q, k, v: dattn.attention(q, k, v, window=0), "window must be >= 1, got 0"),
    (lambda q, k, v: dattn.attention(q, k, v, mode="fast"), "unknown attention mode 'fast'"),
    (lambda q, k, v: dattn.attention(q[:, :, :3], k, v), "query heads (3) must be a multiple of kv heads (2)"),
    (lambda q, k, v: dattn.attention(q, k[:, :100], v[:, :100]), "n_kv (100) must be at least n_q (200)"),
    (lambda q, k, v: dattn.attention(q[0], k, v), "q must have 4 dimensions (batch, seq, heads, head_dim), got 3"),
    (lambda q, k, v: dattn.attention(q.astype(np.float64), k, v), "q has DLPack dtype (code 2, 64 bits, 1 lanes)"),
])
def test_library_errors_arrive_as_value_errors(call, message):
    q, k, v = qkv()
    with pytest.raises(dattn.Error) as caught:
        call(q, k, v)
    assert isinstance(caught.value, ValueError)
    assert message in str(caught.value)


def test_non_finite_input_is_refused_unless_the_benchmark_switch_skips_the_check():
    """The binding's skip_finite_check (bench/python_bench.py times the kernels without the call's wait) is
    the library's AttentionParams::skip_finite_check: the refusal of NaN/Inf inputs is gone."""
    from dattn import _dattn
    q, k, v = qkv()
    expected = dattn.attention(q, k, v, **SMALL)
    q[1, 7, 2, 3] = np.nan
    out = np.empty_like(q)
    args = ("delta", 16, 4, 8, 16, 0.0, "auto", 0, 0)
    with pytest.raises(dattn.Error, match=r"q holds a non-finite value .* at \[1, 7, 2, 3\]"):
        _dattn.attention_into(q, k, v, out, None, *args)
    _dattn.attention_into(q, k, v, out, None, *args, skip_finite_check=True)
    np.testing.assert_array_equal(out[0], expected[0])  # computed: batch 0 holds no NaN


def test_jax_arrays_in_jax_arrays_out():
    """Another DLPack framework: JAX arrays (read-only, handed over as DLPack capsules) on the CPU."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    q, k, v = qkv()
    with jax.default_device(jax.devices("cpu")[0]):  # a jax with a GPU would place them there (fp32: refused)
        check_jax_on_cpu(jnp, q, k, v)


def check_jax_on_cpu(jnp, q, k, v):
    out, lse = dattn.attention(jnp.asarray(q), jnp.asarray(k), jnp.asarray(v), **SMALL, return_lse=True)
    expected, expected_lse = dattn.attention(q, k, v, **SMALL, return_lse=True)
    assert type(out).__module__.startswith("jax") and out.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(out), expected)
    np.testing.assert_array_equal(np.asarray(lse), expected_lse)
    out_bf16 = dattn.attention(*(jnp.asarray(t, dtype=jnp.bfloat16) for t in (q, k, v)), mode="dense")
    assert out_bf16.dtype == jnp.bfloat16
    ref, _ = spec_attention(*(np.asarray(jnp.asarray(t, dtype=jnp.bfloat16), np.float32) for t in (q, k, v)), "dense")
    np.testing.assert_allclose(np.asarray(out_bf16, np.float32), ref, atol=8e-3, rtol=0)  # bf16 output: 2^-8
