"""scripts/device-python.sh: the module compiled on its own against the build's prebuilt libdattn (what a GPU
machine with another Python does, cmake/python-module) imports from the staged folder and gives the in-tree
module's results bit for bit (the same library objects: atol 0). About 10 s: nanobind's sources compile."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import dattn

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "device-python.sh"
PROGRAM = """import sys, numpy as np, dattn
q, k, v = (np.load(f"{sys.argv[1]}/{name}.npy") for name in "qkv")
np.save(f"{sys.argv[1]}/out.npy", dattn.attention(q, k, v, window=16, sink=4, gamma=8, tail_min=16))
print(dattn.__file__)
"""


def exported(stdout, env):
    """The environment after the build step's `export NAME=VALUE${NAME:+:$NAME}` lines."""
    env = dict(env)
    for line in stdout.splitlines():
        name, value = line.removeprefix("export ").split("=", 1)
        value = value.split("${")[0]
        env[name] = f"{value}:{env[name]}" if env.get(name) else value
    return env


def test_module_built_against_the_prebuilt_library(tmp_path):
    build = os.environ.get("DATTN_BUILD_DIR")
    if not build:
        pytest.skip("DATTN_BUILD_DIR (the CMake build with libdattn) is not set; ctest sets it")
    staged = tmp_path / "staged"
    subprocess.run([SCRIPT, "stage", build, staged], check=True, capture_output=True)
    built = subprocess.run([SCRIPT, "build", staged, sys.executable], check=True, capture_output=True, text=True)
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 100, h, 16)).astype(np.float32) for h in (4, 2, 2))
    for name, array in zip("qkv", (q, k, v)):
        np.save(tmp_path / f"{name}.npy", array)
    env = exported(built.stdout, {key: value for key, value in os.environ.items() if key != "PYTHONPATH"})
    run = subprocess.run([sys.executable, "-c", PROGRAM, tmp_path], env=env, check=True, capture_output=True,
                         text=True, cwd=tmp_path)
    assert run.stdout.strip().startswith(str(staged / "build" / "python" / "dattn"))
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"),
                                  dattn.attention(q, k, v, window=16, sink=4, gamma=8, tail_min=16))
