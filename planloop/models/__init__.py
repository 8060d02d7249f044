"""Chat models: the :class:`ChatModel` protocol, the message types and the adapters.

The adapters are loaded on first use, so ``import planloop`` does not import httpx.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from planloop.models.messages import (
    ChatMessage,
    ChatModel,
    Conversation,
    ModelResponse,
    ResumableModel,
    ToolCall,
    as_messages,
)

if TYPE_CHECKING:
    from planloop.models.langchain import LangChainChatModel
    from planloop.models.openai import OpenAIChat, from_env

__all__ = [
    "ChatMessage",
    "ChatModel",
    "Conversation",
    "LangChainChatModel",
    "ModelResponse",
    "OpenAIChat",
    "ResumableModel",
    "ToolCall",
    "as_messages",
    "from_env",
]

# name -> the module that defines it, imported when the name is first used
_LAZY = {
    "LangChainChatModel": "planloop.models.langchain",
    "OpenAIChat": "planloop.models.openai",
    "from_env": "planloop.models.openai",
}


def __dir__() -> list[str]:
    # The lazy names are listed before they are first used, as every name in __all__.
    return sorted({*globals(), *__all__})


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'planloop.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
