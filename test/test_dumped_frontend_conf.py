"""DumpedFrontend reads the dump's feats_info.yaml itself; a trained model's config keeps
the values, not the path, so it decodes where the dump does not exist."""
import shutil

import pytest
import yaml

from merit.models.frontend import DumpedFrontend


def test_feats_info_gives_the_dumps_shape_and_upstream(tmp_path):
    info = tmp_path / "feats_info.yaml"
    info.write_text(yaml.safe_dump({"upstream": "wavlm_large", "num_layers": 3, "hidden_size": 8,
                                    "downsample_rate": 320, "layers": [0, 12, 24],
                                    "dtype": "float16"}))
    frontend = DumpedFrontend(feats_info=str(info), layers=[1, 2])
    assert (frontend.num_layers, frontend.hidden_size, frontend.downsample_rate) == (2, 8, 320)
    conf = frontend.explicit_conf()
    assert conf == {"num_layers": 3, "hidden_size": 8, "downsample_rate": 320, "layers": [1, 2],
                    "upstream": "wavlm_large", "dumped_layers": [0, 12, 24],
                    "frame_offset": 200,  # not in this feats_info: a dump from before it was recorded
                    "dtype": "float16"}
    rebuilt = DumpedFrontend(**conf)
    assert rebuilt.explicit_conf() == conf


def test_missing_or_bad_feats_info_is_named(tmp_path):
    with pytest.raises(ValueError, match="feats_info"):
        DumpedFrontend()
    bad = tmp_path / "feats_info.yaml"
    bad.write_text("just text\n")
    with pytest.raises(ValueError, match=str(bad)):
        DumpedFrontend(feats_info=str(bad))


def test_trained_config_keeps_values_not_the_path(tiny_data, tiny_model, tmp_path):
    config = yaml.safe_load((tiny_model / "config.yaml").read_text())
    info = yaml.safe_load((tiny_data / "dump" / "train_noisy" / "feats_info.yaml").read_text())
    assert config["frontend"] == "dumped"
    assert config["frontend_conf"] == {
        "num_layers": info["num_layers"], "hidden_size": info["hidden_size"],
        "downsample_rate": info["downsample_rate"], "upstream": info["upstream"],
        "dumped_layers": info["layers"], "frame_offset": info["frame_offset"],
        "dtype": info["dtype"]}
    # the model builds from a copy of its directory: nothing points at the dump
    from merit.tasks.merit_task import MeritTask
    moved = tmp_path / "model"
    shutil.copytree(tiny_model, moved)
    model, _ = MeritTask.build_model_from_file(moved / "config.yaml", None, device="cpu")
    assert model.frontend.num_layers == info["num_layers"]
