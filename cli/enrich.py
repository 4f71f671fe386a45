"""`tributary enrich IN.csv -o OUT.csv ...` and `tributary enrich-jobs list|cancel`: CSV enrichment."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from cli.context import echo_json, services
from core.enrichment.csv_enrich import CsvEnrichment, CsvEnrichRequest, CsvPlan, CsvSummary
from core.enrichment.csv_files import DEFAULT_OUTPUT_ENCODING
from core.enrichment.estimate import CostEstimate
from core.enrichment.headers import parse_map_options
from core.enrichment.jobs import JobInfo, JobProgress

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
    max_credits: int | None = typer.Option(
        None, "--max-credits", min=0, help="Spend cap for the whole job (a ceiling: only what is needed is held)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the exact maximum and expected cost; charge nothing."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue this file's unfinished job (crashed, interrupted, or stopped by the cap)."
    ),
    map_: list[str] = typer.Option([], "--map", metavar="COLUMN=FIELD", help="Override a column's field."),
    encoding: str = typer.Option(
        DEFAULT_OUTPUT_ENCODING, "--encoding", help="Output encoding: utf-8-sig (Excel), utf-8, cp1252, ... or input."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary (or estimate) as one JSON line."),
    on_workers: bool = typer.Option(False, "--on-workers", help="Hand the job to `tributary worker` processes."),
    wait: bool = typer.Option(False, "--wait", help="With --on-workers: wait, then write OUT.csv."),
) -> None:
    """Enrich a CSV file: every row is written back, in order, with tributary_* columns appended."""
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
        output_encoding=encoding,
    )
    console = Console(stderr=True, soft_wrap=True)  # a message is one line, whatever the width
    say = (lambda _: None) if as_json else console.print
    try:
        plan = svc.plan(request)
        if resume and not on_workers:
            _refuse_resuming_a_workers_job(svc, request, plan)
        say(
            f"{input_path.name}: {plan.format.data_rows} rows, {plan.format.encoding}, "
            f"delimiter {plan.format.delimiter!r}; columns used: {plan.header_map.describe()}"
        )
        say(_contribution_line(plan.team_contributes, team))
        if not (email or mobile):
            say("neither --email nor --mobile: matching and free firmographics only")
        estimate = None
        if dry_run or max_credits is not None or resume:  # a cap's hold is sized by the preview
            with _progress_bar(console) as bar:
                task = bar.add_task("estimating", total=plan.format.data_rows, detail="")
                estimate = svc.estimate(request, plan, on_row=lambda done: bar.update(task, completed=done))
        if dry_run:
            echo_json(estimate) if as_json else typer.echo(_render_estimate(estimate))
            return
        if on_workers:
            _submit_to_workers(request, plan, console, wait=wait, as_json=as_json)
            return
        needed = estimate.max_uncapped_credits if estimate is not None else None
        job, resumed = svc.start_or_resume(request, plan, needed_credits=needed)
    except KeyboardInterrupt:
        console.print("interrupted before the job started: nothing was held or charged")
        raise typer.Exit(130) from None
    say(f"job {job.id}" + (f" resumed (run {job.runs})" if resumed else " started") + _hold_line(job, needed))
    summary = _run_job(svc, request, plan, job, resumed, console)
    echo_json(summary) if as_json else typer.echo(_render_summary(summary))


def _run_job(svc: CsvEnrichment, request: CsvEnrichRequest, plan: CsvPlan, job: JobInfo, resumed: bool,
             console: Console) -> CsvSummary:
    """The job with a progress bar; Ctrl-C leaves it `interrupted` (core) and says what to do next."""
    try:
        with _progress_bar(console) as bar:
            task = bar.add_task("enriching", total=plan.format.data_rows, detail="")

            def on_progress(p: JobProgress) -> None:
                detail = f"matched {p.matched_rows} found {p.found_rows} credits {p.charged_credits}"
                bar.update(task, completed=p.done_rows, detail=detail)

            return svc.run(request, plan, job, resumed=resumed, on_progress=on_progress)
    except KeyboardInterrupt:
        stopped = svc.jobs.job(job.id)
        console.print(
            f"interrupted: job {job.id} is {stopped.status.value} after {stopped.progress.done_rows} rows, "
            f"holding {stopped.held_credits} credits; run the same command with --resume to finish it, "
            f"or `tributary enrich-jobs cancel {job.id}` to end it"
        )
        raise typer.Exit(130) from None


def _contribution_line(contributes: bool, team: str) -> str:
    if contributes:
        return (
            "contributes to the shared database: yes - rows that match no one are offered to it (business contact "
            "fields only, never linked to your team, shared once verified or corroborated); "
            f"opt out: tributary teams set-contribute {team} --off"
        )
    return "contributes to the shared database: no - this team opted out; its rows serve only its own enrichment"


def _hold_line(job: JobInfo, needed: int | None) -> str:
    cap = job.options.max_credits
    if cap is None:
        return " (no spend cap: credits are charged as data is found, while the team has them)"
    spent = job.spent_before_hold_credits
    cap_left = cap - spent
    if needed is not None and job.held_credits >= needed:
        why = "what the preview says it can need"
    elif job.held_credits >= cap_left:
        why = "what is left of the cap"
    else:
        why = "all the team has: rows beyond it will say 'not enriched: out of credits'"
    need = f"needs up to {needed}, " if needed is not None else ""
    spent_text = f", {spent} spent by earlier runs" if spent else ""
    return f"; holding {job.held_credits} credits, {why} ({need}cap {cap} for the whole job{spent_text})"


def _render_estimate(e: CostEstimate) -> str:
    short = (
        f" - {e.short_credits} short: rows beyond what the team can pay will say "
        "'not enriched: out of credits'; --resume finishes them after a top-up"
        if e.short_credits
        else ""
    )
    lines = [
        f"rows: {e.rows} ({e.matched_rows} matched, to {e.distinct_people} distinct people; "
        f"{e.rows_with_errors} cannot be looked up)",
        f"already paid for by the team (free): {e.already_paid_emails} emails, {e.already_paid_mobiles} mobiles",
        f"needs up to {e.max_credits} credits, you have {e.available_credits}{short}",
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
    if s.not_enriched:
        lines.append(
            f"not enriched: {s.not_enriched} rows (spend cap reached or out of credits); run the same command "
            "with --resume (and a higher --max-credits, or after a top-up) to finish exactly those rows"
        )
    return "\n".join(lines)


@jobs_app.command("list")
def jobs_list(team: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """A team's jobs: status (running, interrupted, incomplete, done, cancelled), progress and held credits."""
    jobs = services().enrichment_jobs.jobs(team)
    if as_json:
        for job in jobs:
            echo_json(job)
        return
    table = Table("id", "file", "status", "done", "total", "credits", "cap", "held", "runs")
    for j in jobs:
        p = j.progress
        cap = "-" if j.options.max_credits is None else str(j.options.max_credits)
        table.add_row(
            str(j.id), j.label, j.status.value, str(p.done_rows), str(p.total_rows or "?"),
            str(p.charged_credits), cap, str(j.held_credits), str(j.runs),
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
