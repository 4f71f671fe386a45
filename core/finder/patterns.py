"""Address patterns ({first}.{last}, {f}{last}, ...): rendering them for a name, recognising them in
known addresses, and their global prior likelihoods."""

from __future__ import annotations

from types import MappingProxyType

from core.finder.name_parts import NameTokens

# Rough shares of each format among B2B mailboxes (public surveys of corporate address formats agree
# on the order more than on the numbers). Only the order matters when a domain has taught us nothing;
# once it has, learned counts come first and these only break ties and fill the tail.
GLOBAL_PRIORS: MappingProxyType[str, float] = MappingProxyType(
    {
        "{first}.{last}": 0.32,
        "{first}": 0.17,
        "{f}{last}": 0.15,
        "{first}{last}": 0.08,
        "{first}_{last}": 0.04,
        "{first}{l}": 0.04,
        "{f}.{last}": 0.03,
        "{last}": 0.03,
        "{last}{f}": 0.02,
        "{last}.{first}": 0.02,
        "{first}-{last}": 0.02,
        "{last}{first}": 0.015,
        "{f}{l}": 0.01,
        "{last}_{first}": 0.01,
        "{first}.{l}": 0.01,
        "{f}_{last}": 0.005,
    }
)
PATTERNS: tuple[str, ...] = tuple(GLOBAL_PRIORS)


def render(pattern: str, name: NameTokens) -> str:
    return pattern.format(first=name.first, last=name.last, f=name.first[0], l=name.last[0])


def patterns_of(local_part: str, name: NameTokens) -> list[str]:
    """Every known pattern that renders this name to exactly this local part (usually one; a name like
    'Al L' can make several coincide)."""
    local = local_part.lower()
    return [p for p in PATTERNS if render(p, name) == local]
