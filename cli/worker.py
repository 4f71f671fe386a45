"""`tributary worker`: run the background-job consumer (schedules and queued tasks) in the foreground."""

from __future__ import annotations

import typer

from cli.context import services
from core.secrets import require_production_keys


def worker(
    threads: int | None = typer.Option(None, "--threads", help="Worker threads (default from settings)."),
    no_periodic: bool = typer.Option(False, "--no-periodic", help="Run queued tasks only, not the schedule."),
    metrics_port: int | None = typer.Option(
        None, "--metrics-port", min=1, max=65535, help="Serve Prometheus metrics on this port (/metrics)."
    ),
) -> None:
    """Run the job consumer until interrupted (Procfile: `worker: tributary worker`)."""
    from bot.digests import digest_deliverer
    from core.jobs.consumer import run_worker
    from core.jobs.tasks import Jobs
    from sheets_addon.tasks import register_sheets_tasks

    svc = services()
    require_production_keys(svc.settings, "tributary worker")
    from core.observability import configure_logging

    configure_logging(json_lines=svc.settings.log_json)
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 PID`: every thread's stack on stderr
    # Digests go to admins in Slack: the worker is where the bot's deliverer meets the scheduler.
    jobs = Jobs(svc, deliver_digest=digest_deliverer(svc, svc.settings))
    register_sheets_tasks(jobs)  # the Sheets add-on's write-back (needs the Sheets API client)
    storage = "Redis" if svc.settings.redis_url else f"SQLite ({svc.settings.huey_sqlite_path})"
    typer.echo(f"Tributary worker: queue {jobs.huey.name!r} on {storage}")
    if metrics_port is not None:
        from core.observability import install_ledger_counter, serve_metrics

        install_ledger_counter(svc.engine)
        serve_metrics(metrics_port, jobs.enrichment.read_gauges)
        typer.echo(f"metrics on :{metrics_port}/metrics")
    run_worker(jobs, workers=threads or svc.settings.worker_threads, periodic=not no_periodic)


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
