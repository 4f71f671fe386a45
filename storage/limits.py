"""Column widths, in characters, shared by the tables (storage/models) and the code that fills them.

Core truncates or refuses text to these widths before it writes; naming them once keeps the two
from drifting apart (tests/test_limits.py compares them with the tables).
"""

from __future__ import annotations

# Free text shown to people: usage descriptions, "data requested", send errors, bounce diagnostics.
MAX_TEXT_CHARS = 500
# Names, titles, companies, locations, labels, and the folded keys of full names and companies.
MAX_NAME_CHARS = 255
# Folded first / last name keys.
MAX_NAME_PART_CHARS = 128
# Short machine words: usage actions, ledger rejection reasons.
MAX_ACTION_CHARS = 64
# A hex SHA-256 digest (body hashes, input fingerprints).
MAX_HEX_DIGEST_CHARS = 64
