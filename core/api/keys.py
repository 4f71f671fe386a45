"""API keys: one per team member and name; the secret is shown once and only its SHA-256 is stored.

A key looks like `trb_<8 hex>_<43 url-safe chars>`; `trb_<8 hex>` is its public prefix, shown in lists
and logs. The secret has 256 random bits, so a plain SHA-256 (no slow KDF) is enough: there is
nothing to brute-force, and a lookup by hash costs one indexed read per request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, bindparam, insert, select, update

from core.accounts import Accounts, MemberInfo, PlanInfo, TeamInfo
from core.actors import Actor, Channel
from core.errors import InvalidInput, NotFound, TributaryError
from storage.db import read_transaction, run_write
from storage.models import ApiKey, Member, Plan, Team
from storage.models.enums import Role
from storage.timeutil import as_utc, utcnow

_KEY = ApiKey.__table__
_MEMBER = Member.__table__
_TEAM = Team.__table__
_PLAN = Plan.__table__

KEY_SCHEME = "trb"
PREFIX_HEX_CHARS = 8
SECRET_BYTES = 32
MAX_KEY_NAME_CHARS = 64
MAX_PRESENTED_KEY_CHARS = 128  # longer than any key we issue: refused before hashing


class InvalidApiKey(TributaryError):
    """Missing, unknown or revoked key: the caller is not told which."""


@dataclass(frozen=True)
class ApiKeyInfo:
    id: int
    team_id: int
    member_email: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class ApiCaller:
    """Who an API request acts as: the key's member in its team (swappable for core.actors.Actor)."""

    key_id: int
    key_prefix: str
    team: TeamInfo
    member: MemberInfo
    requests_per_minute: int
    price_verify_credits: int

    @property
    def role(self) -> Role:
        return self.member.role

    @property
    def actor(self) -> Actor:
        """The key's member as core's rules see them (the same rules as Slack and the CLI)."""
        return Actor.of_member(self.team.id, self.member.id, self.member.is_admin, Channel.API)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeys:
    def __init__(self, engine: Engine, accounts: Accounts) -> None:
        self.engine = engine
        self.accounts = accounts

    def create(self, team_ref: int | str, member_email: str, name: str) -> tuple[ApiKeyInfo, str]:
        """A new key for a member of the team: (its info, the secret — shown once, never stored)."""
        name = (name or "").strip()
        if not name or len(name) > MAX_KEY_NAME_CHARS:
            raise InvalidInput(f"name: give a key name of 1 to {MAX_KEY_NAME_CHARS} characters")
        team = self.accounts.team(team_ref)
        member = self.accounts.member(member_email, team.id)
        prefix = f"{KEY_SCHEME}_{secrets.token_hex(PREFIX_HEX_CHARS // 2)}"
        secret = f"{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"

        def op(conn) -> int:
            return conn.execute(
                insert(_KEY).values(
                    team_id=team.id,
                    member_id=member.id,
                    name=name,
                    prefix=prefix,
                    secret_hash=hash_secret(secret),
                    created_at=utcnow(),
                )
            ).inserted_primary_key[0]

        key_id = run_write(self.engine, op)
        return self._info(key_id), secret

    def list(self, team_ref: int | str) -> list[ApiKeyInfo]:
        team = self.accounts.team(team_ref)
        with read_transaction(self.engine) as conn:
            rows = conn.execute(_info_select().where(_KEY.c.team_id == team.id).order_by(_KEY.c.id)).all()
        return [_key_info(r) for r in rows]

    def revoke(self, team_ref: int | str, prefix: str) -> ApiKeyInfo:
        team = self.accounts.team(team_ref)

        def op(conn) -> int:
            row = conn.execute(
                select(_KEY.c.id, _KEY.c.revoked_at).where(_KEY.c.team_id == team.id, _KEY.c.prefix == prefix.strip())
            ).one_or_none()
            if row is None:
                raise NotFound(f"no API key {prefix!r} in team {team.name!r}")
            if row.revoked_at is None:
                conn.execute(update(_KEY).where(_KEY.c.id == row.id).values(revoked_at=utcnow()))
            return row.id

        return self._info(run_write(self.engine, op))

    def authenticate(self, presented: str | None) -> ApiCaller:
        """The caller a presented secret names; InvalidApiKey for a missing, unknown or revoked key."""
        text = (presented or "").strip()
        if not text or len(text) > MAX_PRESENTED_KEY_CHARS:
            raise InvalidApiKey("missing or invalid API key")
        # One indexed read per request: the key with its member, team and plan.
        with read_transaction(self.engine) as conn:
            row = conn.execute(_CALLER_SELECT, {"secret_hash": hash_secret(text)}).one_or_none()
        if row is None or row.revoked_at is not None:
            raise InvalidApiKey("missing or invalid API key")
        plan = PlanInfo(
            id=row.plan_id,
            name=row.plan_name,
            monthly_credits=row.monthly_credits,
            rollover=row.rollover,
            price_email_credits=row.price_email_credits,
            price_mobile_credits=row.price_mobile_credits,
            price_export_credits=row.price_export_credits,
            builtin=row.builtin,
        )
        team = TeamInfo(row.team_id, row.team_name, plan, row.cycle_anchor_day, row.contribute)
        member = MemberInfo(row.member_id, row.team_id, row.member_email, Role(row.member_role))
        return ApiCaller(row.id, row.prefix, team, member, row.api_requests_per_minute, row.price_verify_credits)

    def signing_key(self, key_id: int) -> str:
        """What a key's webhooks are signed with: the SHA-256 of its secret (core/api/webhooks.py)."""
        with read_transaction(self.engine) as conn:
            value = conn.execute(select(_KEY.c.secret_hash).where(_KEY.c.id == key_id)).scalar()
        if value is None:
            raise NotFound(f"no API key {key_id}")
        return value

    def _info(self, key_id: int) -> ApiKeyInfo:
        with read_transaction(self.engine) as conn:
            return _key_info(conn.execute(_info_select().where(_KEY.c.id == key_id)).one())


_CALLER_SELECT = (
    select(
        _KEY.c.id,
        _KEY.c.prefix,
        _KEY.c.revoked_at,
        _KEY.c.team_id,
        _TEAM.c.name.label("team_name"),
        _TEAM.c.cycle_anchor_day,
        _TEAM.c.contribute,
        _KEY.c.member_id,
        _MEMBER.c.email.label("member_email"),
        _MEMBER.c.role.label("member_role"),
        _PLAN.c.id.label("plan_id"),
        _PLAN.c.name.label("plan_name"),
        _PLAN.c.monthly_credits,
        _PLAN.c.rollover,
        _PLAN.c.price_email_credits,
        _PLAN.c.price_mobile_credits,
        _PLAN.c.price_export_credits,
        _PLAN.c.builtin,
        _PLAN.c.api_requests_per_minute,
        _PLAN.c.price_verify_credits,
    )
    .join(_MEMBER, _MEMBER.c.id == _KEY.c.member_id)
    .join(_TEAM, _TEAM.c.id == _KEY.c.team_id)
    .join(_PLAN, _PLAN.c.id == _TEAM.c.plan_id)
    .where(_KEY.c.secret_hash == bindparam("secret_hash"))
)


def _info_select():
    return select(_KEY, _MEMBER.c.email).join(_MEMBER, _MEMBER.c.id == _KEY.c.member_id)


def _key_info(row) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        team_id=row.team_id,
        member_email=row.email,
        name=row.name,
        prefix=row.prefix,
        created_at=as_utc(row.created_at),
        revoked_at=as_utc(row.revoked_at) if row.revoked_at else None,
    )
