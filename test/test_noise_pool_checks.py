"""Noise pools, the checks of issue 14: unusable noise files (silent, too short) are named
or skipped at stage 1, the same clip never sits in two pools (by decoded samples or by
Freesound id), and segments of one source recording stay in one pool."""
import hashlib
import logging
import shutil
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fake_corpora import RATE
from merit.bin import prep_noise
from merit.data import noise_pools
from merit.data.datadir import read_kv
from merit.data.noise_pools import CorpusSpec, POOLS

REPO = Path(__file__).resolve().parent.parent


def noise(path: Path, seconds: float = 1.0, dbfs: float = -25.0,
          subtype: str = "PCM_16") -> Path:
    """White noise at ``dbfs`` RMS, its content seeded by its file name (distinct names
    give distinct clips); -inf dBFS gives digital silence."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    wav = rng.standard_normal(int(round(seconds * RATE)))
    wav = wav / np.sqrt(np.mean(wav ** 2)) * 10 ** (dbfs / 20) if np.isfinite(dbfs) else 0 * wav
    sf.write(str(path), wav.astype(np.float32), RATE, subtype=subtype)
    return path


def copy_as_flac(src: Path, dst: Path) -> Path:
    """The same samples in another container under another name."""
    wav, rate = sf.read(str(src), dtype="int16")
    dst.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(dst), wav, rate, subtype="PCM_16", format="FLAC")
    return dst


def touch(folder: Path, names) -> None:
    """Zero-byte stand-ins: enough for listing, splitting and name-based checks."""
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).touch()


def expected_u(seed, corpus, key) -> float:
    """The documented split hash, written out independently of the module."""
    return int(hashlib.sha1(f"{seed}:{corpus}/{key}".encode()).hexdigest()[:16], 16) / 2 ** 64


def pool_by_u(u, fractions=(0.8, 0.1, 0.1)) -> str:
    return "train" if u < fractions[0] else "dev" if u < sum(fractions[:2]) else "test_seen"


# ---------------------------------------------------------------- silent and short noise

@pytest.fixture
def with_bad_noise(tmp_path):
    """A seen corpus of 6 good clips plus an all-zero one, a -90 dBFS one, a 0.1 s one and
    four 0.3 s ones; an unseen corpus of 2 good clips."""
    seen, unseen = tmp_path / "seen", tmp_path / "unseen"
    for i in range(6):
        noise(seen / f"good{i}.wav")
    bad = {"zeros": noise(seen / "zeros.wav", 2.0, dbfs=-np.inf),
           "hiss": noise(seen / "hiss.wav", 2.0, dbfs=-90.0, subtype="FLOAT"),
           "blip": noise(seen / "blip.wav", 0.1)}
    for i in range(4):
        bad[f"short{i}"] = noise(seen / f"short{i}.wav", 0.3)
    noise(unseen / "street.wav")
    noise(unseen / "rain.wav")
    return ["--seen", f"office=folder:{seen}", "--unseen", f"street=folder:{unseen}"], bad


def test_silent_and_short_noise_stop_stage_1_naming_each_file(with_bad_noise, tmp_path,
                                                               capsys):
    args, bad = with_bad_noise
    assert prep_noise.main(args + ["--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("prep_noise: error: 7 of 15 noise files cannot be used")
    shown = [line for line in err.splitlines() if line.startswith("  /")]
    assert len(shown) == 5 and "  ... and 2 more" in err       # the first five, C order
    assert f"  {bad['blip']}: 0.100 s long, shorter than --min_noise_seconds 1" in err
    assert f"  {bad['hiss']}: silent: RMS -90.0 dBFS, below --silence_dbfs -80" in err
    assert "--skip_bad true" in err and "--min_noise_seconds" in err
    assert not (tmp_path / "out").exists()
    # the all-zero file sorts after the five shown; alone it is named too
    for name in ("blip", "hiss", *(f"short{i}" for i in range(4))):
        bad[name].unlink()
    assert prep_noise.main(args + ["--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"  {bad['zeros']}: silent: every sample is zero" in err
    assert "1 of 9 noise files cannot be used" in err


def test_skip_bad_leaves_them_out_with_a_count_and_a_list(with_bad_noise, tmp_path, caplog):
    args, bad = with_bad_noise
    with caplog.at_level(logging.INFO):
        assert prep_noise.main(args + ["--out", str(tmp_path / "out"), "--skip_bad",
                                       "true"]) == 0
    pools = {p: read_kv(tmp_path / "out" / f"{p}.scp") for p in POOLS}
    used = {path for pool in pools.values() for path in pool.values()}
    assert len(used) == 8 and not used & {str(p) for p in bad.values()}
    rows = [line.split("\t") for line in
            (tmp_path / "out" / "skipped.tsv").read_text().splitlines()]
    assert rows[0] == ["path", "kind", "why"]
    assert sorted((r[0], r[1]) for r in rows[1:]) == sorted(
        (str(p), "silent" if name in ("zeros", "hiss") else "short")
        for name, p in bad.items())
    assert "skipped 7 unusable noise file(s) (short 5, silent 2)" in caplog.text
    assert str(bad["blip"]) in caplog.text


def test_the_floors_are_options(with_bad_noise, tmp_path, capsys):
    args, bad = with_bad_noise
    assert prep_noise.main(args + ["--out", str(tmp_path / "out"), "--min_noise_seconds",
                                   "0.05", "--silence_dbfs", "-100"]) == 1
    err = capsys.readouterr().err
    assert "1 of 15 noise files cannot be used" in err       # digital silence, at any floor
    assert f"{bad['zeros']}: silent: every sample is zero" in err
    bad["zeros"].unlink()
    assert prep_noise.main(args + ["--out", str(tmp_path / "out"), "--min_noise_seconds",
                                   "0.05", "--silence_dbfs", "-100"]) == 0


def test_the_recipe_script_passes_every_check_option(with_bad_noise, tmp_path,
                                                           run_tool):
    args, bad = with_bad_noise
    recipe = tmp_path / "recipe"
    (recipe / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "egs/TEMPLATE/merit/scripts/prep_noise.sh", recipe / "scripts")
    (recipe / "utils").symlink_to(REPO / "utils")
    (recipe / "db.sh").write_text("")
    (recipe / "path.sh").write_text(f"export PATH={Path(sys.executable).parent}:$PATH\n"
                                    f"export PYTHONPATH={REPO}\nexport LC_ALL=C\n")
    command = ["bash", "scripts/prep_noise.sh", "--seen_corpora", args[1],
               "--unseen_corpora", args[3]]
    # every check option passes through, and the regex's * and [ ] are not globbed
    done = run_tool(command + ["--skip_bad", "true", "--min_noise_seconds", "0.05",
                               "--silence_dbfs", "-100", "--recording_regex",
                               r"office=^(good)[0-9]*\.wav$", "--nj", "2"], cwd=recipe)
    assert done.returncode == 0, done.stderr
    assert "skipped 1 unusable noise file(s) (silent 1)" in done.stderr
    assert "corpus office: 12 files in 7 recordings" in done.stderr
    rows = [line.split("\t") for line in
            (recipe / "data" / "noise" / noise_pools.SPLIT_TSV).read_text().splitlines()]
    assert len({pool for nid, _, pool, _ in rows if nid.startswith("office-good")}) == 1


# ---------------------------------------------------------------- duplicates across pools

def build(seen, unseen, **kwargs):
    return noise_pools.build_split(seen, unseen, **kwargs)


def pools_of(split, *corpora):
    return {f.noise_id: f.pool for f in split.files if f.corpus in corpora}


def test_a_clip_in_a_seen_pool_is_removed_from_test_unseen(tmp_path):
    """The same samples in another container and under another name are one clip; the
    test pool loses it, train/dev/test_seen keep theirs, and the pairs are written out."""
    seen = [noise(tmp_path / "crss" / f"hum{i}.wav") for i in range(8)]
    copy = copy_as_flac(seen[5], tmp_path / "dns" / "fan_2.flac")
    noise(tmp_path / "dns" / "door_1.wav")
    split = noise_pools.prepare([CorpusSpec("crss", "folder", str(tmp_path / "crss"))],
                                [CorpusSpec("dns", "dns", str(tmp_path / "dns"))],
                                tmp_path / "out")
    assert split.pool("test_unseen") == {"dns-door_1": str(tmp_path / "dns" / "door_1.wav")}
    kept_pool = next(f.pool for f in split.files if f.path == str(seen[5]))
    rows = [line.split("\t") for line in
            (tmp_path / "out" / "duplicates.tsv").read_text().splitlines()]
    assert rows[0] == ["noise_id", "pool", "path", "same_as", "same_as_pool", "same_as_path",
                       "reason"]
    assert rows[1][:6] == ["dns-fan_2", "test_unseen", str(copy), "crss-hum5", kept_pool,
                           str(seen[5])]
    assert rows[1][6].startswith("same samples (sha1 ") and len(rows) == 2
    assert "dns-fan_2" not in (tmp_path / "out" / noise_pools.SPLIT_TSV).read_text()


def test_duplicates_between_seen_corpora_stay_in_the_earliest_pool(tmp_path):
    """Copies of half a corpus's clips in another seen corpus: whichever pools they hash
    to, no clip is left in two pools, and each is kept in the first of train, dev,
    test_seen."""
    originals = [noise(tmp_path / "a" / f"a{i:02d}.wav") for i in range(30)]
    for i in range(30):
        if i < 15:
            copy_as_flac(originals[i], tmp_path / "b" / f"b{i:02d}.flac")
        else:
            noise(tmp_path / "b" / f"b{i:02d}.flac")
    noise(tmp_path / "un" / "u.wav")
    a, b = (CorpusSpec(c, "folder", str(tmp_path / c)) for c in "ab")
    unseen = [CorpusSpec("un", "folder", str(tmp_path / "un"))]
    alone = {c.name: pools_of(build([c], unseen), c.name) for c in (a, b)}  # before de-dup
    split = build([a, b], unseen)
    expected = {}
    for i in range(30):
        ida, idb = f"a-a{i:02d}", f"b-b{i:02d}"
        pa, pb = alone["a"][ida], alone["b"][idb]
        if i >= 15 or POOLS.index(pa) <= POOLS.index(pb):
            expected[ida] = pa
        if i >= 15 or POOLS.index(pb) <= POOLS.index(pa):
            expected[idb] = pb
    assert pools_of(split, "a", "b") == expected
    assert 0 < len(split.duplicates) == 60 - len(expected) < 15
    assert all(d.kept.pool != d.removed.pool for d in split.duplicates)


def test_freesound_ids_in_file_names_are_one_clip(tmp_path):
    """FSD50K names its clips <Freesound id>.wav; DNS Challenge noise names chunks of a
    Freesound clip <label>_Freesound_validated_<id>_<chunk>; both name the same clip."""
    touch(tmp_path / "fsd" / "FSD50K.dev_audio", ["123456.wav", "7.wav", "8.wav", "9.wav"])
    touch(tmp_path / "dns", ["door_Freesound_validated_123456_0.wav",
                             "door_Freesound_validated_123456_3.wav",
                             "fan_Freesound_validated_7000_1.wav",     # another clip
                             "munching_Freesound_validated_B32_Chips_ebrahim_10.wav",
                             "wntLte49djU.wav"])                     # AudioSet: no id
    touch(tmp_path / "street", ["123456.wav", "9__user__rain.wav"])  # digits alone: no id
    split = build([CorpusSpec("fsd", "fsd50k", str(tmp_path / "fsd"))],
                  [CorpusSpec("dns", "dns", str(tmp_path / "dns")),
                   CorpusSpec("street", "folder", str(tmp_path / "street"))],
                  check_audio=False)
    assert sorted(split.pool("test_unseen")) == [
        "dns-fan_Freesound_validated_7000_1",
        "dns-munching_Freesound_validated_B32_Chips_ebrahim_10", "dns-wntLte49djU",
        "street-123456"]
    removed = {(d.removed.noise_id, d.kept.noise_id, d.reason) for d in split.duplicates}
    assert removed == {
        ("dns-door_Freesound_validated_123456_0", "fsd-FSD50K.dev_audio-123456",
         "Freesound id 123456"),
        ("dns-door_Freesound_validated_123456_3", "fsd-FSD50K.dev_audio-123456",
         "Freesound id 123456"),
        ("street-9__user__rain", "fsd-FSD50K.dev_audio-9", "Freesound id 9")}


def test_a_test_pool_left_empty_by_duplicates_is_an_error_naming_them(tmp_path):
    seen = [noise(tmp_path / "crss" / f"hum{i}.wav") for i in range(4)]
    copy_as_flac(seen[2], tmp_path / "dns" / "copy.flac")
    with pytest.raises(ValueError) as err:
        build([CorpusSpec("crss", "folder", str(tmp_path / "crss"))],
              [CorpusSpec("dns", "dns", str(tmp_path / "dns"))])
    message = str(err.value)
    assert message.startswith("noise pool test_unseen would be empty: its 1 file(s) are "
                              "the same clips as files in earlier pools")
    assert f"dns-copy ({tmp_path / 'dns' / 'copy.flac'}) is crss-hum2" in message
    assert "duplicates.tsv" not in message


# ---------------------------------------------------------------- source recordings

def segmented(folder: Path, recordings=8, segments=5):
    names = [f"rec{chr(65 + r)}_{s:04d}.wav" for r in range(recordings) for s in range(segments)]
    touch(folder, names)
    touch(folder.parent / "un", ["u.wav"])
    return names


def pools_by_recording(split, corpus, recording_of):
    found = {}
    for f in split.files:
        if f.corpus == corpus:
            found.setdefault(recording_of(f.rel), set()).add(f.pool)
    return found


def test_recording_regex_keeps_the_segments_of_a_recording_in_one_pool(tmp_path):
    segmented(tmp_path / "seg")
    unseen = [CorpusSpec("un", "folder", str(tmp_path / "un"))]
    regex = r"^(.*)_\d+\.wav$"
    plain_rule = 0
    for seed in range(1, 7):
        split = build([CorpusSpec("seg", "folder", str(tmp_path / "seg"))], unseen, seed=seed,
                      check_audio=False, recording_regex={"seg": regex})
        got = pools_by_recording(split, "seg", lambda rel: rel.split("_")[0])
        assert len(got) == 8 and all(len(pools) == 1 for pools in got.values()), got
        hashed = {rec: pool_by_u(expected_u(seed, "seg", rec)) for rec in got}
        if len(set(hashed.values())) == 3:            # no pool to fill: the plain rule
            assert {rec: pools.pop() for rec, pools in got.items()} == hashed
            plain_rule += 1
    assert plain_rule
    plain = build([CorpusSpec("seg", "folder", str(tmp_path / "seg"))], unseen,
                  check_audio=False)
    spread = pools_by_recording(plain, "seg", lambda rel: rel.split("_")[0])
    assert any(len(pools) > 1 for pools in spread.values())   # what the regex prevents


def test_one_folder_per_recording(tmp_path):
    touch(tmp_path / "crss", [f"take{r}/part{s}.wav" for r in range(6) for s in range(4)]
          + ["loose.wav"])
    touch(tmp_path / "un", ["u.wav"])
    split = build([CorpusSpec("crss", "folder", str(tmp_path / "crss"))],
                  [CorpusSpec("un", "folder", str(tmp_path / "un"))], check_audio=False,
                  recording_regex={"crss": r"^(.*)/"})
    got = pools_by_recording(split, "crss", lambda rel: rel.rpartition("/")[0] or rel)
    assert len(got) == 7 and all(len(p) == 1 for p in got.values())
    loose = next(f for f in split.files if f.rel == "loose.wav")     # its own recording
    assert loose.u == pytest.approx(expected_u(1, "crss", "loose.wav"))


def test_dns_chunks_of_one_freesound_clip_stay_together_in_a_seen_corpus(tmp_path):
    touch(tmp_path / "dns", [f"{label}_Freesound_validated_{fid}_{c}.wav"
                             for fid, label in ((11, "door"), (22, "fan"), (33, "door"),
                                                (44, "fan"), (55, "door"))
                             for c in range(4)] + ["wntLte49djU.wav"])
    touch(tmp_path / "un", ["u.wav"])
    split = build([CorpusSpec("dns", "dns", str(tmp_path / "dns"))],
                  [CorpusSpec("un", "folder", str(tmp_path / "un"))], check_audio=False)
    got = pools_by_recording(split, "dns", lambda rel: rel.split("_")[-2] if "_" in rel else rel)
    assert len(got) == 6 and all(len(p) == 1 for p in got.values())


@pytest.mark.parametrize("regex, message", [
    ({"nope": "x"}, "--recording_regex names corpus nope, which is not a seen corpus "
                    "(seen: seg)"),
    ({"seg": "rec(["}, "--recording_regex for seg: 'rec([' is not a regular expression"),
    ({"seg": r"^(rec[AB])"}, "seen corpus seg: 2 recordings (by --recording_regex "
                             "'^(rec[AB])'"),
])
def test_recording_regex_errors(tmp_path, regex, message):
    touch(tmp_path / "seg", ["recA_1.wav", "recA_2.wav", "recB_1.wav"])
    touch(tmp_path / "un", ["u.wav"])
    with pytest.raises(ValueError) as err:
        build([CorpusSpec("seg", "folder", str(tmp_path / "seg"))],
              [CorpusSpec("un", "folder", str(tmp_path / "un"))], check_audio=False,
              recording_regex=regex)
    assert message in str(err.value)


def test_recording_regex_from_the_command_line(tmp_path):
    segmented(tmp_path / "seg")
    assert prep_noise.main(["--seen", f"seg=folder:{tmp_path / 'seg'}",
                            "--unseen", f"un=folder:{tmp_path / 'un'}",
                            "--recording_regex", r"seg=^(.*)_\d+\.wav$",
                            "--check_audio", "false", "--out", str(tmp_path / "out")]) == 0
    pools = {}
    for pool in POOLS[:3]:
        for nid in read_kv(tmp_path / "out" / f"{pool}.scp"):
            pools.setdefault(nid.split("_")[0], set()).add(pool)
    assert len(pools) == 8 and all(len(p) == 1 for p in pools.values())
