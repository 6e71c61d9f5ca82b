"""Joint modeling over HTTP with the real jail: templates, custom code under review, dry runs,
models that stay in the room, scoring only consenting applicants, and isolation between banks."""

from __future__ import annotations

import csv
import io
import threading
import time

import pytest

from saferoom import synthetic
from tests.integration.conftest import Server, start_server
from tests.integration.helpers import agree, consent
from tests.sandbox.conftest import jail_processes, wait_gone

pytestmark = pytest.mark.slow
CSV = {"Content-Type": "text/csv"}
FEATURES = ["tax_annual.annual_tax", "tax_annual.tax_arrears", "social_insurance.headcount",
            "social_insurance.arrears_months"]
LABEL = "loan_outcomes.default_12m"
MODEL_POLICY = {"purposes": ["credit_modeling", "loan_application"],
                "custom_code_requires_review": True, "min_training_rows": 300,
                "scoring_consent_required": True, "max_scores_per_subject_per_day": 3}
CUSTOM = '''
from sklearn.linear_model import LogisticRegression

def fit(X, y, params):
    print("training on", len(X), "rows")
    return LogisticRegression(max_iter=500).fit(X.fillna(0).astype(float), y)

def predict(model, X):
    return model.predict_proba(X.fillna(0).astype(float))[:, 1]
'''


def _csv(frame) -> str:
    buf = io.StringIO()
    frame.to_csv(buf, index=False, quoting=csv.QUOTE_MINIMAL)
    return buf.getvalue().replace("True", "true").replace("False", "false")


def _wait(c, job_id: str, until: tuple[str, ...] = ("succeeded", "failed", "rejected")) -> dict:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        body = c.get(f"/v1/jobs/{job_id}").json()
        if body["status"] in until:
            return body
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish: {body}")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("jobs") / "data")
    frames = synthetic.generate(3000, seed=4)
    dept = server.new_principal("department", "税务局")
    bank = server.new_principal("bank", "洛阳银行")
    other_bank = server.new_principal("bank", "other bank")
    for owner, name in ((dept, "tax_annual"), (dept, "social_insurance"), (bank, "loan_outcomes")):
        with server.client(owner["token"]) as c:
            ds = c.post("/v1/datasets", json=synthetic.DATASET_SPECS[name].body).json()
            assert c.put(f"/v1/datasets/{ds['id']}/data", content=_csv(frames[name]),
                         headers=CSV).status_code == 200
            r = c.put(f"/v1/datasets/{ds['id']}/policy", json={"model": MODEL_POLICY})
            assert r.status_code == 200, r.text
    agree(server, bank["id"], ["tax_annual", "social_insurance"],
          ["credit_modeling", "loan_application"])
    yield server, dept, bank, other_bank, frames
    server.stop()


def test_scorecard_trains_in_the_jail_and_the_model_stays_in(world):
    server, _, bank, other_bank, _ = world
    with server.client(bank["token"]) as c:
        r = c.post("/v1/jobs", json={"purpose": "credit_modeling", "kind": "train",
                                     "template": "logistic_scorecard", "features": FEATURES,
                                     "label": LABEL})
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "queued"
        job = _wait(c, r.json()["id"])
        assert job["status"] == "succeeded", job
        metrics = job["metrics"]
        assert metrics["auc"] > 0.6 and 0 < metrics["ks"] < 1
        assert metrics["n_train"] > metrics["n_test"] > 0
        assert len(metrics["calibration"]) == 10
        models = c.get("/v1/models").json()["models"]
        model = next(m for m in models if m["id"] == job["model_id"])
        assert model["lineage"]["datasets"]["tax_annual"] >= 1
        assert "coefficients" not in str(model) and "model" not in model.get("metrics", {})
    with server.client(other_bank["token"]) as c:
        assert c.get(f"/v1/jobs/{job['id']}").status_code == 404
        assert job["model_id"] not in str(c.get("/v1/models").json())
        r = c.post(f"/v1/models/{job['model_id']}/scores",
                   json={"purpose": "loan_application", "subjects": ["91350100M000100Y43"]})
        assert r.status_code == 404


def test_scores_only_for_consenting_applicants_and_capped_per_day(world):
    server, _, bank, _, frames = world
    with server.client(bank["token"]) as c:
        r = c.post("/v1/jobs", json={"purpose": "credit_modeling", "template": "gradient_boosting",
                                     "features": FEATURES, "label": LABEL})
        job = _wait(c, r.json()["id"])
        assert job["status"] == "succeeded", job
    keys = list(frames["tax_annual"]["uscc"][:3])
    firms = [server.new_principal("enterprise", f"firm {i}", k) for i, k in enumerate(keys)]
    for firm in firms[:2]:
        consent(server, firm, bank["id"], "loan_application", ["tax_annual", "social_insurance"])
    with server.client(bank["token"]) as c:
        url = f"/v1/models/{job['model_id']}/scores"
        r = c.post(url, json={"purpose": "loan_application", "subjects": keys})
        assert r.status_code == 200, r.text
        scores = {s["uscc"]: s for s in r.json()["scores"]}
        for k in keys[:2]:
            assert 0 <= scores[k]["score"] <= 1 and scores[k]["score"] == round(scores[k]["score"], 3)
            assert isinstance(scores[k]["reasons"], list)
        assert scores[keys[2]] == {"uscc": keys[2], "score": None, "reason": "consent_required"}
        for _ in range(2):
            c.post(url, json={"purpose": "loan_application", "subjects": keys[:1]})
        capped = c.post(url, json={"purpose": "loan_application", "subjects": keys[:1]}).json()
        assert capped["scores"][0]["reason"] == "threshold_exceeded"
        r = c.post(url, json={"purpose": "marketing", "subjects": keys[:1]})
        assert r.status_code == 403


def test_custom_code_waits_for_review_then_runs(world):
    server, dept, bank, _, _ = world
    body = {"purpose": "credit_modeling", "code": CUSTOM, "features": FEATURES, "label": LABEL}
    with server.client(bank["token"]) as c:
        r = c.post("/v1/jobs", json=body)
        assert r.status_code == 202 and r.json()["status"] == "pending_review", r.text
        job_id = r.json()["id"]
        rejected_id = c.post("/v1/jobs", json=body).json()["id"]
    with server.client(dept["token"]) as c:
        seen = c.get(f"/v1/jobs/{job_id}").json()
        assert seen["code"] == CUSTOM and seen["features"] == FEATURES
        assert c.post(f"/v1/jobs/{job_id}/review", json={"decision": "approve",
                                                         "reason": "looks fine"}).status_code == 200
        r = c.post(f"/v1/jobs/{rejected_id}/review", json={"decision": "reject",
                                                           "reason": "no"})
        assert r.json()["status"] == "rejected"
    with server.client(bank["token"]) as c:
        job = _wait(c, job_id)
        assert job["status"] == "succeeded", job
        assert "logs" not in job and "training on" not in str(job)  # real-data output stays in
    with server.client(dept["token"]) as c:
        assert "training on" in c.get(f"/v1/jobs/{job_id}").json()["logs"]["stdout"]


def test_a_long_poll_answers_when_the_status_moves_on(world):
    server, dept, bank, other_bank, _ = world
    body = {"purpose": "credit_modeling", "code": CUSTOM, "features": FEATURES, "label": LABEL}
    with server.client(bank["token"]) as c:
        job_id = c.post("/v1/jobs", json=body).json()["id"]
        # Nothing moves: the wait runs out and the status is as it was.
        assert c.get(f"/v1/jobs/{job_id}", params={"wait": 0.3}).json()["status"] == (
            "pending_review")
        for bad in ("31", "-1", "soon"):
            r = c.get(f"/v1/jobs/{job_id}", params={"wait": bad})
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", r.text

    def approve_soon() -> None:
        time.sleep(0.5)
        with server.client(dept["token"]) as d:
            d.post(f"/v1/jobs/{job_id}/review", json={"decision": "approve", "reason": "ok"})

    reviewer = threading.Thread(target=approve_soon)
    reviewer.start()
    with server.client(bank["token"]) as c:
        t = time.monotonic()
        moved = c.get(f"/v1/jobs/{job_id}", params={"wait": 30}, timeout=60).json()
        waited = time.monotonic() - t
        assert moved["status"] in ("queued", "running", "succeeded"), moved
        assert waited < 25  # answered on the change, not at the end of the wait
        assert _wait(c, job_id)["status"] == "succeeded"
    reviewer.join()
    with server.client(other_bank["token"]) as c:
        assert c.get(f"/v1/jobs/{job_id}", params={"wait": 1}).status_code == 404


def test_dry_run_shows_everything_on_mock_data(world):
    server, _, bank, _, _ = world
    with server.client(bank["token"]) as c:
        r = c.post("/v1/jobs/dry-run", json={"purpose": "credit_modeling", "code": CUSTOM,
                                             "features": FEATURES, "label": LABEL})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "succeeded" and "training on" in r.json()["stdout"]
        broken = CUSTOM.replace("def predict", "def predict_nothing")
        r = c.post("/v1/jobs/dry-run", json={"purpose": "credit_modeling", "code": broken,
                                             "features": FEATURES, "label": LABEL})
        assert r.json()["status"] == "failed" and "predict" in r.json()["error"]


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"features": ["tax_annual.nope"]}, 422),
        ({"features": ["nope.annual_tax"]}, 404),
        ({"label": "tax_annual.tax_arrears"}, 422),
        ({"features": ["tax_annual.uscc"]}, 422),
        ({"code": "x = 1"}, 422),  # both template and code
        ({"template": "deep_magic"}, 422),
        ({"purpose": "marketing"}, 403),
    ],
)
def test_bad_jobs_are_refused(world, change, status):
    server, _, bank, _, _ = world
    body = {"purpose": "credit_modeling", "template": "logistic_scorecard",
            "features": FEATURES, "label": LABEL, **change}
    with server.client(bank["token"]) as c:
        r = c.post("/v1/jobs", json=body)
    assert r.status_code == status, r.text


def test_a_job_running_at_a_crash_fails_on_restart(tmp_path):
    from saferoom.job_store import Job, JobStore
    from saferoom.room import Room
    from saferoom.settings import load_settings
    from saferoom.state import utcnow

    data = tmp_path / "data"
    room = Room.open(load_settings({}, {"data_dir": data}))
    store = JobStore(room.state, room.master)
    now = utcnow()
    store.add(Job("job_x", "ban_x", "credit_modeling", "logistic_scorecard", None, ("a.b",),
                  "c.d", {}, "running", None, None, None, (), False, now, now))
    room.close()
    server: Server = start_server(data)  # starting the service is what marks it failed
    server.stop()
    room = Room.open(load_settings({}, {"data_dir": data}))
    try:
        job = JobStore(room.state, room.master).get("job_x")
        assert job is not None and job.status == "failed" and "submit it again" in str(job.error)
    finally:
        room.close()


def test_reason_codes_name_characteristics_only():
    from saferoom.scoring import ReasonNames

    names = ReasonNames(("tax_annual.annual_tax", "court_records.judgments"))
    for _ in range(2):  # the second time from what it remembers
        assert names(["tax_annual.annual_tax: < 9900", "court_records.judgments: [3, 4)",
                      "tax_annual.annual_tax: again", "91350100M000100Y43", "x: y"]
                     ) == ["tax_annual.annual_tax", "court_records.judgments"]
    assert names(None) == [] and names(["91350100M000100Y43"]) == []


def test_the_service_keeps_a_training_jail_waiting_and_leaves_none_behind(tmp_path):
    server: Server = start_server(tmp_path / "data")
    try:
        deadline = time.monotonic() + 30
        while not (spare := jail_processes(server.process.pid)):
            assert time.monotonic() < deadline, "no spare training jail"
            time.sleep(0.1)
    finally:
        server.stop()
    assert "Application shutdown complete" in server.log()  # the lifespan closed the spare
    # Those very processes, wherever they were reparented: the jail's own init dies by its
    # parent-death signal.
    wait_gone(spare, 5)


def test_only_builtin_exception_names_reach_the_bank():
    from saferoom.jobs import released_error_kind

    assert released_error_kind("UserCodeError: predict returned 3 values for 4 rows") == (
        "UserCodeError")
    assert released_error_kind("MemoryError: ") == "MemoryError"
    # Job code names its own classes: a name built from a value must not leave.
    assert released_error_kind("v91410302MAE2DL467M: boom") is None
    assert released_error_kind("年纳税额1234567: x") is None
    assert released_error_kind(None) is None


def test_min_training_rows_counts_only_labelled_rows(world):
    server, _, bank, _, frames = world
    outcomes = frames["loan_outcomes"].copy()
    outcomes["default_12m"] = outcomes["default_12m"].astype(object)
    outcomes.loc[outcomes.index[200:], "default_12m"] = None  # 906 rows, 200 labelled
    spec = {**synthetic.DATASET_SPECS["loan_outcomes"].body, "name": "loan_outcomes_sparse"}
    with server.client(bank["token"]) as c:
        ds = c.post("/v1/datasets", json=spec).json()
        r = c.put(f"/v1/datasets/{ds['id']}/data", content=_csv(outcomes), headers=CSV)
        assert r.status_code == 200, r.text
        assert c.put(f"/v1/datasets/{ds['id']}/policy",
                     json={"model": MODEL_POLICY}).status_code == 200
        r = c.post("/v1/jobs", json={"purpose": "credit_modeling", "template": "logistic_scorecard",
                                     "features": FEATURES,
                                     "label": "loan_outcomes_sparse.default_12m"})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "query_not_allowed"
    assert "300 rows" in r.json()["error"]["message"]
