"""`tributary verify` against the mailnet, through the real entry point (typer's CliRunner)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from core.errors import InvalidInput
from tests.mailnet.net import MailNet

runner = CliRunner()


def harness_args(net: MailNet) -> list[str]:
    return [
        "--dns",
        f"127.0.0.1:{net.dns_port}",
        "--smtp-port",
        str(net.smtp_port),
        "--helo",
        "cli.tributary.test",
        "--from",
        "cli-probe@tributary.test",
        "--timeout",
        "1",
        "--retry-wait",
        "0.01",
        "--allow-test-domains",
    ]


def test_one_line_per_address_and_a_summary(mailnet: MailNet) -> None:
    result = runner.invoke(
        app, ["verify", "alice@known.test", "nobody@known.test", "not an email", *harness_args(mailnet)]
    )
    assert result.exit_code == 0, result.output
    lines = sorted(result.stdout.splitlines())
    assert lines == sorted(
        [
            "alice@known.test\tverified\t95\t-\tmx.known.test",
            "nobody@known.test\tinvalid\t0\tmailbox_not_found\tmx.known.test\t"
            "mx.known.test: 550 5.1.1 <nobody@known.test>: Recipient address rejected: User unknown",
            "not an email\tinvalid\t0\tsyntax\t-\tAn email address must have an @-sign.",
        ]
    )
    assert "3 checked in" in result.stderr and "2 invalid, 1 verified" in result.stderr
    # The options reached the wire.
    assert mailnet.commands("mx.known.test")[:2] == ["EHLO cli.tributary.test", "MAIL FROM:<cli-probe@tributary.test>"]


def test_json_lines(mailnet: MailNet) -> None:
    result = runner.invoke(
        app, ["verify", "--json", "alice@catchall.test", "alice@greylist.test", "", *harness_args(mailnet)]
    )
    assert result.exit_code == 0, result.output
    objects = {o["email"]: o for o in map(json.loads, result.stdout.splitlines())}
    assert set(objects) == {"alice@catchall.test", "alice@greylist.test", ""}
    assert {k: (o["status"], o["reasons"], o["score"], o["mx"]) for k, o in objects.items()} == {
        "alice@catchall.test": ("accept_all", ["catch_all"], 50, "mx.catchall.test"),
        "alice@greylist.test": ("verified", [], 95, "mx.greylist.test"),
        "": ("invalid", ["syntax"], 0, None),
    }
    assert objects["alice@greylist.test"]["chargeable"] is True
    assert objects["alice@catchall.test"]["chargeable"] is False
    assert [s["step"] for s in objects["alice@catchall.test"]["evidence"]] == [
        "banner",
        "ehlo",
        "mail",
        "rcpt_probe",
        "rcpt",
    ]


def test_file_input_with_bad_lines(mailnet: MailNet, tmp_path: Path) -> None:
    path = tmp_path / "emails.txt"
    path.write_text("alice@known.test\n\n  bob@known.test  \n@@@\nalice@nullmx.test\n" + "x" * 300 + "\n")
    result = runner.invoke(app, ["verify", "--file", str(path), "--json", *harness_args(mailnet)])
    assert result.exit_code == 0, result.output
    statuses = {o["email"][:20]: o["status"] for o in map(json.loads, result.stdout.splitlines())}
    assert statuses == {
        "alice@known.test": "verified",
        "bob@known.test": "verified",
        "@@@": "invalid",
        "alice@nullmx.test": "invalid",
        "x" * 20: "invalid",
    }
    assert "5 checked in" in result.stderr


def test_usage_errors(tmp_path: Path) -> None:
    cases = [
        (["verify"], "nothing to verify"),
        (["verify", "a@b.com", "--dns", "127.0.0.1:notaport"], "not a port number"),
        (["verify", "a@b.com", "--smtp-port", "70000"], "not a port number"),
        (["verify", "a@b.com", "--from", "bad sender"], "mail_from"),
        (["verify", "--file", str(tmp_path / "missing.txt")], "missing.txt"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert isinstance(result.exception, InvalidInput), (args, result.exception)
        assert message in str(result.exception)


def test_a_usage_error_is_one_line_on_stderr_and_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "verify", "a@b.com", "--dns", "127.0.0.1:x"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == "error: --dns: 'x' is not a port number (1-65535)\n"


def test_subprocess_run_against_the_harness(mailnet: MailNet) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "verify", "--json", "alice@backup.test", *harness_args(mailnet)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (obj,) = map(json.loads, proc.stdout.splitlines())
    assert (obj["status"], obj["mx"]) == ("verified", "mx2.backup.test")


def test_settings_configure_verify_and_flags_override_them(mailnet: MailNet, monkeypatch, tmp_path: Path) -> None:
    """Issue 12 item 15: the TRIBUTARY_VERIFY_* settings reach `tributary verify`; a flag wins over one."""
    from core.settings import get_settings

    for name, value in {
        "TRIBUTARY_VERIFY_DNS_NAMESERVERS": '["127.0.0.1"]',
        "TRIBUTARY_VERIFY_DNS_PORT": str(mailnet.dns_port),
        "TRIBUTARY_VERIFY_SMTP_PORT": str(mailnet.smtp_port),
        "TRIBUTARY_VERIFY_HELO_NAME": "settings.tributary.test",
        "TRIBUTARY_VERIFY_MAIL_FROM": "settings-probe@tributary.test",
        "TRIBUTARY_VERIFY_CONNECT_TIMEOUT_S": "1",
        "TRIBUTARY_VERIFY_TEST_DOMAINS": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no stray .env
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["verify", "alice@known.test", "--helo", "flag.tributary.test"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("alice@known.test\tverified\t")
    assert mailnet.commands("mx.known.test")[:2] == [
        "EHLO flag.tributary.test",
        "MAIL FROM:<settings-probe@tributary.test>",
    ]


def test_file_skips_blank_and_comment_lines(mailnet: MailNet, tmp_path: Path) -> None:
    """Issue 12 item 17: `# comment` lines in --file are not addresses."""
    listing = tmp_path / "list.txt"
    listing.write_text("# prospects, March\n\nalice@known.test\n   # indented note\nbob@known.test\n", encoding="utf-8")
    result = runner.invoke(app, ["verify", "--file", str(listing), "--json", *harness_args(mailnet)])
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(line)["email"] for line in result.stdout.splitlines()) == [
        "alice@known.test",
        "bob@known.test",
    ]
