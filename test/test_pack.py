"""Packed models (merit-pack, merit.pack): a pack loads to the same model as its exp
dir; what it holds is loaded as tensors only and must fit; unpacking writes nothing
outside its target and never leaves a half-unpacked model that looks finished; a
local upstream travels in the pack; the model card says what the model is."""
import argparse
import io
import json
import re
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
import yaml

from merit.bin import merit_pack
from merit.inference import Speech2Merit
from merit.pack import pack, resolve_model, unpack
from tiny_wavlm import make_tiny_wavlm

CHECKPOINT = "valid.macro_f1.best.pth"
NOISY = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1


class RunsCode:
    """Unpickling this calls ``Path.touch`` on ``marker``: what a hostile checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        from pathlib import Path

        return Path.touch, (Path(self.marker),)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Unpack into this test's own cache, not ~/.cache."""
    monkeypatch.setenv("MERIT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def packed(tiny_model, tmp_path_factory):
    """The tiny model packed with its default checkpoint."""
    return pack(tiny_model, tmp_path_factory.mktemp("pack") / "model.zip")


def meta_of(zip_path) -> dict:
    with zipfile.ZipFile(zip_path) as archive:
        return yaml.safe_load(archive.read("meta.yaml"))


def read_member(zip_path, name):
    """A member of a zip, loaded as a checkpoint of tensors."""
    with zipfile.ZipFile(zip_path) as archive:
        return torch.load(io.BytesIO(archive.read(name)), weights_only=True)


def with_member(zip_path, out, name, obj):
    """A copy of ``zip_path`` at ``out`` whose member ``name`` is ``torch.save(obj)``."""
    data = io.BytesIO()
    torch.save(obj, data)
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, data.getvalue() if info.filename == name else src.read(info))
    return out


def assert_same_outputs(a, b):
    np.testing.assert_array_equal(a.enhanced, b.enhanced)
    np.testing.assert_array_equal(a.posteriors, b.posteriors)


def test_packed_and_unpacked_models_give_identical_outputs(tiny_model, packed, cache):
    reference = Speech2Merit(tiny_model)(NOISY)
    from_zip = Speech2Merit.from_pretrained(packed)
    assert from_zip.checkpoint == CHECKPOINT
    assert_same_outputs(from_zip(NOISY), reference)
    assert_same_outputs(Speech2Merit.from_pretrained(tiny_model)(NOISY), reference)
    (unpacked,) = cache.iterdir()  # the unpacked pack (a dir with meta.yaml) loads too
    assert_same_outputs(Speech2Merit.from_pretrained(unpacked)(NOISY), reference)
    assert resolve_model(packed) == (unpacked / "exp" / tiny_model.name, CHECKPOINT)


def test_the_layout_is_espnets(tiny_model, packed, tmp_path):
    run = f"exp/{tiny_model.name}"
    with zipfile.ZipFile(packed) as archive:
        assert set(archive.namelist()) == {"meta.yaml", "README.md", f"{run}/config.yaml",
                                           f"{run}/classes.txt", f"{run}/{CHECKPOINT}"}
        assert archive.read(f"{run}/classes.txt").decode().split() == ["A", "S", "H", "N"]
    meta = meta_of(packed)
    assert meta["files"]["merit_model_file"] == f"{run}/{CHECKPOINT}"
    assert meta["yaml_files"] == {"merit_train_config": f"{run}/config.yaml"}
    assert {"timestamp", "python", "torch", "espnet", "merit"} <= set(meta)
    assert meta["upstream"]["name"] == "fbank" and not meta["upstream"]["packed"]
    from espnet2.main_funcs.pack_funcs import unpack as espnet_unpack

    found = espnet_unpack(packed, tmp_path / "espnet")
    assert found["merit_model_file"] == str(tmp_path / "espnet" / run / CHECKPOINT)


def test_a_packed_checkpoint_that_runs_code_is_refused_without_running_it(packed, tmp_path):
    marker = tmp_path / "code_ran"
    name = meta_of(packed)["files"]["merit_model_file"]
    state = dict(read_member(packed, name), extra=RunsCode(marker))
    hostile = with_member(packed, tmp_path / "hostile.zip", name, state)
    with pytest.raises(ValueError, match="refused: the checkpoint holds more than tensors"):
        Speech2Merit.from_pretrained(hostile)
    assert not marker.exists()
    with zipfile.ZipFile(hostile) as archive:  # the plant works: unpickled, it does run
        torch.load(io.BytesIO(archive.read(name)), weights_only=False)
    assert marker.exists()


def test_a_packed_checkpoint_missing_a_weight_is_refused_naming_it(packed, tmp_path):
    name = meta_of(packed)["files"]["merit_model_file"]
    state = read_member(packed, name)
    removed = sorted(state)[-1]
    del state[removed]
    short = with_member(packed, tmp_path / "short.zip", name, state)
    with pytest.raises(ValueError, match=rf"1 weight\(s\) missing: {removed}$"):
        Speech2Merit.from_pretrained(short)


@pytest.mark.parametrize("member", ["../escaped.txt", "exp/../../escaped.txt",
                                    "{tmp}/escaped.txt"])
def test_a_member_outside_the_target_is_refused(packed, tmp_path, cache, member):
    member = member.format(tmp=tmp_path)
    evil = tmp_path / "evil.zip"
    shutil.copy(packed, evil)
    with zipfile.ZipFile(evil, "a") as archive:
        archive.writestr(member, "escaped\n")
    refused = f"{evil}: refused: member '{member}' would be written outside"
    with pytest.raises(ValueError, match=re.escape(refused)):
        Speech2Merit.from_pretrained(evil)
    assert not (cache / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
    assert list(cache.iterdir()) == []  # nothing unpacked, nothing left behind


@pytest.mark.parametrize("problem, message", [
    ("not_a_zip", "not a readable zip file"),
    ("no_meta", "no meta.yaml in the zip"),
    ("missing_member", "meta.yaml lists merit_model_file: exp/.*, which is missing"),
])
def test_a_broken_pack_is_named_with_its_problem(packed, tmp_path, problem, message):
    broken = tmp_path / "broken.zip"
    if problem == "not_a_zip":
        broken.write_text("not a zip\n")
    else:
        drop = "meta.yaml" if problem == "no_meta" else meta_of(packed)["files"]["merit_model_file"]
        with zipfile.ZipFile(packed) as src, zipfile.ZipFile(broken, "w") as dst:
            for info in src.infolist():
                if info.filename != drop:
                    dst.writestr(info, src.read(info))
    with pytest.raises(ValueError, match=re.escape(f"{broken}: ") + message):
        unpack(broken)


def test_a_killed_unpack_is_not_taken_for_a_finished_one(tiny_model, packed, cache, repo):
    """A process killed while writing the checkpoint leaves its partial dir, never the
    finished one; the next unpack extracts the pack anew."""
    dies_in_the_checkpoint = (
        "import os, shutil, sys\n"
        "from merit import pack\n"
        "def copy(src, dst, length=0):\n"
        "    data = src.read()\n"
        "    dst.write(data[:len(data) // 2] if len(data) > 100000 else data)\n"
        "    if len(data) > 100000:\n"
        "        dst.flush()\n"
        "        os._exit(9)\n"
        "pack.shutil.copyfileobj = copy\n"
        "pack.unpack(sys.argv[1], sys.argv[2])\n")
    killed = subprocess.run([sys.executable, "-c", dies_in_the_checkpoint, str(packed), str(cache)],
                            cwd=repo, capture_output=True, text=True, timeout=120)
    assert killed.returncode == 9, killed.stderr
    (leftover,) = cache.iterdir()
    assert ".partial-" in leftover.name
    unpacked = unpack(packed)
    assert unpacked.parent == cache and ".partial-" not in unpacked.name
    assert_same_outputs(Speech2Merit.from_pretrained(packed)(NOISY),
                        Speech2Merit(tiny_model)(NOISY))


def test_include_upstream_packs_a_local_upstream(tiny_model, tmp_path):
    """A model computing wavlm_local features from a local checkpoint still loads, and
    gives the same output, once the checkpoint is gone from where it was trained; a
    packed upstream is loaded as tensors only."""
    from merit.tasks.merit_task import MeritTask

    wavlm = make_tiny_wavlm(tmp_path / "tiny_wavlm.pt")
    exp = tmp_path / "exp" / "wavlm_model"
    exp.mkdir(parents=True)
    config = yaml.safe_load((tiny_model / "config.yaml").read_text())
    config.update(frontend="s3prl",
                  frontend_conf={"upstream": "wavlm_local", "path_or_url": str(wavlm)})
    (exp / "config.yaml").write_text(yaml.safe_dump(config))
    torch.manual_seed(0)
    torch.save(MeritTask.build_model(argparse.Namespace(**config)).state_dict(), exp / CHECKPOINT)
    before = Speech2Merit(exp)(NOISY)

    zip_path = pack(exp, tmp_path / "model.zip", include_upstream=True)
    meta = meta_of(zip_path)
    assert meta["files"]["upstream_model_file"] == "exp/wavlm_model/upstream/tiny_wavlm.pt"
    assert meta["upstream"]["packed"] and "packed in this zip" in meta["upstream"]["requires"]
    wavlm.unlink()
    assert_same_outputs(Speech2Merit.from_pretrained(zip_path)(NOISY), before)

    marker = tmp_path / "code_ran"
    hostile = with_member(zip_path, tmp_path / "hostile.zip", meta["files"]["upstream_model_file"],
                          {"cfg": {}, "model": {}, "extra": RunsCode(marker)})
    with pytest.raises(ValueError, match="refused: the packed upstream checkpoint holds more"):
        Speech2Merit.from_pretrained(hostile)
    assert not marker.exists()


def test_the_model_card(tiny_model, tmp_path, capsys):
    exp = tmp_path / "exp" / "tiny_copy"
    exp.mkdir(parents=True)
    for name in ("config.yaml", CHECKPOINT, "2epoch.pth"):
        shutil.copy(tiny_model / name, exp / name)
    assert merit_pack.main([str(exp), str(tmp_path / "plain.zip")]) == 0
    assert "needs s3prl's hub upstream `fbank`" in capsys.readouterr().out
    with zipfile.ZipFile(tmp_path / "plain.zip") as archive:
        card = archive.read("README.md").decode()
    assert "`A`, `S`, `H`, `N`" in card
    assert f"`{CHECKPOINT}`: the highest valid macro_f1" in card
    assert "No scores found" in card and "| set |" not in card

    (exp / "decode_test1").mkdir()
    (exp / "decode_test1" / "scores.json").write_text(json.dumps({
        "set": "test1", "ser": {"count": 8, "macro_f1": 0.4321, "uar": 0.5, "accuracy": 0.625},
        "se": {"count": 8, "noisy": {"pesq": 1.234}, "enhanced": {"pesq": 2.346}}}))
    assert merit_pack.main([str(exp), str(tmp_path / "chosen.zip"),
                            "--checkpoint", "2epoch.pth"]) == 0
    with zipfile.ZipFile(tmp_path / "chosen.zip") as archive:
        card = archive.read("README.md").decode()
    (row,) = [line for line in card.splitlines() if line.startswith("| test1 |")]
    assert "0.432" in row and "1.23 → 2.35" in row
    assert "`2epoch.pth`: chosen with --checkpoint" in card
    assert Speech2Merit.from_pretrained(tmp_path / "chosen.zip").checkpoint == "2epoch.pth"

    assert merit_pack.main([str(exp), str(tmp_path / "u.zip"), "--include_upstream"]) == 1
    assert "names no local upstream checkpoint to pack" in capsys.readouterr().err
    assert not (tmp_path / "u.zip").exists()
