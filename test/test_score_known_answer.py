"""merit.bin.score against answers worked out by hand: SER from a written-out
confusion matrix, SE from enhanced files whose scores are known."""
import json

import numpy as np
import pytest
import soundfile as sf

from fake_corpora import RATE, speechlike
from merit.bin import score

UTTS = [f"utt{i:02d}" for i in range(1, 11)]
REF = "AAAASSHHNN"
HYP = "AAASSNAHNN"
# rows: reference A S H N, columns: hypothesis A S H N
CONFUSION = [[3, 1, 0, 0],
             [0, 1, 0, 1],
             [1, 0, 1, 0],
             [0, 0, 0, 2]]
# enhanced output: the clean signal, the noisy input unchanged, clean + noise at 10 dB
ORACLE, PASSTHROUGH, TEN_DB = UTTS[:4], UTTS[4:7], UTTS[7:]
NOISY_SNR, ENHANCED_SNR = 0.0, 10.0


def add_noise(clean, snr_db, seed):
    """clean + white noise at ``snr_db``, the noise zero-mean and orthogonal to the
    zero-mean clean signal: its SI-SDR is ``snr_db`` up to float32 rounding."""
    speech = clean - clean.mean()
    noise = np.random.default_rng(seed).standard_normal(clean.shape[0])
    noise -= noise.mean()
    noise -= (noise @ speech) / (speech @ speech) * speech
    noise *= np.sqrt((speech @ speech) / (noise @ noise) / 10 ** (snr_db / 10))
    return (clean + noise).astype(np.float32)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """Decode dir of one ``score.main`` run over 10 one-second utterances."""
    root = tmp_path_factory.mktemp("score")
    data, decode, audio = root / "data" / "test1_snr0", root / "exp" / "decode_test1_snr0", root / "audio"
    for directory in (data, decode, audio):
        directory.mkdir(parents=True)
    wav_scp, spk1_scp, enhanced_scp = data / "wav.scp", data / "spk1.scp", decode / "enhanced.scp"
    scp = {wav_scp: "", spk1_scp: "", enhanced_scp: ""}
    for i, utt in enumerate(UTTS):
        clean = speechlike(1.0, 100 + 15 * i, seed=i)
        wavs = {"clean": clean, "noisy": add_noise(clean, NOISY_SNR, 100 + i),
                "enh": clean if utt in ORACLE else add_noise(clean, ENHANCED_SNR, 200 + i)}
        for name, wav in wavs.items():
            sf.write(str(audio / f"{utt}_{name}.wav"), wav, RATE, subtype="FLOAT")
        enhanced = "noisy" if utt in PASSTHROUGH else "enh"
        scp[spk1_scp] += f"{utt} {audio / f'{utt}_clean.wav'}\n"
        scp[wav_scp] += f"{utt} {audio / f'{utt}_noisy.wav'}\n"
        scp[enhanced_scp] += f"{utt} {audio / f'{utt}_{enhanced}.wav'}\n"
    for path, text in scp.items():
        path.write_text(text)
    (data / "utt2emo").write_text("".join(f"{u} {e}\n" for u, e in zip(UTTS, REF)))
    (decode / "utt2emo_hyp").write_text("".join(f"{u} {e}\n" for u, e in zip(UTTS, HYP)))
    (decode / "classes").write_text("A S H N\n")
    assert score.main(["--data_dir", str(data), "--decode_dir", str(decode)]) == 0
    return decode


def per_utt_se(decode):
    """{utt: {column: value}} from per_utt_se.tsv."""
    header, *lines = (decode / "per_utt_se.tsv").read_text().splitlines()
    columns = header.split("\t")[1:]
    return {line.split("\t")[0]: dict(zip(columns, map(float, line.split("\t")[1:])))
            for line in lines}


def test_ser_scores_from_the_written_out_confusion(scored):
    ser = json.loads((scored / "scores.json").read_text())["ser"]
    assert ser["confusion"] == CONFUSION
    assert ser["count"] == 10
    assert ser["accuracy"] == pytest.approx(7 / 10)
    assert ser["uar"] == pytest.approx((3 / 4 + 1 / 2 + 1 / 2 + 2 / 2) / 4)
    # F1 = 2·tp / (predicted + reference): A 6/8, S 2/4, H 2/3, N 4/5
    assert ser["macro_f1"] == pytest.approx((6 / 8 + 2 / 4 + 2 / 3 + 4 / 5) / 4)
    expected = {"A": (3 / 4, 3 / 4, 4), "S": (1 / 2, 1 / 2, 2),  # precision, recall, support
                "H": (1 / 1, 1 / 2, 2), "N": (2 / 3, 2 / 2, 2)}
    assert list(ser["per_class"]) == list(expected)
    for name, values in expected.items():
        got = ser["per_class"][name]
        assert (got["precision"], got["recall"], got["support"]) == pytest.approx(values), name


def test_per_utterance_ser_holds_the_hypotheses(scored):
    lines = (scored / "per_utt_ser.tsv").read_text().splitlines()
    assert lines == ["utt\tref\thyp"] + [f"{u}\t{r}\t{h}" for u, r, h in zip(UTTS, REF, HYP)]


def test_confusion_text_rows_are_references(scored):
    rows = {line.split()[0]: line.split()[1:] for line in
            (scored / "confusion.txt").read_text().splitlines()[2:]}
    assert rows == {"A": ["3", "1", "0", "0", "4", "75.0%"], "S": ["0", "1", "0", "1", "2", "50.0%"],
                    "H": ["1", "0", "1", "0", "2", "50.0%"], "N": ["0", "0", "0", "2", "2", "100.0%"]}


#: pystoi's STOI and ESTOI vary in the last digits between calls on the same signals
#: (about 1e-13: numpy's sums depend on the arrays' memory alignment).
STOI_DIGITS = 1e-12


def test_clean_as_enhanced_scores_the_ceiling(scored):
    rows = per_utt_se(scored)
    for utt in ORACLE:
        assert rows[utt]["enhanced_pesq"] == pytest.approx(4.644, abs=1e-3)
        assert rows[utt]["enhanced_stoi"] == pytest.approx(1.0, abs=STOI_DIGITS)
        assert rows[utt]["enhanced_estoi"] == pytest.approx(1.0, abs=STOI_DIGITS)
        assert rows[utt]["enhanced_ssnr"] == 35.0
        assert rows[utt]["enhanced_si_sdr"] > 100.0
        assert rows[utt]["enhanced_llr"] == rows[utt]["enhanced_wss"] == 0.0
        # 3.093 + 0.603·4.644, 1.634 + 0.478·4.644 + 0.063·35, 1.594 + 0.805·4.644: all > 5
        assert rows[utt]["enhanced_csig"] == rows[utt]["enhanced_cbak"] == rows[utt]["enhanced_covl"] == 5.0
        assert rows[utt]["noisy_pesq"] < 2.0


def test_noisy_as_enhanced_scores_as_the_noisy_input(scored):
    rows = per_utt_se(scored)
    for utt in PASSTHROUGH:
        enhanced = {k[9:]: v for k, v in rows[utt].items() if k.startswith("enhanced_")}
        noisy = {k[6:]: v for k, v in rows[utt].items() if k.startswith("noisy_")}
        assert enhanced.keys() == noisy.keys() == set(score.SE_NAMES)
        for metric, value in noisy.items():
            assert enhanced[metric] == (pytest.approx(value, abs=STOI_DIGITS)
                                        if metric in ("stoi", "estoi") else value), metric


def test_composite_measures_follow_from_the_row(scored):
    """CSIG, CBAK, COVL of every scored signal are Hu & Loizou's regressions of the same
    row's LLR, PESQ, WSS and SSNR (written out here), limited to [1, 5]."""
    rows = per_utt_se(scored)
    unclipped = 0
    for utt in UTTS:
        for which in ("noisy", "enhanced"):
            llr, pesq, wss, ssnr = (rows[utt][f"{which}_{m}"] for m in ("llr", "pesq", "wss", "ssnr"))
            expected = {"csig": 3.093 - 1.029 * llr + 0.603 * pesq - 0.009 * wss,
                        "cbak": 1.634 + 0.478 * pesq - 0.007 * wss + 0.063 * ssnr,
                        "covl": 1.594 + 0.805 * pesq - 0.512 * llr - 0.007 * wss}
            for name, value in expected.items():
                assert rows[utt][f"{which}_{name}"] == pytest.approx(min(5.0, max(1.0, value)),
                                                                   abs=1e-12), (utt, which, name)
                unclipped += 1.0 < value < 5.0
    assert unclipped >= 10  # the test sees the formulas, not only the limits


def test_si_sdr_is_the_snr_of_orthogonal_noise(scored):
    # measured: within 5e-5 dB of the SNR
    rows = per_utt_se(scored)
    for utt in UTTS:
        assert rows[utt]["noisy_si_sdr"] == pytest.approx(NOISY_SNR, abs=1e-3)
    for utt in TEN_DB:
        assert rows[utt]["enhanced_si_sdr"] == pytest.approx(ENHANCED_SNR, abs=1e-3)
    se = json.loads((scored / "scores.json").read_text())["se"]
    assert se["noisy"]["si_sdr"] == pytest.approx(NOISY_SNR, abs=1e-3)
