"""Every rule of core.actors, for every role: who is let through and who is refused (and how)."""

from __future__ import annotations

import pytest

from core.actors import (
    Actor,
    Channel,
    Role,
    allows,
    require_change_plan,
    require_connect_workspace,
    require_link_member,
    require_look_up,
    require_manage_keys,
    require_manage_sources,
    require_see_balance,
    require_see_usage,
    require_spend,
)
from core.errors import AccessDenied, InvalidInput, NotAMember, TributaryError

TEAM, OTHER_TEAM = 1, 2
ACTORS = {
    Role.OPERATOR: Actor.operator(TEAM),
    Role.ADMIN: Actor(TEAM, 10, Role.ADMIN, Channel.SLACK),
    Role.MEMBER: Actor(TEAM, 11, Role.MEMBER, Channel.SLACK),
    Role.OUTSIDER: Actor.outsider(TEAM, Channel.SLACK),
}
OP, AD, ME, OU = Role.OPERATOR, Role.ADMIN, Role.MEMBER, Role.OUTSIDER

# rule, its extra arguments, the roles it lets through
RULES = [
    (require_look_up, (), {OP, AD, ME}),
    (require_spend, (), {OP, AD, ME}),
    (require_see_balance, (), {OP, AD, ME}),
    (require_see_usage, (), {OP, AD}),
    (require_link_member, (), {OP, AD}),
    (require_connect_workspace, (None,), {OP, AD, ME, OU}),  # a fresh workspace: the code is the proof
    (require_connect_workspace, (TEAM,), {OP, AD}),  # moving it: an admin of the team it belongs to
    (require_connect_workspace, (OTHER_TEAM,), {OP}),  # an admin of another team may not take it
    (require_change_plan, (), {OP}),
    (require_manage_sources, (), {OP, AD}),
    (require_manage_keys, (11,), {OP, AD, ME}),  # the member's own key
    (require_manage_keys, (99,), {OP, AD}),  # someone else's key
]
CASES = [
    pytest.param(rule, args, role, role in allowed, id=f"{rule.__name__}{list(args)}-{role.value}")
    for rule, args, allowed in RULES
    for role in Role
]


@pytest.mark.parametrize(("rule", "args", "role", "allowed"), CASES)
def test_rule_for_role(rule, args, role: Role, allowed: bool) -> None:
    actor = ACTORS[role]
    if allowed:
        assert rule(actor, *args) is None
        assert allows(rule, actor, *args)
        return
    with pytest.raises(AccessDenied) as refused:
        rule(actor, *args)
    assert isinstance(refused.value, TributaryError) and refused.value.exit_code == 2
    message = str(refused.value)
    if role == Role.OUTSIDER and rule is not require_connect_workspace:
        assert isinstance(refused.value, NotAMember) and "ask an admin to link you" in message
    else:
        assert "only" in message  # says who may
    assert not allows(rule, actor, *args)


def test_an_outsider_of_an_unconnected_workspace_has_no_team_and_may_only_connect() -> None:
    stranger = Actor.outsider(None, Channel.SLACK)
    assert allows(require_connect_workspace, stranger, None)
    assert not allows(require_connect_workspace, stranger, TEAM)
    for rule in (require_look_up, require_spend, require_see_balance, require_see_usage, require_link_member):
        assert not allows(rule, stranger)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Actor(TEAM, None, Role.MEMBER, Channel.API),  # a member without a member id
        lambda: Actor(None, 5, Role.ADMIN, Channel.SHEETS),  # an admin of no team
        lambda: Actor(TEAM, 5, Role.OUTSIDER, Channel.SLACK),  # an outsider claiming a member id
        lambda: Actor(TEAM, 5, Role.OPERATOR, Channel.CLI),
    ],
)
def test_actors_that_cannot_exist_are_refused(build) -> None:
    with pytest.raises(InvalidInput, match="actor:"):
        build()


def test_of_member_takes_the_role_from_the_membership() -> None:
    assert Actor.of_member(TEAM, 3, True, Channel.API).role == Role.ADMIN
    assert Actor.of_member(TEAM, 4, False, Channel.SHEETS).role == Role.MEMBER
