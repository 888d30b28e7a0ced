"""Noise pools from noise corpora: layouts, ids, the hash split, errors, the CLI and script."""
import hashlib
import os
import shutil
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fake_corpora import RATE, make_noise_dir
from merit.bin import prep_noise
from merit.data import noise_pools
from merit.data.datadir import c_sorted, read_kv
from merit.data.noise_pools import CorpusSpec, ListedSpec, POOLS

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "egs/TEMPLATE/merit/scripts/prep_noise.sh"
MINI_EMO_DOWNLOADS = REPO / "egs/mini_emo/merit/downloads"


def tiny(path: Path, seed: int = None, seconds: float = 1.0, fmt: str = None) -> Path:
    """A 1 s (the shortest usable), 16 kHz noise file (format from the suffix unless
    given), its samples seeded by its name unless ``seed`` is given: copies of one clip
    in two pools would be de-duplicated."""
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = zlib.crc32(path.name.encode()) if seed is None else seed
    wav = np.random.default_rng(seed).standard_normal(int(seconds * RATE)).astype(np.float32)
    sf.write(str(path), 0.1 * wav, RATE, format=fmt)
    return path


def tiny_files(folder: Path, names) -> list:
    return [tiny(folder / name) for name in names]


def empty_files(folder: Path, names) -> None:
    """Zero-byte stand-ins: enough for listing and splitting without check_audio."""
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).touch()


def expected_pool(seed, corpus, rel, fractions=(0.8, 0.1, 0.1)) -> str:
    """The documented rule, written out independently of the module."""
    u = int(hashlib.sha1(f"{seed}:{corpus}/{rel}".encode()).hexdigest()[:16], 16) / 2 ** 64
    if u < fractions[0]:
        return "train"
    return "dev" if u < fractions[0] + fractions[1] else "test_seen"


def ids_and_rels(spec: CorpusSpec):
    return [(f.noise_id, f.rel) for f in noise_pools.list_corpus(spec, seed=1)]


# ---------------------------------------------------------------- layouts and ids

def test_dns_release_root_and_noise_folder_give_the_same_files(tmp_path):
    noise = tmp_path / "DNS" / "datasets" / "noise"
    tiny_files(noise, ["door_1.wav", "Babble 2.wav", "fan.flac"])
    tiny(tmp_path / "DNS" / "datasets" / "clean" / "speech.wav")   # not noise
    from_root = ids_and_rels(CorpusSpec("dns", "dns", str(tmp_path / "DNS")))
    assert from_root == ids_and_rels(CorpusSpec("dns", "dns", str(noise)))
    assert from_root == [("dns-Babble_2", "Babble 2.wav"), ("dns-door_1", "door_1.wav"),
                         ("dns-fan", "fan.flac")]
    full = tmp_path / "DNS4" / "datasets_fullband" / "noise_fullband"
    tiny_files(full, ["b.wav", "a.wav"])
    assert ids_and_rels(CorpusSpec("dns", "dns", str(tmp_path / "DNS4"))) == [
        ("dns-a", "a.wav"), ("dns-b", "b.wav")]


def test_musan_release_root_and_noise_folder_give_the_same_files(tmp_path):
    root = tmp_path / "musan"
    tiny_files(root / "noise" / "free-sound", ["noise-free-sound-0001.wav"])
    tiny_files(root / "noise" / "sound-bible", ["noise-sound-bible-0002.wav"])
    (root / "noise" / "free-sound" / "ANNOTATIONS").write_text("x\n")
    tiny(root / "speech" / "librivox" / "speech-0001.wav")               # not noise
    from_root = ids_and_rels(CorpusSpec("musan", "musan", str(root)))
    assert from_root == ids_and_rels(CorpusSpec("musan", "musan", str(root / "noise")))
    assert from_root == [("musan-free-sound-noise-free-sound-0001",
                          "free-sound/noise-free-sound-0001.wav"),
                         ("musan-sound-bible-noise-sound-bible-0002",
                          "sound-bible/noise-sound-bible-0002.wav")]


def test_fsd50k_takes_dev_and_eval_audio_only(tmp_path):
    tiny_files(tmp_path / "FSD50K.dev_audio", ["64760.wav", "100.wav"])
    tiny_files(tmp_path / "FSD50K.eval_audio", ["37199.wav"])
    tiny(tmp_path / "FSD50K.doc" / "stray.wav")
    assert ids_and_rels(CorpusSpec("freesound", "fsd50k", str(tmp_path))) == [
        ("freesound-FSD50K.dev_audio-100", "FSD50K.dev_audio/100.wav"),
        ("freesound-FSD50K.dev_audio-64760", "FSD50K.dev_audio/64760.wav"),
        ("freesound-FSD50K.eval_audio-37199", "FSD50K.eval_audio/37199.wav")]


def test_folder_is_recursive_c_sorted_and_skips_other_and_hidden_files(tmp_path):
    make_noise_dir(tmp_path / "cafe", n_files=2, seconds=0.2)
    tiny(tmp_path / "Street" / "bus stop.ogg")
    tiny(tmp_path / "b.FLAC", fmt="FLAC")
    tiny(tmp_path / "._b.wav")                                # macOS shadow file
    tiny(tmp_path / ".cache" / "x.wav")
    (tmp_path / "song.mp3").write_bytes(b"ID3")
    (tmp_path / "notes.txt").write_text("x")
    for layout in ("folder", "crss", "freesound"):
        got = ids_and_rels(CorpusSpec("crss", layout, str(tmp_path)))
        assert got == [("crss-Street-bus_stop", "Street/bus stop.ogg"), ("crss-b", "b.FLAC"),
                       ("crss-cafe-noise0", "cafe/noise0.wav"),
                       ("crss-cafe-noise1", "cafe/noise1.wav")]


@pytest.mark.parametrize("names", [["a.wav", "a.flac"], ["x/y.wav", "x-y.wav"]])
def test_colliding_ids_are_an_error_naming_both_files(tmp_path, names):
    empty_files(tmp_path / "c", names + ["z1.wav", "z2.wav"])
    empty_files(tmp_path / "un", ["u.wav"])
    message = error_of([CorpusSpec("c", "folder", str(tmp_path / "c"))],
                       [CorpusSpec("un", "folder", str(tmp_path / "un"))], check_audio=False)
    assert "noise id c-" in message
    assert all(str(tmp_path / "c" / n) in message for n in names), message


def test_ids_across_corpora_must_differ(tmp_path):
    empty_files(tmp_path / "a", ["b-c.wav", "1.wav", "2.wav"])
    empty_files(tmp_path / "ab", ["c.wav"])
    message = error_of([CorpusSpec("a", "folder", str(tmp_path / "a"))],
                       [CorpusSpec("a-b", "folder", str(tmp_path / "ab"))], check_audio=False)
    assert "noise id a-b-c" in message


# ---------------------------------------------------------------- the split

@pytest.fixture
def corpora(tmp_path):
    """Seen crss (folder, 24 files), seen freesound (fsd50k, 12), unseen dns (3)."""
    make_noise_dir(tmp_path / "crss" / "office", n_files=2, seconds=1.0)
    tiny_files(tmp_path / "crss", [f"{kind}/{kind}_{i:02d}.wav" for kind in ("car", "cafe")
                                   for i in range(11)])
    tiny_files(tmp_path / "fsd" / "FSD50K.dev_audio", [f"{i}.wav" for i in range(100, 110)])
    tiny_files(tmp_path / "fsd" / "FSD50K.eval_audio", ["7.wav", "8.wav"])
    tiny_files(tmp_path / "dns" / "datasets" / "noise", ["d1.wav", "d2.wav", "d3.wav"])
    seen = [CorpusSpec("crss", "folder", str(tmp_path / "crss")),
            CorpusSpec("freesound", "fsd50k", str(tmp_path / "fsd"))]
    unseen = [CorpusSpec("dns", "dns", str(tmp_path / "dns"))]
    return seen, unseen


def read_out(out: Path):
    pools = {pool: read_kv(out / f"{pool}.scp") for pool in POOLS}
    lines = (out / noise_pools.SPLIT_TSV).read_text().splitlines()
    return pools, lines


def test_pools_are_disjoint_complete_sorted_and_unseen_only_in_test_unseen(corpora, tmp_path):
    seen, unseen = corpora
    split = noise_pools.prepare(seen, unseen, tmp_path / "noise", seed=1)
    pools, lines = read_out(tmp_path / "noise")
    all_ids = [i for pool in pools.values() for i in pool]
    assert len(all_ids) == len(set(all_ids)) == 24 + 12 + 3
    assert all(pools[p] for p in POOLS)
    assert sorted(pools["test_unseen"]) == ["dns-d1", "dns-d2", "dns-d3"]
    assert not any(i.startswith("dns-") for p in POOLS[:3] for i in pools[p])
    for corpus in ("crss", "freesound"):          # each seen corpus reaches each seen pool
        assert all(any(i.startswith(corpus + "-") for i in pools[p]) for p in POOLS[:3])
    for pool in POOLS:
        text = (tmp_path / "noise" / f"{pool}.scp").read_text().splitlines()
        assert text == c_sorted(text) and text
        assert all(os.path.isabs(p) and os.path.isfile(p) for p in pools[pool].values())
    assert lines[0] == "noise_id\tcorpus\tpool\tpath"
    rows = [line.split("\t") for line in lines[1:]]
    assert [r[0] for r in rows] == c_sorted(all_ids)
    assert all(pools[pool][nid] == path for nid, _, pool, path in rows)
    assert {r[1] for r in rows if r[2] == "test_unseen"} == {"dns"}
    counts = split.counts()
    assert sum(n for (c, _), (n, _) in counts.items() if c == "crss") == 24
    hours = counts[("dns", "test_unseen")][1]
    assert hours == pytest.approx(3 * 1.0 / 3600)
    assert "(all)" in split.summary() and "test_unseen" in split.summary()
    assert not (tmp_path / "noise.tmp").exists() and not (tmp_path / "noise.old").exists()


def test_hash_split_follows_the_documented_rule_and_fractions(tmp_path):
    names = [f"clip{i:04d}.wav" for i in range(1000)]
    empty_files(tmp_path / "big", names)
    empty_files(tmp_path / "un", ["u.wav"])
    split = noise_pools.build_split([CorpusSpec("big", "folder", str(tmp_path / "big"))],
                                    [CorpusSpec("un", "folder", str(tmp_path / "un"))],
                                    seed=3, fractions="0.7,0.2,0.1", check_audio=False)
    got = {f.rel: f.pool for f in split.files if f.corpus == "big"}
    assert got == {n: expected_pool(3, "big", n, (0.7, 0.2, 0.1)) for n in names}
    share = {p: sum(v == p for v in got.values()) / len(names) for p in POOLS[:3]}
    assert share["train"] == pytest.approx(0.7, abs=0.04)
    assert share["dev"] == pytest.approx(0.2, abs=0.03)
    assert share["test_seen"] == pytest.approx(0.1, abs=0.02)
    assert all(f.seconds is None for f in split.files)
    assert "?" in split.summary()                     # hours not measured


def pools_of(split, corpus):
    return {f.noise_id: f.pool for f in split.files if f.corpus == corpus}


def test_split_is_reproducible_and_independent_of_order_and_other_corpora(tmp_path):
    names = [f"n{i:03d}.wav" for i in range(60)]
    empty_files(tmp_path / "fwd" / "a", names)
    empty_files(tmp_path / "rev" / "a", list(reversed(names)))     # other creation order
    empty_files(tmp_path / "other", [f"o{i}.wav" for i in range(20)])
    empty_files(tmp_path / "un", ["u.wav"])
    unseen = [CorpusSpec("un", "folder", str(tmp_path / "un"))]

    def split(root, extra=(), seed=1):
        seen = [CorpusSpec("a", "folder", str(root)), *extra]
        return noise_pools.build_split(seen, unseen, seed=seed, check_audio=False)

    base = pools_of(split(tmp_path / "fwd" / "a"), "a")
    assert pools_of(split(tmp_path / "fwd" / "a"), "a") == base
    assert pools_of(split(tmp_path / "rev" / "a"), "a") == base
    with_other = split(tmp_path / "fwd" / "a", [CorpusSpec("o", "folder", str(tmp_path / "other"))])
    assert pools_of(with_other, "a") == base
    assert pools_of(split(tmp_path / "fwd" / "a", seed=2), "a") != base
    assert sorted(base) == [f"a-n{i:03d}" for i in range(60)]       # ids from names only


@pytest.mark.parametrize("n_files", [3, 4, 5, 7, 9])
def test_small_seen_corpora_fill_every_pool_with_few_moves(tmp_path, n_files):
    for seed in range(1, 9):
        root = tmp_path / f"s{seed}"
        names = [f"f{i}.wav" for i in range(n_files)]
        empty_files(root, names)
        empty_files(tmp_path / "un", ["u.wav"])
        split = noise_pools.build_split([CorpusSpec("s", "folder", str(root))],
                                        [CorpusSpec("un", "folder", str(tmp_path / "un"))],
                                        seed=seed, check_audio=False)
        got = {f.rel: f.pool for f in split.files if f.corpus == "s"}
        assert set(got.values()) == set(POOLS[:3])
        hashed = {n: expected_pool(seed, "s", n) for n in names}
        empty_after_hash = 3 - len(set(hashed.values()))
        assert sum(got[n] != hashed[n] for n in names) == empty_after_hash
        again = noise_pools.build_split([CorpusSpec("s", "folder", str(root))],
                                        [CorpusSpec("un", "folder", str(tmp_path / "un"))],
                                        seed=seed, check_audio=False)
        assert {f.rel: f.pool for f in again.files if f.corpus == "s"} == got


def test_fallback_moves_the_file_nearest_to_the_empty_pool(tmp_path):
    # With fractions 0.98/0.01/0.01 three files almost surely all hash to train; then
    # dev takes the train file with the largest u, and test_seen (dev now has one file
    # only, so not from there) the largest u left in train.
    names = ["a.wav", "b.wav", "c.wav"]
    fractions = (0.98, 0.01, 0.01)
    seed = next(s for s in range(1, 100)
                if all(expected_pool(s, "s", n, fractions) == "train" for n in names))
    empty_files(tmp_path / "s", names)
    empty_files(tmp_path / "un", ["u.wav"])
    split = noise_pools.build_split([CorpusSpec("s", "folder", str(tmp_path / "s"))],
                                    [CorpusSpec("un", "folder", str(tmp_path / "un"))],
                                    seed=seed, fractions=fractions, check_audio=False)
    by_u = sorted((f for f in split.files if f.corpus == "s"), key=lambda f: f.u)
    assert [f.pool for f in by_u] == ["train", "test_seen", "dev"]


# ---------------------------------------------------------------- errors

def error_of(seen, unseen, **kwargs) -> str:
    with pytest.raises(ValueError) as err:
        noise_pools.build_split(seen, unseen, **kwargs)
    return str(err.value)


def test_corpus_errors_name_the_problem(corpora, tmp_path):
    seen, unseen = corpora
    message = error_of([CorpusSpec("x", "kaldi", str(tmp_path))], unseen)
    assert "unknown layout 'kaldi'" in message
    assert "dns, folder, freesound, fsd50k, musan" in message
    message = error_of([CorpusSpec("crss", "folder", str(tmp_path / "nowhere"))], unseen)
    assert "corpus crss" in message and str(tmp_path / "nowhere") in message
    (tmp_path / "empty" / "FSD50K.dev_audio").mkdir(parents=True)
    message = error_of([CorpusSpec("freesound", "fsd50k", str(tmp_path / "empty"))], unseen)
    assert "layout fsd50k" in message and "FSD50K.dev_audio/" in message
    message = error_of([CorpusSpec("m", "musan", str(tmp_path / "empty"))], unseen)
    assert "noise/free-sound/" in message
    assert "both seen and unseen" in error_of(seen + unseen, unseen)
    assert "given twice" in error_of(seen + seen[:1], unseen)
    assert "test_unseen" in error_of(seen, [])
    assert "--seen" in error_of([], unseen)
    assert "fractions" in error_of(seen, unseen, fractions="0.8,0.2")
    assert "fractions" in error_of(seen, unseen, fractions="0.9,0.1,0")
    empty_files(tmp_path / "two", ["a.wav", "b.wav"])
    message = error_of([CorpusSpec("two", "folder", str(tmp_path / "two"))], unseen,
                       check_audio=False)
    assert "seen corpus two" in message and "at least 3" in message
    assert "letters" in error_of([CorpusSpec("a b", "folder", str(tmp_path))], unseen)


def test_unreadable_audio_is_named_or_skipped(corpora, tmp_path):
    seen, unseen = corpora
    bad = tmp_path / "crss" / "car" / "broken.wav"
    bad.write_bytes(b"RIFF not really a wav")
    message = error_of(seen, unseen)
    assert message.startswith("1 of 40 noise files cannot be used:\n")
    assert f"  {bad}: unreadable noise audio (" in message
    split = noise_pools.build_split(seen, unseen, skip_bad=True)
    assert [(b.path, b.kind) for b in split.skipped] == [(str(bad), "unreadable")]
    assert all(f.path != str(bad) for f in split.files)
    assert "skipped 1 unusable noise file(s) (unreadable 1): skipped.tsv" in split.summary()
    unchecked = noise_pools.build_split(seen, unseen, check_audio=False)
    assert any(f.path == str(bad) for f in unchecked.files)


def test_old_output_is_replaced_whole_and_kept_on_error(corpora, tmp_path):
    seen, unseen = corpora
    out = tmp_path / "noise"
    out.mkdir()
    (out / "stale.scp").write_text("old\n")
    (tmp_path / "noise.tmp").mkdir()                   # leftover of a killed run
    (tmp_path / "noise.tmp" / "junk").write_text("x")
    noise_pools.prepare(seen, unseen, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{p}.scp" for p in POOLS] + [noise_pools.SPLIT_TSV, noise_pools.DUPLICATES_TSV,
                                        noise_pools.SKIPPED_TSV])
    assert not (tmp_path / "noise.tmp").exists() and not (tmp_path / "noise.old").exists()
    before = {p.name: p.read_text() for p in out.iterdir()}
    (tmp_path / "crss" / "car" / "broken.wav").write_bytes(b"junk")
    with pytest.raises(ValueError):
        noise_pools.prepare(seen, unseen, out)
    assert {p.name: p.read_text() for p in out.iterdir()} == before
    assert not (tmp_path / "noise.tmp").exists()


# ---------------------------------------------------------------- listed corpora

def write_table(path: Path, header, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(r) + "\n" for r in [header, *rows]))
    return path


@pytest.fixture
def listed(tmp_path):
    """A table in its own folder listing noise below its parent: every split/category
    pair, extra columns in any order, one absolute path and a trailing blank line."""
    root = tmp_path / "pkg"
    names = ["train/hum_01.wav", "train/Fan 2.flac", "dev/hum_02.wav",
             "test/hum_03.ogg", "test/siren_01.wav", "test/siren_02.wav"]
    tiny_files(root, names)
    elsewhere = tiny(tmp_path / "elsewhere" / "drill.wav")
    rows = [("x", "seen", names[0], "train"), ("x", "seen", names[1], "train"),
            ("y", "seen", names[2], "dev"), ("x", "seen", names[3], "test"),
            ("z", "unseen", names[4], "test"), ("z", "unseen", names[5], "test"),
            ("w", "seen", str(elsewhere), "dev")]
    table = write_table(root / "lists" / "noise.tsv", ("type", "category", "file", "split"), rows)
    table.write_text(table.read_text() + "\n")
    expected = {"train": {"hum_01": root / names[0], "Fan_2": root / names[1]},
                "dev": {"hum_02": root / names[2], "drill": elsewhere},
                "test_seen": {"hum_03": root / names[3]},
                "test_unseen": {"siren_01": root / names[4], "siren_02": root / names[5]}}
    return ListedSpec("pkg", str(table), str(root)), expected


def as_text(pools):
    return {p: {k: str(v) for k, v in pool.items()} for p, pool in pools.items()}


def test_listed_table_gives_each_file_its_pool_and_stem_id(listed, tmp_path):
    spec, expected = listed
    split = noise_pools.prepare([], [], tmp_path / "noise", listed=[spec])
    pools, lines = read_out(tmp_path / "noise")
    assert pools == as_text(expected)
    assert {f.corpus for f in split.files} == {"pkg"} and all(f.seconds for f in split.files)
    rows = [line.split("\t") for line in lines[1:]]
    assert [(r[0], r[1], r[2]) for r in rows] == sorted(
        ((i, "pkg", p) for p, pool in expected.items() for i in pool),
        key=lambda r: r[0].encode())
    for pool in POOLS:
        text = (tmp_path / "noise" / f"{pool}.scp").read_text().splitlines()
        assert text == c_sorted(text)


def test_listed_paths_start_at_the_table_folder_by_default(tmp_path):
    tiny_files(tmp_path / "t", ["a.wav", "b.wav", "c.wav", "d.wav"])
    table = write_table(tmp_path / "t" / "list.tsv", ("file", "split", "category"),
                        [("a.wav", "train", "seen"), ("b.wav", "dev", "seen"),
                         ("c.wav", "test", "seen"), ("d.wav", "test", "unseen")])
    spec = ListedSpec.parse(f"t={table}")
    assert spec == ListedSpec("t", str(table), str(tmp_path / "t"))
    split = noise_pools.build_split([], [], listed=[spec], check_audio=False)
    assert {p: split.pool(p) for p in POOLS} == {
        pool: {name: str(tmp_path / "t" / f"{name}.wav")}
        for pool, name in zip(POOLS, "abcd")}
    assert ListedSpec.parse(f"t={table}", "/else").root == "/else"


def test_listed_corpus_joins_hash_split_corpora(corpora, listed, tmp_path):
    seen, unseen = corpora
    spec, expected = listed
    alone = noise_pools.build_split(seen, unseen)
    both = noise_pools.build_split(seen, unseen, listed=[spec])
    for pool in POOLS:
        assert both.pool(pool) == {**alone.pool(pool), **as_text(expected)[pool]}


def test_mini_emo_table_gives_the_pools_of_its_split_and_category(tmp_path):
    """The shipped noise.tsv: ids are stems, test noise goes by category, paths start at
    downloads/; the scp files are the "<id> <path>" lines in C order."""
    table = MINI_EMO_DOWNLOADS / "noise" / "noise.tsv"
    spec = ListedSpec.parse(f"mini_emo={table}", str(MINI_EMO_DOWNLOADS))
    noise_pools.prepare([], [], tmp_path / "noise", listed=[spec])
    header, *rows = [line.split("\t") for line in table.read_text().splitlines()]
    assert header[:4] == ["file", "type", "split", "category"]
    expected = {pool: [] for pool in POOLS}
    for file, _, split, category, *_ in rows:
        pool = f"test_{category}" if split == "test" else split
        expected[pool].append(f"{Path(file).stem} {MINI_EMO_DOWNLOADS / file}")
    for pool in POOLS:
        assert expected[pool]
        assert (tmp_path / "noise" / f"{pool}.scp").read_text() == "".join(
            line + "\n" for line in sorted(expected[pool], key=str.encode))


@pytest.mark.parametrize("header, rows, message", [
    (("file", "split"), [("a.wav", "train")], "{table}: the header line has no column category"),
    (("file", "split", "category"), [("a.wav", "train", "unseen")],
     "{table} line 2: split 'train', category 'unseen'"),
    (("file", "split", "category"), [("b.wav", "dev", "seen"), ("a.wav", "valid", "seen")],
     "{table} line 3: split 'valid'"),
    (("file", "split", "category"), [("a.wav", "test")], "{table} line 2: 2 tab-separated fields"),
    (("file", "split", "category"), [("gone.wav", "test", "seen")],
     "{table} line 2: {tmp}/gone.wav does not exist"),
    (("file", "split", "category"), [], "{table}: lists no noise files"),
    (("file", "split", "category"),
     [("a.wav", "train", "seen"), ("b.wav", "dev", "seen"), ("c.wav", "test", "seen")],
     "noise pool test_unseen would be empty"),
    (("file", "split", "category"),
     [("a.wav", "train", "seen"), ("b.wav", "test", "seen"), ("c.wav", "test", "unseen")],
     "noise pool dev would be empty"),
    (("file", "split", "category"),
     [("a.wav", "train", "seen"), ("x/a.flac", "dev", "seen")], "noise id a is shared"),
])
def test_listed_table_errors_name_the_problem(tmp_path, header, rows, message):
    empty_files(tmp_path, ["a.wav", "b.wav", "c.wav", "x/a.flac"])
    table = write_table(tmp_path / "noise.tsv", header, rows)
    with pytest.raises(ValueError) as err:
        noise_pools.build_split([], [], listed=[ListedSpec.parse(f"n={table}")],
                                check_audio=False)
    assert message.format(table=table, tmp=tmp_path) in str(err.value)


def test_listed_spec_and_unreadable_table_errors():
    with pytest.raises(ValueError, match="expected NAME=TABLE"):
        ListedSpec.parse("noise.tsv")
    with pytest.raises(ValueError, match="cannot read its table /nowhere/noise.tsv"):
        noise_pools.build_split([], [], listed=[ListedSpec.parse("n=/nowhere/noise.tsv")])


# ---------------------------------------------------------------- the CLI

def cli_args(tmp_path, *extra):
    return ["--seen", f"crss=folder:{tmp_path / 'crss'}",
            "--seen", f"freesound=fsd50k:{tmp_path / 'fsd'}",
            "--unseen", f"dns=dns:{tmp_path / 'dns'}", "--out", str(tmp_path / "out"), *extra]


def test_cli_writes_the_pools(corpora, tmp_path, capsys):
    assert prep_noise.main(cli_args(tmp_path, "--seed", "1", "--fractions", "0.8,0.1,0.1",
                                    "--check_audio", "true", "--skip_bad", "false")) == 0
    pools, _ = read_out(tmp_path / "out")
    seen, unseen = corpora
    split = noise_pools.build_split(seen, unseen, seed=1)
    assert pools == {p: split.pool(p) for p in POOLS}
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("args, message", [
    (["--seen", "x=kaldi:{tmp}"],
     "unknown layout 'kaldi'; known layouts: crss, dns, folder, freesound, fsd50k, musan"),
    (["--seen", "crss:{tmp}"], "expected NAME=LAYOUT:PATH"),
    (["--seen", "crss=folder:{tmp}/nowhere"], "corpus crss: root {tmp}/nowhere does not exist"),
    (["--seen", "crss=folder:{tmp}/crss", "--seen", "dns=dns:{tmp}/dns"],
     "corpus dns is given as both seen and unseen"),
    (["--fractions", "1,0,0"], "fractions '1,0,0'"),
])
def test_cli_errors(corpora, tmp_path, capsys, args, message):
    args = [a.format(tmp=tmp_path) for a in args]
    base = ["--unseen", f"dns=dns:{tmp_path / 'dns'}", "--out", str(tmp_path / "out")]
    if not any(a.startswith("--seen") for a in args):
        base += ["--seen", f"crss=folder:{tmp_path / 'crss'}"]
    assert prep_noise.main(base + args) == 1
    err = capsys.readouterr().err
    assert err.startswith("prep_noise: error: ") and message.format(tmp=tmp_path) in err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- the recipe script

def recipe_copy(tmp_path, db: str) -> Path:
    """scripts/prep_noise.sh with utils/, a db.sh and a path.sh that uses this interpreter."""
    recipe = tmp_path / "recipe"
    (recipe / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, recipe / "scripts" / "prep_noise.sh")
    (recipe / "utils").symlink_to(REPO / "utils")
    (recipe / "db.sh").write_text(db)
    (recipe / "path.sh").write_text(f"export PATH={Path(sys.executable).parent}:$PATH\n"
                                    f"export PYTHONPATH={REPO}\nexport LC_ALL=C\n")
    return recipe


def test_recipe_script_defaults_and_missing_db_variable(corpora, tmp_path, run_tool):
    db = (f"CRSS_NOISE={tmp_path / 'crss'}\nFREESOUND_NOISE={tmp_path / 'fsd'}\n"
          f"DNS_NOISE={tmp_path / 'dns'}\nMUSAN=\n")
    recipe = recipe_copy(tmp_path, db)
    done = run_tool(["bash", "scripts/prep_noise.sh"], cwd=recipe)
    assert done.returncode == 0, done.stderr
    pools, lines = read_out(recipe / "data" / "noise")
    assert any("freesound-FSD50K.dev_audio-100" in pool for pool in pools.values())
    assert sorted(pools["test_unseen"]) == ["dns-d1", "dns-d2", "dns-d3"]
    seen, unseen = corpora
    assert pools == {p: noise_pools.build_split(seen, unseen).pool(p) for p in POOLS}
    failed = run_tool(["bash", "scripts/prep_noise.sh", "--seen_corpora", "crss musan"],
                      cwd=recipe)
    assert failed.returncode == 1 and "set MUSAN in db.sh" in failed.stderr
    (recipe / "db.sh").write_text(f"CRSS_NOISE={tmp_path / 'crss'}\n")
    failed = run_tool(["bash", "scripts/prep_noise.sh", "--seen_corpora", "crss"], cwd=recipe)
    assert failed.returncode == 1 and "set DNS_NOISE in db.sh" in failed.stderr


def test_cli_listed_corpus_with_its_root(listed, tmp_path):
    spec, expected = listed
    assert prep_noise.main(["--listed", f"pkg={spec.table}", "--listed_root", spec.root,
                            "--out", str(tmp_path / "out")]) == 0
    pools, _ = read_out(tmp_path / "out")
    assert pools == as_text(expected)


def test_recipe_script_takes_folders_and_tables_without_db_variables(corpora, listed,
                                                                      tmp_path, run_tool):
    recipe = recipe_copy(tmp_path, "MUSAN=\n")
    done = run_tool(["bash", "scripts/prep_noise.sh",
                     "--seen_corpora", f"office=folder:{tmp_path / 'crss'}",
                     "--unseen_corpora", f"street=dns:{tmp_path / 'dns'}"], cwd=recipe)
    assert done.returncode == 0, done.stderr
    pools, _ = read_out(recipe / "data" / "noise")
    split = noise_pools.build_split([CorpusSpec("office", "folder", str(tmp_path / "crss"))],
                                    [CorpusSpec("street", "dns", str(tmp_path / "dns"))])
    assert pools == {p: split.pool(p) for p in POOLS}
    assert sorted(pools["test_unseen"]) == ["street-d1", "street-d2", "street-d3"]
    spec, expected = listed
    done = run_tool(["bash", "scripts/prep_noise.sh", "--seen_corpora", "", "--unseen_corpora",
                     "", "--listed_corpora", f"pkg={spec.table}", "--listed_root", spec.root,
                     "--out", "data/listed"], cwd=recipe)
    assert done.returncode == 0, done.stderr
    pools, _ = read_out(recipe / "data" / "listed")
    assert pools == as_text(expected)
    failed = run_tool(["bash", "scripts/prep_noise.sh", "--seen_corpora", "office"], cwd=recipe)
    assert failed.returncode == 1
    assert "unknown noise corpus 'office'" in failed.stderr and "NAME=LAYOUT:PATH" in failed.stderr
