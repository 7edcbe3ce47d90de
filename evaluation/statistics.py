"""Per-object summary statistics over frames: mean, recall and decay (DAVIS definitions)."""
from __future__ import annotations

import warnings

import numpy as np


def mean(values: np.ndarray) -> float:
    return float(np.nanmean(values))


def recall(values: np.ndarray, threshold: float = 0.5) -> float:
    """Share of frames scoring strictly above ``threshold``."""
    return float(np.nanmean(values > threshold))


def decay(values: np.ndarray, num_bins: int = 4) -> float:
    """Mean of the first quarter of frames minus mean of the last quarter (neighbouring bins share a frame).

    The official tool casts the bin edges to uint8, which wraps around past 256 frames and makes decay
    NaN or wrong on long videos; here the edges are plain integers, so results are equal up to 256 frames
    and correct beyond.
    """
    n = len(values)
    edges = np.round(np.linspace(1, n, num_bins + 1) + 1e-10).astype(np.int64) - 1
    bins = [values[edges[i] : edges[i + 1] + 1] for i in range(num_bins)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return float(np.nanmean(bins[0]) - np.nanmean(bins[-1]))
