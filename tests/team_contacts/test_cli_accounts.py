"""`tributary accounts list|show|assign` as a subprocess against a real database: pages, owners,
bulk assignment by filter, the actor rule, and another team's account as "not found" (exit 2)."""

from __future__ import annotations

from tests.team_contacts.test_cli_contacts import jsonl, tributary  # noqa: F401 (the fixture)


def test_accounts_from_the_command_line(world, tributary) -> None:  # noqa: F811
    rows = jsonl(tributary("accounts", "list", "acme", "rep@acme.test", "--json").stdout)
    expected = [("Umbrella", "boss@acme.test", 1), ("Globex", "rep2@acme.test", 2), ("Initech", "rep@acme.test", 3)]
    assert [(a["name"], a["owner_email"], a["contacts"]) for a in rows[:-1]] == expected
    assert rows[-1] == {"next_cursor": None}
    globex = rows[1]["id"]
    first = tributary("accounts", "list", "acme", "rep@acme.test", "--limit", "1").stdout
    assert "Umbrella" in first and "next page: --cursor" in first
    mine = tributary("accounts", "assign", "acme", "rep2@acme.test", "rep@acme.test", "owner:@me").stdout
    assert "1 of 1 accounts assigned to rep@acme.test" in mine
    shown = jsonl(tributary("accounts", "show", "acme", "boss@acme.test", str(globex), "--json").stdout)[0]
    assert shown["owner_email"] == "rep@acme.test" and shown["source"] == "sheets"
    refused = tributary("accounts", "assign", "acme", "rep2@acme.test", "rep2@acme.test", "--ids", str(globex), code=2)
    assert "only its owner or an admin" in refused.stderr
    hidden = tributary("accounts", "show", "other", "spy@other.test", str(globex), code=2)
    assert f"unknown account {globex}" in hidden.stderr and "Globex" not in hidden.stderr
    words = tributary("accounts", "list", "acme", "rep@acme.test", "status:verified", code=2)
    assert "accounts: filter words are" in words.stderr
    at_mine = jsonl(tributary("contacts", "list", "acme", "rep@acme.test", "account-owner:@me", "--json").stdout)
    assert {c["full_name"] for c in at_mine[:-1]} >= {"Mo Bile", "Lee Kely", "Vera Fied"}
