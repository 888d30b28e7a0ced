"""What the toolkit declares about each metric, once: the tables of ``merit.metrics.se``
(per utterance, against the clean reference) and ``merit.metrics.classification``
(per set, from the confusion matrix) hold one ``Metric`` each, and scoring,
``RESULTS.md`` and ``make_tables`` loop over them."""
from dataclasses import dataclass
from typing import Callable, Tuple


@dataclass(frozen=True)
class Metric:
    """One metric.

    Attributes:
        name: its key in ``scores.json`` and its column in the per-utterance TSVs.
        title: its heading in tables, without the unit.
        compute: the function: SE metrics ``(reference, estimate, fs) -> float`` for one
            utterance (``(estimate, fs)`` when not ``needs_reference``, ``(*values)``
            when ``derived_from``), SER metrics ``confusion (C, C) -> float`` for a set.
        unit: shown after the title, e.g. ``dB`` ("" for none).
        higher_is_better: the direction of improvement.
        digits: decimals shown in tables.
        needs_reference: whether it compares with the clean reference (or the reference
            labels); a non-intrusive metric (DNSMOS) does not, and is scored on the clean
            reference too.
        derived_from: names of metrics declared before it whose values of the same
            utterance it is computed from, in ``compute``'s argument order (CSIG from
            LLR, PESQ and WSS): nothing is computed twice; () for one computed from the
            signals.
        default: scored unless asked otherwise; False for an opt-in one (too costly to
            score always), scored only when named (``merit.bin.score --extra_metrics``).
        in_results: a column of each system's ``RESULTS.md``.
        in_tables: a table of ``make_tables`` (the paper's tables).
    """

    name: str
    title: str
    compute: Callable[..., float]
    unit: str = ""
    higher_is_better: bool = True
    digits: int = 2
    needs_reference: bool = True
    derived_from: Tuple[str, ...] = ()
    default: bool = True
    in_results: bool = True
    in_tables: bool = False

    def score(self, reference, estimate, fs: int, scored: dict) -> float:
        """This SE metric of one utterance: from the values ``scored`` before it
        (``{name: value}``) when it is derived, else from the estimate, and the
        reference when it needs one.

        Raises:
            ValueError: a derived metric whose sources are not in ``scored``.
        """
        if self.derived_from:
            missing = [name for name in self.derived_from if name not in scored]
            if missing:
                raise ValueError(f"{self.name} is computed from {', '.join(missing)}: "
                                 f"score {'it' if len(missing) == 1 else 'them'} before it")
            return self.compute(*(scored[name] for name in self.derived_from))
        if self.needs_reference:
            return self.compute(reference, estimate, fs)
        return self.compute(estimate, fs)

    @property
    def heading(self) -> str:
        """``SSNR (dB)``: the title with its unit."""
        return f"{self.title} ({self.unit})" if self.unit else self.title

    def format(self, value: float) -> str:
        """The value with the metric's decimals."""
        return f"{value:.{self.digits}f}"
