"""CRM sync at scale against a loopback HubSpot rate-limited like HubSpot (100 requests per 10 s).

    .venv/bin/python -m benchmarks.crm_sync [--contacts 50000] [--changed 0.01] [--limit 100] [--db URL]

Seeds `contacts` shared people (20 per company, most with a verified email, half with a mobile) by
bulk inserts and the same people as CRM contacts in a loopback HubSpot that answers 429 (with
Retry-After) past `limit` requests per 10 s; the client paces itself to the same limit. Then times,
through core.crm (the same code `tributary crm sync` runs):
1. the first sync (every contact pulled, linked, its title and company pushed; no credits);
2. the next sync, which reads back the echo of those writes and writes nothing;
3. an incremental sync after `changed` of the contacts were edited in the CRM.
For each: HubSpot calls, seconds, the bound those calls need at the rate limit (calls / limit * 10 s,
measured on the same server in the same run), and the ratio. Aim: the first sync within 1.25x.
Default database: a fresh SQLite file under /tmp; --db for PostgreSQL (an empty database).
"""

from __future__ import annotations

import argparse
import tempfile
import time

from storage.migrate import upgrade
from tests.crm import world as cw
from tests.crm.hubspot_server import HubSpotServer

WINDOW_S = 10.0


def _timed(label: str, world: cw.CrmWorld, limit: int) -> None:
    before = len(world.server.calls)
    start = time.perf_counter()
    summary = world.svc.crm.sync(world.team)
    elapsed = time.perf_counter() - start
    calls = len(world.server.calls) - before
    bound = calls / limit * WINDOW_S
    p = summary.pulled
    print(
        f"{label:>16}: {calls} calls in {elapsed:.1f} s; bound {bound:.1f} s; ratio {elapsed / max(bound, 0.1):.2f} | "
        f"pulled {p['read']} ({p['unchanged']} unchanged), wrote {summary.pushed['values_written']} values, "
        f"kept {summary.pushed['kept_person_edits']} person edits",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=50_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--limit", type=int, default=100, help="HubSpot requests per 10 s")
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    url = args.db or f"sqlite:///{tempfile.mkdtemp(prefix='crm-bench-')}/bench.db"
    upgrade(url)
    with HubSpotServer(cw.TOKEN, rate_limit=args.limit) as server:
        start = time.perf_counter()
        world = cw.build(url, server, args.contacts, existing=args.contacts // 10,
                         hubspot_requests_per_10s=args.limit)  # fmt: skip
        world.svc.crm.connect(world.team, "hubspot", cw.TOKEN)
        print(f"{world.svc.engine.dialect.name}: seeded {args.contacts} people and CRM contacts "
              f"in {time.perf_counter() - start:.0f} s; HubSpot limit {args.limit} / 10 s", flush=True)  # fmt: skip
        _timed("first sync", world, args.limit)
        _timed("echo sync", world, args.limit)
        edited = list(world.ids.values())[: max(1, int(args.contacts * args.changed))]
        for cid in edited:
            server.edit(cid, jobtitle="Edited in HubSpot")
        _timed(f"{len(edited)} changed", world, args.limit)


if __name__ == "__main__":
    main()
