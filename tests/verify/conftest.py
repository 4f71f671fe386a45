from __future__ import annotations

import pytest

from core.verify.pipeline import EmailVerifier
from tests.mailnet.fixtures import mailnet  # noqa: F401  (fixture)
from tests.mailnet.net import MailNet


@pytest.fixture
def verifier(mailnet: MailNet) -> EmailVerifier:  # noqa: F811
    return EmailVerifier(mailnet.verifier_config())
