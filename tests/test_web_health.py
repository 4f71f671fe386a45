import logging

from core.services import Services
from core.settings import Settings
from storage.migrate import upgrade
from web.app import create_app


def test_healthz_reports_a_migrated_database(db_url) -> None:
    app = create_app(Services.from_settings(Settings(database_url=db_url)))
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_healthz_fails_on_an_unmigrated_or_unreachable_database(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    app = create_app(Services.from_settings(Settings(database_url=url)))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503 and response.get_json()["database"] == "not migrated"
    upgrade(url)
    assert app.test_client().get("/healthz").status_code == 200
    broken = create_app(Services.from_settings(Settings(database_url="postgresql://nobody@127.0.0.1:1/none")))
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503 and response.get_json()["database"] == "unreachable"


def test_healthz_does_not_show_the_database_host_to_callers_only_to_the_log(caplog) -> None:
    broken = create_app(
        Services.from_settings(Settings(_env_file=None, database_url="postgresql://nobody@127.0.0.1:1/none"))
    )
    with caplog.at_level(logging.WARNING, logger="web.health"):
        response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "database": "unreachable", "detail": "database unreachable"}
    assert "127.0.0.1" not in response.get_data(as_text=True) and "port" not in response.get_data(as_text=True)
    assert any("127.0.0.1" in r.getMessage() for r in caplog.records)  # the details are in the log
