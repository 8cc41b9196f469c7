"""Plain NumPy (fp64) attention of the spec's modes, independent of the library, for the tests."""
import numpy as np


def spec_attention(q, k, v, mode="dense", window=2048, sink=1024, gamma=64, tail_min=None, scale=None):
    """q (b, n_q, h_q, d), k/v (b, n_kv, h_kv, d) -> (out fp64 like q, lse fp64 (b, h_q, n_q))."""
    q, k, v = (np.asarray(t, np.float64) for t in (q, k, v))
    b, n_q, h_q, d = q.shape
    n_kv, h_kv = k.shape[1], k.shape[2]
    scale = 1.0 / np.sqrt(d) if scale is None else scale
    tail_min = max(128, gamma) if tail_min is None else tail_min
    tail = min(n_q, n_q % gamma + tail_min) if mode in ("recompute", "delta") else (0 if mode == "sparse" else n_q)
    sparse_rows = n_q - tail
    out, lse = np.empty((b, n_q, h_q, d)), np.empty((b, h_q, n_q))
    for head in range(h_q):
        kh, vh = k[:, :, head // (h_q // h_kv)], v[:, :, head // (h_q // h_kv)]
        for row in range(n_q):
            pos = n_kv - n_q + row
            keys = np.arange(pos + 1)
            if row < sparse_rows:
                keys = keys[(keys < sink) | (pos - keys < window)]
            s = np.einsum("bd,bkd->bk", q[:, row, head], kh[:, keys]) * scale
            m = s.max(axis=1, keepdims=True)
            p = np.exp(s - m)
            out[:, row, head] = np.einsum("bk,bkd->bd", p, vh[:, keys]) / p.sum(axis=1, keepdims=True)
            lse[:, head, row] = (m + np.log(p.sum(axis=1, keepdims=True)))[:, 0]
    if mode in ("recompute", "delta"):
        dense, _ = spec_attention(q, k, v, "dense", scale=scale)
        sparse, _ = spec_attention(q, k, v, "sparse", window, sink, scale=scale)
        for row in range(sparse_rows):
            anchor = row - row % gamma
            if mode == "recompute" and row == anchor:
                out[:, row] = dense[:, row]
            elif mode == "delta":
                out[:, row] = sparse[:, row] + dense[:, anchor] - sparse[:, anchor]
    return out, lse
