"""Errors of the run store: it cannot be opened, a stored run is bad or cannot resume."""

from __future__ import annotations

from datetime import UTC, datetime

from planloop.errors._root import PlanloopError

__all__ = ["CannotResume", "RunLocked", "StoreError"]


class StoreError(PlanloopError, RuntimeError):
    """The run store could not be opened, or what it holds for a run is unusable.

    Raised for: a file that is not a planloop database (not SQLite at all, or
    SQLite without planloop's tables), a database of another schema version, a
    database whose pages are damaged (SQLite finds them corrupt, when the store
    opens or at a later read or write: the message says how to check the file,
    ``sqlite3 FILE 'PRAGMA integrity_check'``, and how to recover), an unknown run
    id, a duplicate event, and a stored row that is corrupt. The message names the
    file or the run (and event) concerned and says what to do. The store never
    modifies a file it refused to open.

    Example:
        >>> import pathlib, tempfile
        >>> from planloop import SQLiteStore
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "runs.db"
        >>> _ = path.write_text("not a database")
        >>> try:
        ...     SQLiteStore(path)
        ... except StoreError as err:
        ...     print(str(err).split(". ")[0])  # doctest: +ELLIPSIS
        /...runs.db is not a planloop database (file is not a database)
    """


class CannotResume(PlanloopError, RuntimeError):
    """A stored run cannot be resumed as asked.

    Raised when the run already ended, was started by another definition of the
    agent or workflow, is paused and no decision was given, was given a decision
    while not paused, or the decision does not fit what is pending. The run is
    left as it was. ``run_id`` names it.

    Example:
        >>> import pathlib, tempfile
        >>> from planloop import Agent, Answer, FunctionPlanner, SQLiteStore
        >>> store = SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "runs.db")
        >>> agent = Agent(None, planner=FunctionPlanner(lambda ctx: Answer("hi")), store=store)
        >>> _ = agent.run_sync("hello", run_id="greet-1")
        >>> try:
        ...     agent.resume_sync("greet-1")
        ... except CannotResume as err:
        ...     print(err.run_id, "|", str(err).split(";")[0])
        greet-1 | run 'greet-1' already ended (finished)
        >>> store.close()
    """

    def __init__(self, message: str, *, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class RunLocked(CannotResume):
    """Another process is running the stored run: it holds the run's lease.

    A process that runs a run holds a lease on it in the store, renewed in the
    background while the run goes. Resuming a run whose lease is alive raises
    this; once its process is gone the lease expires, the run is ``abandoned``
    (see :attr:`~planloop.engine.store.RunRecord.state`) and can be resumed.
    ``owner`` names the holder (host, process id and a random part) and
    ``expires`` when its lease runs out unless it is renewed.

    Example:
        >>> from datetime import UTC, datetime
        >>> err = RunLocked("r1", owner="box:4242:9f1c", expires=datetime(2026, 1, 1, tzinfo=UTC))
        >>> isinstance(err, CannotResume), err.owner
        (True, 'box:4242:9f1c')
        >>> print(str(err).split(", whose")[0])
        run 'r1' is being run by another process (box:4242:9f1c)
    """

    def __init__(self, run_id: str, *, owner: str | None, expires: datetime | None) -> None:
        when = "-" if expires is None else expires.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        super().__init__(
            f"run {run_id!r} is being run by another process ({owner}), whose lease expires"
            f" at {when}; it renews the lease while the run goes. Wait for it to end (or"
            " pause), or, if that process is gone, resume the run once the lease has expired"
            " (`planloop runs` then lists it as abandoned)",
            run_id=run_id,
        )
        self.owner = owner
        self.expires = expires
