"""Model-agnostic Shapley values: any model, through its predictions only.

The value of a set S of columns is the model's mean output when the row keeps its own values in S and
takes every background row's values elsewhere (interventional Shapley values, as SHAP's Permutation and
Exact explainers with an independent masker). The empty set is worth the mean output over the
background (the base value), the full set the output for the row itself, so every method here is exactly
additive: ``base + sum(attributions) == output``.

- ``exact``: every subset of the columns, weighted by the Shapley formula; used when that needs fewer
  model calls than sampling (few columns);
- ``permutation``: ``PERMUTATIONS`` orderings of the columns (half of them the reverses of the others,
  which cancels much of the sampling error), each walked from the empty set to the full one; a column's
  attribution is its mean step. Every walk telescopes to ``output - base``, so additivity is exact
  whatever the sample; the attributions themselves are estimates.

Written here rather than taken from ``shap``: the same algorithms in ``shap`` compile with numba on first
use (~20 s per process, measured) and need numeric matrices, where this works on the signature's typed
columns (text, booleans, datetimes) as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from math import factorial

import numpy as np
import pandas as pd

#: orderings sampled per row (an even number: each with its reverse)
PERMUTATIONS = 10
#: background rows the mean output is taken over
MAX_BACKGROUND = 100
#: model rows per call, to bound memory
CHUNK_ROWS = 200_000

Outputs = Callable[[pd.DataFrame], np.ndarray]


def shapley(
    f: Outputs, rows: pd.DataFrame, background: pd.DataFrame, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Attributions ``(n, features, outputs)``, base ``(outputs,)``, outputs ``(n, outputs)`` of ``f``
    (which maps a frame to an ``(m, outputs)`` array) and the method used."""
    columns = list(rows.columns)
    width = len(columns)
    background = background[columns].reset_index(drop=True)
    if len(background) > MAX_BACKGROUND:
        background = background.sample(MAX_BACKGROUND, random_state=seed).reset_index(drop=True)
    base = f(background).mean(axis=0)
    output = f(rows)
    exact = (1 << width) - 2 <= PERMUTATIONS * max(width - 1, 1)
    values = np.zeros((len(rows), width, output.shape[1]), dtype=np.float64)
    rng = np.random.default_rng(seed)
    for i in range(len(rows)):
        row = rows.iloc[i : i + 1]
        if exact:
            values[i] = _exact(f, row, background, base, output[i])
        else:
            values[i] = _permutation(f, row, background, base, output[i], rng)
    return values, base, output, "exact" if exact else "permutation"


def _exact(
    f: Outputs, row: pd.DataFrame, background: pd.DataFrame, base: np.ndarray, out: np.ndarray
) -> np.ndarray:
    width = row.shape[1]
    codes = np.arange(1 << width)
    masks = ((codes[:, None] >> np.arange(width)[None, :]) & 1).astype(bool)
    inner = codes[1:-1]  # the empty and the full set are known: base and the row's own output
    worth = np.empty((len(codes), out.shape[0]), dtype=np.float64)
    worth[0], worth[-1] = base, out
    if len(inner):
        worth[inner] = _coalitions(f, row, background, masks[inner])
    sizes = masks.sum(axis=1)
    weights = np.array([factorial(s) * factorial(width - s - 1) for s in range(width)]) / factorial(width)
    values = np.zeros((width, out.shape[0]), dtype=np.float64)
    for j in range(width):
        without = codes[~masks[:, j]]
        values[j] = (weights[sizes[without]][:, None] * (worth[without | (1 << j)] - worth[without])).sum(
            axis=0
        )
    return values


def _permutation(
    f: Outputs,
    row: pd.DataFrame,
    background: pd.DataFrame,
    base: np.ndarray,
    out: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    width = row.shape[1]
    orders = []
    for _ in range(PERMUTATIONS // 2):
        order = rng.permutation(width)
        orders += [order, order[::-1]]
    masks = np.zeros((len(orders), width - 1, width), dtype=bool)  # the sets on each walk but the ends
    for p, order in enumerate(orders):
        for step in range(width - 1):
            masks[p, step, order[: step + 1]] = True
    worth = _coalitions(f, row, background, masks.reshape(-1, width)).reshape(len(orders), width - 1, -1)
    values = np.zeros((width, out.shape[0]), dtype=np.float64)
    for p, order in enumerate(orders):
        chain = np.concatenate([base[None, :], worth[p], out[None, :]])
        values[order] += np.diff(chain, axis=0)
    return values / len(orders)


def _coalitions(f: Outputs, row: pd.DataFrame, background: pd.DataFrame, masks: np.ndarray) -> np.ndarray:
    """The mean output over the background for each mask (True: the row's own value)."""
    k = len(background)
    per_chunk = max(1, CHUNK_ROWS // k)
    results = []
    for start in range(0, len(masks), per_chunk):
        chunk = masks[start : start + per_chunk]
        frame = _masked(row, background, chunk)
        results.append(f(frame).reshape(len(chunk), k, -1).mean(axis=1))
    return np.concatenate(results)


def _masked(row: pd.DataFrame, background: pd.DataFrame, masks: np.ndarray) -> pd.DataFrame:
    """One frame of ``len(masks) * len(background)`` rows: mask by mask, every background row."""
    columns: dict[str, np.ndarray] = {}
    for j, name in enumerate(row.columns):
        own = row.iloc[:, j].to_numpy()
        others = background.iloc[:, j].to_numpy()
        if own.dtype != others.dtype:
            own, others = own.astype(object), others.astype(object)
        columns[str(name)] = np.where(masks[:, j][:, None], own[0], others[None, :]).reshape(-1)
    frame = pd.DataFrame(columns)
    for j, name in enumerate(row.columns):  # keep extension dtypes (nullable ints, categoricals)
        dtype = row.dtypes.iloc[j]
        if not isinstance(dtype, np.dtype) and frame[str(name)].dtype != dtype:
            frame[str(name)] = frame[str(name)].astype(dtype)
    return frame


__all__ = ["MAX_BACKGROUND", "PERMUTATIONS", "shapley"]
