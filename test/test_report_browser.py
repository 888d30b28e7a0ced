"""The listening page in a real browser: headless Chromium (Debian's ``chromium``;
``.ci/run`` installs it) loads make_report's page from disk, with no console message,
and every player reports its duration.

No browser driver is needed: the page's own script sets ``data-duration`` on each
``<audio>`` once its metadata loads ("error" when it cannot) and logs a console error
for audio or a picture that fails to load; Chromium's ``--dump-dom`` prints the DOM
after the scripts ran, and ``--enable-logging=stderr`` prints every console message as
an ``INFO:CONSOLE`` line (Chromium 156 gives them no level), so the page may log none.
The last test plants a script error and a missing audio file to show both are seen.
"""
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from merit.bin import make_report
from report_tree import make_runs

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(), reason=f"no {CHROMIUM} (Debian package chromium; .ci/run installs it)")


class Durations(HTMLParser):
    """``data-duration`` of every ``<audio>`` of a DOM (None where unset)."""

    def __init__(self, text: str):
        super().__init__()
        self.durations = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "audio":
            self.durations.append(dict(attrs).get("data-duration"))


def load(index: Path, profile: Path):
    """(``data-duration`` of each player, console lines) of the page in Chromium."""
    res = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=10000", "--dump-dom", index.resolve().as_uri()],
        capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    console = [line for line in res.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return Durations(res.stdout).durations, console


@pytest.fixture(scope="module")
def report(tiny_data, tiny_model, tmp_path_factory) -> Path:
    runs = make_runs(tiny_data, tiny_model, tmp_path_factory.mktemp("browser"))
    assert make_report.main([str(p) for p in sorted(runs.iterdir())] +
                            ["--data_root", str(runs.parent / "data")]) == 0
    return runs / "report"


def test_every_player_reports_a_duration_and_nothing_is_logged(report, tmp_path):
    durations, console = load(report / "index.html", tmp_path / "profile")
    assert console == []
    assert len(durations) == 16
    assert all(d is not None and d != "error" and float(d) > 0 for d in durations), durations


def test_a_missing_audio_file_and_a_script_error_are_caught(report, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(report, broken)
    missing = sorted((broken / "audio").rglob("noisy.wav"))[0]
    missing.unlink()
    index = broken / "index.html"
    index.write_text(index.read_text().replace("<script>", "<script>noSuchFunction();</script>"
                                               "<script>", 1))
    durations, console = load(index, tmp_path / "profile")
    assert durations.count("error") == 1
    assert any("Uncaught ReferenceError: noSuchFunction" in line for line in console), console
    relative = missing.relative_to(broken).as_posix()
    assert any(f"cannot load audio {relative}" in line for line in console), console
