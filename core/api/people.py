"""people/match and people/bulk_match: find one person by any identifier, then reveal what was asked
through the one data-request service (the same money rules as Slack, Sheets and CSV)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from core.api.keys import ApiCaller
from core.data_requests import AccessResult, DataRequests
from core.errors import InvalidInput, NotFound, TributaryError
from core.normalize import ContactQuery
from core.people.matching import MatchOutcome, match_contact
from core.people.resolve import resolve_person
from core.people.types import EmailFinding, PersonInfo, PhoneFinding
from storage.models.enums import DataKind, Feature

MAX_BULK_PEOPLE = 100


class AmbiguousMatch(TributaryError):
    """Several people fit the identifiers alike: the API never guesses which one is meant."""


@dataclass(frozen=True)
class MatchQuery:
    id: int | None = None
    email: str | None = None
    linkedin_url: str | None = None
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    domain: str | None = None
    reveal: tuple[DataKind, ...] = (DataKind.EMAIL,)


@dataclass(frozen=True)
class KindError:
    kind: DataKind
    error: TributaryError


@dataclass(frozen=True)
class MatchAnswer:
    person: PersonInfo
    email: EmailFinding | None
    office_phone: PhoneFinding | None
    mobile_phones: list[PhoneFinding]
    credits_charged: int
    already_accessed: bool
    revealed: tuple[DataKind, ...]
    errors: list[KindError] = field(default_factory=list)


def find_person(engine: Engine, query: MatchQuery, team_id: int) -> PersonInfo:
    """The one shared person the identifiers name: id first, then core.people.matching's rules."""
    if query.id is not None:
        return resolve_person(engine, query.id)
    has_name = bool(query.name or (query.first_name and query.last_name))
    if not (query.email or query.linkedin_url or has_name):
        raise InvalidInput("person: give an id, an email, a LinkedIn URL, or a name with a company or domain")
    if has_name and not (query.email or query.linkedin_url or query.company or query.domain):
        raise InvalidInput("company: a name alone is not enough; give a company or a domain with it")
    result = match_contact(
        engine,
        ContactQuery(
            full_name=query.name,
            first_name=query.first_name,
            last_name=query.last_name,
            email=query.email,
            linkedin_url=query.linkedin_url,
            company=query.company,
            domain=query.domain,
        ),
        team_id=team_id,
    )
    if result.outcome == MatchOutcome.AMBIGUOUS:
        raise AmbiguousMatch(f"{len(result.candidates)} people match alike; add an email, LinkedIn URL or domain")
    if result.outcome != MatchOutcome.MATCHED or result.best is None or result.best.person_id is None:
        raise NotFound("no person matches the identifiers given")
    return resolve_person(engine, result.best.person_id)


def reveal(
    data_requests: DataRequests, caller: ApiCaller, person: PersonInfo, kinds: tuple[DataKind, ...]
) -> MatchAnswer:
    if not kinds:
        return MatchAnswer(person, None, None, [], 0, False, ())
    outcome = data_requests.access_kinds(caller.team, caller.member, person, list(kinds), feature=Feature.API)
    results: dict[DataKind, AccessResult] = {}
    errors: list[KindError] = []
    for kind, answer in outcome.items():
        if isinstance(answer, TributaryError):
            errors.append(KindError(kind, answer))
        else:
            results[kind] = answer
    if not results:
        raise errors[0].error  # nothing was revealed or charged: the call failed as a whole
    email = results.get(DataKind.EMAIL)
    mobile = results.get(DataKind.MOBILE)
    return MatchAnswer(
        person=person,
        email=email.email if email else None,
        office_phone=email.office_phone if email else None,
        mobile_phones=list(mobile.mobile_phones) if mobile else [],
        credits_charged=sum(r.charged_credits for r in results.values()),
        already_accessed=all(r.already_accessed for r in results.values()),
        revealed=tuple(results),
        errors=errors,
    )


def match(engine: Engine, data_requests: DataRequests, caller: ApiCaller, query: MatchQuery) -> MatchAnswer:
    return reveal(data_requests, caller, find_person(engine, query, caller.team.id), query.reveal)


def bulk_match(
    engine: Engine, data_requests: DataRequests, caller: ApiCaller, queries: list[MatchQuery]
) -> list[MatchAnswer | TributaryError]:
    """One answer per query, in order; a query that fails is that item's error, never the batch's.
    A person named twice in a batch is revealed once (the second is a free replay)."""
    if not queries or len(queries) > MAX_BULK_PEOPLE:
        raise InvalidInput(f"people: give 1 to {MAX_BULK_PEOPLE} people")
    answers: list[MatchAnswer | TributaryError] = []
    for query in queries:
        try:
            answers.append(match(engine, data_requests, caller, query))
        except TributaryError as exc:
            answers.append(exc)
    return answers
