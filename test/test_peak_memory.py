"""merit.utils.peak_memory measures the command, not the process that started it: a
parent holding 512 MB does not show in a small child (``ru_maxrss`` from ``wait4`` would
report the parent's size: Linux carries it across exec), and a child's own 300 MB does."""
import numpy as np

from merit.utils.peak_memory import run_measured

MIB = 2 ** 20


def test_peak_is_the_childs_own(tmp_path):
    (tmp_path / "hold_memory.py").write_text(
        "import sys\nimport numpy as np\n"
        "block = np.ones(int(sys.argv[1]) * 2 ** 20 // 8)\nprint(block.sum() > 0)\n")
    held = np.ones(512 * MIB // 8)  # the parent: resident while the children run
    small = run_measured("hold_memory", ["1"], cwd=tmp_path)
    large = run_measured("hold_memory", ["300"], cwd=tmp_path)
    assert held.sum() > 0
    assert small.status == large.status == 0 and small.output.strip() == "True"
    assert 5 * MIB < small.peak_bytes < 150 * MIB
    assert 300 * MIB < large.peak_bytes < small.peak_bytes + 330 * MIB
