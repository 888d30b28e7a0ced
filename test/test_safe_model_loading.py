"""A trained model loads as tensors only, and only when every weight fits: a checkpoint
that would run code while unpickled is refused without running it, one with a weight
missing or misnamed is refused naming the key, and ESPnet's own checkpoints load to
the same model as ESPnet's loader gives."""
import shutil

import numpy as np
import pytest
import torch

from merit.inference import Speech2Merit
from merit.tasks.merit_task import MeritTask
from merit.utils.model_loading import load_model

CHECKPOINT = "valid.macro_f1.best.pth"


class RunsCode:
    """Unpickling this calls ``Path.touch`` on ``marker``: what a hostile checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        from pathlib import Path

        return Path.touch, (Path(self.marker),)


@pytest.fixture
def model_copy(tiny_model, tmp_path):
    """A copy of the tiny model's config and best checkpoint, to tamper with."""
    out = tmp_path / "model"
    out.mkdir()
    for name in ("config.yaml", CHECKPOINT):
        shutil.copy(tiny_model / name, out / name)
    return out


def test_loads_the_same_model_as_espnet(tiny_model):
    ours, _ = load_model(tiny_model / "config.yaml", tiny_model / CHECKPOINT)
    theirs, _ = MeritTask.build_model_from_file(tiny_model / "config.yaml", tiny_model / CHECKPOINT)
    mine, reference = ours.state_dict(), theirs.state_dict()
    assert mine.keys() == reference.keys()
    for key in mine:
        assert torch.equal(mine[key], reference[key]), key


def test_a_checkpoint_that_runs_code_is_refused_without_running_it(model_copy, tmp_path):
    marker = tmp_path / "code_ran"
    state = torch.load(model_copy / CHECKPOINT, weights_only=True)
    state["extra"] = RunsCode(marker)
    torch.save(state, model_copy / CHECKPOINT)
    with pytest.raises(ValueError, match="refused: the checkpoint holds more than tensors"):
        Speech2Merit(model_copy, CHECKPOINT)
    assert not marker.exists()
    torch.load(model_copy / CHECKPOINT, weights_only=False)  # the plant works: it does run
    assert marker.exists()


def test_a_missing_or_misnamed_weight_is_refused_by_name(model_copy):
    state = torch.load(model_copy / CHECKPOINT, weights_only=True)
    removed = sorted(state)[-1]
    del state[removed]
    torch.save(state, model_copy / CHECKPOINT)
    with pytest.raises(ValueError, match=rf"1 weight\(s\) missing: {removed}$"):
        Speech2Merit(model_copy, CHECKPOINT)
    state["renamed." + removed] = torch.zeros(1)
    torch.save(state, model_copy / CHECKPOINT)
    with pytest.raises(ValueError, match=rf"missing: {removed}; 1 unexpected: renamed\.{removed}"):
        Speech2Merit(model_copy, CHECKPOINT)


def test_inference_unchanged(tiny_model):
    noisy = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    ours = Speech2Merit(tiny_model, CHECKPOINT)(noisy)
    theirs, _ = MeritTask.build_model_from_file(tiny_model / "config.yaml", tiny_model / CHECKPOINT)
    reference = Speech2Merit(tiny_model, CHECKPOINT)
    reference.model = theirs.eval()
    expected = reference(noisy)
    np.testing.assert_array_equal(ours.posteriors, expected.posteriors)
    np.testing.assert_array_equal(ours.enhanced, expected.enhanced)
