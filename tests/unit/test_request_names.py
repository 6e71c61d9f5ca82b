"""Every request that names a purpose accepts the same names as agreements and consents."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from saferoom.query.service import QueryRequest
from saferoom.scoring import ScoreRequest
from saferoom.training import JobRequest
from saferoom.verification import VerificationRequest
from saferoom.watches import WatchRequest

CHECK = {"dataset": "tax_annual", "field": "annual_tax", "op": ">=", "value": 1}
BODIES = {
    QueryRequest: {"sql": "SELECT COUNT(*) FROM tax_annual", "epsilon": 0.5},
    ScoreRequest: {"subjects": ["x"]},
    JobRequest: {"template": "logistic_scorecard", "features": ["a.b"], "label": "c.d"},
    VerificationRequest: {"subjects": ["x"], "checks": [CHECK]},
    WatchRequest: {"subjects": ["x"], "rules": [CHECK]},
}


@pytest.mark.parametrize("model", list(BODIES), ids=lambda m: m.__name__)
def test_a_64_character_purpose_is_a_name_everywhere(model) -> None:
    longest = "p" + "_" * 63
    assert model.model_validate({**BODIES[model], "purpose": longest}).purpose == longest
    with pytest.raises(ValidationError):
        model.model_validate({**BODIES[model], "purpose": longest + "x"})
