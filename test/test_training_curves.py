"""Training curves where ESPnet users look for them: TensorBoard event files under
``exp/<run>/tensorboard/{train,valid}`` that hold, per epoch, what the trainer reported
(dev macro-F1, the task losses, each task's expert fractions), and every shipped
recipe config turns them on."""
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]


def scalars(run_dir: Path) -> dict:
    """``{tag: {step: value}}`` of the TensorBoard event files in ``run_dir``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}


def test_every_epoch_of_the_reporter_is_in_tensorboard(tiny_model):
    """Each epoch's reported dev macro-F1, dev joint score, dev/train losses and train
    expert fractions are TensorBoard scalars at that epoch's iteration count, equal to the
    reporter's values (TensorBoard keeps float32)."""
    stats = torch.load(tiny_model / "checkpoint.pth", map_location="cpu",
                       weights_only=False)["reporter"]["stats"]
    assert len(stats) == 2
    curves = {mode: scalars(tiny_model / "tensorboard" / mode) for mode in ("train", "valid")}
    wanted = {"valid": ["macro_f1", "joint_score", "loss", "loss_ser", "loss_se"],
              "train": ["loss", "ser_expert0", "se_expert0", "ser_expert2", "se_expert2"]}
    for epoch, logged in stats.items():
        step = logged["train"]["total_count"]
        for mode, keys in wanted.items():
            for key in keys:
                assert key in curves[mode], f"{mode}/{key} not in TensorBoard: {sorted(curves[mode])}"
                assert curves[mode][key][step] == pytest.approx(logged[mode][key], rel=1e-6), \
                    (mode, key, epoch)
    train = curves["train"]
    for task in ("se", "ser"):
        fractions = [train[f"{task}_expert{i}"] for i in range(3)]
        for step in fractions[0]:
            assert sum(f[step] for f in fractions) == pytest.approx(1.0, abs=1e-5), (task, step)


@pytest.mark.parametrize("config", sorted(str(p.relative_to(REPO)) for p in REPO.glob("egs/*/merit/conf/train*.yaml")))
def test_shipped_configs_write_tensorboard(config):
    assert yaml.safe_load((REPO / config).read_text())["use_tensorboard"] is True
