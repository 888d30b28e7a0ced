"""merit.bin.compose_config: a recipe's sizes + a system's file + overrides."""
import yaml

from merit.bin import compose_config

BASE = """moe_conf:
    hidden_size: 256
    output_size: 128
optim_conf:
    lr: 0.002
best_model_criterion:
-   - valid
    - macro_f1
    - max
max_epoch: 8
"""
SYSTEM = """moe: sparse
moe_conf:
    num_experts: 3
    hidden_size: 512
best_model_criterion:
-   - valid
    - loss
    - min
"""


def compose(tmp_path, *args):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "system.yaml").write_text(SYSTEM)
    out = tmp_path / "out" / "train_config.yaml"
    code = compose_config.main([str(tmp_path / "base.yaml"), str(tmp_path / "system.yaml"),
                                "--out", str(out), *args])
    return code, out


def test_later_files_win_and_mappings_merge(tmp_path):
    code, out = compose(tmp_path, "--set", "seed=2", "--set", "moe_conf.top_k=2")
    assert code == 0
    assert yaml.safe_load(out.read_text()) == {
        "moe_conf": {"hidden_size": 512, "output_size": 128, "num_experts": 3, "top_k": 2},
        "optim_conf": {"lr": 0.002},
        "best_model_criterion": [["valid", "loss", "min"]],  # lists are replaced whole
        "max_epoch": 8, "moe": "sparse", "seed": 2}
    text = out.read_text()
    assert text.startswith("# Composed by merit.bin.compose_config") and "--set seed=2" in text
    assert not list(out.parent.glob("*.tmp"))


def test_bad_inputs_name_the_problem(tmp_path, capsys):
    code, _ = compose(tmp_path, "--set", "seed")
    assert code == 1 and "expected KEY=VALUE" in capsys.readouterr().err
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    code = compose_config.main([str(tmp_path / "list.yaml"), "--out", str(tmp_path / "o.yaml")])
    assert code == 1 and "list.yaml: a config must be a mapping" in capsys.readouterr().err
    code = compose_config.main([str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "o.yaml")])
    assert code == 1 and "missing.yaml" in capsys.readouterr().err


def test_every_shipped_system_composes_with_every_recipe_config(repo, tmp_path):
    systems = sorted((repo / "egs" / "TEMPLATE" / "merit" / "conf" / "systems").glob("*.yaml"))
    assert {p.stem for p in systems} == {"sparse_merit", "dense_merit", "naive_mtl", "ser_only", "se_only"}
    bases = sorted(repo.glob("egs/*/merit/conf/train*.yaml"))
    assert len(bases) >= 3
    for base in bases:
        for system in systems:
            out = tmp_path / f"{base.parent.parent.parent.name}_{base.stem}_{system.stem}.yaml"
            assert compose_config.main([str(base), str(system), "--out", str(out)]) == 0
            config = yaml.safe_load(out.read_text())
            assert config["moe"] in ("sparse", "dense", "shared"), out
            assert "hidden_size" in config["moe_conf"], out
