"""Test features are computed while decoding, not dumped: by default stage 3 dumps the
training and validation sets only and stage 5 decodes the test sets without
``--feats_dir``; ``--dump_test_sets true`` dumps and reads them as before. The two give
the same outputs, bit for bit: the online features are rounded to the dump's dtype
(recorded in the trained config) exactly as ``merit.bin.dump_ssl`` stored them.

The merit.sh tests run the template in a recipe tree with a ``python3`` that records the
dumps, the disk preflight and the decodes instead of running them (as
test_merit_sh_stage_choices does), so they cost a few seconds.
"""
import shlex

import numpy as np
import pytest
import torch
import yaml

from merit.bin import merit_inference
from merit.data.audio_io import read_audio
from merit.data.datadir import read_kv
from merit.inference import Speech2Merit
from merit.models.frontend import LEGACY_DUMP_DTYPE, DumpedFrontend, load_dumped
from recipe_tree import (make_recipe_tree, option_values, recorded_calls, recording_python,
                         trained_exp)

RECORDED = ("merit.bin.dump_ssl", "merit.bin.disk_preflight", "merit.bin.merit_inference")
EXP = "exp/sparse_merit_fbank_seed1"
TEST_SETS = [f"test_snr{snr}_{cond}" for cond in ("seen", "unseen") for snr in (0, 10)]
SETS_OPTIONS = ["--train_set", "train", "--valid_set", "dev", "--test_sets", "test",
                "--test_snrs", "0 10", "--test_conditions", "seen unseen", "--nj", "1"]

@pytest.fixture
def recipe(tmp_path):
    """(recipe dir, env, calls file): the template recipe with one trained experiment (no
    config.yaml: it reads dumps as --ssl_mode dumped says) and a recording python3."""
    root = tmp_path / "merit"
    make_recipe_tree(root)
    recipe_dir = root / "egs" / "TEMPLATE" / "merit"
    trained_exp(recipe_dir / EXP, [["valid", "macro_f1", "max"]])
    calls = tmp_path / "calls.txt"
    env = recording_python(tmp_path / "recording_env", RECORDED, calls)
    return recipe_dir, env, calls


@pytest.mark.parametrize("dump_test_sets", [None, "true"])
def test_stage3_dumps_the_test_sets_only_when_asked(recipe, run_tool, dump_test_sets):
    recipe_dir, env, calls = recipe
    options = [] if dump_test_sets is None else ["--dump_test_sets", dump_test_sets]
    res = run_tool(["./merit.sh", "--stage", "3", "--stop_stage", "3", *SETS_OPTIONS,
                    *options], cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    expected = ["train_noisy", "dev_noisy"] + (TEST_SETS if dump_test_sets else [])
    dumps = recorded_calls(calls, "merit.bin.dump_ssl")
    assert dumps, res.stderr
    for args in dumps:
        assert option_values(args, "--data_dir") == [f"data/{s}" for s in expected]
        assert option_values(args, "--out_dir") == [f"dump/fbank/{s}" for s in expected]
    preflight = recorded_calls(calls, "merit.bin.disk_preflight")
    assert len(preflight) == 1  # counts what is dumped, no more
    assert [a for a in preflight[0] if a.startswith("dump/fbank/")] == \
        [f"dump/fbank/{s}" for s in expected]


def test_stage5_reads_test_features_only_when_they_were_dumped(recipe, run_tool):
    recipe_dir, env, calls = recipe
    command = ["./merit.sh", "--stage", "5", "--stop_stage", "5", *SETS_OPTIONS]
    res = run_tool(command, cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    decodes = recorded_calls(calls, "merit.bin.merit_inference")
    assert len(decodes) == 2  # the job, then the merge
    for args in decodes:
        assert option_values(args, "--data_dir") == [f"data/{s}" for s in TEST_SETS]
        assert option_values(args, "--feats_dir") == []  # computed while decoding
        assert option_values(args, "--batch_seconds") == ["60"]
    calls.unlink()
    res = run_tool(command + ["--dump_test_sets", "true", "--decode_batch_size", "0"],
                   cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    assert "changed since the last run" in res.stderr  # the dumps read
    for args in recorded_calls(calls, "merit.bin.merit_inference"):
        assert option_values(args, "--feats_dir") == [f"dump/fbank/{s}" for s in TEST_SETS]
        assert option_values(args, "--batch_seconds") == ["0"]
    calls.unlink()
    res = run_tool(command + ["--dump_test_sets", "true", "--decode_batch_size", "30"],
                   cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    assert recorded_calls(calls, "merit.bin.merit_inference") == []  # same bits at any batch size


def test_the_trained_config_records_the_dumps_dtype(tiny_model, tiny_data):
    config = yaml.safe_load((tiny_model / "config.yaml").read_text())
    info = yaml.safe_load((tiny_data / "dump" / "train_noisy" / "feats_info.yaml").read_text())
    assert config["frontend_conf"]["dtype"] == info["dtype"] == "float16"
    legacy = {k: v for k, v in config["frontend_conf"].items() if k != "dtype"}
    assert DumpedFrontend(**legacy).dtype == LEGACY_DUMP_DTYPE == "float16"
    assert DumpedFrontend(**legacy, dtype="float32").explicit_conf()["dtype"] == "float32"
    with pytest.raises(ValueError, match="dump dtype 'int8'"):
        DumpedFrontend(**legacy, dtype="int8")


def test_online_features_equal_the_dumped_ones_bit_for_bit(tiny_model, tiny_data):
    frontend = Speech2Merit(tiny_model).model.frontend
    online = frontend.online_equivalent().eval()
    wav = read_kv(tiny_data / "data" / "dev_noisy" / "wav.scp")
    feats = read_kv(tiny_data / "dump" / "dev_noisy" / "feats.scp")
    for utt in sorted(wav)[:4]:
        speech = torch.from_numpy(read_audio(wav[utt]))[None]
        with torch.no_grad():
            hidden, lengths = online(speech, torch.tensor([speech.shape[1]]))
        computed = frontend.as_dumped(hidden[0, :int(lengths[0])]).numpy()
        dumped = load_dumped(feats[utt])
        assert computed.dtype == dumped.dtype and computed.tobytes() == dumped.tobytes()


def test_decoding_with_and_without_the_dump_writes_the_same_files(tiny_model, tiny_data,
                                                                  tmp_path):
    dev = tiny_data / "data" / "dev_noisy"
    common = ["--model_dir", str(tiny_model), "--data_dir", str(dev)]
    assert merit_inference.main(common + ["--out_dir", str(tmp_path / "dumped"), "--feats_dir",
                                          str(tiny_data / "dump" / "dev_noisy")]) == 0
    assert merit_inference.main(common + ["--out_dir", str(tmp_path / "online")]) == 0
    dumped, online = tmp_path / "dumped", tmp_path / "online"
    for name in ("utt2posteriors", "utt2emo_hyp", "utt2expert_usage_se",
                 "utt2expert_usage_ser", "classes"):
        assert (online / name).read_text() == (dumped / name).read_text(), name
    enhanced = [read_kv(d / "enhanced.scp") for d in (dumped, online)]
    assert sorted(enhanced[0]) == sorted(enhanced[1]) == sorted(read_kv(dev / "wav.scp"))
    for utt, path in enhanced[0].items():
        assert np.array_equal(read_audio(enhanced[1][utt]), read_audio(path)), utt


@pytest.mark.parametrize("dump_test_sets", [None, "true"])
def test_a_cascades_enhanced_test_sets_are_dumped_only_when_asked(recipe, run_tool,
                                                                  dump_test_sets):
    """The cascade's classifier decodes the enhancer's output of each test set; its
    features are computed while decoding too, so they are dumped only with
    --dump_test_sets true (else a WavLM Large dump of every enhanced test set, 5.2 TB
    at MSP-Podcast's size, that nothing reads)."""
    recipe_dir, env, calls = recipe
    shim = recipe_dir.parents[2].parent / "recording_env" / "bin" / "python3"
    # decodes leave an enhanced.scp, which the cascade's data dirs are derived from
    shim.write_text(shim.read_text().replace(
        '[ "${prev}" = --out_dir ] && mkdir -p "${arg}"',
        '[ "${prev}" = --out_dir ] && mkdir -p "${arg}" && touch "${arg}/enhanced.scp"'))
    for model in ("se_only", "ser_only_clean"):
        trained_exp(recipe_dir / f"exp/{model}_fbank_seed1", [["valid", "loss", "min"]])
    options = [] if dump_test_sets is None else ["--dump_test_sets", dump_test_sets]
    res = run_tool(["./merit.sh", "--stage", "5", "--stop_stage", "5", *SETS_OPTIONS,
                    "--systems", "cascade", *options], cwd=recipe_dir, env=env)
    assert res.returncode == 0, res.stderr
    dumped = [d for args in recorded_calls(calls, "merit.bin.dump_ssl")
              for d in option_values(args, "--out_dir")]
    enhanced = [f"exp/se_only_fbank_seed1/decode_{s}/feats" for s in TEST_SETS]
    assert dumped == (enhanced * 2 if dump_test_sets else [])  # the job, then the merge
    classifier = [args for args in recorded_calls(calls, "merit.bin.merit_inference")
                  if "exp/ser_only_clean_fbank_seed1" in option_values(args, "--model_dir")]
    expected_feats = enhanced if dump_test_sets else []
    assert classifier and all(option_values(args, "--feats_dir") == expected_feats
                              for args in classifier)
    # what is dumped is checked against the free space first
    steps = [args[1:] for args in map(shlex.split, calls.read_text().splitlines())]
    checks = [i for i, args in enumerate(steps)
              if args[0] == "merit.bin.disk_preflight" and args[1] == "enhanced_feats"]
    if not dump_test_sets:
        assert checks == []
        return
    assert len(checks) == 1
    check = steps[checks[0]]
    assert option_values(check, "--target") == ["exp/se_only_fbank_seed1"]
    assert [a for a in check if a.endswith("/feats")] == enhanced
    first_dump = min(i for i, args in enumerate(steps) if args[0] == "merit.bin.dump_ssl")
    assert checks[0] < first_dump
