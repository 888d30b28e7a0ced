"""Each step of mini_emo's SE ablation trains as conf/ablation/README.md's table says,
whatever conf/train.yaml's defaults are: the step files are merged over it (and under
the system file) as local/se_ablation.sh merges them."""
import re

import pytest

from merit.bin.compose_config import load, merge
from recipe_tree import REPO

RECIPE = REPO / "egs" / "mini_emo" / "merit"
CRITERIA = {"best dev macro-F1": ["valid", "macro_f1", "max"],
            "lowest dev loss": ["valid", "loss", "min"],
            "highest dev joint score": ["valid", "joint_score", "max"]}


def table_rows():
    """{step: (alignment, criterion, dynamic mixing, mask domain)} from the README table."""
    rows = {}
    for line in (RECIPE / "conf" / "ablation" / "README.md").read_text().splitlines():
        match = re.fullmatch(r"\| `(se\d_\w+)` \| (.*) \|", line)
        if match:
            alignment, checkpoint, mixtures, domain = (c.strip() for c in match[2].split("|"))
            criterion = [v for k, v in CRITERIA.items() if checkpoint.startswith(k)]
            rows[match[1]] = (alignment.split()[0], criterion[0],
                              mixtures.startswith("dynamic"), domain)
    return rows


ROWS = table_rows()


def test_the_table_lists_every_step_file():
    assert sorted(ROWS) == sorted(p.stem for p in (RECIPE / "conf" / "ablation").glob("se*.yaml"))


@pytest.mark.parametrize("step", sorted(ROWS))
@pytest.mark.parametrize("system", ["sparse_merit", "se_only"])
def test_each_step_trains_as_the_table_says(step, system):
    config = {}
    for path in (RECIPE / "conf" / "train.yaml", RECIPE / "conf" / "ablation" / f"{step}.yaml",
                 RECIPE / "conf" / "systems" / f"{system}.yaml"):
        config = merge(config, load(str(path)))
    alignment, criterion, mixing, domain = ROWS[step]
    assert config["se_head_conf"]["alignment"] == alignment
    assert config["se_head_conf"]["mask_domain"] == domain
    assert config.get("dynamic_mixing", False) is mixing
    if system == "sparse_merit":  # se_only keeps its lowest dev loss (its SE loss)
        assert config["best_model_criterion"][0] == criterion
    else:
        assert config["best_model_criterion"][0] == ["valid", "loss", "min"]
