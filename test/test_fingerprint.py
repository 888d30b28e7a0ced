"""merit.utils.fingerprint: what changes a step's input fingerprint and what does not."""
import os

from merit.utils.fingerprint import fingerprint, main


def make_set(root):
    """A data dir whose wav.scp lists two files, plus an ark-style and a pipe entry."""
    audio = root / "audio"
    audio.mkdir(parents=True)
    for name in ("a", "b"):
        (audio / f"{name}.wav").write_bytes(b"RIFF" + name.encode() * 100)
    data = root / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"a {audio / 'a.wav'}\nb {audio / 'b.wav'}\n")
    (data / "utt2emo").write_text("a N\nb H\n")
    (data / "feats.scp").write_text(f"a {audio / 'a.wav'}:12\nb sox x.wav -t wav - |\n")
    return data, audio


def test_a_listed_file_rewritten_changes_the_fingerprint(tmp_path):
    data, audio = make_set(tmp_path)
    first = fingerprint(data)
    assert fingerprint(data) == first  # deterministic
    wav = audio / "b.wav"
    stat = wav.stat()
    wav.write_bytes(b"RIFF" + b"c" * 100)  # same size, new content and mtime
    os.utime(wav, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert fingerprint(data) != first


def test_the_file_behind_an_ark_offset_is_stat_ed(tmp_path):
    data, audio = make_set(tmp_path)
    (data / "wav.scp").unlink()  # a.wav is now listed only as a.wav:12 in feats.scp
    first = fingerprint(data)
    stat = (audio / "a.wav").stat()
    os.utime(audio / "a.wav", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert fingerprint(data) != first


def test_list_content_counts_but_markers_and_later_caches_do_not(tmp_path):
    data, _ = make_set(tmp_path)
    first = fingerprint(data)
    (data / "simulate.done").write_text("settings 0\n")
    (data / "noisy_se_scores.tsv").write_text("utt\tpesq\n")
    (data / "oracle_se_scores_0123abcd.tsv").write_text("utt\toracle_mask_pesq\n")
    (data / "log").mkdir()
    (data / "log" / "x.log").write_text("job output")
    assert fingerprint(data) == first
    (data / "utt2emo").write_text("a N\nb A\n")
    assert fingerprint(data) != first


def test_one_file_and_absent_paths(tmp_path, capsys):
    data, audio = make_set(tmp_path)
    scp = data / "wav.scp"
    first = fingerprint(scp)
    assert first != fingerprint(data) and len(first) == 16
    os.utime(audio / "a.wav", ns=(1, 1))
    assert fingerprint(scp) != first
    assert fingerprint(tmp_path / "nothing") == "absent"
    assert main([str(scp), str(tmp_path / "nothing")]) == 0
    assert capsys.readouterr().out == f"{scp} {fingerprint(scp)}\n{tmp_path / 'nothing'} absent\n"


def test_a_dump_part_is_redone_when_its_audio_changed(tmp_path):
    """dump_ssl keys a part on the data dir's fingerprint, not only its path: a part made
    from audio that stage 2 rewrote since is redone, even inside a killed run."""
    from types import SimpleNamespace

    from merit.bin.dump_ssl import settings

    data, audio = make_set(tmp_path)
    args = SimpleNamespace(upstream="fbank", upstream_ckpt=None, layers=None, dtype="float16")
    before = settings(args, data)
    os.utime(audio / "a.wav", ns=(1, 1))
    assert settings(args, data) != before
