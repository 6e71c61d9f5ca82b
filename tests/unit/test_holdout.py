"""The room's split picks exactly the rows scikit-learn's stratified train_test_split picks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import train_test_split

from saferoom.holdout import stratified_holdout


@settings(max_examples=60, deadline=None)
@given(n=st.integers(10, 3000), share=st.floats(0.05, 0.6), classes=st.integers(2, 4),
       seed=st.integers(0, 2**31 - 1), data_seed=st.integers(0, 1000))
def test_same_rows_as_scikit_learn(n, share, classes, seed, data_seed):
    y = np.random.default_rng(data_seed).integers(0, classes, n).astype(np.int8)
    y[:classes * 2] = np.repeat(np.arange(classes), 2)  # at least two of each class
    try:
        want_train, want_test = train_test_split(np.arange(n), test_size=share, stratify=y,
                                                 random_state=seed)
    except ValueError:
        with pytest.raises(ValueError):
            stratified_holdout(y, share, seed)
        return
    train, test = stratified_holdout(y, share, seed)
    assert np.array_equal(train, np.sort(want_train))
    assert np.array_equal(test, np.sort(want_test))


def test_one_member_of_a_class_is_refused():
    with pytest.raises(ValueError):
        stratified_holdout(np.array([0, 0, 0, 0, 1], dtype=np.int8), 0.3, 1)
