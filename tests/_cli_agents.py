"""Definitions the ``planloop`` command's tests run: ``agents.py`` in the user's folder.

``helper`` answers after one tool call; ``careful`` pauses before it acts and, resumed in
another process, gives the answers that come next; ``limited`` stops at its iteration
limit; ``report`` is a workflow of two steps; ``not_runnable`` is not a definition.
"""

AGENTS = '''
import planloop
from planloop.models import ToolCall
from planloop.testing import ScriptedModel


@planloop.tool
def population(city: str) -> int:
    """Population of a city."""
    return {"Oslo": 717_710, "Bergen": 291_940}[city]


class Turns:
    """A ScriptedModel that answers by how far the conversation got, so a process that
    resumes a run (with a fresh model) gives the answers that come next."""

    name = "turns"

    def __init__(self, *script):
        self.script = list(script)

    async def chat(self, messages, **options):
        turn = sum(1 for m in messages if m.role == "assistant")
        return await ScriptedModel(self.script[turn:]).chat(messages, **options)


SCRIPT = [ToolCall("population", {"city": "Oslo"}), "Oslo has about 718k people."]
helper = planloop.Agent(ScriptedModel(SCRIPT), [population], name="helper")
careful = planloop.Agent(Turns(*SCRIPT), [population], name="careful", interrupt_before=["act"])
limited = planloop.Agent(Turns(*SCRIPT * 3), [population], name="limited", max_iterations=1)


def fetch(url: str) -> str:
    return f"text of {url}"


def shout(text: str) -> str:
    return text.upper()


report = planloop.Workflow("report")
report.step(shout, text=report.step(fetch, url="https://example.org"))
not_runnable = 42
'''
