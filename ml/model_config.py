"""The network's size, apart from Keras, so that reading or writing it loads no TensorFlow."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    widths: tuple[int, ...] = (16, 32, 48, 64)
    lstm_units: int = 32
    dropout: float = 0.3
    weight_decay: float = 1e-4

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if "widths" in known:
            known["widths"] = tuple(known["widths"])
        return cls(**known)
