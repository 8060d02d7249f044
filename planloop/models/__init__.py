"""Chat models: the :class:`ChatModel` protocol and the message types."""

from __future__ import annotations

from planloop.models.messages import ChatMessage, ChatModel, ModelResponse, ToolCall

__all__ = ["ChatMessage", "ChatModel", "ModelResponse", "ToolCall"]
