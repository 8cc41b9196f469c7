"""pytest setup: ctest runs these with PYTHONPATH=<build>/python (the module built by the main CMake build)
and DATTN_CLI=<build>/src/cli/dattn. Tests marked `cuda` need an NVIDIA GPU and a CUDA build."""
import os
import pathlib

import pytest

FIXTURE_MODELS = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "models"


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: needs an NVIDIA GPU, torch with CUDA and dattn built with CUDA")


@pytest.fixture
def dattn_cli():
    path = os.environ.get("DATTN_CLI")
    if not path:
        pytest.skip("DATTN_CLI (the dattn binary) is not set; ctest sets it")
    return path


@pytest.fixture
def cuda_device():
    torch = pytest.importorskip("torch")
    import dattn
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device visible to torch")
    if not dattn.cuda_available():
        pytest.skip("dattn was built without CUDA")
    return torch.device("cuda", torch.cuda.current_device())
