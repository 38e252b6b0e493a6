"""The model out: `evaluate-best --save DIR` keeps the chosen configuration's network of every draw.

DIR holds one file per draw (`draw-SEED.pt`, a `models.training.trained.TrainedModel`) and `model.json`:
the study, the trial, the configuration and each draw's test accuracy beside its file. Each draw's file
and the index are written as soon as that draw is trained (a temporary file, then a rename), so an
interrupted evaluation keeps what it finished and a rerun trains only the draws still missing.

`load_models(DIR)` reads it back; its `predict` averages the draws' networks (an ensemble of the same
configuration trained on independent draws), or uses one draw's network alone.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from models.nets.configs import NetConfig, TrainConfig
from models.training.trained import Prediction, TrainedModel
from search.errors import DigitPairError, EvaluationError
from search.evaluation.results import Candidate, DrawResult, config_key

__all__ = ["INDEX", "ModelFolder", "SavedModels", "load_models"]

INDEX = "model.json"
FORMAT = "digit-pair-models/1"


def _draw_file(seed: int) -> str:
    return f"draw-{seed}.pt"


class ModelFolder:
    """Where `evaluate-best --save DIR` writes: checked when it is made, so a wrong DIR fails before training."""

    def __init__(self, directory: Path, candidate: Candidate, *, study_name: str | None) -> None:
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise EvaluationError(f"--save {self.directory}: it is a file; name a directory for the models.")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.candidate = candidate
        self.written: list[Path] = []  # the files this process wrote, for the artifact store
        self.index = self._read_index() or {
            "format": FORMAT,
            "study": study_name,
            "trial_number": candidate.trial_number,
            "label": candidate.label,
            "config_key": candidate.key,
            "net": candidate.net.to_dict(),
            "train": candidate.train.to_dict(),
            "draws": {},
        }
        if _stored_key(self.index) != candidate.key:
            raise EvaluationError(
                f"--save {self.directory}: it holds the models of another configuration "
                f"({self.index.get('label')}); choose an empty directory."
            )

    def _read_index(self) -> dict[str, Any] | None:
        path = self.directory / INDEX
        if not path.exists():
            if any(self.directory.iterdir()):
                raise EvaluationError(
                    f"--save {self.directory}: not empty and holds no {INDEX}; choose an empty directory."
                )
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise EvaluationError(f"--save {self.directory}: its {INDEX} is unreadable ({error}).") from None
        return data if isinstance(data, dict) and data.get("format") == FORMAT else {}

    def missing(self, seeds: Sequence[int]) -> list[int]:
        """The draws whose network is not in the folder yet."""
        return [s for s in seeds if str(s) not in self.index["draws"] or not (self.directory / _draw_file(s)).is_file()]

    def write(self, result: DrawResult) -> None:
        """Store one draw's network and its accuracy (a diverged draw has no network worth keeping)."""
        if result.model is None or result.status != "completed":
            return
        _atomic(self.directory / _draw_file(result.seed), lambda path: result.model.save(path))
        self.written.append(self.directory / _draw_file(result.seed))
        self.index["draws"][str(result.seed)] = {
            "file": _draw_file(result.seed),
            "test_accuracy": result.accuracy,
            "test_digit_accuracy": result.digit_accuracy,
        }
        text = json.dumps(self.index, indent=2, sort_keys=True)
        _atomic(self.directory / INDEX, lambda path: path.write_text(text))


def _atomic(target: Path, write: Any) -> None:
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(handle)
    try:
        write(Path(name))
        os.replace(name, target)
    finally:
        if os.path.exists(name):
            os.unlink(name)


@dataclass(frozen=True)
class SavedModels:
    """What `evaluate-best --save` wrote: one network per draw of one configuration."""

    directory: Path
    index: dict[str, Any]
    models: dict[int, TrainedModel]  # draw seed -> its network

    @property
    def net(self) -> NetConfig:
        return NetConfig.from_dict(self.index["net"])

    @property
    def train(self) -> TrainConfig:
        return TrainConfig.from_dict(self.index["train"])

    def test_accuracy(self, seed: int) -> float | None:
        return self.index["draws"][str(seed)]["test_accuracy"]

    def predict(self, images: Tensor, *, draw: int | None = None) -> Prediction:
        """Answer pairs of raw images (N, 2, 14, 14): every draw's network averaged, or one draw's alone."""
        if draw is not None:
            if draw not in self.models:
                known = ", ".join(map(str, sorted(self.models)))
                raise EvaluationError(f"--draw {draw}: {self.directory} has no network of that draw; it has {known}.")
            return self.models[draw].predict(images)
        return Prediction.mean([model.predict(images) for model in self.models.values()])


def load_models(directory: str | Path) -> SavedModels:
    """Read a folder `evaluate-best --save DIR` wrote."""
    directory = Path(directory)
    path = directory / INDEX
    if not path.is_file():
        raise EvaluationError(f"{directory}: no {INDEX} there; save models with `search evaluate-best --save DIR`.")
    try:
        index = json.loads(path.read_text())
    except ValueError as error:
        raise EvaluationError(f"{path}: unreadable ({error}).") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT or not index.get("draws"):
        raise EvaluationError(f"{path}: not a model folder of format {FORMAT!r}, or it holds no draw yet.")
    models = {int(seed): TrainedModel.load(directory / entry["file"]) for seed, entry in index["draws"].items()}
    return SavedModels(directory=directory, index=index, models=models)


def _stored_key(index: dict[str, Any]) -> str | None:
    """The key of the configuration a folder's index names, as this version computes keys (an index
    written before keys hashed only non-default fields holds another key for the same configuration)."""
    try:
        return config_key(NetConfig.from_dict(index["net"]), TrainConfig.from_dict(index["train"]))
    except (KeyError, TypeError, ValueError, DigitPairError):
        return None
