"""The operator on NumPy and other DLPack arrays (CuPy, JAX): outputs are made in the caller's framework."""
import importlib

from . import _dattn

_CPU, _CUDA = 1, 2  # DLPack device types


def attention_arrays(q, k, v, mode, window, sink, gamma, tail_min, scale, backend="auto"):
    import numpy as np

    framework = type(q).__module__.split(".")[0]
    if framework == "jaxlib":
        framework = "jax"
    q, k, v = (_last_dim_contiguous(t, framework) for t in (q, k, v))
    device_type, device_id = q.__dlpack_device__()
    q_dtype = q.dtype
    batch, n_q, heads, _ = q.shape
    if framework == "numpy":
        out, lse = np.empty(q.shape, q.dtype), np.empty((batch, heads, n_q), np.float32)
    elif device_type == _CPU:  # host buffers the framework imports without a copy where it can
        # NumPy cannot hand bfloat16 over by DLPack: such output is written as float32 and cast afterwards
        out_dtype = np.float32 if str(q.dtype) == "bfloat16" else np.dtype(str(q.dtype))
        out, lse = np.empty(q.shape, out_dtype), np.empty((batch, heads, n_q), np.float32)
    elif framework == "cupy":
        import cupy
        with cupy.cuda.Device(device_id):
            out, lse = cupy.empty(q.shape, q.dtype), cupy.empty((batch, heads, n_q), cupy.float32)
    else:
        out, lse = _torch_cuda_buffers(q, device_id, (batch, heads, n_q))
    stream = 0
    if framework == "cupy":
        import cupy
        stream = cupy.cuda.get_current_stream().ptr
    if framework != "numpy":  # other frameworks hand their arrays over as DLPack capsules
        q, k, v = (t.__dlpack__() for t in (q, k, v))
    _dattn.attention_into(q, k, v, out, lse, mode, window, sink, gamma, tail_min, scale, backend, stream, 0)
    if framework in ("numpy", "cupy"):
        return out, lse
    result = _to_framework(out, framework)
    if str(result.dtype) != str(q_dtype):
        result = result.astype(q_dtype)
    return result, _to_framework(lse, framework)


def _last_dim_contiguous(t, framework):
    strides = getattr(t, "strides", None)  # bytes for numpy/cupy; JAX arrays are always dense
    if strides is None or len(strides) != 4 or strides[3] == t.dtype.itemsize:
        return t
    if framework == "cupy":
        import cupy
        return cupy.ascontiguousarray(t)
    import numpy as np
    return np.ascontiguousarray(t)


def _torch_cuda_buffers(q, device_id, lse_shape):
    try:
        import torch
    except ImportError:
        raise _dattn.Error(f"dattn.attention on {type(q).__name__} CUDA arrays allocates its outputs with "
                           "torch or cupy; neither is installed") from None
    dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[str(q.dtype)]
    device = torch.device("cuda", device_id)
    return torch.empty(tuple(q.shape), dtype=dtype, device=device), torch.empty(lse_shape, dtype=torch.float32,
                                                                                device=device)


def _to_framework(array, framework):
    module = importlib.import_module(framework)
    if hasattr(module, "from_dlpack"):
        return module.from_dlpack(array)
    if hasattr(module, "numpy") and hasattr(module.numpy, "from_dlpack"):  # jax.numpy.from_dlpack
        return module.numpy.from_dlpack(array)
    return array
