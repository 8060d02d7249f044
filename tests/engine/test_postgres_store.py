"""The PostgreSQL store beyond the conformance suites: reaching it by URL (``store=``,
``PLANLOOP_STORE``, ``planloop --store``), its errors (each names the URL with the
password hidden, and says what to do), and its schema's version, on the real server
of tests/_postgres.py."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

import planloop
from planloop.cli import main
from planloop.engine.durable import open_store
from planloop.engine.store import PostgresStore
from planloop.errors import StoreError
from tests._postgres import PostgresServer, free_port


def hidden(url: str, password: str) -> str:
    shown = url.replace(f":{password}@", ":***@")
    assert shown != url
    return shown


def tiny(store: object) -> planloop.Workflow:
    wf = planloop.Workflow("tiny", store=store)  # type: ignore[arg-type]
    wf.step(lambda: 41 + 1, id="one")
    return wf


def test_store_given_as_a_url_records_the_run_there(fresh_postgresql_url: str) -> None:
    result = tiny(fresh_postgresql_url).run_sync(run_id="by-url")
    assert result.output == 42
    with PostgresStore(fresh_postgresql_url) as store:
        assert store.get_run("by-url").status == "finished"
        assert store.load_trace("by-url") == result.trace
    assert open_store(fresh_postgresql_url) is open_store(f" {fresh_postgresql_url}")


def test_planloop_store_variable_names_the_database(
    fresh_postgresql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANLOOP_STORE", fresh_postgresql_url)
    tiny(None).run_sync(run_id="by-env")
    listed = CliRunner().invoke(main, ["runs"])  # the CLI reads the variable too
    assert listed.exit_code == 0, listed.output
    assert [row.split()[0] for row in listed.stdout.splitlines()[1:]] == ["by-env"]


def test_the_cli_store_option_takes_a_url(
    fresh_postgresql_url: str, postgresql_server: PostgresServer
) -> None:
    tiny(fresh_postgresql_url).run_sync(run_id="old")
    cli = CliRunner()
    shown = cli.invoke(main, ["--store", fresh_postgresql_url, "show", "ol"])
    assert shown.exit_code == 0, shown.output
    assert "old" in shown.stdout
    pruned = cli.invoke(
        main, ["--store", fresh_postgresql_url, "prune", "--older-than", "0s", "--dry-run"]
    )
    assert pruned.exit_code == 0, pruned.output
    assert hidden(fresh_postgresql_url, postgresql_server.password) in pruned.stdout
    assert postgresql_server.password not in pruned.stdout


def opening_fails(url: str, password: str, caplog: pytest.LogCaptureFixture) -> str:
    """The message of the StoreError that opening ``url`` raises; the password is in
    neither it nor the log."""
    with caplog.at_level(logging.DEBUG), pytest.raises(StoreError) as err:
        PostgresStore(url)
    message = str(err.value)
    assert hidden(url, password) in message
    assert password not in message and password not in caplog.text
    return message


def test_a_server_that_is_down_is_named_without_its_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"postgresql://me:hush-123@127.0.0.1:{free_port()}/runs"
    message = opening_fails(url, "hush-123", caplog)
    assert message.startswith(
        f"the PostgreSQL server of postgresql://me:***@127.0.0.1:{url.split(':')[3]}"
        " cannot be reached: is it running, and are the host and port right?"
    )


def test_a_wrong_password_says_to_check_it(
    postgresql_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = postgresql_server.url(password="wrong-pw")
    message = opening_fails(url, "wrong-pw", caplog)
    assert message.startswith(f"check the user and password of {hidden(url, 'wrong-pw')}")


def test_a_missing_database_says_to_create_it(
    postgresql_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = postgresql_server.url("nope")
    message = opening_fails(url, postgresql_server.password, caplog)
    assert "does not exist: create it (createdb nope) or fix the URL" in message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://me:hush-9@127.0.0.1:notaport/runs",
        "postgresql://me:hush-9@[127.0.0.1/runs",  # psycopg quotes this one whole
        "postgresql://me:hush-9@127.0.0.1/runs?bogus=1",
    ],
)
def test_a_malformed_url_is_refused_with_the_password_hidden(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    message = opening_fails(url, "hush-9", caplog)
    assert f"{hidden(url, 'hush-9')} is not a valid PostgreSQL URL: check the URL" in message


def test_a_role_without_rights_is_told_what_to_grant(
    fresh_postgresql_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with psycopg.connect(fresh_postgresql_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS nobody")
        conn.execute("CREATE ROLE nobody LOGIN PASSWORD 'nobody-pw'")
    database = fresh_postgresql_url.rsplit("/", 1)[1]
    url = (
        fresh_postgresql_url.split("//")[0]
        + "//nobody:nobody-pw@"
        + (fresh_postgresql_url.split("@")[1])
    )
    try:
        message = opening_fails(url, "nobody-pw", caplog)  # cannot create the schema
        assert f"GRANT CREATE ON DATABASE {database}" in message
        PostgresStore(fresh_postgresql_url).close()  # the owner creates it
        message = opening_fails(url, "nobody-pw", caplog)  # cannot use it
        assert "cannot create or use the schema 'planloop'" in message
    finally:
        with psycopg.connect(fresh_postgresql_url, autocommit=True) as conn:
            conn.execute("DROP OWNED BY nobody")
            conn.execute("DROP ROLE nobody")


def test_another_schema_version_is_refused_and_left_alone(fresh_postgresql_url: str) -> None:
    PostgresStore(fresh_postgresql_url).close()
    with psycopg.connect(fresh_postgresql_url, autocommit=True) as conn:
        conn.execute("UPDATE planloop.meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(
        StoreError, match="has schema version 99, but this planloop reads version 5"
    ):
        PostgresStore(fresh_postgresql_url)
    with psycopg.connect(fresh_postgresql_url, autocommit=True) as conn:
        assert conn.execute(
            "SELECT value FROM planloop.meta WHERE key = 'schema_version'"
        ).fetchone() == ("99",)


def test_a_closed_store_says_so(fresh_postgresql_url: str, tmp_path: Path) -> None:
    store = PostgresStore(fresh_postgresql_url)
    store.close()
    with pytest.raises(StoreError, match=r"the store postgresql://postgres:\*\*\*@.* is closed"):
        store.list_runs()
