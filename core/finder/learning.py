"""Learning a domain's address patterns from its known verified emails, and ranking candidates."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Engine, select

from core.finder.name_parts import NameTokens, address_tokens
from core.finder.patterns import GLOBAL_PRIORS, PATTERNS, patterns_of, render
from storage.db import read_transaction
from storage.models import Company, EmailAddress, Person
from storage.models.enums import CHARGEABLE_EMAIL_STATUSES

_C = Company.__table__
_P = Person.__table__
_E = EmailAddress.__table__
# Enough examples to know a domain's habits; a huge domain must not turn every lookup into a scan.
MAX_EXAMPLES = 500


@dataclass(frozen=True)
class KnownAddress:
    address: str
    first_name: str | None
    last_name: str | None
    full_name: str


@dataclass(frozen=True)
class DomainPatterns:
    domain: str
    # (pattern, weight) by weight descending; an address matching k patterns adds 1/k to each.
    learned: tuple[tuple[str, float], ...]
    examples: int  # verified addresses at the domain whose owner's name explained them

    def weight(self, pattern: str) -> float:
        return dict(self.learned).get(pattern, 0.0)


@dataclass(frozen=True)
class Candidate:
    address: str
    pattern: str
    learned_weight: float
    prior: float


def learn(domain: str, known: list[KnownAddress]) -> DomainPatterns:
    counts: Counter[str] = Counter()
    examples = 0
    suffix = "@" + domain.lower()
    for item in known:
        if not item.address.lower().endswith(suffix):
            continue
        name = address_tokens(item.first_name, item.last_name, item.full_name)
        if name is None:
            continue
        matches = patterns_of(item.address.lower()[: -len(suffix)], name)
        if not matches:
            continue  # info@, sales@, nicknames: say nothing about the naming scheme
        examples += 1
        for pattern in matches:
            counts[pattern] += 1 / len(matches)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], -GLOBAL_PRIORS[kv[0]], kv[0]))
    return DomainPatterns(domain.lower(), tuple(ranked), examples)


def candidates(name: NameTokens, domain: str, patterns: DomainPatterns, *, limit: int) -> list[Candidate]:
    """Most likely first: learned weight, then the global prior; each address once."""
    order = sorted(PATTERNS, key=lambda p: (-patterns.weight(p), -GLOBAL_PRIORS[p]))
    seen: set[str] = set()
    out: list[Candidate] = []
    for pattern in order:
        address = f"{render(pattern, name)}@{domain.lower()}"
        if address in seen:
            continue
        seen.add(address)
        out.append(Candidate(address, pattern, patterns.weight(pattern), GLOBAL_PRIORS[pattern]))
        if len(out) == limit:
            break
    return out


def known_addresses(engine: Engine, domain: str) -> list[KnownAddress]:
    """Verified addresses of people at the company that owns `domain` (indexed joins, no suffix scan)."""
    statuses = [s.value for s in CHARGEABLE_EMAIL_STATUSES]
    stmt = (
        select(_E.c.address, _P.c.first_name, _P.c.last_name, _P.c.full_name)
        .select_from(_C.join(_P, _P.c.company_id == _C.c.id).join(_E, _E.c.person_id == _P.c.id))
        .where(_C.c.domain == domain.lower(), _E.c.status.in_(statuses))
        .order_by(_E.c.id.desc())
        .limit(MAX_EXAMPLES)
    )
    with read_transaction(engine) as conn:
        return [KnownAddress(r.address, r.first_name, r.last_name, r.full_name) for r in conn.execute(stmt)]


def learn_domain(engine: Engine, domain: str) -> DomainPatterns:
    return learn(domain, known_addresses(engine, domain))
