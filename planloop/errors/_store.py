"""Errors of the run store: it cannot be opened, a stored run is bad or cannot resume."""

from __future__ import annotations

from planloop.errors._root import PlanloopError

__all__ = ["CannotResume", "StoreError"]


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
