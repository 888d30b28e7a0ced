"""merit-infer refuses an input too short to hold an emotion (a 5 ms file used to
get a confident answer), before it loads the model."""
import numpy as np
import soundfile as sf

from merit.bin import merit_infer


def test_five_ms_input_is_refused(tmp_path, capsys):
    short = tmp_path / "five_ms.wav"
    sf.write(str(short), np.full(80, 0.1, np.float32), 16000)
    # no model there: the length is checked first
    assert merit_infer.main([str(short), "--model_dir", str(tmp_path / "no_model")]) == 1
    reason = (f"{short}: 0.005 s of audio (80 samples at 16 kHz) is shorter than the 0.25 s a "
              "model needs to judge an emotion from; give a longer recording (or lower "
              "--min_duration)")
    assert capsys.readouterr().err.splitlines() == [
        f"merit-infer: error: {reason}", "merit-infer: 1 of 1 file(s) failed:", f"  {reason}"]


def test_floor_is_an_option(tmp_path, capsys):
    short = tmp_path / "tenth.wav"
    sf.write(str(short), np.full(1600, 0.1, np.float32), 16000)
    assert merit_infer.main([str(short), "--model_dir", str(tmp_path / "no_model"),
                             "--min_duration", "0.05"]) == 1
    # past the length check, on to the (missing) model
    assert "no_model: no such file or directory" in capsys.readouterr().err
