"""Labels outside --emotion_classes stop merit_train before anything is built, naming
the file, the line and the label (they used to stop it mid-epoch, in
EmotionPreprocessor, with a long traceback)."""
import pytest

from merit.tasks import model_builder
from merit.tasks.merit_task import MeritTask


@pytest.fixture
def data(tmp_path):
    (tmp_path / "wav.scp").write_text("u1 /x/u1.wav\nu2 /x/u2.wav\nu3 /x/u3.wav\nu4 /x/u4.wav\n")
    (tmp_path / "utt2emo").write_text("u1 A\nu2 S\nu3 H\nu4 N\n")
    (tmp_path / "dev_utt2emo").write_text("u1 A\nu2 S\nu3 X\nu4 X\n")
    return tmp_path


def test_unknown_label_named_with_file_and_line(data):
    with pytest.raises(ValueError) as err:
        model_builder.check_emotion_labels(data / "dev_utt2emo", ["A", "S", "H", "N"])
    assert str(err.value).startswith(
        f"{data / 'dev_utt2emo'} line 3: utterance u3 has emotion 'X', which is not one of "
        "--emotion_classes A,S,H,N (2 line(s) outside them: X=2); add the class to --emotion_classes")


def test_class_weights_refuse_unknown_labels(data):
    """They used to leave such labels out of N without a word."""
    (data / "five").write_text("u1 A\nu2 S\nu3 H\nu4 N\nu5 X\n")
    with pytest.raises(ValueError, match="five line 5: utterance u5 has emotion 'X'"):
        model_builder.class_weights_from(data / "five", ["A", "S", "H", "N"])
    assert model_builder.class_weights_from(data / "utt2emo", ["A", "S", "H", "N"]) == [1.0] * 4


def train_cmd(data, valid_emo):
    return ["--output_dir", str(data / "exp"), "--ngpu", "0", "--emotion_classes", "A,S,H,N",
            "--train_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
            "--train_data_path_and_name_and_type", f"{data}/utt2emo,emotion,text",
            "--valid_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
            "--valid_data_path_and_name_and_type", f"{data}/{valid_emo},emotion,text",
            "--train_shape_file", f"{data}/wav.scp", "--valid_shape_file", f"{data}/wav.scp"]


def test_merit_train_stops_before_building_anything(data, monkeypatch):
    started = []
    monkeypatch.setattr(MeritTask, "main_worker", classmethod(lambda cls, args: started.append(args)))
    with pytest.raises(SystemExit) as err:
        MeritTask.main(cmd=train_cmd(data, "dev_utt2emo"))
    assert not started
    assert ("error: --valid_data_path_and_name_and_type: "
            f"{data}/dev_utt2emo line 3: utterance u3 has emotion 'X'") in str(err.value)
    MeritTask.main(cmd=train_cmd(data, "utt2emo"))  # labels all known: on to training
    assert len(started) == 1
