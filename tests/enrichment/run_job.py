"""A CSV enrichment in a process of its own, so a test can SIGKILL it half-way.

    python -m tests.enrichment.run_job DB_URL IN.csv OUT.csv TEAM MEMBER [--resume]
"""

import sys
from pathlib import Path

from core.enrichment.csv_enrich import CsvEnrichRequest
from storage.db import make_engine
from tests.enrichment.world import services


def main() -> None:
    db_url, in_path, out_path, team, member, *flags = sys.argv[1:]
    engine = make_engine(db_url)
    svc = services(engine, delay_s=0.03, workers=2, flush_rows=3)
    request = CsvEnrichRequest(
        Path(in_path), Path(out_path), team, member, want_email=True, want_mobile=True, max_credits=500,
        resume="--resume" in flags,
    )
    plan = svc.plan(request)
    job, resumed = svc.start_or_resume(request, plan)
    summary = svc.run(request, plan, job, resumed=resumed)
    print(summary.job_id, summary.rows, summary.credits_charged)


if __name__ == "__main__":
    main()
