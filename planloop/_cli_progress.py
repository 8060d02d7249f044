"""What the ``planloop`` command prints while a run goes: its states and steps as they happen."""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

import click

__all__ = ["Progress"]


class Progress:
    """Follows a run's events: a live status line on a terminal, plain lines otherwise."""

    def __init__(self) -> None:
        self.live = sys.stdout.isatty() and os.environ.get("TERM") != "dumb"
        self.state = ""
        self.running: dict[str, str] = {}
        self.done = 0
        self.failed = 0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            click.echo("\r\x1b[2K", nl=False)

    def __call__(self, event: Any) -> None:
        kind = getattr(event, "kind", "")
        if kind == "transitioned":
            self.state = event.target
            if not self.live:
                extra = ""
                if event.event == "Planned":
                    n = len(event.payload.get("plan", {}).get("steps", ()))
                    extra = f" ({n} step{'s' if n != 1 else ''})"
                click.echo(f"{event.source} --{event.event}--> {event.target}{extra}")
        elif kind == "step_started":
            self.running[event.step_id] = event.tool
            if not self.live:
                click.echo(f"  start {event.step_id}: {event.tool}")
        elif kind == "step_finished":
            result = event.result
            self.running.pop(result.step_id, None)
            self.done += 1
            self.failed += result.status.value != "succeeded"
            if not self.live:
                click.echo(f"  {result.status.value} {result.step_id}")
        elif kind == "run_paused" and not self.live:
            click.echo(f"paused before {event.state}")
        elif kind == "run_resumed" and not self.live:
            click.echo(f"resumed in {event.state}")
        if self.live:
            running = ", ".join(sorted(self.running)) or "-"
            line = (
                f"state: {self.state or '-'}  running: {running}  "
                f"done: {self.done} ({self.failed} not succeeded)"
            )
            width = max(20, shutil.get_terminal_size().columns - 1)
            click.echo(f"\r\x1b[2K{line[:width]}", nl=False)
