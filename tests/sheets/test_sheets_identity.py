"""Who may call the add-on's backend: a Google ID token verified against the loopback certificates
endpoint, then a member found by email (and Workspace domain, when the team restricts it). SQLite
and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.google.fixtures import google_certs  # noqa: F401  (fixture)
from tests.google.identity import mint_id_token, signing_key
from tests.sheets.world import make_world


@pytest.fixture
def world(db_url, google_certs):  # noqa: F811
    w = make_world(db_url, google_certs)
    yield w
    w.services.engine.dispose()


def _post(world, path, headers, body=None):
    return world.client().post(f"/sheets/v1{path}", json=body or {}, headers=headers)


def test_a_member_gets_their_session(world) -> None:
    answer = _post(world, "/session", world.headers("Rep@Acme.test", name="Rita Rep"))
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {
        "email": "rep@acme.test", "member_name": "Rita Rep", "team": {"id": world.team_id, "name": "acme"},
        "role": "member", "balance_credits": 100,
    }


@pytest.mark.parametrize("case", ["missing", "expired", "wrong_audience", "forged", "wrong_issuer", "unverified"])
def test_bad_id_tokens_are_401(world, case) -> None:
    token = {
        "missing": "",
        "expired": world.certs.mint_id_token("rep@acme.test", expires_in_s=-600),
        "wrong_audience": world.certs.mint_id_token("rep@acme.test", audience="other.apps.googleusercontent.com"),
        "forged": mint_id_token("rep@acme.test", key=signing_key("attacker")),
        "wrong_issuer": world.certs.mint_id_token("rep@acme.test", issuer="https://evil.test"),
        "unverified": world.certs.mint_id_token("rep@acme.test", email_verified=False),
    }[case]
    answer = _post(world, "/session", {"Authorization": f"Bearer {token}"} if token else {})
    assert answer.status_code == 401
    assert answer.mimetype == "application/problem+json"
    body = answer.get_json()
    assert body["status"] == 401 and body["detail"] and "Traceback" not in body["detail"]


def test_an_unknown_google_user_is_403_and_told_to_ask_an_admin(world) -> None:
    answer = _post(world, "/session", world.headers("stranger@gmail.test"))
    assert answer.status_code == 403
    assert answer.get_json()["detail"] == (
        "stranger@gmail.test is not a member of a Tributary team: ask your admin to add you"
    )


def test_a_team_restricted_to_its_workspace_domain(world) -> None:
    identities = world.services.sheets.identities
    assert identities.restrict_domain("acme", "Acme.TEST") == "acme.test"
    assert _post(world, "/session", world.headers("rep@acme.test")).status_code == 403  # a consumer account
    assert _post(world, "/session", world.headers("rep@acme.test", hd="other.test")).status_code == 403
    assert _post(world, "/session", world.headers("rep@acme.test", hd="acme.test")).status_code == 200
    identities.restrict_domain("acme", None)
    assert _post(world, "/session", world.headers("rep@acme.test")).status_code == 200


def test_the_admin_cli_sets_and_clears_the_domain(world, db_url, tmp_path) -> None:
    env = {**os.environ, "TRIBUTARY_DATABASE_URL": db_url}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "cli.main", "teams", "set-google-domain", *args], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)

    done = run("acme", "acme.test")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "team acme: the Sheets add-on accepts only Google accounts of acme.test"
    assert world.services.sheets.identities.domain_of("acme") == "acme.test"
    bad = run("acme", "not a domain")
    assert bad.returncode == 2 and "not a domain name" in bad.stderr
    both = run("acme", "acme.test", "--clear")
    assert both.returncode == 2
    cleared = run("acme", "--clear")
    assert cleared.returncode == 0 and world.services.sheets.identities.domain_of("acme") is None


def test_no_selection_is_422_naming_the_field(world) -> None:
    answer = _post(world, "/selection", world.headers(), {"oauth_token": "ya29.token"})
    assert answer.status_code == 422
    body = answer.get_json()
    assert body["errors"][0]["field"] == "sheet" and "no selection" in body["detail"]


def test_too_many_rows_is_422_before_google_is_asked(world) -> None:
    sheet = {"spreadsheet_id": "abc123", "sheet_id": 0, "sheet_name": "Leads", "range_a1": "A1:F10002"}
    answer = _post(world, "/selection", world.headers(), {"sheet": sheet, "oauth_token": "ya29.token"})
    assert answer.status_code == 422
    body = answer.get_json()
    assert body["errors"][0]["field"] == "sheet.range_a1" and "at most 10,000 rows" in body["detail"]


def test_another_teams_job_is_404(world) -> None:
    answer = _post(world, "/jobs/1/poll", world.headers("spy@other.test"), {"oauth_token": "x"})
    assert answer.status_code == 404
