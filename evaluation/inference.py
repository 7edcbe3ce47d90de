"""Moved: running a model over a dataset lives with the model, in :mod:`vos.dataset_run` (metrics depend on
nothing in ``vos``). This module only forwards the old name until ``vos/train/trainer.py`` and
``benchmarks/embedded_quality.py`` import it from there; nothing else may import it."""
from __future__ import annotations


def __getattr__(name: str):
    if name == "predict_davis":
        from vos.dataset_run import predict_davis

        return predict_davis
    raise AttributeError(f"module 'evaluation.inference' has no attribute {name!r} (see vos.dataset_run)")
