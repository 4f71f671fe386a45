"""Pull: one page of CRM contacts into the team, deduped with the identity rules of CSV uploads.

A contact that matches a shared person (email, LinkedIn URL, or name at the company's domain: the
exact rules CSV uploads use) becomes the team's
contact (source crm); the rest go to the contributor rules (core/contributions.py), which keep them
team-private until corroborated and honour the team's opt-out. Only business fields are read
(core/crm/fields.py); a contact unchanged since the last sync is skipped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.crm.connector import CrmContact
from core.crm.fields import to_query, value_hash
from core.crm.records import RecordRow, RecordUpsert, records_by_crm_id, upsert_records
from core.people.matching import MatchOutcome, MatchRule, match_contacts
from storage.db import read_transaction, run_write
from storage.models.contributor import SourceKind
from storage.models.enums import ContactSource

if TYPE_CHECKING:
    from core.accounts import MemberInfo
    from core.contributions import Contributions
    from core.team_contacts.service import TeamContacts

# The identity rules of CSV dedupe; a fuzzy name is never enough to link a CRM record to a person.
LINK_RULES = frozenset({MatchRule.EMAIL, MatchRule.LINKEDIN_URL, MatchRule.NAME_AT_DOMAIN})


@dataclass
class PullCounts:
    read: int = 0  # contacts the CRM returned
    unchanged: int = 0  # skipped: nothing changed since we last read or wrote them
    linked: int = 0  # matched a shared person
    new_contacts: int = 0  # of which became new team contacts
    duplicates: int = 0  # of which the team already had (as a contact, or twice in the CRM)
    contributed: int = 0  # matched nobody: offered to the contributor rules (private until corroborated)
    invalid: int = 0  # could not be read (no name, email or LinkedIn URL...)


@dataclass(frozen=True)
class Puller:
    engine: object
    connection_id: int
    member: MemberInfo
    properties: tuple[str, ...]  # the mapped push properties whose values are hashed into `seen`
    contributions: Contributions
    team_contacts: TeamContacts
    dry_run: bool = False
    # A dry run stores nothing: the links it would make are kept here for the sync's cost preview.
    preview: list[RecordRow] = field(default_factory=list)

    def page(self, contacts: list[CrmContact], counts: PullCounts) -> None:
        counts.read += len(contacts)
        with read_transaction(self.engine) as conn:
            known = records_by_crm_id(conn, self.connection_id, [c.id for c in contacts])
        fresh = [c for c in contacts if c.id not in known or known[c.id].modified_ms != c.modified_ms]
        counts.unchanged += len(contacts) - len(fresh)
        if not fresh:
            return
        links, unmatched = self._match(fresh, counts)
        if self.dry_run:
            counts.linked += len(links)
            counts.contributed += len(unmatched)
            self.preview.extend(
                RecordRow(0, c.id, links[c.id], c.modified_ms, {p: value_hash(c.value(p)) for p in self.properties})
                for c in fresh
                if c.id in links
            )
            return
        if unmatched:
            self.contributions.contribute(self.member.team_id, [q for _, q in unmatched], SourceKind.CRM)
            counts.contributed += len(unmatched)
            # A contribution may have made someone shared at once (an SMTP-verified or corroborated
            # email): link those now rather than on the contact's next change.
            again, _ = self._match([c for c, _ in unmatched], PullCounts())
            links.update(again)
        self._save(links, counts)
        rows = [
            RecordUpsert(c.id, links.get(c.id), c.modified_ms, {p: value_hash(c.value(p)) for p in self.properties})
            for c in fresh
        ]
        run_write(self.engine, lambda conn: upsert_records(conn, self.connection_id, rows))

    def _match(self, contacts: list[CrmContact], counts: PullCounts):
        queries = [to_query(c) for c in contacts]
        links: dict[str, int] = {}
        unmatched = []
        results = match_contacts(self.engine, queries, team_id=self.member.team_id)
        for contact, query, result in zip(contacts, queries, results, strict=True):
            best = result.best
            if result.outcome is MatchOutcome.INVALID:
                counts.invalid += 1
            elif result.outcome is MatchOutcome.MATCHED and best and best.person_id and best.rule in LINK_RULES:
                links[contact.id] = best.person_id
            else:
                unmatched.append((contact, query))
        return links, unmatched

    def _save(self, links: dict[str, int], counts: PullCounts) -> None:
        counts.linked += len(links)
        people = sorted(set(links.values()))
        if not people:
            return
        saved = self.team_contacts.save(self.member, people, ContactSource.CRM)
        counts.new_contacts += saved.changed
        counts.duplicates += len(links) - saved.changed
