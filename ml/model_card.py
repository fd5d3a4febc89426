"""The model card: what a model version is, typed. Training writes it; everyone reads it.

A card lives next to a model's files as ``model_card.json``. Two schemas exist:

- schema 1: one network (``model.keras``) scores every window; written before the cascade and
  still held by old ``ModelVersion`` rows, so it stays readable for good.
- schema 2: a cascade. ``stages`` lists the stages in the order they run (stage 1, the CNN, on
  every window; stage 2, pose, only on windows the ``gate`` lets through); ``fusion`` turns the
  stage scores into the one score the bands apply to.

This module imports nothing heavier than the standard library (no NumPy, OpenCV, TensorFlow),
so the web process can read cards and validate thresholds cheaply. ``Thresholds`` is the one
place that says what a valid set of bands is.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml.input_spec import InputSpec

__all__ = [
    "BANDS",
    "CARD_FILE",
    "SCHEMA_CASCADE",
    "SCHEMA_SINGLE",
    "CrossValidation",
    "FoldFigures",
    "Fusion",
    "Gate",
    "LogisticModel",
    "ModelCard",
    "ModelCardError",
    "OutOfFold",
    "StageCard",
    "ThresholdError",
    "Thresholds",
    "logit",
]

CARD_FILE = "model_card.json"
SCHEMA_SINGLE = 1
SCHEMA_CASCADE = 2
# The band names, from least to most alarming: below ``low``, between, at or above ``high``.
BANDS = ("safe", "uncertain", "violent")
# Scores are clipped this far from 0 and 1 before a logit, so a saturated sigmoid stays finite.
LOGIT_EPSILON = 1e-6


class ModelCardError(ValueError):
    """A card is missing, unreadable, or says something impossible; the message names it."""


class ThresholdError(ValueError):
    """Bands that cannot be applied: the message says which rule they break."""


def logit(probability: float) -> float:
    """log(p / (1 - p)) of a score clipped into (0, 1)."""
    p = min(max(float(probability), LOGIT_EPSILON), 1.0 - LOGIT_EPSILON)
    return math.log(p / (1.0 - p))


def _sigmoid(value: float) -> float:
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    exp = math.exp(value)
    return exp / (1.0 + exp)


@dataclass(frozen=True)
class Thresholds:
    """Score bands: below ``low`` safe, ``[low, high)`` uncertain (expert review), ``>= high``
    violent (police report). ``decision`` is the yes/no cut of a binary verdict (evaluation);
    the live pipeline acts on the bands only.

    The rule, checked here and nowhere else: 0 < low < high < 1 and 0 < decision < 1. A band
    with ``low == high`` would send nothing to experts; ``high`` at 1 would never report.
    ``details`` keeps how they were chosen (method, precision at ``high``, ...).
    """

    low: float
    high: float
    # Omitted: ``high``, the cut cards written before ``decision`` existed were judged at.
    decision: float = None  # type: ignore[assignment]
    details: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        given: Any = self.decision  # None when omitted, whatever the annotation says
        if given is None:
            object.__setattr__(self, "decision", self.high)
        self.check(self.low, self.high, self.decision)

    @staticmethod
    def check(low: float, high: float, decision: float | None = None) -> None:
        """Raise ThresholdError unless 0 < low < high < 1 (and 0 < decision < 1 if given).

        Forms and serializers call this too, so a camera's override obeys the card's rule.
        """
        for name, value in (("low", low), ("high", high), ("decision", decision)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ThresholdError(f"threshold {name} must be a number, got {value!r}")
            if not math.isfinite(value) or not 0.0 < value < 1.0:
                raise ThresholdError(
                    f"threshold {name} must lie strictly between 0 and 1, got {value}"
                )
        if not low < high:
            raise ThresholdError(f"thresholds must satisfy low < high, got low={low}, high={high}")

    @property
    def verdict_cut(self) -> float:
        """The yes/no cut (kept under this name for callers written before ``decision``)."""
        return self.decision

    def band(self, score: float) -> str:
        """``safe`` | ``uncertain`` | ``violent`` for a score in [0, 1]."""
        if score >= self.high:
            return BANDS[2]
        if score >= self.low:
            return BANDS[1]
        return BANDS[0]

    def to_dict(self) -> dict[str, Any]:
        return {**self.details, "low": self.low, "high": self.high, "decision": self.decision}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, decision_required: bool = True) -> Thresholds:
        """Read a card's ``thresholds``. Schema-1 cards written before ``decision`` existed
        (``decision_required=False``) fall back to ``high``, the cut they were judged at."""
        if not isinstance(data, Mapping):
            raise ThresholdError(f"thresholds must be an object, got {type(data).__name__}")
        for key in ("low", "high"):
            if data.get(key) is None:
                raise ThresholdError(f"thresholds lack {key!r}")
        decision = data.get("decision")
        if decision is None:
            if decision_required:
                raise ThresholdError("thresholds lack 'decision'")
            decision = data["high"]
        try:
            low, high, cut = float(data["low"]), float(data["high"]), float(decision)
        except (TypeError, ValueError) as error:
            raise ThresholdError(f"thresholds must be numbers ({error})") from error
        details = {k: v for k, v in data.items() if k not in ("low", "high", "decision")}
        return cls(low, high, cut, details)


@dataclass(frozen=True)
class StageCard:
    """One stage of a model: its name (``cnn``, ``pose``), the file that holds it, its hash."""

    name: str
    kind: str
    file: str
    sha256: str | None = None
    summary: str = ""
    # Stage-specific facts (e.g. the pose model's file and hash, the frames it samples).
    details: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "file": self.file}
        if self.sha256 is not None:
            out["sha256"] = self.sha256
        out["summary"] = self.summary
        out.update(self.details)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageCard:
        for key in ("name", "kind", "file"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ModelCardError(f"a stage lacks {key!r}: {dict(data)}")
        known = ("name", "kind", "file", "sha256", "summary")
        return cls(
            name=data["name"],
            kind=data["kind"],
            file=data["file"],
            sha256=data.get("sha256"),
            summary=str(data.get("summary", "")),
            details={k: v for k, v in data.items() if k not in known},
        )


@dataclass(frozen=True)
class Gate:
    """Stage 2 runs only on windows whose stage-1 score is ``>= cut``.

    ``pass_rate_*`` are the out-of-fold shares of violent and non-violent clips that pass: the
    first is what stage 2 can still rescue, the second what it costs.
    """

    stage: str
    cut: float
    rule: str
    pass_rate_violent: float
    pass_rate_non_violent: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.cut <= 1.0 or not math.isfinite(self.cut):
            raise ModelCardError(f"the gate's cut must lie in [0, 1], got {self.cut}")

    def passes(self, stage1_score: float) -> bool:
        return stage1_score >= self.cut

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "cut": self.cut,
            "rule": self.rule,
            "pass_rate": {
                "violent": self.pass_rate_violent,
                "non_violent": self.pass_rate_non_violent,
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Gate:
        try:
            rates = data.get("pass_rate", {})
            return cls(
                stage=str(data["stage"]),
                cut=float(data["cut"]),
                rule=str(data.get("rule", "")),
                pass_rate_violent=float(rates.get("violent", math.nan)),
                pass_rate_non_violent=float(rates.get("non_violent", math.nan)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ModelCardError(f"unreadable gate {dict(data)}: {error}") from error


@dataclass(frozen=True)
class LogisticModel:
    """p = sigmoid(intercept + sum(coef_i * logit(score_i))), in plain Python (no NumPy).

    Inputs are the stage scores in the order of ``inputs``; they enter as logits so a
    coefficient of 1 on one input with intercept 0 returns that score unchanged.
    """

    inputs: tuple[str, ...]
    coef: tuple[float, ...]
    intercept: float

    def __post_init__(self) -> None:
        if len(self.inputs) != len(self.coef) or not self.inputs:
            raise ModelCardError(
                f"a fusion model needs one coefficient per input, got {self.inputs} / {self.coef}"
            )
        if not all(math.isfinite(v) for v in (*self.coef, self.intercept)):
            raise ModelCardError(f"a fusion model has non-finite weights: {self.coef}")

    def __call__(self, scores: Sequence[float]) -> float:
        if len(scores) != len(self.coef):
            raise ValueError(f"expected {len(self.coef)} scores ({self.inputs}), got {len(scores)}")
        value = self.intercept + sum(c * logit(s) for c, s in zip(self.coef, scores, strict=True))
        return _sigmoid(value)

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": list(self.inputs), "coef": list(self.coef), "intercept": self.intercept}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogisticModel:
        try:
            return cls(
                inputs=tuple(str(v) for v in data["inputs"]),
                coef=tuple(float(v) for v in data["coef"]),
                intercept=float(data["intercept"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelCardError(f"unreadable fusion model {dict(data)}: {error}") from error


@dataclass(frozen=True)
class Fusion:
    """The fused score. ``passed``: a window stage 2 scored (inputs: stage 1 and stage 2).
    ``gated_out``: a window the gate stopped (input: stage 1 only). Both are logistic
    regressions fitted on out-of-fold scores, so both are calibrated probabilities on the same
    scale and one set of bands applies to either."""

    kind: str
    passed: LogisticModel
    gated_out: LogisticModel
    description: str = ""

    def score(self, stage1: float, stage2: float | None) -> float:
        if stage2 is None:
            return self.gated_out([stage1])
        return self.passed([stage1, stage2])

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "description": self.description,
            "passed": self.passed.to_dict(),
            "gated_out": self.gated_out.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fusion:
        for key in ("passed", "gated_out"):
            if not isinstance(data.get(key), Mapping):
                raise ModelCardError(f"fusion lacks {key!r}")
        return cls(
            kind=str(data.get("kind", "stacking-logistic")),
            passed=LogisticModel.from_dict(data["passed"]),
            gated_out=LogisticModel.from_dict(data["gated_out"]),
            description=str(data.get("description", "")),
        )


@dataclass(frozen=True)
class FoldFigures:
    fold: int
    roc_auc: float | None
    n_test: int
    test_groups: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fold": self.fold,
            **self.details,
            "roc_auc": self.roc_auc,
            "n_test": self.n_test,
            "test_groups": list(self.test_groups),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FoldFigures:
        known = ("fold", "roc_auc", "n_test", "test_groups")
        auc = data.get("roc_auc")
        return cls(
            fold=int(data["fold"]),
            roc_auc=None if auc is None else float(auc),
            n_test=int(data.get("n_test", 0)),
            test_groups=tuple(str(g) for g in data.get("test_groups", ())),
            details={k: v for k, v in data.items() if k not in known},
        )


@dataclass(frozen=True)
class OutOfFold:
    """Out-of-fold clip scores, kept so the bands can be audited or re-chosen without training.

    ``scores`` are the final scores the bands apply to (the fused ones of a cascade); a cascade
    also keeps each stage's (``stage2`` is None for clips the gate stopped) and each clip's fold.
    """

    labels: tuple[int, ...]
    scores: tuple[float, ...]
    stage1: tuple[float, ...] | None = None
    stage2: tuple[float | None, ...] | None = None
    folds: tuple[int, ...] | None = None
    clips: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("scores", "stage1", "stage2", "folds", "clips"):
            values = getattr(self, name)
            if values is not None and len(values) != len(self.labels):
                raise ModelCardError(
                    f"out_of_fold.{name} has {len(values)} entries for {len(self.labels)} labels"
                )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"labels": list(self.labels), "scores": list(self.scores)}
        for name in ("stage1", "stage2", "folds", "clips"):
            values = getattr(self, name)
            if values is not None:
                out[name] = list(values)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutOfFold:
        def optional(name: str, kind: Any) -> Any:
            values = data.get(name)
            if values is None:
                return None
            return tuple(None if v is None else kind(v) for v in values)

        try:
            return cls(
                labels=tuple(int(v) for v in data["labels"]),
                scores=tuple(float(v) for v in data["scores"]),
                stage1=optional("stage1", float),
                stage2=optional("stage2", float),
                folds=optional("folds", int),
                clips=optional("clips", str),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelCardError(f"unreadable out_of_fold scores: {error}") from error


@dataclass(frozen=True)
class CrossValidation:
    scheme: str
    folds: tuple[FoldFigures, ...]
    out_of_fold: OutOfFold | None = None
    # Pooled figures at the cuts and anything else a trainer recorded, kept as written.
    details: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def fold_aucs(self) -> list[float]:
        return [f.roc_auc for f in self.folds if f.roc_auc is not None]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "scheme": self.scheme,
            "folds": [f.to_dict() for f in self.folds],
            **self.details,
        }
        if self.out_of_fold is not None:
            out["out_of_fold"] = self.out_of_fold.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CrossValidation:
        try:
            folds = tuple(FoldFigures.from_dict(f) for f in data.get("folds", ()))
        except (KeyError, TypeError, ValueError) as error:
            raise ModelCardError(f"unreadable cross_validation folds: {error}") from error
        oof = data.get("out_of_fold")
        return cls(
            scheme=str(data.get("scheme", "")),
            folds=folds,
            out_of_fold=None if oof is None else OutOfFold.from_dict(oof),
            details={k: v for k, v in data.items() if k not in ("scheme", "folds", "out_of_fold")},
        )


@dataclass(frozen=True)
class ModelCard:
    """A model version. ``stages[0]`` is stage 1 (the CNN every window goes through).

    Schema 1 cards come out as a one-stage card with no gate and no fusion; their other keys
    (architecture, training, ...) are kept in ``details`` and written back unchanged.
    """

    schema: int
    version: str
    created_utc: str
    input_spec: InputSpec
    thresholds: Thresholds
    stages: tuple[StageCard, ...]
    gate: Gate | None = None
    fusion: Fusion | None = None
    cross_validation: CrossValidation | None = None
    details: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.schema not in (SCHEMA_SINGLE, SCHEMA_CASCADE):
            raise ModelCardError(f"unknown card schema {self.schema!r}")
        if not self.version:
            raise ModelCardError("a card needs a version")
        if not self.stages:
            raise ModelCardError("a card needs at least one stage")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ModelCardError(f"stage names repeat: {names}")
        if self.is_cascade:
            if self.gate is None or self.fusion is None:
                raise ModelCardError("a cascade card needs a gate and a fusion")
            if self.gate.stage != self.stages[0].name:
                raise ModelCardError(
                    f"the gate reads stage {self.gate.stage!r}, not stage 1 {self.stages[0].name!r}"
                )

    @property
    def is_cascade(self) -> bool:
        return len(self.stages) > 1

    @property
    def model_file(self) -> str:
        """Stage 1's file (``model.keras``)."""
        return self.stages[0].file

    def stage(self, name: str) -> StageCard:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"card {self.version} has no stage {name!r}")

    # ---- reading ---------------------------------------------------------------------

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> ModelCard:
        """Read ``model_card.json`` of an artifact folder; ModelCardError names the file."""
        path = Path(folder) / CARD_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise ModelCardError(f"{path}: no model card") from error
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ModelCardError(f"{path}: unreadable model card ({error})") from error
        try:
            return cls.from_dict(data)
        except ModelCardError as error:
            raise ModelCardError(f"{path}: {error}") from error

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        if not isinstance(data, Mapping):
            raise ModelCardError(f"a card is a JSON object, got {type(data).__name__}")
        schema = data.get("schema", SCHEMA_SINGLE)
        if schema not in (SCHEMA_SINGLE, SCHEMA_CASCADE):
            raise ModelCardError(f"unknown card schema {schema!r}")
        for key in ("version", "thresholds", "input_spec"):
            if key not in data:
                raise ModelCardError(f"the card lacks {key!r}")
        try:
            thresholds = Thresholds.from_dict(
                data["thresholds"], decision_required=schema >= SCHEMA_CASCADE
            )
        except ThresholdError as error:
            raise ModelCardError(str(error)) from error
        try:
            spec = InputSpec.from_dict(dict(data["input_spec"]))
        except (TypeError, ValueError) as error:
            raise ModelCardError(f"unreadable input_spec: {error}") from error
        cv_data = data.get("cross_validation")
        cv = None if cv_data is None else CrossValidation.from_dict(cv_data)
        if schema == SCHEMA_SINGLE:
            stage = StageCard(
                name="cnn", kind="cnn-bilstm", file=str(data.get("model_file", "model.keras"))
            )
            consumed = {"schema", "version", "created_utc", "thresholds", "input_spec"}
            consumed |= {"cross_validation"}
            return cls(
                schema=SCHEMA_SINGLE,
                version=str(data["version"]),
                created_utc=str(data.get("created_utc", "")),
                input_spec=spec,
                thresholds=thresholds,
                stages=(stage,),
                cross_validation=cv,
                details={k: v for k, v in data.items() if k not in consumed},
            )
        stages_data = data.get("stages")
        if not isinstance(stages_data, list) or not stages_data:
            raise ModelCardError("a schema-2 card lacks 'stages'")
        stages = tuple(StageCard.from_dict(s) for s in stages_data)
        gate = Gate.from_dict(data["gate"]) if data.get("gate") is not None else None
        fusion = Fusion.from_dict(data["fusion"]) if data.get("fusion") is not None else None
        consumed = {"schema", "version", "created_utc", "thresholds", "input_spec", "stages"}
        consumed |= {"gate", "fusion", "cross_validation"}
        return cls(
            schema=SCHEMA_CASCADE,
            version=str(data["version"]),
            created_utc=str(data.get("created_utc", "")),
            input_spec=spec,
            thresholds=thresholds,
            stages=stages,
            gate=gate,
            fusion=fusion,
            cross_validation=cv,
            details={k: v for k, v in data.items() if k not in consumed},
        )

    # ---- writing ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": self.schema,
            "version": self.version,
            "created_utc": self.created_utc,
        }
        if self.schema == SCHEMA_SINGLE:
            out["model_file"] = self.model_file
        else:
            out["stages"] = [s.to_dict() for s in self.stages]
            if self.gate is not None:
                out["gate"] = self.gate.to_dict()
            if self.fusion is not None:
                out["fusion"] = self.fusion.to_dict()
        out["input_spec"] = self.input_spec.to_dict()
        out["thresholds"] = self.thresholds.to_dict()
        out.update(self.details)
        if self.cross_validation is not None:
            out["cross_validation"] = self.cross_validation.to_dict()
        return out

    def dump(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``model_card.json`` into ``folder``; returns its path."""
        path = Path(folder) / CARD_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path
