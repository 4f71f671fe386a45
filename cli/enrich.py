"""`tributary enrich IN.csv -o OUT.csv ...` and `tributary enrich-jobs list|cancel`: CSV enrichment."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from cli.context import echo_json, services
from core.enrichment.csv_enrich import CsvEnrichRequest, CsvSummary
from core.enrichment.estimate import CostEstimate
from core.enrichment.headers import parse_map_options
from core.enrichment.jobs import JobProgress

jobs_app = typer.Typer(help="Enrichment jobs: list, cancel, status, wait, download.", no_args_is_help=True)


def _progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def enrich(
    input_path: Path = typer.Argument(..., metavar="IN.csv", help="The CSV file to enrich."),
    output: Path = typer.Option(..., "-o", "--output", metavar="OUT.csv", help="Where the enriched copy goes."),
    team: str = typer.Option(..., "--team", help="Team name or id."),
    member: str = typer.Option(..., "--member", help="Member email or id (who is charged in the usage log)."),
    email: bool = typer.Option(False, "--email", help="Access emails (verified ones cost credits)."),
    mobile: bool = typer.Option(False, "--mobile", help="Access mobile numbers (cost credits when found)."),
    max_credits: int | None = typer.Option(None, "--max-credits", min=0, help="Spend cap for the whole file."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the exact maximum and expected cost; charge nothing."),
    resume: bool = typer.Option(False, "--resume", help="Continue this file's unfinished job (after a crash)."),
    map_: list[str] = typer.Option([], "--map", metavar="COLUMN=FIELD", help="Override a column's field."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary (or estimate) as one JSON line."),
    on_workers: bool = typer.Option(False, "--on-workers", help="Hand the job to `tributary worker` processes."),
    wait: bool = typer.Option(False, "--wait", help="With --on-workers: wait, then write OUT.csv."),
) -> None:
    """Enrich a CSV file: every row is written back, in order, with enrichment columns appended."""
    svc = services().csv_enrichment
    request = CsvEnrichRequest(
        input_path=input_path,
        output_path=output,
        team=team,
        member=member,
        want_email=email,
        want_mobile=mobile,
        max_credits=max_credits,
        resume=resume,
        column_map=tuple(parse_map_options(map_).items()),
    )
    plan = svc.plan(request)
    if resume and not on_workers:
        _refuse_resuming_a_workers_job(svc, request, plan)
    console = Console(stderr=True)
    if not as_json:
        console.print(
            f"{input_path.name}: {plan.format.data_rows} rows, {plan.format.encoding}, "
            f"delimiter {plan.format.delimiter!r}; columns used: {plan.header_map.describe()}"
        )
        if not (email or mobile):
            console.print("neither --email nor --mobile: matching and free firmographics only")
    if dry_run:
        with _progress_bar(console) as bar:
            task = bar.add_task("estimating", total=plan.format.data_rows, detail="")
            estimate = svc.estimate(request, plan, on_row=lambda done: bar.update(task, completed=done))
        if as_json:
            echo_json(estimate)
        else:
            typer.echo(_render_estimate(estimate))
        return
    if on_workers:
        _submit_to_workers(request, plan, console, wait=wait, as_json=as_json)
        return
    job, resumed = svc.start_or_resume(request, plan)
    if not as_json:
        console.print(f"job {job.id}" + (f" resumed (run {job.runs})" if resumed else " started"))
    try:
        with _progress_bar(console) as bar:
            task = bar.add_task("enriching", total=plan.format.data_rows, detail="")

            def on_progress(p: JobProgress) -> None:
                detail = f"matched {p.matched_rows} found {p.found_rows} credits {p.charged_credits}"
                bar.update(task, completed=p.done_rows, detail=detail)

            summary = svc.run(request, plan, job, resumed=resumed, on_progress=on_progress)
    except KeyboardInterrupt:
        console.print(f"interrupted: run the same command with --resume to continue job {job.id}")
        raise typer.Exit(130) from None
    if as_json:
        echo_json(summary)
    else:
        typer.echo(_render_summary(summary))


def _render_estimate(e: CostEstimate) -> str:
    lines = [
        f"rows: {e.rows} ({e.matched_rows} matched to {e.distinct_people} distinct people, "
        f"{e.rows_with_errors} cannot be looked up)",
        f"already paid for by the team (free): {e.already_paid_emails} emails, {e.already_paid_mobiles} mobiles",
        f"maximum cost: {e.max_credits} credits"
        + (f" (capped by --max-credits; {e.max_uncapped_credits} without the cap)" if e.cap_credits is not None else "")
        + " - every matched person not yet paid for, at the plan's prices",
        f"expected cost: {e.expected_credits} credits - where the contributor database already holds a "
        "verified email / a mobile; providers may find more, up to the maximum",
        "nothing was charged (dry run)",
    ]
    return "\n".join(lines)


def _render_summary(s: CsvSummary) -> str:
    statuses = ", ".join(f"{status} {n}" for status, n in s.email_statuses) or "none"
    lines = [
        f"wrote {s.output_path} (job {s.job_id}{', resumed' if s.resumed else ''}"
        f"{', CANCELLED: rows not reached are marked' if s.cancelled else ''})",
        f"rows: {s.rows}  matched: {s.matched}  errors: {s.errors}",
        f"emails by status: {statuses}",
        f"mobiles found: {s.mobiles_found}  office phones found: {s.office_phones_found}",
        f"credits charged: {s.credits_charged}",
    ]
    return "\n".join(lines)


@jobs_app.command("list")
def jobs_list(team: str, as_json: bool = typer.Option(False, "--json")) -> None:
    jobs = services().enrichment_jobs.jobs(team)
    if as_json:
        for job in jobs:
            echo_json(job)
        return
    table = Table("id", "file", "status", "done", "total", "credits", "cap", "runs")
    for j in jobs:
        p = j.progress
        cap = "-" if j.options.max_credits is None else str(j.options.max_credits)
        table.add_row(
            str(j.id), j.label, j.status.value, str(p.done_rows), str(p.total_rows or "?"),
            str(p.charged_credits), cap, str(j.runs),
        )
    Console().print(table)


@jobs_app.command("cancel")
def jobs_cancel(job_id: int) -> None:
    """Cancel a job: its spend-cap hold is released at once; a running job stops at its next flush."""
    job = services().enrichment_jobs.cancel(job_id)
    typer.echo(f"job {job.id} is {job.status.value}")


def _workers():
    from core.enrichment.csv_workers import CsvOnWorkers
    from core.jobs.tasks import Jobs

    svc = services()
    return CsvOnWorkers(svc.csv_enrichment, Jobs(svc).enrichment.engine)


def _refuse_resuming_a_workers_job(svc, request: CsvEnrichRequest, plan) -> None:
    """A job handed to the workers resumes there (its chunks are leased): never run it here too."""
    from core.errors import InvalidInput, NotFound

    job = svc.jobs.resumable(request.team, plan.fingerprint, svc.options(request))
    if job is None:
        return
    try:
        _workers().chunks.meta(job.id)
    except NotFound:
        return
    raise InvalidInput(f"--resume: job {job.id} runs on the workers; use `tributary enrich-jobs wait {job.id}`")


def _submit_to_workers(request: CsvEnrichRequest, plan, console: Console, *, wait: bool, as_json: bool) -> None:
    workers = _workers()
    job = workers.submit(request, plan)
    if as_json and not wait:
        echo_json({"job_id": job.id, "status": job.status.value})
        return
    console.print(f"job {job.id} handed to the workers")
    if not wait:
        typer.echo(f"{job.id}")
        return
    _wait(workers, job.id, console)
    rows = workers.download(job.id, request.output_path)
    typer.echo(f"wrote {request.output_path} (job {job.id}, {rows} rows)")


def _wait(workers, job_id: int, console: Console) -> None:
    import threading

    tick = threading.Event()
    status = workers.status(job_id)
    with _progress_bar(console) as bar:
        task = bar.add_task("enriching", total=status.job.progress.total_rows, detail="")
        while not status.finished:
            p = status.job.progress
            detail = f"matched {p.matched_rows} found {p.found_rows} credits {p.charged_credits}"
            bar.update(task, completed=p.done_rows, detail=detail)
            tick.wait(WAIT_POLL_S)
            status = workers.status(job_id)
        bar.update(task, completed=status.job.progress.done_rows)


WAIT_POLL_S = 0.5  # how often `wait` reads the job's progress


@jobs_app.command("status")
def jobs_status(job_id: int, as_json: bool = typer.Option(False, "--json")) -> None:
    """A job's progress and its chunks (pending, queued, leased, done)."""
    status = _workers().status(job_id)
    if as_json:
        from dataclasses import asdict

        echo_json({"job": asdict(status.job), "chunks": asdict(status.chunks), "finished": status.finished})
        return
    p, c = status.job.progress, status.chunks
    typer.echo(
        f"job {job_id}: {status.job.status.value}, {p.done_rows}/{p.total_rows} rows, credits {p.charged_credits}; "
        f"chunks pending {c.pending} queued {c.queued} leased {c.leased} done {c.done}"
    )


@jobs_app.command("wait")
def jobs_wait(job_id: int) -> None:
    """Wait until a job on the workers has finished (or, cancelled, settled)."""
    workers = _workers()
    _wait(workers, job_id, Console(stderr=True))
    typer.echo(f"job {job_id} is {workers.status(job_id).job.status.value}")


@jobs_app.command("download")
def jobs_download(
    job_id: int,
    output: Path = typer.Option(..., "-o", "--output", metavar="OUT.csv", help="Where the enriched copy goes."),
) -> None:
    """Write a finished job's enriched CSV (its input rows, in order, with the enrichment columns)."""
    rows = _workers().download(job_id, output)
    typer.echo(f"wrote {output} (job {job_id}, {rows} rows)")


def register(app: typer.Typer) -> None:
    app.command("enrich")(enrich)
    app.add_typer(jobs_app, name="enrich-jobs")
