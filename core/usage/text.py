"""The digest as plain text (the CLI prints it; it also serves as a Slack fallback text)."""

from __future__ import annotations

from fractions import Fraction

from core.usage.digest import UsageDigest


def credits_text(n: int) -> str:
    """`1 credit`, `0 credits`, `12,500 credits`: every front end's way of saying an amount."""
    return f"{n:,} credit" if abs(n) == 1 else f"{n:,} credits"


_credits = credits_text


def _rate(rate: Fraction) -> str:
    return f"{float(rate):.1f}".removesuffix(".0")


def render_text(digest: UsageDigest) -> str:
    d = digest
    lines = [
        f"Usage digest for {d.team_name}: {d.period.kind.value}, {d.period.label} (UTC)",
        f"Spent: {_credits(d.spent_credits)}",
        "By category: " + ", ".join(f"{c.label} {c.credits}" for c in d.by_category),
        "By feature: " + ", ".join(f"{f.label} {f.credits}" for f in d.by_feature),
        "By member:" + ("" if d.by_member else " nobody spent credits"),
    ]
    width = max((len(m.label) for m in d.by_member), default=0)
    lines += [f"  {m.label:<{width}}  {m.credits}" for m in d.by_member]
    r = d.refunds
    lines.append(
        f"Refunds: {_credits(r.granted_credits)} granted ({r.granted_count}), "
        f"{_credits(r.pending_credits)} pending ({r.pending_count})"
    )
    lines.append(
        f"Balance: {_credits(d.balance.available_credits)} available, {d.balance.held_credits} held "
        f"(as of {d.generated_at:%Y-%m-%d %H:%M} UTC)"
    )
    f = d.forecast
    pace = f"{_rate(f.credits_per_day)} credits/day over the last {f.window_days} days"
    if f.runs_out_on is not None:
        lines.append(f"Run-out: at {pace}, credits run out on {f.runs_out_on:%Y-%m-%d}")
    elif f.beyond_horizon:
        lines.append(f"Run-out: at {pace}, credits last more than ten years")
    else:
        lines.append(f"Run-out: nothing spent in the last {f.window_days} days, no run-out date")
    j = d.job_changes
    lines.append(f"Job changes: {j.count}" + (": " + "; ".join(j.names) if j.names else ""))
    if j.count > len(j.names):
        lines.append(f"  ... and {j.count - len(j.names)} more (tributary contacts changes {d.team_name})")
    return "\n".join(lines) + "\n"
