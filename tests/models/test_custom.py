"""A bank's own `fit`/`predict` module: the happy path through training and scoring, and each way
it can go wrong, reported as a UserCodeError that says what is wrong.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from models import entry
from models.custom import UserCodeError
from tests.models.conftest import FEATURE_TYPES, Split, install_user_code, job

GOOD = """
    import random

    import numpy as np
    from sklearn.linear_model import LogisticRegression

    class Model:
        '''A class of the bank's own: its artifact must find it again in user_code.'''

        def __init__(self, columns, regression, draws):
            self.columns = columns
            self.regression = regression
            self.draws = draws

    def design(X, columns):
        return X[columns].fillna(0).to_numpy()

    def draws():
        # The global generators, which the room seeds before fit and before predict.
        return [np.random.random(), random.random()]

    def fit(X, y, params):
        columns = [c for c in X.columns if X[c].dtype.kind == "f"]
        regression = LogisticRegression(C=params["C"], max_iter=1000)
        return Model(columns, regression.fit(design(X, columns), y), draws())

    def predict(model, X):
        p = model.regression.predict_proba(design(X, model.columns))[:, 1]
        # Shrunk by every draw, at fit and here: the scores repeat only if the draws do. The
        # same factor for every row: the ranking (and so the AUC) is the regression's own.
        return p * (1 - sum(model.draws + draws()) / 400)
"""

SEEN = """
    seen = {}

    def fit(X, y, params):
        seen.update(X=X, y=y, params=params)
        params["mutated"] = True
        return "a model"

    def predict(model, X):
        return [0.5] * len(X)
"""


def run(split: Split, template: str = "custom", seed: int = 1, **params: Any) -> dict[str, Any]:
    return entry.train({"train": split.train, "test": split.test}, job(template, seed, **params),
                       {})


def test_custom_code_trains_scores_and_round_trips(monkeypatch, split):
    install_user_code(monkeypatch, GOOD)
    result = run(split, C=0.5)
    assert result["values"] == {
        "template": "custom",
        "n_train": split.train.num_rows,
        "features": list(FEATURE_TYPES),
        "params": {"C": 0.5},
    }
    scores = result["tables"]["test_scores"].column("score").to_numpy()
    assert roc_auc_score(split.test_label, scores) > 0.7
    table = entry.scorer(result["blobs"])({"features": split.test}, {"reasons": 3})["tables"][
        "scores"
    ]
    np.testing.assert_array_equal(table.column("probability").to_numpy(), scores)
    assert table.column("points").null_count == table.num_rows  # no points from custom code
    assert all(r == [] for r in table.column("reasons").to_pylist())  # nor reasons
    # The same seed again: the same draws, so the same scores to the last bit.
    again = run(split, C=0.5)
    assert again["tables"]["test_scores"].equals(result["tables"]["test_scores"])
    # Another seed: other draws, so other scores (the draws do reach them).
    reseeded = run(split, C=0.5, seed=2)
    assert not reseeded["tables"]["test_scores"].equals(result["tables"]["test_scores"])


def test_custom_code_sees_a_typed_frame_a_zero_one_label_and_a_copy_of_its_params(
    monkeypatch, split
):
    install_user_code(monkeypatch, SEEN)
    result = run(split, depth={"max": 3})
    import user_code  # the module installed above

    X, y, params = user_code.seen["X"], user_code.seen["y"], user_code.seen["params"]
    assert list(X.columns) == list(FEATURE_TYPES)
    assert len(X) == len(y) == split.train.num_rows
    assert X["tax_annual.annual_tax"].dtype == np.float64
    assert set(X["tax_annual.tax_arrears"].dropna().unique()) == {0.0, 1.0}
    assert isinstance(X["market_registry.industry"].dtype, pd.CategoricalDtype)
    assert X["market_registry.founded"].max() > 18_000  # days since 1970-01-01
    assert y.dtype == np.int64 and set(y.unique()) == {0, 1}
    assert params == {"depth": {"max": 3}, "mutated": True}
    assert result["values"]["params"] == {"depth": {"max": 3}}  # reported as given


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def predict(model, X):\n    return [0.5] * len(X)\n",
         r"custom code must define fit\(X, y, params\)"),
        ("def fit(X, y, params):\n    return 1\n", r"custom code must define predict\(model, X\)"),
        ("fit = 3\ndef predict(model, X):\n    return []\n", "custom code must define fit"),
        ("def fit(X, y, params):\n    return 1 / 0\ndef predict(model, X):\n    return []\n",
         "fit raised ZeroDivisionError: division by zero"),
        ("def fit(X, y, params):\n    return 1\ndef predict(model, X):\n    raise KeyError('col')\n",
         "predict raised KeyError: 'col'"),
        ("def fit(X, y, params):\n    return 1\ndef predict(model, X):\n    return [0.5] * 3\n",
         r"predict returned 3 values for 1844 rows"),
        ("import numpy as np\ndef fit(X, y, params):\n    return 1\n"
         "def predict(model, X):\n    p = np.full(len(X), 0.5)\n    p[:2] = np.nan\n    return p\n",
         r"predict returned 2 NaN value\(s\)"),
        ("import numpy as np\ndef fit(X, y, params):\n    return 1\n"
         "def predict(model, X):\n    p = np.full(len(X), 0.5)\n    p[0] = np.inf\n    return p\n",
         r"predict returned 1 infinite value\(s\)"),
        ("def fit(X, y, params):\n    return 1\ndef predict(model, X):\n    return [1.5] * len(X)\n",
         r"outside \[0, 1\]"),
        ("def fit(X, y, params):\n    return 1\ndef predict(model, X):\n    return [-0.1] * len(X)\n",
         r"outside \[0, 1\]"),
        ("def fit(X, y, params):\n    return 1\ndef predict(model, X):\n    return ['0.5'] * len(X)\n",
         "predict must return numbers"),
        ("def fit(X, y, params):\n    return 1\ndef predict(model, X):\n    return [None] * len(X)\n",
         "predict must return numbers"),
        ("def fit(X, y, params):\n    return 1\ndef predict(model, X):\n    return None\n",
         "predict returned None"),
        ("def fit(X, y, params):\n    return 1\n"
         "def predict(model, X):\n    return [[0.5, 0.5]] * len(X)\n",
         r"one probability per row \(a flat sequence\), got shape \(1844, 2\)"),
        ("def fit(X, y, params):\n    return 1\ndef predict(model, X):\n    return [[1], [1, 2]]\n",
         "a flat sequence of numbers"),
    ],
    ids=["no fit", "no predict", "fit not callable", "fit raises", "predict raises",
         "wrong length", "nan", "inf", "above one", "below zero", "strings", "none values",
         "returns none", "two columns", "ragged"],
)
def test_broken_custom_code_says_what_is_wrong(monkeypatch, split, source, message):
    install_user_code(monkeypatch, source)
    with pytest.raises(UserCodeError, match=message):
        run(split)


def test_a_model_that_cannot_be_stored_is_refused(monkeypatch, split):
    install_user_code(monkeypatch, "def fit(X, y, params):\n    return lambda: 1\n"
                                   "def predict(model, X):\n    return [0.5] * len(X)\n")
    with pytest.raises(TypeError, match="the fitted model cannot be pickled"):
        run(split)


def test_the_users_exception_stays_attached_for_the_reviewer(monkeypatch, split):
    install_user_code(monkeypatch, "def fit(X, y, params):\n    raise ValueError('bad C')\n"
                                   "def predict(model, X):\n    return []\n")
    with pytest.raises(UserCodeError) as caught:
        run(split)
    assert isinstance(caught.value.__cause__, ValueError)


def test_without_custom_code_nothing_runs(monkeypatch, split):
    monkeypatch.delitem(sys.modules, "user_code", raising=False)
    with pytest.raises(UserCodeError, match="no custom code was given"):
        run(split)


def test_a_custom_artifact_needs_its_code_to_score(monkeypatch, split):
    install_user_code(monkeypatch, GOOD)
    blobs = run(split, C=1.0)["blobs"]
    monkeypatch.delitem(sys.modules, "user_code")
    with pytest.raises(UserCodeError, match="this model needs its custom code"):
        entry.scorer(blobs)


def test_templates_ignore_user_code(monkeypatch, split):
    install_user_code(monkeypatch, "def fit(X, y, params):\n    raise SystemExit\n")
    result = run(split, "logistic_scorecard")
    assert result["values"]["template"] == "logistic_scorecard"
