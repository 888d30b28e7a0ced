"""merit-infer without --checkpoint decodes the checkpoint of the model's own first
best_model_criterion: a model that keeps only ``valid.loss.best.pth`` (se_only's
criterion) infers with it, and says which file is missing when it is not there."""
import shutil

import numpy as np
import yaml

from merit.bin import merit_infer
from merit.data.audio_io import write_audio


def test_infers_with_the_checkpoint_its_config_keeps(tiny_model, tmp_path, capsys):
    model = tmp_path / "se_only_like"
    model.mkdir()
    config = yaml.safe_load((tiny_model / "config.yaml").read_text())
    config["best_model_criterion"] = [["valid", "loss", "min"]]
    (model / "config.yaml").write_text(yaml.safe_dump(config))
    shutil.copy(tiny_model / "valid.macro_f1.best.pth", model / "valid.loss.best.pth")
    wav = tmp_path / "in.wav"
    write_audio(wav, np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1)
    assert merit_infer.main([str(wav), "--model_dir", str(model), "--out", str(tmp_path / "out.wav")]) == 0
    assert "emotion" in capsys.readouterr().out.lower()
    assert (tmp_path / "out.wav").is_file()
    (model / "valid.loss.best.pth").rename(model / "other.pth")
    assert merit_infer.main([str(wav), "--model_dir", str(model)]) == 1
    assert f"{model / 'valid.loss.best.pth'}: not found" in capsys.readouterr().err
