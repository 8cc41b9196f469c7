"""torch.ops.dattn.attention: the operator as a torch custom op (fake kernel for torch.compile, no backward)."""
import torch

from . import _dattn


@torch.library.custom_op("dattn::attention", mutates_args=())
def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mode: str, window: int, sink: int, gamma: int,
              tail_min: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, lse): out like q (contiguous, q's dtype), lse float32 (batch, heads, n_q). tail_min -1 and
    scale 0.0 mean the defaults (max(128, gamma) and 1/sqrt(head_dim))."""
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
    batch, n_q, heads, _ = q.shape
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    lse = torch.empty((batch, heads, n_q), dtype=torch.float32, device=q.device)
    stream = torch.cuda.current_stream(q.device).cuda_stream if q.is_cuda else 0
    _dattn.attention_into(q.detach(), k.detach(), v.detach(), out, lse, mode, window, sink, gamma, tail_min, scale,
                          "auto", stream, 0)
    return out, lse


@attention.register_fake
def _(q, k, v, mode, window, sink, gamma, tail_min, scale):
    batch, n_q, heads, _ = q.shape
    return q.new_empty(q.shape), q.new_empty((batch, heads, n_q), dtype=torch.float32)


def _setup_context(ctx, inputs, output):
    pass


def _backward(ctx, grad_out, grad_lse):
    raise RuntimeError("dattn.attention is inference-only: it has no backward. Run it under torch.no_grad() or "
                       "torch.inference_mode(), or train with another attention implementation.")


attention.register_autograd(_backward, setup_context=_setup_context)
