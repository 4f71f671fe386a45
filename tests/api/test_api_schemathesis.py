"""Schemathesis over the whole OpenAPI document, in-process (WSGI), on SQLite and PostgreSQL: no 5xx,
every response conforms to the document (status, content type, schema, headers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import update

from storage.models import Plan
from tests.api.conftest import ApiWorld, mail_settings, make_world
from tests.mailnet.fixtures import mailnet  # noqa: F401  (fixture)
from tests.mailnet.net import MailNet
from web.app import create_app

MAX_EXAMPLES_PER_OPERATION = 20


@pytest.fixture
def fuzz_world(db_url: str, mailnet: MailNet) -> Iterator[ApiWorld]:  # noqa: F811
    world = make_world(db_url, **mail_settings(mailnet))  # email verification stays on loopback
    yield world
    world.services.engine.dispose()


def test_api_conforms_to_its_document(fuzz_world: ApiWorld) -> None:
    world = fuzz_world
    with world.services.engine.begin() as conn:  # the fuzzer's many requests are not what is tested here
        conn.execute(update(Plan.__table__).values(api_requests_per_minute=1_000_000))
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", create_app(world.services))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 4
    headers = {"Authorization": f"Bearer {world.key}"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case) -> None:
            # Not checked: that every schema-valid body is accepted. Which identifiers name a person (an
            # id, or an email, or a name with a company...) and whether an email parses are core's rules,
            # answered 404/422 problems; the document states the shapes, not those rules.
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        try:
            fuzz()
        except Exception as exc:
            pytest.fail(f"{operation.label}: {exc}")
