"""`jist-edge demo --train`: the demo trains on synthetic drives of other seeds, then maps with those weights."""
import json
import os

import pytest
from click.testing import CliRunner

pytest.importorskip("torch")

from jist_edge.cli import main  # noqa: E402


@pytest.mark.slow
def test_demo_train_uses_trained_weights_of_other_seeds(tmp_path):
    out = tmp_path / "out"
    summary_path = str(tmp_path / "s.json")
    res = CliRunner().invoke(main, ["demo", "--output", str(out), "--frames", "40", "--img-size", "64", "96",
                                    "--seed", "5", "--train", "0.05", "--json", summary_path])
    assert res.exit_code == 0, res.output
    summary = json.load(open(summary_path))
    assert summary["random_init"] is False
    assert summary["trained"]["seeds"] == [6, 7] and summary["trained"]["steps"] > 0
    assert "TRAINED weights" in res.output and "RANDOM weights" not in res.output
    from jist_edge.bundle import load_bundle
    from jist_edge.export.checkpoint import checkpoint_record

    bundle = load_bundle(str(out / "model"))
    assert bundle.random_init is False
    assert bundle.manifest["source_checkpoint"]["sha256"] == checkpoint_record(str(out / "trained.pth"))["sha256"]
    assert os.path.isdir(str(out / "train-routes" / "seed6"))


def test_demo_train_refuses_a_checkpoint_too(tmp_path):
    res = CliRunner().invoke(main, ["demo", "--output", str(tmp_path / "o"), "--checkpoint", str(tmp_path / "c.pth"),
                                    "--train"])
    assert res.exit_code != 0 and "--train" in res.output
