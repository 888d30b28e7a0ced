"""Classification scores on hand-worked confusion matrices."""
import numpy as np
import pytest

from merit.metrics.classification import (classification_scores, confusion_matrix,
                                          format_confusion, macro_f1, per_class_f1)
from merit.metrics.confusion_plot import plot_confusion

CLASSES = ["neutral", "happy", "angry"]

# 10 utterances.  ref:  n n n n h h h a a a
#                 hyp:  n n n h h h n a a n
REF = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
HYP = [0, 0, 0, 1, 1, 1, 0, 2, 2, 0]
# Confusion (rows ref, cols hyp):
#            n  h  a
#   neutral  3  1  0    support 4
#   happy    1  2  0    support 3
#   angry    1  0  2    support 3
# predicted  5  3  2
EXPECTED = [[3, 1, 0], [1, 2, 0], [1, 0, 2]]
# neutral: P = 3/5 = 0.6,  R = 3/4 = 0.75,  F1 = 2·3/(5+4) = 6/9 = 2/3
# happy:   P = 2/3,        R = 2/3,         F1 = 2·2/(3+3) = 4/6 = 2/3
# angry:   P = 2/2 = 1,    R = 2/3,         F1 = 2·2/(2+3) = 4/5 = 0.8
# macro-F1 = (2/3 + 2/3 + 0.8)/3 = (32/15)/3 = 32/45 = 0.71111...
# UAR      = (3/4 + 2/3 + 2/3)/3 = (25/12)/3 = 25/36 = 0.69444...
# accuracy = (3 + 2 + 2)/10 = 0.7 = micro-F1


def test_confusion_matrix_by_hand():
    c = confusion_matrix(REF, HYP, 3)
    assert c.shape == (3, 3) and c.dtype == np.int64
    assert c.tolist() == EXPECTED


def test_hand_worked_scores():
    s = classification_scores(confusion_matrix(REF, HYP, 3), CLASSES)
    assert s["macro_f1"] == pytest.approx(32 / 45)
    assert s["uar"] == pytest.approx(25 / 36)
    assert s["accuracy"] == pytest.approx(0.7)
    assert s["micro_f1"] == pytest.approx(0.7)
    expected = {
        "neutral": (0.6, 0.75, 2 / 3, 4),
        "happy": (2 / 3, 2 / 3, 2 / 3, 3),
        "angry": (1.0, 2 / 3, 0.8, 3),
    }
    for name, (p, r, f1, n) in expected.items():
        got = s["per_class"][name]
        assert got["precision"] == pytest.approx(p)
        assert got["recall"] == pytest.approx(r)
        assert got["f1"] == pytest.approx(f1)
        assert got["support"] == n
    assert s["confusion"] == EXPECTED
    assert s["classes"] == CLASSES
    # the existing helpers agree
    assert macro_f1(EXPECTED) == pytest.approx(32 / 45)
    assert per_class_f1(EXPECTED).tolist() == pytest.approx([2 / 3, 2 / 3, 0.8])


def test_class_never_predicted_has_zero_precision_not_nan():
    # angry is in the reference but never predicted.
    #          n  h  a
    #   n      2  0  0
    #   h      0  2  0
    #   a      1  1  0
    # angry: P = 0 (0/0 -> 0), R = 0/2 = 0, F1 = 0
    # neutral: P = 2/3, R = 1, F1 = 4/5; happy the same
    # macro-F1 = (0.8 + 0.8 + 0)/3 = 0.5333, UAR = (1 + 1 + 0)/3 = 2/3, acc = 4/6
    s = classification_scores(confusion_matrix([0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 0, 1], 3), CLASSES)
    angry = s["per_class"]["angry"]
    assert angry == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert s["macro_f1"] == pytest.approx(1.6 / 3)
    assert s["uar"] == pytest.approx(2 / 3)
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert not any(np.isnan(v) for c in s["per_class"].values() for v in c.values())


def test_uar_skips_classes_without_reference():
    # angry is never in the reference (only predicted once): it is left out of UAR.
    #   n: 2 0 1   h: 0 1 0   a: 0 0 0
    # recall n = 2/3, h = 1 -> UAR = 5/6; angry recall 0 (no NaN), precision 0/1 = 0
    s = classification_scores([[2, 0, 1], [0, 1, 0], [0, 0, 0]], CLASSES)
    assert s["uar"] == pytest.approx(5 / 6)
    assert s["per_class"]["angry"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_perfect_prediction():
    s = classification_scores(confusion_matrix(REF, REF, 3), CLASSES)
    for key in ("macro_f1", "micro_f1", "uar", "accuracy"):
        assert s[key] == 1.0
    assert all(c["f1"] == 1.0 for c in s["per_class"].values())


def test_confusion_matrix_checks_labels():
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="length"):
        confusion_matrix([0, 1], [0], 3)


def test_format_confusion_is_readable():
    text = format_confusion(EXPECTED, CLASSES)
    lines = text.splitlines()
    assert "ref \\ hyp" in lines[0] and all(name in lines[0] for name in CLASSES)
    assert lines[2].split()[:4] == ["neutral", "3", "1", "0"]
    assert lines[2].split()[4:] == ["4", "75.0%"]
    assert len({len(line) for line in lines}) == 1  # aligned columns


def test_plot_confusion_writes_a_png(tmp_path):
    out = plot_confusion(EXPECTED, CLASSES, tmp_path / "confusion.png", title="dev")
    assert out == tmp_path / "confusion.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["confusion.png"]  # no temp file left
