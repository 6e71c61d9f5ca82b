"""The `models` package in a real jail: training jobs and a warm scoring pool give exactly what the
same calls give in process. Fails (not skips) without bubblewrap, like the sandbox's own tests.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models import entry
from sandbox import JOB_LIMITS, BubblewrapRunner, JailJob, JailResult, WarmPool, check_jail
from tests.models.conftest import TEMPLATES, Split, install_user_code, job
from tests.models.test_custom import GOOD

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runner() -> BubblewrapRunner:
    jail = BubblewrapRunner(import_roots=[REPO / "models"])
    check_jail(jail)  # JailUnavailable, a failure, without a working jail
    return jail


def train_in_jail(
    runner: BubblewrapRunner, split: Split, params: dict[str, Any], code: str | None = None
) -> JailResult:
    result = runner.run(
        JailJob(
            entry="models.entry:train",
            inputs={"train": split.train, "test": split.test},
            params=params,
            code=code,
            limits=JOB_LIMITS["train"],
        )
    )
    assert result.ok, (result.error, result.stderr[-2000:])
    return result


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_template_trains_and_serves_in_the_jail_as_in_process(runner, split, trained, template):
    result = train_in_jail(runner, split, job(template))
    local = trained[template]
    np.testing.assert_array_equal(
        result.tables["test_scores"].column("score").to_numpy(),
        local["tables"]["test_scores"].column("score").to_numpy(),
    )
    assert result.values == local["values"]
    assert set(result.blobs) == {"model"}

    features = split.test.slice(0, 500)
    expected = entry.scorer(local["blobs"])({"features": features}, {"reasons": 3})
    with WarmPool(runner, "models.entry:scorer", result.blobs, size=1) as pool:
        for _ in range(3):  # warm: the same jail answers again and again
            served = pool.call({"features": features}, {"reasons": 3})
            assert served.ok, (served.error, served.stderr[-2000:])
            assert served.tables["scores"].equals(expected["tables"]["scores"])
        one = pool.call({"features": features.slice(0, 1)}, {})
        assert one.ok and one.tables["scores"].num_rows == 1
        refused = pool.call({"features": features}, {"reasons": -1})
        assert refused.status == "error"
        assert "reasons must be an integer" in (refused.error or "")
        assert pool.call({"features": features.slice(0, 1)}, {}).ok  # still serving
        assert pool.replaced == 0

    cold = runner.run(
        JailJob(
            entry="models.entry:score",
            inputs={"features": features},
            params={"reasons": 3},
            blobs=result.blobs,
            limits=JOB_LIMITS["score"],
        )
    )
    assert cold.ok, cold.error
    assert cold.tables["scores"].equals(expected["tables"]["scores"])


def test_custom_code_trains_and_serves_in_the_jail(runner, split, monkeypatch):
    code = textwrap.dedent(GOOD)
    result = train_in_jail(runner, split, job("custom", C=0.5), code=code)
    install_user_code(monkeypatch, GOOD)
    local = entry.train({"train": split.train, "test": split.test}, job("custom", C=0.5), {})
    np.testing.assert_array_equal(
        result.tables["test_scores"].column("score").to_numpy(),
        local["tables"]["test_scores"].column("score").to_numpy(),
    )
    features = split.test.slice(0, 200)
    with WarmPool(runner, "models.entry:scorer", result.blobs, size=1, code=code) as pool:
        served = pool.call({"features": features}, {})
        assert served.ok, (served.error, served.stderr[-2000:])
        assert served.tables["scores"].equals(
            entry.scorer(local["blobs"])({"features": features}, {})["tables"]["scores"]
        )


def test_broken_custom_code_fails_the_job_with_its_message(runner, split):
    code = (
        "import numpy as np\n"
        "def fit(X, y, params):\n    return None\n"
        "def predict(model, X):\n    return np.full(len(X), np.nan)\n"
    )
    result = runner.run(
        JailJob(
            entry="models.entry:train",
            inputs={"train": split.train, "test": split.test},
            params=job("custom"),
            code=code,
            limits=JOB_LIMITS["train"],
        )
    )
    assert result.status == "error"
    assert result.error == f"UserCodeError: predict returned {split.test.num_rows} NaN value(s)"
