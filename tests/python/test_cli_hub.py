"""`--model org/name` finds the model in a Hugging Face cache (HF_HOME), laid out here in a temp folder."""
import os
import subprocess

import numpy as np

from conftest import FIXTURE_MODELS


def logits(cli, model, out, env):
    return subprocess.run([cli, "logits", "--model", model, "--ids", "5,6,7,8", "--out", str(out)], env=env,
                          capture_output=True, text=True)


def test_repo_id_resolves_in_the_cache_and_missing_ones_say_where_they_were_looked_for(dattn_cli, tmp_path):
    repo = tmp_path / "hub" / "models--fixture--llama"
    (repo / "snapshots").mkdir(parents=True)
    (repo / "snapshots" / "abc123").symlink_to(FIXTURE_MODELS / "llama_linear_untied")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    env = dict(os.environ, HF_HOME=str(tmp_path))
    env.pop("HF_HUB_CACHE", None)

    by_id = logits(dattn_cli, "fixture/llama", tmp_path / "by_id.npy", env)
    assert by_id.returncode == 0, by_id.stderr
    assert logits(dattn_cli, str(FIXTURE_MODELS / "llama_linear_untied"), tmp_path / "by_dir.npy", env).returncode == 0
    np.testing.assert_array_equal(np.load(tmp_path / "by_id.npy"), np.load(tmp_path / "by_dir.npy"))

    missing = logits(dattn_cli, "fixture/absent", tmp_path / "absent.npy", env)
    assert missing.returncode != 0 and not (tmp_path / "absent.npy").exists()
    assert "model 'fixture/absent' is not a directory and not in the Hugging Face cache" in missing.stderr
    assert str(tmp_path / "hub" / "models--fixture--absent") in missing.stderr
