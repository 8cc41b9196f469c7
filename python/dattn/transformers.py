"""attn_implementation="dattn" for transformers: prefill with Delta Attention, decode dense.

    import dattn.transformers
    dattn.transformers.register(window=2048, sink=1024, gamma=64)     # keyword arguments are optional
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="dattn")

Settings, first found wins: register()'s keyword arguments, the model config's ``dattn`` dict (e.g.
``{"mode": "delta", "window": 4096}``), the operator's defaults. A forward pass with more than one query
row (prefill, also a continued prefill over a KV cache) runs dattn on the query, key and value states as
transformers hands them over, grouped-query K/V included, without copies or expansion; a single-row
forward (decode) runs transformers' SDPA. Causal masks only: a padded batch's prefill raises dattn.Error.
"""
import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from . import _dattn
from . import torch_ops

NAME = "dattn"
_SETTINGS = ("mode", "window", "sink", "gamma", "tail_min")
_DEFAULTS = {"mode": "delta", "window": 2048, "sink": 1024, "gamma": 64, "tail_min": None}
_registered = {}
_operator = torch_ops.attention  # torch.ops.dattn.attention


def register(**settings):
    """Adds "dattn" to transformers' attention (and mask) interfaces; settings as in the module doc."""
    unknown = set(settings) - set(_SETTINGS)
    if unknown:
        raise _dattn.Error(f"dattn.transformers.register: unknown setting(s) {sorted(unknown)}; "
                           f"known: {list(_SETTINGS)}")
    _registered.clear()
    _registered.update(settings)
    AttentionInterface.register(NAME, dattn_attention_forward)
    AttentionMaskInterface.register(NAME, causal_mask_or_none)


def causal_mask_or_none(*args, **kwargs):
    """sdpa's mask, or None when it is the plain causal mask with the queries at the end of the keys (also
    over a KV cache): None is what lets dattn run. Built once per forward pass, not per layer."""
    mask = sdpa_mask(*args, **kwargs)
    if mask is None or mask.dtype != torch.bool or mask.dim() != 4:
        return mask
    n_q, n_kv = mask.shape[-2:]
    causal = torch.ones(n_q, n_kv, dtype=torch.bool, device=mask.device).tril(n_kv - n_q)
    return None if bool((mask == causal).all()) else mask


def settings_for(config):
    """The settings a model with this config runs with."""
    from_config = getattr(config, "dattn", None) or {}
    unknown = set(from_config) - set(_SETTINGS)
    if unknown:
        raise _dattn.Error(f"config.dattn has unknown setting(s) {sorted(unknown)}; known: {list(_SETTINGS)}")
    return {name: _registered.get(name, from_config.get(name, _DEFAULTS[name])) for name in _SETTINGS}


def dattn_attention_forward(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """query (batch, heads, n_q, d), key/value (batch, kv_heads, n_kv, d) -> ((batch, n_q, heads, d), None)."""
    n_q = query.shape[2]
    if n_q == 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    if attention_mask is not None:
        raise _dattn.Error("attn_implementation='dattn' prefills causal sequences only; this batch has an "
                           "attention mask (padding or a custom mask). Use unpadded inputs (batch size 1).")
    if module.training and dropout > 0.0:
        raise _dattn.Error("attn_implementation='dattn' is inference-only (dropout > 0 in training mode)")
    if kwargs.get("sliding_window") is not None or kwargs.get("softcap") is not None:
        raise _dattn.Error("attn_implementation='dattn' does not support the model's sliding_window or softcap")
    s = settings_for(module.config)
    tail_min = -1 if s["tail_min"] is None else int(s["tail_min"])
    out, _ = _operator(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2),
                                       s["mode"], int(s["window"]), int(s["sink"]), int(s["gamma"]), tail_min,
                                       0.0 if scaling is None else float(scaling), False)
    return out, None
