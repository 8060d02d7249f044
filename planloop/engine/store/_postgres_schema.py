"""The PostgreSQL store's layout, opening a database as one, and its error messages.

The store's tables are in a schema of their own, ``planloop``, created on first use
(in one transaction, under an advisory lock, so two processes opening an empty
database at once create it once). ``planloop.meta`` names the application and holds
the layout's version, :data:`SCHEMA_VERSION` as SQLite's (5): a ``planloop``
schema of another application or version raises :class:`~planloop.errors.StoreError`
and is left untouched.

Bodies are ``TEXT``, not ``JSONB``: the store never looks inside one, and must give
back the codec's text exactly (JSONB reorders an object's keys, and refuses
``\\u0000`` in strings). A run's start and end times are ISO 8601 text, as in
SQLite, so that a naive time comes back naive; the lease's times are
``TIMESTAMPTZ`` (always UTC), compared as times. ``run_id`` is ``COLLATE "C"``: a
prefix search is a range of its unique index, in code point order as SQLite's.

Every message names the database by :func:`hide_password` of its URL, never the URL.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from planloop.engine.store._schema import SCHEMA_VERSION
from planloop.errors import StoreError

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "SCHEMA",
    "URL_SCHEMES",
    "create",
    "explain",
    "hide_password",
    "is_url",
    "psycopg_module",
]

SCHEMA = "planloop"
"""The PostgreSQL schema that holds the store's tables."""

URL_SCHEMES = ("postgresql://", "postgres://")
"""How a ``store=`` string naming a PostgreSQL database starts."""

_CREATE_LOCK = 0x706C616E6C6F6F70  # "planloop": the advisory lock creation runs under

_TABLES = (
    "CREATE SCHEMA IF NOT EXISTS planloop",
    "CREATE TABLE planloop.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE planloop.runs (
        num             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_id          TEXT COLLATE "C" NOT NULL UNIQUE,
        name            TEXT NOT NULL,
        status          TEXT NOT NULL,
        stop_reason     TEXT,
        iterations      INTEGER NOT NULL DEFAULT 0,
        started_at      TEXT NOT NULL,
        ended_at        TEXT,
        definition      TEXT,
        definition_hash TEXT,
        lease_owner     TEXT,
        last_seen       TIMESTAMPTZ,
        lease_expires   TIMESTAMPTZ)""",
    "CREATE INDEX runs_by_start ON planloop.runs (started_at DESC, num DESC)",
    """CREATE TABLE planloop.events (
        run_id TEXT COLLATE "C" NOT NULL REFERENCES planloop.runs (run_id),
        seq    BIGINT NOT NULL,
        kind   TEXT NOT NULL,
        body   TEXT NOT NULL,
        PRIMARY KEY (run_id, seq))""",
    """CREATE TABLE planloop.checkpoints (
        run_id TEXT COLLATE "C" NOT NULL REFERENCES planloop.runs (run_id),
        seq    BIGINT NOT NULL,
        body   TEXT NOT NULL,
        PRIMARY KEY (run_id, seq))""",
    "CREATE SEQUENCE planloop.children_order",
    """CREATE TABLE planloop.children (
        run_id TEXT COLLATE "C" NOT NULL REFERENCES planloop.runs (run_id),
        name   TEXT NOT NULL,
        body   TEXT NOT NULL,
        stored BIGINT NOT NULL DEFAULT nextval('planloop.children_order'),
        PRIMARY KEY (run_id, name))""",
)


def psycopg_module() -> Any:
    """psycopg, imported on first use (the ``planloop[postgresql]`` extra).

    Raises:
        StoreError: it is not installed (the message says how to install it).
    """
    try:
        import psycopg
        import psycopg_pool  # noqa: F401  (the backend's pool; checked here, once)
    except ImportError as exc:
        raise StoreError(
            f"a PostgreSQL store needs psycopg 3 and psycopg-pool ({exc}): install them"
            " with pip install 'planloop[postgresql]'"
        ) from None
    return psycopg


def is_url(option: object) -> bool:
    """Whether ``option`` is a string naming a PostgreSQL database (a ``postgresql://`` URL).

    Example:
        >>> is_url("postgresql://me@db/runs"), is_url("runs.db")
        (True, False)
    """
    return isinstance(option, str) and option.strip().lower().startswith(URL_SCHEMES)


def hide_password(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***`` (in the user part, and in
    a ``password=`` parameter or key).

    Example:
        >>> hide_password("postgresql://me:secret@db:5432/runs?password=x&sslmode=require")
        'postgresql://me:***@db:5432/runs?password=***&sslmode=require'
        >>> hide_password("host=db password=secret dbname=runs")
        'host=db password=*** dbname=runs'
    """
    if not is_url(url):
        words = url.split()
        return " ".join(
            "password=***" if word.lower().startswith("password=") else word for word in words
        )
    found = _URL.match(url.strip())
    assert found is not None  # is_url: it starts with a scheme
    scheme, netloc, rest = found.groups()
    user, at, host = netloc.rpartition("@")
    if ":" in user:
        netloc = user.split(":", 1)[0] + ":***" + at + host
    return scheme + netloc + _QUERY_PASSWORD.sub(r"\1***", rest)


# A URL's parts, by hand: urllib refuses some of the URLs a user may mistype (an
# unclosed "[") and those must be shown without their password too.
_URL = re.compile(r"([a-zA-Z]+://)([^/?#]*)(.*)", re.DOTALL)
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def explain(url: str, error: BaseException, *, doing: str) -> StoreError:
    """The error of ``doing`` (``"open"``, ``"read"``, ``"write to"``) the store at
    ``url`` that psycopg failed with ``error``: its cause, what to do, then psycopg's
    own message, all without the password (psycopg quotes a URL it cannot parse)."""
    psycopg = psycopg_module()
    location = hide_password(url)
    text = str(error).strip().replace(url, location)
    secret = _password(url)
    if secret:
        text = text.replace(secret, "***")
    lower = text.lower()
    database = location.rsplit("/", 1)[-1].split("?")[0] if is_url(location) else "DB"
    if isinstance(error, psycopg.errors.InsufficientPrivilege) or "permission denied" in lower:
        hint = (
            f"the user of {location} cannot create or use the schema {SCHEMA!r}: grant it"
            f" (GRANT CREATE ON DATABASE {database} TO the user, or GRANT USAGE ON SCHEMA"
            f" {SCHEMA} and the tables' rights), or have the database's owner open the store"
            " once to create it"
        )
    elif "password authentication failed" in lower or "no password supplied" in lower:
        hint = f"check the user and password of {location} (the password is not shown)"
    elif "does not exist" in lower and "database" in lower:
        hint = (
            f"the database of {location} does not exist: create it (createdb {database})"
            " or fix the URL"
        )
    elif isinstance(error, psycopg.ProgrammingError) or (
        "invalid" in lower and ("option" in lower or "uri" in lower or "conninfo" in lower)
    ):
        hint = (
            f"{location} is not a valid PostgreSQL URL: check the URL"
            " (postgresql://USER:PASSWORD@HOST:PORT/DATABASE)"
        )
    elif isinstance(error, psycopg.OperationalError):  # psycopg_pool's PoolTimeout too
        hint = (
            f"the PostgreSQL server of {location} cannot be reached: is it running, and are"
            " the host and port right?"
        )
    else:
        hint = f"cannot {doing} the store {location}: check the URL and the server"
    return StoreError(f"{hint} ({text})")


def _password(url: str) -> str | None:
    """The password in ``url``, if one can be found in it."""
    if not is_url(url):
        words = [w for w in url.split() if w.lower().startswith("password=")]
        return words[0].split("=", 1)[1] if words else None
    found = _URL.match(url.strip())
    assert found is not None  # is_url: it starts with a scheme
    user = found.group(2).rpartition("@")[0]
    if ":" in user:
        return user.split(":", 1)[1]
    query = _QUERY_PASSWORD.search(found.group(3))
    return query.group(0).split("=", 1)[1] if query else None


def create(conn: psycopg.Connection[Any], location: str) -> None:
    """Check the store's schema in the database of ``conn`` (autocommit), creating it
    when there is none.

    Raises:
        StoreError: the schema is another application's, or of another version.
        psycopg.Error: the database failed (the caller words it).
    """
    if _check(conn, location):
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
        if _check(conn, location):  # another process created it while we waited
            return
        for statement in _TABLES:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO planloop.meta (key, value) VALUES ('schema_version', %s),"
            " ('application', 'planloop')",
            (str(SCHEMA_VERSION),),
        )


def _check(conn: psycopg.Connection[Any], location: str) -> bool:
    """Whether the store's schema is there, of this version.

    Raises:
        StoreError: a ``planloop`` schema is there that is not this store's.
    """
    tables = {
        row[0]
        for row in conn.execute(
            "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = %s", (SCHEMA,)
        )
    }
    if not tables:
        return False
    if "meta" not in tables:
        raise _foreign(location, f"its schema {SCHEMA!r} has no 'meta' table")
    meta = dict(conn.execute("SELECT key, value FROM planloop.meta").fetchall())
    if meta.get("application") != "planloop" or "schema_version" not in meta:
        raise _foreign(location, "its 'meta' table does not identify a planloop store")
    found = str(meta["schema_version"])
    if found != str(SCHEMA_VERSION):
        raise StoreError(
            f"the store {location} has schema version {found}, but this planloop reads"
            f" version {SCHEMA_VERSION}: it was written by another version of planloop."
            " Open it with that version, or point the store at another database."
            " The database was not modified."
        )
    return True


def _foreign(location: str, reason: str) -> StoreError:
    return StoreError(
        f"{location} does not hold a planloop store ({reason}). Point the store at"
        " another database. The database was not modified."
    )
