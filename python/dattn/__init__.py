"""Delta Attention: sparse attention prefill (window + sinks) with Δ correction at anchor rows.

    import dattn
    out = dattn.attention(q, k, v)                      # (batch, seq, heads, head_dim), any DLPack tensor
    out, lse = dattn.attention(q, k, v, return_lse=True)

Torch tensors go through the custom op ``torch.ops.dattn.attention`` (usable under torch.compile);
``dattn.transformers.register()`` adds ``attn_implementation="dattn"`` to transformers.
"""
from ._dattn import Error, cuda_available
from ._array import attention_arrays

__all__ = ["attention", "Error", "cuda_available"]
__version__ = "0.1.0"

MODES = ("dense", "sparse", "recompute", "delta")


def attention(q, k, v, *, mode="delta", window=2048, sink=1024, gamma=64, tail_min=None, scale=None,
              return_lse=False):
    """Attention of q over k, v in one of the modes of the Delta Attention spec.

    q: (batch, n_q, h_q, d); k, v: (batch, n_kv, h_kv, d) with n_kv >= n_q (query row i sits at position
    n_kv - n_q + i) and h_q a multiple of h_kv (grouped-query attention, K/V are not expanded). Any strides;
    a tensor whose last dimension is not contiguous is copied. float32, bfloat16 or float16; CUDA tensors
    run on their device and, for torch, on the current stream. Returns out (q's shape and dtype) and, with
    return_lse, the natural-log LSE as float32 (batch, h_q, n_q). Bad arguments raise dattn.Error
    (a ValueError) with the library's message.
    """
    if len(q.shape) != 4:  # the library's check, made here because the output is allocated from q's shape
        raise Error(f"q must have 4 dimensions (batch, seq, heads, head_dim), got {len(q.shape)}")
    tail_min = -1 if tail_min is None else int(tail_min)
    scale = 0.0 if scale is None else float(scale)
    if _is_torch(q):
        from . import torch_ops
        out, lse = torch_ops.attention(q, k, v, mode, int(window), int(sink), int(gamma), tail_min, scale,
                                       bool(return_lse))
    else:
        out, lse = attention_arrays(q, k, v, mode, int(window), int(sink), int(gamma), tail_min, scale)
    return (out, lse) if return_lse else out


def _is_torch(x):
    return type(x).__module__.split(".")[0] == "torch"
