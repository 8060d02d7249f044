"""Secrets kept out of stores and diagrams.

A :class:`Redactor` replaces the value of any key that looks like a secret
(``api_key``, ``token``, ``password``, ...) and any literal registered with
it. The process-wide one (:func:`default_redactor`, fed by
:func:`register_secret`) is used by every :class:`~planloop.SQLiteStore` not
given its own and by every diagram.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "DEFAULT_SECRET_PATTERNS",
    "REDACTED",
    "Redactor",
    "default_redactor",
    "register_secret",
]

REDACTED = "[redacted]"
"""What a redacted value is replaced with."""

DEFAULT_SECRET_PATTERNS: tuple[str, ...] = (
    "api_key",
    "apikey",
    "token",
    "password",
    "passwd",
    "secret",
    "secrets",
    "authorization",
    "auth",
    "cookie",
    "cookies",
    "private_key",
    "credential",
    "credentials",
)
"""Names whose values are redacted, matched against the words of a key.

A key matches when its words (split at ``_``, ``-``, ``.``, spaces and camelCase,
compared case-insensitively) contain a pattern's words in a row:
``OPENAI_API_KEY``, ``X-Api-Key``, ``accessToken`` and ``client_secret`` match;
``max_tokens``, ``author`` and ``secretary`` do not.
"""

_MIN_LITERAL = 4
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _words(name: str) -> tuple[str, ...]:
    return tuple(w.lower() for w in _WORDS.findall(name))


class Redactor:
    """Replaces secrets in JSON values with ``"[redacted]"``.

    Two kinds of secret are recognised:

    * the value of any dict key whose name looks like a secret (see
      :data:`DEFAULT_SECRET_PATTERNS` for the rule), at any depth;
    * any literal registered with :meth:`register`, wherever it appears inside
      a string (keys included).

    Example:
        >>> r = Redactor()
        >>> r.register("hunter2")
        >>> r.redact({"args": {"api_key": "sk-1", "max_tokens": 5}, "out": "pw is hunter2"})
        {'args': {'api_key': '[redacted]', 'max_tokens': 5}, 'out': 'pw is [redacted]'}
    """

    def __init__(
        self, patterns: Iterable[str] = DEFAULT_SECRET_PATTERNS, values: Iterable[str] = ()
    ) -> None:
        self._patterns: tuple[tuple[str, ...], ...] = tuple(
            w for w in (_words(p) for p in patterns) if w
        )
        # A superset test on raw JSON text: a key that matches a pattern contains the
        # pattern's first word, in any case, so text without any of them needs no
        # parsing. (Substring tests on lowered text cost far less than one regex.)
        # A first word that contains another ("secrets", "authorization") adds nothing
        # to the test: text holding it holds the shorter one too.
        firsts = sorted({w[0] for w in self._patterns}, key=len)
        hints: list[str] = []
        for word in firsts:
            if not any(hint in word for hint in hints):
                hints.append(word)
        self._key_hints: tuple[str, ...] = tuple(sorted(hints))
        self._verdicts: dict[str, bool] = {}
        self._values: tuple[str, ...] = ()
        self._hints: tuple[str, ...] = ()
        self._lock = threading.Lock()
        for value in values:
            self.register(value)

    @property
    def values(self) -> tuple[str, ...]:
        """The registered literals (longest first)."""
        return self._values

    def register(self, value: str) -> None:
        """Redact ``value`` wherever it appears inside a string from now on.

        Raises:
            ValueError: ``value`` is shorter than 4 characters (it would also
                match ordinary text, timestamps and ids, and corrupt them).
        """
        if not isinstance(value, str) or len(value) < _MIN_LITERAL:
            raise ValueError(
                f"a secret to redact must be a string of at least {_MIN_LITERAL} characters"
            )
        with self._lock:
            if value in self._values:
                return
            values = sorted((*self._values, value), key=len, reverse=True)
            hints = {v for lit in values for v in _json_forms(lit)}
            # Swap whole tuples: readers on other threads see the old or the new set.
            self._values, self._hints = tuple(values), tuple(hints)

    def is_secret_key(self, key: str) -> bool:
        """Whether values under the dict key ``key`` are redacted."""
        verdict = self._verdicts.get(key)
        if verdict is None:
            words = _words(key)
            verdict = any(_contains_run(words, p) for p in self._patterns)
            if len(self._verdicts) < 10_000:
                self._verdicts[key] = verdict
        return verdict

    def redact(self, value: Any) -> Any:
        """A copy of the JSON value ``value`` with its secrets replaced.

        Dicts, lists and tuples are walked; other values are returned as they
        are. ``None`` under a secret-looking key stays ``None`` (nothing to hide).
        """
        values = self._values
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            verdicts = self._verdicts
            for k, v in value.items():
                if isinstance(k, str):
                    key = self._scrub(k, values) if values else k
                    if v is not None:
                        secret = verdicts.get(k)
                        if secret is None:
                            secret = self.is_secret_key(k)
                        if secret:
                            out[key] = REDACTED
                            continue
                else:
                    key = k
                # Plain values inline: a checkpoint or a step's arguments are mostly these.
                kind = type(v)
                if kind is str:
                    out[key] = self._scrub(v, values) if values else v
                elif kind is int or kind is float or kind is bool or v is None:
                    out[key] = v
                else:
                    out[key] = self.redact(v)
            return out
        if isinstance(value, list | tuple):
            return [self.redact(v) for v in value]
        if isinstance(value, str):
            return self._scrub(value, values)
        return value

    def redact_json(self, text: str, *, indent: int | None = None) -> str:
        """``text`` (a JSON document) with its secrets replaced.

        Text that cannot hold a secret is returned unchanged without parsing;
        text that is rewritten is compact, or indented by ``indent`` spaces.
        """
        if not self.may_hold_secret_keys(text) and not self.may_hold_literals(text):
            return text
        value = self.redact(json.loads(text))
        if indent is None:
            return _ENCODER.encode(value)
        return json.dumps(value, ensure_ascii=False, indent=indent)

    def redact_json_many(self, texts: Sequence[str], scan_keys: Sequence[bool]) -> list[str]:
        """:meth:`redact_json` of each of ``texts``, with one quick scan of them all.

        ``scan_keys[i]`` is false when ``texts[i]`` is known to hold no key that
        looks like a secret (only registered literals are looked for in it). When
        the scan finds nothing, as for most batches of a run's events, the texts
        come back unchanged without being parsed or scanned one by one.

        Example:
            >>> r = Redactor(values=["hunter2"])
            >>> r.redact_json_many(['{"password":"x"}', '{"n":"hunter2"}', '{"n":1}'],
            ...                    [True, False, True])
            ['{"password":"[redacted]"}', '{"n":"[redacted]"}', '{"n":1}']
        """
        keyed = [text for text, scan in zip(texts, scan_keys, strict=True) if scan]
        # A hint found in a join is looked for again in each text: joining can only
        # cost that second look, never miss a secret.
        keys = bool(keyed) and self.may_hold_secret_keys("\n".join(keyed))
        literals = bool(self._hints) and self.may_hold_literals("\n".join(texts))
        if not keys and not literals:
            return list(texts)
        out = []
        for text, scan in zip(texts, scan_keys, strict=True):
            if (keys and scan and self.may_hold_secret_keys(text)) or (
                literals and self.may_hold_literals(text)
            ):
                text = _ENCODER.encode(self.redact(json.loads(text)))
            out.append(text)
        return out

    def may_hold_secret_keys(self, text: str) -> bool:
        """False when no dict key in the JSON ``text`` can look like a secret (a quick scan)."""
        # Substring tests on the lowered text cost far less than one regex of the hints.
        lowered = text.lower()
        for hint in self._key_hints:  # noqa: SIM110 - a loop, not any(): this runs per event
            if hint in lowered:
                return True
        return False

    def may_hold_literals(self, text: str) -> bool:
        """False when no registered literal appears in ``text``, in any JSON form."""
        return any(h in text for h in self._hints)

    def scrub(self, text: str) -> str:
        """``text`` with every registered literal replaced."""
        return self._scrub(text, self._values)

    @staticmethod
    def _scrub(text: str, values: tuple[str, ...]) -> str:
        for literal in values:
            if literal in text:
                text = text.replace(literal, REDACTED)
        return text


def _contains_run(words: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    n = len(pattern)
    return any(words[i : i + n] == pattern for i in range(len(words) - n + 1))


def _json_forms(literal: str) -> set[str]:
    """How ``literal`` can appear inside JSON text."""
    return {
        literal,
        json.dumps(literal, ensure_ascii=False)[1:-1],
        json.dumps(literal, ensure_ascii=True)[1:-1],
    }


_DEFAULT = Redactor()


def default_redactor() -> Redactor:
    """The process-wide redactor: stores without their own, and every diagram, use it."""
    return _DEFAULT


def register_secret(value: str) -> None:
    """Keep ``value`` out of every store and diagram from now on (in this process).

    Example:
        >>> register_secret("sk-live-example-0001")
        >>> default_redactor().redact({"note": "key sk-live-example-0001"})
        {'note': 'key [redacted]'}

    Raises:
        ValueError: ``value`` is shorter than 4 characters.
    """
    _DEFAULT.register(value)
