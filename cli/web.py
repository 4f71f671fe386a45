"""`tributary serve`: the web app (Slack endpoints, Sheets add-on API, REST API, /healthz)."""

from __future__ import annotations

import typer

from cli.context import services, uses_demo_mail
from core.secrets import require_production_keys


def serve(
    host: str | None = typer.Option(None, help="Interface to listen on (default from settings)."),
    port: int | None = typer.Option(None, help="Port (default from settings)."),
) -> None:
    """Run the web app with the development server; production runs it under gunicorn (Procfile)."""
    from werkzeug.serving import run_simple

    from bot.digests import digest_deliverer
    from core.jobs.consumer import start_in_process
    from core.jobs.tasks import Jobs
    from sheets_addon.tasks import register_sheets_tasks
    from web.app import create_app

    svc = services()
    require_production_keys(svc.settings, "tributary serve")
    host = host or svc.settings.web_host
    port = port or svc.settings.web_port
    # Embedded mode runs the job consumer beside the web app; with Redis, `tributary worker` does.
    in_process = svc.settings.jobs_in_process
    if in_process is None:
        in_process = not svc.settings.redis_url
    jobs = Jobs(svc, deliver_digest=digest_deliverer(svc, svc.settings))
    register_sheets_tasks(jobs)  # the Sheets add-on's write-back runs in this consumer too
    consumer = start_in_process(jobs, workers=svc.settings.worker_threads) if in_process else None
    demo = "; demo: emails verified against the demo mail world on loopback" if uses_demo_mail(svc) else ""
    typer.echo(
        f"Tributary listening on http://{host}:{port} (health: /healthz); "
        f"jobs {'in-process' if consumer else 'on external workers'}{demo}"
    )
    try:
        run_simple(host, port, create_app(svc), threaded=True, use_reloader=False)
    finally:
        if consumer is not None:
            consumer.stop()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
