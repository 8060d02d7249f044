"""What the scheduler needs from a tool. :class:`planloop.Tool` implements it."""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ToolLike", "ToolSpec"]


class ToolSpec(BaseModel):
    """A tool as a model sees it: name, description and a JSON schema of its arguments."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)


@runtime_checkable
class ToolLike(Protocol):
    """The scheduler's view of a tool."""

    @property
    def name(self) -> str: ...

    @property
    def return_direct(self) -> bool: ...

    @property
    def is_async(self) -> bool:
        """``True`` when :meth:`call` returns an awaitable."""
        ...

    @property
    def spec(self) -> ToolSpec: ...

    def validate_args(
        self, args: Mapping[str, Any], *, partial: Set[str] = frozenset()
    ) -> dict[str, Any]:
        """Validated keyword arguments, or :class:`~planloop.errors.ToolArgumentsError`.

        Names in ``partial`` will be known only at run time; treat them as given.
        """
        ...

    def call(self, kwargs: dict[str, Any]) -> Any:
        """Run the tool (an awaitable when :attr:`is_async`)."""
        ...

    def handle_error(self, error: BaseException) -> Any | None:
        """The observation for ``error``, or ``None`` when it is not handled."""
        ...
