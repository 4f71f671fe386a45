"""The one Flask app: blueprints from factories over the services, errors as RFC 9457 problem+json."""

from __future__ import annotations

import logging

import pytest
from flask import Blueprint, Flask

from core.accounts import AlreadyExists
from core.errors import InvalidInput, InvariantViolation, NotFound, TributaryError
from core.ledger import IdempotencyConflict, InsufficientCredits
from core.services import Services
from core.settings import Settings
from web.app import create_app, services_of

PROBLEM = "application/problem+json"


@pytest.fixture
def services(tmp_path) -> Services:
    return Services.from_settings(Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'x.db'}"))


def raising(services: Services) -> Blueprint:
    """A blueprint factory like the app's own, whose views raise what core raises."""
    bp = Blueprint("raising", __name__)
    errors = {
        "field": lambda: InvalidInput("email: not an address", field="email"),
        "cell": lambda: InvalidInput("row 7, column 'Email': not an address", row=7, column="Email"),
        "pointer": lambda: InvalidInput("/rows/3/email: not an address", pointer="/rows/3/email"),
        "missing": lambda: NotFound("unknown team 'acme'"),
        "broke": lambda: InsufficientCredits(team_id=1, requested_credits=8, available_credits=3),
        "twice": lambda: IdempotencyConflict("k-1"),
        "exists": lambda: AlreadyExists("team 'acme' already exists"),
        "bug": lambda: RuntimeError("secret-ish internals at /srv/app/core/x.py line 12"),
        "invariant": lambda: InvariantViolation("hold 9 posted more than it reserved"),
    }

    @bp.get("/raise/<name>")
    def raise_(name: str):
        raise errors[name]()

    @bp.get("/services")
    def show():
        return {"same": services_of_current() is services}

    return bp


def services_of_current() -> Services:
    from flask import current_app

    return services_of(current_app)


def get(app: Flask, path: str):
    response = app.test_client().get(path)
    assert response.mimetype == PROBLEM, response.data
    return response.status_code, response.get_json()


def test_blueprints_are_factories_over_the_services_and_the_accessor_is_typed(services) -> None:
    app = create_app(services, extra_blueprints=[raising])
    assert services_of(app) is services
    assert app.test_client().get("/services").get_json() == {"same": True}
    with pytest.raises(TypeError):
        services_of(Flask("other"))


def test_tributary_errors_become_problems_with_where_they_apply(services) -> None:
    app = create_app(services, extra_blueprints=[raising])
    status, body = get(app, "/raise/field")
    assert status == 400 and body == {
        "type": "urn:tributary:problem:invalid-input",
        "title": "Invalid input",
        "status": 400,
        "detail": "email: not an address",
        "field": "email",
    }
    status, body = get(app, "/raise/cell")
    assert (status, body["row"], body["column"]) == (400, 7, "Email") and "field" not in body
    assert get(app, "/raise/pointer")[1]["pointer"] == "/rows/3/email"
    status, body = get(app, "/raise/missing")
    assert (status, body["type"], body["title"]) == (404, "urn:tributary:problem:not-found", "Not found")
    status, body = get(app, "/raise/broke")
    assert (status, body["title"]) == (402, "Insufficient credits")
    assert body["detail"] == "insufficient credits: 8 requested, 3 available"
    assert get(app, "/raise/twice")[0] == 409
    assert get(app, "/raise/exists")[1]["type"] == "urn:tributary:problem:already-exists"
    assert get(app, "/raise/exists")[0] == 409


def test_unknown_errors_are_a_500_problem_without_internals_and_are_logged(services, caplog) -> None:
    app = create_app(services, extra_blueprints=[raising])
    for path, logged in (("/raise/bug", "/srv/app/core/x.py"), ("/raise/invariant", "hold 9 posted")):
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            status, body = get(app, path)
        assert status == 500 and body["title"] == "Internal Server Error"
        assert "Traceback" not in str(body) and logged not in str(body)
        assert any(logged in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_http_errors_are_problems(services) -> None:
    app = create_app(services)
    status, body = get(app, "/no/such/page")
    assert (status, body["title"], body["type"]) == (404, "Not Found", "about:blank")
    response = app.test_client().get("/api/v1/events/bounces/demo")
    assert response.status_code == 405 and response.mimetype == PROBLEM and "POST" in response.headers["Allow"]


def test_unconfigured_endpoints_answer_503_problems_naming_the_setting(services) -> None:
    app = create_app(services)
    response = app.test_client().post("/slack/events", data=b"x")
    assert response.status_code == 503 and response.mimetype == PROBLEM
    assert "TRIBUTARY_SLACK_SIGNING_SECRET" in response.get_json()["detail"]


def test_the_error_base_class_stays_backwards_compatible() -> None:
    class Old(TributaryError):
        def __init__(self, field: str, message: str) -> None:
            super().__init__(f"{field}: {message}")
            self.field = field

    class OldFirst(TributaryError):
        def __init__(self, field: str) -> None:
            self.field = field  # set before the base's __init__: must survive it
            super().__init__(f"{field}: bad")

    assert Old("type", "unknown").field == "type" and str(Old("type", "unknown")) == "type: unknown"
    assert OldFirst("body").field == "body"
    plain = TributaryError("x")
    assert (plain.field, plain.row, plain.column, plain.pointer, plain.exit_code) == (None, None, None, None, 2)
