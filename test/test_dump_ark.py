"""merit.bin.dump_ssl's Kaldi ark shards: one ark per job part, float16 (T, L, D) arrays
that ESPnet's ``kaldi_ark`` loader gives back as dumped, resume after a kill (SIGKILL in
the middle of a record, or a listed record the file system lost), the recipe's data
type following the dump's format, and the read benchmark's tiny run."""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import yaml

from fake_corpora import RATE, speechlike
from merit.bin import dump_ssl
from merit.data.datadir import read_kv, write_kv
from merit.models.frontend import load_dumped

REPO = Path(__file__).resolve().parent.parent
UTTS = [f"u{i}" for i in range(6)]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A data dir of six utterances of 0.3 to 0.8 s (fbank: 30 to 80 frames)."""
    root = tmp_path_factory.mktemp("dump_ark")
    (root / "audio").mkdir()
    wav = {}
    for i, utt in enumerate(UTTS):
        wav[utt] = root / "audio" / f"{utt}.wav"
        sf.write(wav[utt], speechlike(0.3 + 0.1 * i, 110 + 20 * i, seed=i), RATE)
    (root / "data").mkdir()
    write_kv(root / "data" / "wav.scp", wav)
    return root / "data"


def dump(data: Path, out: Path, *extra: str) -> None:
    assert dump_ssl.main(["--data_dir", str(data), "--out_dir", str(out), "--upstream", "fbank",
                          *extra]) == 0


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> Path:
    """An uninterrupted dump of ``data`` (one part)."""
    out = tmp_path_factory.mktemp("reference") / "dump"
    dump(data, out)
    return out


def part_lists(out: Path) -> dict:
    """The lists of a finished one-part dump, with the ark's own path left out."""
    part = out / "job1of1"
    return {"scp": {utt: where.rpartition(":")[2] for utt, where in read_kv(part / "feats.scp").items()},
            "shape": read_kv(part / "feats_shape"), "info": (part / "feats_info.yaml").read_text()}


def test_one_ark_per_part_with_float16_arrays_espnet_loads_as_dumped(data, tmp_path):
    out = tmp_path / "dump"
    dump(data, out, "--num_jobs", "2", "--job", "1")
    dump(data, out, "--num_jobs", "2", "--job", "2")
    dump(data, out, "--num_jobs", "2", "--merge", "true")
    for part in ("job1of2", "job2of2"):
        assert sorted(p.name for p in (out / part).iterdir()) == [
            "done", "feats.ark", "feats.scp", "feats_info.yaml", "feats_shape", "settings.yaml"]
    scp = read_kv(out / "feats.scp")
    assert list(scp) == UTTS
    assert {where.rpartition(":")[0] for where in scp.values()} == {
        str((out / part / "feats.ark").resolve()) for part in ("job1of2", "job2of2")}
    shapes = read_kv(out / "feats_shape")
    from espnet2.train.dataset import ESPnetDataset

    dataset = ESPnetDataset([(str(out / "feats.scp"), "feats", "kaldi_ark")])
    for utt in UTTS:
        feats = load_dumped(scp[utt])
        assert feats.dtype == np.float16 and feats.shape == (30 + 10 * UTTS.index(utt), 1, 240)
        assert shapes[utt] == ",".join(map(str, feats.shape))
        _, loaded = dataset[utt]
        assert loaded["feats"].dtype == np.float32  # ESPnet's float_dtype, as for npy
        np.testing.assert_array_equal(loaded["feats"], feats.astype(np.float32))


KILLER = textwrap.dedent("""
    import os, signal, sys
    import kaldiio
    from merit.bin import dump_ssl

    save_ark, calls = kaldiio.save_ark, []

    def half_then_kill(fd, arrays, **kwargs):
        # the third record: its first half reaches the file, then the process dies
        calls.append(1)
        if len(calls) < 3:
            return save_ark(fd, arrays, **kwargs)
        whole = fd.name + ".whole"
        save_ark(whole, arrays, **kwargs)
        record = open(whole, "rb").read()
        fd.write(record[: len(record) // 2])
        fd.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    kaldiio.save_ark = half_then_kill
    sys.exit(dump_ssl.main(sys.argv[1:]))
""")


def test_a_dump_killed_inside_a_record_resumes_to_the_uninterrupted_ark(data, reference,
                                                                        tmp_path, caplog):
    out = tmp_path / "dump"
    args = ["--data_dir", str(data), "--out_dir", str(out), "--upstream", "fbank"]
    killed = subprocess.run([sys.executable, "-c", KILLER, *args], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    part = out / "job1of1"
    ark = part / "feats.ark"
    listed = read_kv(part / "feats.scp")
    # only the two whole records are listed, and they read back; half of the third follows
    assert list(listed) == UTTS[:2] and not (part / "done").exists()
    assert not (out / "feats.scp").exists()
    ref_scp = read_kv(reference / "feats.scp")
    for utt, where in listed.items():
        np.testing.assert_array_equal(kaldiio.load_mat(where), load_dumped(ref_scp[utt]))
    whole_two = int(ref_scp[UTTS[2]].rpartition(":")[2]) - len(f"{UTTS[2]} ")
    assert whole_two < ark.stat().st_size < int(ref_scp[UTTS[3]].rpartition(":")[2]) - 3

    with caplog.at_level("INFO", logger="dump_ssl"):
        dump(data, out)
    assert "6 utterances (2 already there)" in caplog.text
    ref_ark = reference / "job1of1" / "feats.ark"
    assert ark.read_bytes() == ref_ark.read_bytes()
    assert part_lists(out) == part_lists(reference)
    for utt, where in read_kv(out / "feats.scp").items():
        np.testing.assert_array_equal(load_dumped(where), load_dumped(ref_scp[utt]))


@pytest.mark.parametrize("cut", [-2, 40, 1000], ids=["key", "npy header", "data"])
def test_a_listed_record_cut_short_is_redone_from_there(data, reference, tmp_path, caplog, cut):
    """As after a machine crash: the scp lists every utterance but the ark lost its tail
    (the part is not finished yet), here ``cut`` bytes after the offset of the 4th record
    (28,800 bytes of data after a 128-byte npy header); the records from the cut one on
    are written again."""
    out = tmp_path / "dump"
    dump(data, out)
    part = out / "job1of1"
    (part / "done").unlink()
    offset = int(read_kv(part / "feats.scp")[UTTS[3]].rpartition(":")[2])
    os.truncate(part / "feats.ark", offset + cut)
    with caplog.at_level("INFO", logger="dump_ssl"):
        dump(data, out)
    assert "6 utterances (3 already there)" in caplog.text
    assert (part / "feats.ark").read_bytes() == (reference / "job1of1" / "feats.ark").read_bytes()
    assert part_lists(out) == part_lists(reference)


def test_a_part_dumped_as_npy_files_is_redone_as_an_ark(data, reference, tmp_path):
    """A part finished before the ark shards (its settings.yaml has no format) would list
    .npy files beside the new parts' arks: it is redone."""
    out = tmp_path / "dump"
    part = out / "job1of1"
    part.mkdir(parents=True)
    old = {key: value for key, value in yaml.safe_load(
        (reference / "job1of1" / "settings.yaml").read_text()).items() if key != "format"}
    (part / "settings.yaml").write_text(yaml.safe_dump(old))
    np.save(part / f"{UTTS[0]}.npy", np.zeros((30, 1, 240), np.float16))
    write_kv(part / "feats.scp", {UTTS[0]: part / f"{UTTS[0]}.npy"})
    (part / "done").touch()
    dump(data, out)
    assert not list(part.glob("*.npy"))
    assert part_lists(out) == part_lists(reference)


def test_load_dumped_reads_ark_entries_and_older_npy_files(tmp_path):
    feats = np.arange(24, dtype=np.float16).reshape(4, 2, 3)
    np.save(tmp_path / "a.npy", feats)
    kaldiio.save_ark(str(tmp_path / "b.ark"), {"x": feats[:1], "b": feats},
                     scp=str(tmp_path / "b.scp"), write_function="numpy")
    for entry in (str(tmp_path / "a.npy"), read_kv(tmp_path / "b.scp")["b"]):
        loaded = load_dumped(entry)
        assert loaded.dtype == np.float16
        np.testing.assert_array_equal(loaded, feats)


def data_args(feats: Path, ssl_mode: str = "dumped") -> str:
    """The output of merit.sh's data_args for a valid set with feats dir ``feats``."""
    script = (REPO / "egs/TEMPLATE/merit/merit.sh").read_text()
    start = script.index("data_args() {")
    function = script[start:script.index("\n}\n", start) + 3]
    run = subprocess.run(["bash", "-c", f"set -euo pipefail\nssl_mode={ssl_mode}\n{function}"
                          f"data_args valid data/dev {feats}"],
                         capture_output=True, text=True, check=True)
    return run.stdout


def test_the_recipe_names_the_data_type_its_dump_holds(reference, tmp_path):
    assert f"{reference}/feats.scp,feats,kaldi_ark\n" in data_args(reference)
    write_kv(tmp_path / "feats.scp", {"u0": tmp_path / "u0.npy", "u1": tmp_path / "u1.npy"})
    assert f"{tmp_path}/feats.scp,feats,npy\n" in data_args(tmp_path)
    assert "feats.scp" not in data_args(reference, ssl_mode="online")


def test_espnet_iterator_of_the_tiny_experiment_reads_its_ark_dump(tiny_data):
    """The real training data path: MeritTask's iterator factory on the tiny experiment's
    own command line (dumped frontend, feats of type kaldi_ark) gives batches of the
    dumped arrays that DumpedFrontend accepts."""
    import torch
    from espnet2.train.distributed_utils import DistributedOption

    from merit.models.frontend import DumpedFrontend
    from merit.tasks.merit_task import MeritTask
    from tiny_experiment import train_command

    cmd = train_command(tiny_data, tiny_data / "exp" / "ark_iterator", max_epoch=1)
    assert f"{tiny_data}/dump/train_noisy/feats.scp,feats,kaldi_ark" in cmd
    args = MeritTask.get_parser().parse_args(cmd[cmd.index("merit.bin.merit_train") + 1:])
    frontend = DumpedFrontend(feats_info=str(tiny_data / "dump/train_noisy/feats_info.yaml"))
    scp = read_kv(tiny_data / "dump/train_noisy/feats.scp")
    seen = 0
    for utts, batch in MeritTask.build_iter_factory(args, DistributedOption(), "train").build_iter(1):
        assert batch["feats"].dim() == 4 and batch["feats"].shape[2:] == (1, 240)
        for i, utt in enumerate(utts):
            n = int(batch["feats_lengths"][i])
            expected = torch.from_numpy(load_dumped(scp[utt]).astype(np.float32))
            assert torch.equal(batch["feats"][i, :n], expected)
        hidden, _ = frontend(batch["speech"], batch["speech_lengths"], batch["feats"],
                             batch["feats_lengths"])
        assert hidden.shape == batch["feats"].shape
        seen += 1
        if seen == 2:
            break
    assert seen == 2


def test_feats_io_benchmark_runs_tiny(tmp_path, capsys):
    from merit.bin import bench_feats_io

    assert bench_feats_io.main(["--tiny", "--out", str(tmp_path / "bench.json")]) == 0
    values = yaml.safe_load((tmp_path / "bench.json").read_text())
    assert values["utterances"] == 12
    for cache in ("cold", "warm"):
        assert values[f"{cache}_ark_over_npy"] == pytest.approx(
            values[f"{cache}_ark_MB_per_s"] / values[f"{cache}_npy_MB_per_s"])
        assert values[f"{cache}_ark_utts_per_s"] > 0
    # 2 sets × (3 merged lists + 8 parts × 5 lists) besides the arrays' files
    assert values["msp_files_npy"] == 100_000 + 86 and values["msp_files_ark"] == 16 + 86
    assert "| warm_ark_over_npy |" in capsys.readouterr().out
