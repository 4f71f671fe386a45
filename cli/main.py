"""Entry point of the `tributary` command. Each command group lives in a module of its own."""

from __future__ import annotations

import typer

from cli import (
    accounts,
    api_keys,
    bot,
    bounces,
    contact_accounts,
    contacts,
    credits,
    crm,
    data,
    db,
    digest,
    enrich,
    mailbox,
    phone,
    secrets,
    sending,
    sheets_addon,
    verify,
    waterfall,
    web,
    worker,
)
from cli.errors import run_cli
from cli.malloc_arenas import limit_malloc_arenas

app = typer.Typer(
    name="tributary",
    help="Tributary: credits, verified emails and phones, for Slack, Sheets and CSV.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for module in (
    db, web, accounts, api_keys, credits, data, verify, phone, bounces, bot, digest, waterfall, enrich, sending,
    worker, secrets, contacts, contact_accounts, sheets_addon, crm, mailbox,
):
    module.register(app)


def main() -> None:
    limit_malloc_arenas()  # before any command starts its threads
    run_cli(app)


if __name__ == "__main__":
    main()
