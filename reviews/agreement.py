"""Agreement between experts: Cohen's kappa over pairs of verdicts on the same case."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

# Below this many pairs of verdicts a kappa swings by the whole scale with one more case
# (one pair gives 0 or undefined, never anything in between): the page says so beside it.
KAPPA_MIN_PAIRS = 20


@dataclass(frozen=True)
class Agreement:
    pairs: int
    observed: float | None
    kappa: float | None

    @property
    def too_few_pairs(self) -> bool:
        return self.pairs < KAPPA_MIN_PAIRS

    @property
    def min_pairs(self) -> int:
        return KAPPA_MIN_PAIRS


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Kappa of two raters over `pairs` of labels; None when it is undefined.

    Undefined without pairs, and when chance agreement is already total (both raters always
    gave one and the same label), where kappa would divide by zero.
    """
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(1 for a, b in pairs if a == b) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[label] * second[label] for label in first.keys() | second.keys()) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def verdict_pairs(verdicts_by_case: Iterable[Sequence[str]]) -> list[tuple[str, str]]:
    """Every pair of verdicts given to one case, in the order the experts gave them."""
    pairs: list[tuple[str, str]] = []
    for verdicts in verdicts_by_case:
        pairs.extend(combinations(verdicts, 2))
    return pairs


def agreement_of(verdicts_by_case: Iterable[Sequence[str]]) -> Agreement:
    pairs = verdict_pairs(verdicts_by_case)
    if not pairs:
        return Agreement(pairs=0, observed=None, kappa=None)
    observed = sum(1 for a, b in pairs if a == b) / len(pairs)
    return Agreement(pairs=len(pairs), observed=observed, kappa=cohen_kappa(pairs))
