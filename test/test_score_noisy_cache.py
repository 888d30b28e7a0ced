"""merit.bin.score --noisy_cache: noisy-input SE metrics reused across systems."""
import json
import os

import numpy as np
import pytest
import soundfile as sf

from fake_corpora import RATE, speechlike
from merit.bin import score

UTTS = ("utt_a", "utt_b", "utt_c", "utt_d")


def write_wav(path, wav):
    sf.write(str(path), wav, RATE, subtype="PCM_16")


def noisy_version(clean, seed, snr_db=5.0):
    noise = np.random.default_rng(seed).standard_normal(clean.shape[0])
    noise *= np.sqrt(np.sum(clean ** 2) / (np.sum(noise ** 2) * 10 ** (snr_db / 10)))
    return (clean + noise).astype(np.float32)


@pytest.fixture
def scored_set(tmp_path):
    """A data dir of 4 one-second utterances and two decode dirs: with and without enhanced.scp."""
    data, audio = tmp_path / "data" / "test_snr5", tmp_path / "audio"
    data.mkdir(parents=True)
    audio.mkdir()
    scp = {"wav.scp": [], "spk1.scp": []}
    enhanced = []
    for i, utt in enumerate(UTTS):
        clean = speechlike(1.0, 110 + 30 * i, seed=i)
        for name, wav in (("clean", clean), ("noisy", noisy_version(clean, 10 + i)),
                          ("enh", noisy_version(clean, 20 + i, snr_db=15.0))):
            write_wav(audio / f"{utt}_{name}.wav", wav)
        scp["spk1.scp"].append(f"{utt} {audio / f'{utt}_clean.wav'}\n")
        scp["wav.scp"].append(f"{utt} {audio / f'{utt}_noisy.wav'}\n")
        enhanced.append(f"{utt} {audio / f'{utt}_enh.wav'}\n")
    for name, lines in scp.items():
        (data / name).write_text("".join(lines))
    with_enh, without_enh = tmp_path / "exp" / "decode_enh", tmp_path / "exp" / "decode_ser"
    with_enh.mkdir(parents=True)
    without_enh.mkdir()
    (with_enh / "enhanced.scp").write_text("".join(enhanced))
    return {"data": data, "audio": audio, "with_enh": with_enh, "without_enh": without_enh,
            "cache": tmp_path / "cache" / "test_snr5.tsv"}


def run_score(capsys, data, decode_dir, cache=None):
    """(per_utt_se.tsv text, scores.json without decode_dir, stderr) of one in-process run."""
    argv = ["--data_dir", str(data), "--decode_dir", str(decode_dir), "--nj", "1"]
    assert score.main(argv + (["--noisy_cache", str(cache)] if cache else [])) == 0
    scores = json.loads((decode_dir / "scores.json").read_text())
    del scores["decode_dir"]
    return (decode_dir / "per_utt_se.tsv").read_text(), scores, capsys.readouterr().err


def assert_same_scores(a, b):
    """scores.json contents equal, ESTOI up to 1e-9: pystoi's ESTOI varies in the last
    digits between calls on the same signals (about 1e-13), with or without a cache."""
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            assert_same_scores(a[key], b[key])
        else:
            assert a[key] == (pytest.approx(b[key], rel=1e-9) if key == "estoi" else b[key]), key


def assert_same_tsv(a, b):
    """per_utt_se.tsv texts equal, STOI and ESTOI up to 1e-9 (see assert_same_scores)."""
    (header_a, *lines_a), (header_b, *lines_b) = a.splitlines(), b.splitlines()
    assert header_a == header_b and len(lines_a) == len(lines_b)
    columns = header_a.split("\t")
    for line_a, line_b in zip(lines_a, lines_b):
        for column, x, y in zip(columns, line_a.split("\t"), line_b.split("\t")):
            if column.endswith("stoi"):
                assert float(x) == pytest.approx(float(y), rel=1e-9), column
            else:
                assert x == y, column


def read_cache(path):
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    return header, {line.split("\t")[0]: dict(zip(header, line.split("\t"))) for line in lines[1:]}


def reused(stderr, decode_dir, cache, count):
    return (f"score: {decode_dir}: noisy-input metrics of {count}/{len(UTTS)} utterances "
            f"from {cache}") in stderr


def no_recompute(monkeypatch):
    """Make any process pool or audio decoding in this process an error."""
    def fail(*args, **kwargs):
        raise AssertionError("recomputed although every noisy row is cached")
    monkeypatch.setattr(score, "ProcessPoolExecutor", fail)
    monkeypatch.setattr(score, "read_audio", fail)


def test_cached_scores_equal_uncached(scored_set, capsys):
    data, decode, cache = scored_set["data"], scored_set["with_enh"], scored_set["cache"]
    plain_tsv, plain_scores, _ = run_score(capsys, data, decode)
    assert not cache.exists()
    first_tsv, first_scores, err = run_score(capsys, data, decode, cache)
    assert reused(err, decode, cache, 0)
    second_tsv, second_scores, err = run_score(capsys, data, decode, cache)
    assert reused(err, decode, cache, 4)
    assert_same_tsv(plain_tsv, first_tsv)
    assert_same_tsv(first_tsv, second_tsv)
    assert_same_scores(plain_scores, first_scores)
    assert_same_scores(first_scores, second_scores)
    assert first_scores["se"]["noisy"] == second_scores["se"]["noisy"]  # bit for bit
    assert set(plain_scores["se"]) == {"count", "noisy", "enhanced"}

    header, rows = read_cache(cache)
    assert header == ["utt", "noisy_path", "size", "mtime_ns", "clean_path", "clean_size",
                      "clean_mtime_ns", "ssnr", "pesq", "stoi", "estoi", "si_sdr", "lsd", "llr",
                      "wss", "csig", "cbak", "covl"]
    assert list(rows) == list(UTTS)
    noisy = data / "wav.scp"
    stat = os.stat(noisy.read_text().split()[1])
    assert rows["utt_a"]["size"] == str(stat.st_size)
    assert rows["utt_a"]["mtime_ns"] == str(stat.st_mtime_ns)
    # full precision: the mean of the cached values is the mean in scores.json
    for metric in score.SE_NAMES:
        values = [float(rows[u][metric]) for u in UTTS]
        assert score.nanmean(values) == plain_scores["se"]["noisy"][metric], metric
    assert not list(cache.parent.glob("*.tmp"))


def test_fully_cached_noisy_rows_are_reused_without_decoding(scored_set, capsys, monkeypatch):
    data, decode, cache = scored_set["data"], scored_set["without_enh"], scored_set["cache"]
    _, first, err = run_score(capsys, data, decode, cache)
    assert reused(err, decode, cache, 0)
    assert set(first["se"]) == {"count", "noisy"}
    # tamper with one cached PESQ: a reused row shows it in the means
    text = cache.read_text()
    _, rows = read_cache(cache)
    old = "\t".join(rows["utt_b"].values())
    new = "\t".join({**rows["utt_b"], "pesq": "4.5"}.values())
    cache.write_text(text.replace(old, new))
    no_recompute(monkeypatch)
    tsv, second, err = run_score(capsys, data, decode, cache)
    assert reused(err, decode, cache, 4)
    expected = np.mean([4.5 if u == "utt_b" else float(rows[u]["pesq"]) for u in UTTS])
    assert second["se"]["noisy"]["pesq"] == pytest.approx(expected, abs=1e-12)
    assert second["se"]["noisy"]["pesq"] != first["se"]["noisy"]["pesq"]
    assert "utt_b\t" in tsv and "\t4.5\t" in tsv
    assert read_cache(cache)[1]["utt_b"]["pesq"] == "4.5"  # rewritten as read


def test_a_changed_file_invalidates_only_its_row(scored_set, capsys):
    data, decode, cache = scored_set["data"], scored_set["with_enh"], scored_set["cache"]
    audio = scored_set["audio"]
    run_score(capsys, data, decode, cache)
    _, before = read_cache(cache)
    # new content, same length (same size): the mtime must tell
    noisy_c = audio / "utt_c_noisy.wav"
    stat = os.stat(noisy_c)
    write_wav(noisy_c, noisy_version(sf.read(str(audio / "utt_c_clean.wav"))[0], 99, snr_db=-5.0))
    os.utime(noisy_c, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10 ** 9))
    assert os.stat(noisy_c).st_size == stat.st_size
    # a touched clean reference invalidates its row too
    clean_a = audio / "utt_a_clean.wav"
    stat = os.stat(clean_a)
    os.utime(clean_a, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10 ** 9))
    tsv, scores, err = run_score(capsys, data, decode, cache)
    assert reused(err, decode, cache, 2)
    _, after = read_cache(cache)
    assert after["utt_b"] == before["utt_b"] and after["utt_d"] == before["utt_d"]
    assert after["utt_a"]["clean_mtime_ns"] != before["utt_a"]["clean_mtime_ns"]
    assert float(before["utt_c"]["si_sdr"]) == pytest.approx(5.0, abs=0.5)
    assert float(after["utt_c"]["si_sdr"]) == pytest.approx(-5.0, abs=0.5)
    # and the result is what a run without the cache gives
    plain_tsv, plain_scores, _ = run_score(capsys, data, decode)
    assert_same_tsv(plain_tsv, tsv)
    assert_same_scores(plain_scores, scores)


@pytest.mark.parametrize("garbage", [
    b"\xff\xfe\x00garbage\n",
    b"",
    b"utt\tnoisy_path\tsize\n",
    ("HEADER\nutt_a\tx\t1\t2\tc\t3\t4\t1.0\tnot-a-number"
     + "\t0.5" * (len(score.SE_NAMES) - 2) + "\n").encode(),
], ids=["binary", "empty", "old_header", "bad_value"])
def test_a_garbled_cache_warns_and_is_recomputed(scored_set, capsys, garbage):
    data, decode, cache = scored_set["data"], scored_set["without_enh"], scored_set["cache"]
    plain_tsv, plain_scores, _ = run_score(capsys, data, decode)
    cache.parent.mkdir()
    cache.write_bytes(garbage.replace(b"HEADER", score.CACHE_HEADER.encode()))
    tsv, scores, err = run_score(capsys, data, decode, cache)
    assert f"score: warning: {cache}: unreadable" in err
    assert reused(err, decode, cache, 0)
    assert_same_tsv(tsv, plain_tsv)
    assert_same_scores(plain_scores, scores)
    assert list(read_cache(cache)[1]) == list(UTTS)
    assert reused(run_score(capsys, data, decode, cache)[2], decode, cache, 4)


class InProcessPool:
    """A stand-in for ProcessPoolExecutor that runs the tasks here, so that a patched
    module (the fake DNSMOS below) is what scores them."""

    def __init__(self, max_workers, initializer, initargs):
        initializer(*initargs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, function, tasks, chunksize=1):
        return map(function, tasks)


def fake_dnsmos(signal, fs=16000):
    """Stands for the model (tested in test_metrics_dnsmos): a distinct value per signal."""
    rms = float(np.sqrt(np.mean(np.square(signal, dtype=np.float64))))
    return {"sig": 1.0 + rms, "bak": 2.0 + rms, "ovrl": 3.0 + rms}


def test_opt_in_dnsmos_scores_the_clean_reference_in_the_noisy_cache(scored_set, capsys,
                                                                     monkeypatch):
    from merit.metrics import dnsmos

    monkeypatch.setattr(dnsmos, "dnsmos_p835", fake_dnsmos)
    monkeypatch.setattr(score, "ProcessPoolExecutor", InProcessPool)
    data, audio, cache = scored_set["data"], scored_set["audio"], scored_set["cache"]
    decode, no_enh = scored_set["with_enh"], scored_set["without_enh"]
    extra = ["--extra_metrics", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"]
    argv = ["--data_dir", str(data), "--nj", "1", "--noisy_cache", str(cache)]
    assert score.main(argv + ["--decode_dir", str(decode)] + extra) == 0
    scores = json.loads((decode / "scores.json").read_text())["se"]
    names = list(score.SE_NAMES) + ["dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"]
    assert list(scores) == ["count", "clean", "noisy", "enhanced"]
    assert list(scores["clean"]) == names[-3:]  # the non-intrusive metrics only
    assert list(scores["noisy"]) == list(scores["enhanced"]) == names
    for which, part in (("clean", "clean"), ("noisy", "noisy"), ("enhanced", "enh")):
        rms = [fake_dnsmos(score.read_audio(audio / f"{u}_{part}.wav"))["ovrl"] for u in UTTS]
        assert scores[which]["dnsmos_ovrl"] == pytest.approx(np.mean(rms), rel=1e-12), which
    assert scores["clean"]["dnsmos_ovrl"] < scores["enhanced"]["dnsmos_ovrl"] \
        < scores["noisy"]["dnsmos_ovrl"]  # the fake: louder is "better"
    columns = (decode / "per_utt_se.tsv").read_text().splitlines()[0].split("\t")
    assert columns == ["utt"] + [f"clean_{m}" for m in names[-3:]] + [
        f"{which}_{m}" for which in ("noisy", "enhanced") for m in names]
    header, rows = read_cache(cache)
    assert header[7:] == names + [f"clean_{m}" for m in names[-3:]]
    # a run of the default metrics reads the wider cache, computes nothing, keeps its own
    with monkeypatch.context() as patch:
        no_recompute(patch)
        assert score.main(argv + ["--decode_dir", str(no_enh)]) == 0
    assert reused(capsys.readouterr().err, no_enh, cache, 4)
    assert list(json.loads((no_enh / "scores.json").read_text())["se"]) == ["count", "noisy"]
    assert read_cache(cache)[0][7:] == list(score.SE_NAMES)
    # asked for DNSMOS again, that cache lacks it: computed again, said so
    assert score.main(argv + ["--decode_dir", str(no_enh)] + extra) == 0
    err = capsys.readouterr().err
    assert f"{cache}: no dnsmos_sig, dnsmos_bak, dnsmos_ovrl, clean_dnsmos_sig" in err
    assert reused(err, no_enh, cache, 0)
    assert read_cache(cache)[1]["utt_a"]["clean_dnsmos_bak"] == repr(
        fake_dnsmos(score.read_audio(audio / "utt_a_clean.wav"))["bak"])
