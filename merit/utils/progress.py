"""Progress over files and seconds of audio, with an ETA, for commands that work through
many recordings (``merit-infer``).

    progress = Progress(total_files=len(items), total_seconds=sum(durations))
    progress.advance(seconds)   # audio done, as each window finishes
    progress.file_done()
    progress.close()

On a terminal the line is redrawn in place (``\\r``) at most ``REDRAWS_PER_SECOND``
times a second; into a log file a line is written every ``LOG_INTERVAL`` seconds and
at the end, so a log shows progress without thousands of lines. The ETA is the audio
seconds left at the rate measured so far (seconds, not files: one long recording
would make a per-file rate wrong for a long time).
"""
import sys
import time
from typing import Callable, Optional, TextIO

REDRAWS_PER_SECOND = 4
LOG_INTERVAL = 30.0


def clock(seconds: float) -> str:
    """``h:mm:ss`` of a duration."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    def __init__(self, total_files: int, total_seconds: float, stream: Optional[TextIO] = None,
                 now: Callable[[], float] = time.monotonic):
        self.total_files, self.total_seconds = total_files, total_seconds
        self.stream = sys.stderr if stream is None else stream
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.now = now
        self.files = 0
        self.seconds = 0.0
        self.started = now()
        self._shown = None  # when the line was last written

    def line(self) -> str:
        """``files 3/10, audio 45.0/300.0 s (15%), 0:00:12 elapsed, ETA 0:01:08``."""
        elapsed = self.now() - self.started
        share = self.seconds / self.total_seconds if self.total_seconds else 1.0
        eta = (clock(elapsed / self.seconds * (self.total_seconds - self.seconds))
               if self.seconds > 0 else "?")
        return (f"files {self.files}/{self.total_files}, audio {self.seconds:.1f}/"
                f"{self.total_seconds:.1f} s ({share:.0%}), {clock(elapsed)} elapsed, ETA {eta}")

    def _show(self, final: bool = False) -> None:
        now = self.now()
        gap = 1.0 / REDRAWS_PER_SECOND if self.interactive else LOG_INTERVAL
        if not final and self._shown is not None and now - self._shown < gap:
            return
        self._shown = now
        if self.interactive:
            self.stream.write("\r\x1b[K" + self.line() + ("\n" if final else ""))
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def advance(self, seconds: float) -> None:
        self.seconds += seconds
        self._show()

    def file_done(self) -> None:
        self.files += 1
        self._show()

    def clear(self) -> None:
        """Take the line off a terminal before other output is written there."""
        if self.interactive and self._shown is not None:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def close(self) -> None:
        self._show(final=True)
