"""`tributary serve`: the web app (Slack endpoints, Sheets add-on API, REST API, /healthz)."""

from __future__ import annotations

import typer

from cli.context import services


def serve(
    host: str | None = typer.Option(None, help="Interface to listen on (default from settings)."),
    port: int | None = typer.Option(None, help="Port (default from settings)."),
) -> None:
    """Run the web app with the development server; production runs it under gunicorn (Procfile)."""
    from werkzeug.serving import run_simple

    from web.app import create_app

    svc = services()
    host = host or svc.settings.web_host
    port = port or svc.settings.web_port
    typer.echo(f"Tributary listening on http://{host}:{port} (health: /healthz)")
    run_simple(host, port, create_app(svc), threaded=True, use_reloader=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
