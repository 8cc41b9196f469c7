"""torch.ops.dattn.attention: the operator as a torch custom op (fake kernel for torch.compile, no backward)."""
import torch

from . import _dattn

# The library takes tensors as DLPack capsules. torch's C exporter, not Tensor.__dlpack__: that is Python
# code with checks (requires_grad, device, stream arguments) costing about 2 us per tensor and call.
_to_dlpack = torch._C._to_dlpack


@torch.library.custom_op("dattn::attention", mutates_args=())
def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mode: str, window: int, sink: int, gamma: int,
              tail_min: int, scale: float, return_lse: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, lse): out like q (contiguous, q's dtype), lse float32 (batch, heads, n_q), or an empty float32
    tensor (0,) without return_lse (the library then does not compute it). tail_min -1 and scale 0.0 mean
    the defaults (max(128, gamma) and 1/sqrt(head_dim))."""
    if q.stride(-1) != 1 or k.stride(-1) != 1 or v.stride(-1) != 1:
        q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
    out = torch.empty_like(q, memory_format=torch.contiguous_format)  # a third of torch.empty(shape, ...)'s cost
    lse = q.new_empty(_lse_shape(q, return_lse), dtype=torch.float32)
    # torch's current stream on q's device (what torch.cuda.current_stream(device).cuda_stream returns, without
    # making a Stream object); the raw getter is the one inductor's generated code calls
    stream = torch._C._cuda_getCurrentRawStream(q.get_device()) if q.is_cuda else 0
    _dattn.attention_into(_to_dlpack(q), _to_dlpack(k), _to_dlpack(v), _to_dlpack(out),
                          _to_dlpack(lse) if return_lse else None, mode, window, sink, gamma, tail_min, scale, "auto",
                          stream, 0)
    return out, lse


def _lse_shape(q, return_lse):
    batch, n_q, heads, _ = q.shape
    return (batch, heads, n_q) if return_lse else (0,)


@attention.register_fake
def _(q, k, v, mode, window, sink, gamma, tail_min, scale, return_lse=True):
    return q.new_empty(q.shape), q.new_empty(_lse_shape(q, return_lse), dtype=torch.float32)


def _setup_context(ctx, inputs, output):
    pass


def _backward(ctx, grad_out, grad_lse):
    raise RuntimeError("dattn.attention is inference-only: it has no backward. Run it under torch.no_grad() or "
                       "torch.inference_mode(), or train with another attention implementation.")


attention.register_autograd(_backward, setup_context=_setup_context)
