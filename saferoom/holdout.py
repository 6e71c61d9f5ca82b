"""The room's seeded, stratified train/test split: the rows scikit-learn's `train_test_split`
would pick, without its per-row Python lists (0.2 s -> ~0.05 s for 1M rows).

tests/unit/test_holdout.py pins the equality, so an upgrade that changes the draw fails loudly.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from sklearn.utils.extmath import _approximate_mode


def stratified_holdout(
    y: npt.NDArray[np.integer], test_share: float, seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Train and test row numbers, each ascending: the same sets as
    `train_test_split(range(n), test_size=test_share, stratify=y, random_state=seed)`."""
    n = y.size
    n_test = math.ceil(test_share * n)
    n_train = n - n_test
    _, y_indices, class_counts = np.unique(y, return_inverse=True, return_counts=True)
    if class_counts.min() < 2 or min(n_train, n_test) < class_counts.size:
        raise ValueError("too few rows of a class to split")
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    rng = np.random.RandomState(seed)
    # The same draws, in the same order, as StratifiedShuffleSplit's first split.
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    in_train = np.zeros(n, dtype=bool)
    in_test = np.zeros(n, dtype=bool)
    for i, count in enumerate(class_counts):
        picked = class_indices[i].take(rng.permutation(count))
        in_train[picked[: n_i[i]]] = True
        in_test[picked[n_i[i] : n_i[i] + t_i[i]]] = True
    # Its last step only shuffles each side (order, not membership): ascending instead.
    return np.flatnonzero(in_train), np.flatnonzero(in_test)
