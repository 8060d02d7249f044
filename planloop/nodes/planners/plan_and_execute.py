"""Plan-and-execute: the whole plan up front, each step run by a sub-agent.

The LangChain ``plan_and_execute`` pattern, on planloop's loop: the planner
asks the model for a numbered plan (structured output when the model gives
JSON, else text read by :class:`PlanningOutputParser`), the steps run in
order, each by a sub-agent whose run is nested in the parent trace, and the
output is the last step's response. With ``replan=True`` the planner is asked
again after every step. Nothing is kept between runs.

Durable runs: the steps are closures made here, stored by name with their
texts (``args["step"]``); :class:`PlanAndExecutePlanner` makes them again from
a stored plan (:meth:`~PlanAndExecutePlanner.restore_plan`), reads stored
step outputs back as :class:`StepResponse`, and turns an
``Edit(steps=[...])`` decision into a plan, so a run resumes mid-act or after
``interrupt_before=["act"]`` in any process that built the same object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from planloop.engine.plan import Plan, Step, ref
from planloop.engine.planner import Answer, RunContext
from planloop.engine.steps import Action, StepResult
from planloop.errors import CannotResume, InvalidPlan, OutputParserError
from planloop.models.messages import ChatMessage, ChatModel

if TYPE_CHECKING:
    from planloop.agent import Agent
    from planloop.engine.durable import Edit

__all__ = [
    "PLANNER_SYSTEM_PROMPT",
    "ChatPlanner",
    "PlanAndExecutePlanner",
    "PlanningOutputParser",
    "StepExecutor",
    "StepResponse",
    "format_previous_steps",
]

PLANNER_SYSTEM_PROMPT = (
    "Let's first understand the problem and devise a plan to solve the problem. "
    "Please output the plan starting with the header 'Plan:' "
    "and then followed by a numbered list of steps. "
    "Please make the plan the minimum number of steps required "
    "to accurately complete the task. If the task is a question, "
    "the final step should almost always be 'Given the above steps taken, "
    "please respond to the users original question'. "
    "At the end of your plan, say '<END_OF_PLAN>'"
)

RETRY_PROMPT = "{objective}\n\nThe previous plan was not accepted: {feedback}\nMake another plan."

REPLAN_PROMPT = (
    "Objective: {objective}\n\nThe steps done so far and their results:\n{done}\n\n"
    "Update the plan: output the remaining steps as a numbered list after 'Plan:'. "
    "If no steps remain, output 'Final Answer:' followed by the answer instead."
)

PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"steps": {"type": "array", "items": {"type": "string"}}},
    "required": ["steps"],
    "additionalProperties": False,
}


class StepResponse(BaseModel):
    """What executing one step produced (LangChain's ``StepResponse``).

    A :class:`~planloop.PlanAndExecute` run's steps have one as their output.

    Example:
        >>> from planloop import PlanAndExecute, load_agent_executor, load_chat_planner
        >>> from planloop.testing import ScriptedModel
        >>> planner = load_chat_planner(ScriptedModel(["1. Find the capital\\n2. Say it"]))
        >>> executor = load_agent_executor(ScriptedModel(["Oslo", "It is Oslo."]), [])
        >>> result = PlanAndExecute(planner, executor, store=False).run_sync("Norway's capital?")
        >>> [step.output for step in result.steps]
        [StepResponse(response='Oslo'), StepResponse(response='It is Oslo.')]
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    response: str


_NUMBERED = re.compile(r"^\s*(?:\*\*)?(?:step\s*)?(\d+)\s*(?:[.):]|\*\*)\s*(?:\*\*)?\s*(.*)$", re.I)


class PlanningOutputParser:
    """Reads a numbered plan: ``1. …``, ``1) …``, ``Step 1: …`` (any header before it).

    Unlike LangChain's parser it never drops the first step when the text has
    no header, and lines that continue a step are joined to it.

    Example:
        >>> PlanningOutputParser().parse("1. Find the capital\\n2) Count its people")
        ['Find the capital', 'Count its people']
        >>> PlanningOutputParser().parse("Plan:\\nStep 1: look\\nStep 2: answer\\n<END_OF_PLAN>")
        ['look', 'answer']
    """

    def parse(self, text: str) -> list[str]:
        steps: list[str] = []
        for line in text.replace("<END_OF_PLAN>", "").splitlines():
            match = _NUMBERED.match(line)
            if match:
                steps.append(match.group(2).strip())
            elif steps and line.strip() and not line.strip().lower().startswith("plan"):
                steps[-1] = f"{steps[-1]} {line.strip()}"
        steps = [s for s in steps if s]
        if not steps:
            raise OutputParserError(
                f"no numbered steps in the plan: {text[:200]!r}",
                llm_output=text,
                observation="Write the plan as a numbered list: '1. first step', '2. ...'",
            )
        return steps


class ChatPlanner:
    """Asks a chat model for the steps of a plan (what ``load_chat_planner`` returns)."""

    def __init__(
        self,
        model: ChatModel,
        *,
        system_prompt: str = PLANNER_SYSTEM_PROMPT,
        parser: PlanningOutputParser | None = None,
    ) -> None:
        self.model = model
        self.system_prompt = system_prompt
        self.parser = parser or PlanningOutputParser()

    async def steps(
        self,
        ctx: RunContext,
        objective: str,
        done: Sequence[tuple[str, str]] = (),
        *,
        feedback: str | None = None,
    ) -> list[str] | Answer:
        """The plan's steps, or (when replanning and nothing remains) the answer.

        ``feedback`` says why the previous plan was not accepted (a person
        rejected it); the model is asked for another one.
        """
        if done:
            lines = "\n".join(f"{i}. {s}\n   Result: {r}" for i, (s, r) in enumerate(done, 1))
            user = REPLAN_PROMPT.format(objective=objective, done=lines)
        else:
            user = objective
        if feedback is not None:
            user = RETRY_PROMPT.format(objective=user, feedback=feedback)
        messages = [
            ChatMessage(role="system", content=self.system_prompt),
            ChatMessage(role="user", content=user),
        ]
        response = await ctx.record_model_call(
            self.model.name,
            self.model.chat(messages, response_schema=PLAN_SCHEMA),
            messages=len(messages),
        )
        text = response.message.content
        structured = _structured_steps(text)
        if structured is not None:
            return structured
        if done and "Final Answer:" in text:
            return Answer(text.split("Final Answer:")[-1].strip(), log=text)
        if done and not _NUMBERED.search(text):
            return Answer(text.strip(), log=text)
        return self.parser.parse(text)


def _structured_steps(text: str) -> list[str] | None:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
    if isinstance(data, Mapping) and isinstance(data.get("steps"), list):
        return [str(s) for s in data["steps"]]
    return None


def format_previous_steps(done: Sequence[tuple[str, str]]) -> str:
    """Previous steps as the readable text each step's executor sees."""
    if not done:
        return "None."
    return "\n\n".join(f"Step: {step}\n\nResponse: {response}" for step, response in done)


EXECUTOR_PROMPT = "Previous steps: {previous_steps}\n\nCurrent objective: {current_step}"
TASK_PREFIX = "{objective}\n\n"


class StepExecutor:
    """Runs one plan step with a sub-agent (what ``load_agent_executor`` returns)."""

    def __init__(self, agent: Agent, *, include_task_in_prompt: bool = False) -> None:
        self.agent = agent
        self.include_task_in_prompt = include_task_in_prompt

    def prompt(self, objective: str, step: str, done: Sequence[tuple[str, str]]) -> str:
        text = EXECUTOR_PROMPT.format(previous_steps=format_previous_steps(done), current_step=step)
        if self.include_task_in_prompt:
            text = TASK_PREFIX.format(objective=objective) + text
        return text


STEP_TOOL = "execute_step"
"""The name every plan-and-execute step runs under (in traces and the store)."""

_DONE = "plan_and_execute.done"
_SEEN = "plan_and_execute.seen"


class PlanAndExecutePlanner:
    """The planner behind :class:`~planloop.PlanAndExecute`.

    It is a :class:`~planloop.engine.durable.DurablePlanner`: the steps of its
    plans are closures that run the executor's sub-agent, and a stored plan (the
    step texts are its steps' ``step`` arguments) is made runnable again by
    :meth:`restore_plan`.
    """

    def __init__(self, planner: ChatPlanner, executor: StepExecutor, *, replan: bool) -> None:
        self.planner = planner
        self.executor = executor
        self.replan = replan

    async def plan(self, ctx: RunContext) -> Plan | Answer:
        objective = str(ctx.input)
        feedback = _take_feedback(ctx, ctx.intermediate_steps)
        done = _done(ctx)
        if done and not self.replan:
            return Answer(done[-1][1])
        if feedback is None:
            decided = await self.planner.steps(ctx, objective, done if self.replan else ())
        else:
            decided = await self.planner.steps(
                ctx, objective, done if self.replan else (), feedback=feedback
            )
        if isinstance(decided, Answer):
            return decided
        if done and not decided:
            return Answer(done[-1][1])
        todo = decided[:1] if self.replan else decided
        return self._chain(ctx, objective, todo, done)

    def restore_plan(self, plan: Plan, ctx: RunContext) -> Plan:
        """``plan`` read back from the store, its steps running the sub-agent again.

        Raises:
            CannotResume: the stored plan is not one this planner made (a step
                without its text, or numbered otherwise).
        """
        _take_feedback(ctx, ctx.all_steps)
        done = _done(ctx)
        texts = [s.args.get("step") for s in plan.steps]
        rebuilt = self._chain(ctx, str(ctx.input), [str(t) for t in texts], done)
        if [s.id for s in rebuilt.steps] != [s.id for s in plan.steps] or not all(
            isinstance(t, str) for t in texts
        ):
            raise CannotResume(
                f"run {ctx.run_id!r}: its stored plan (steps {[s.id for s in plan.steps]}) "
                "was not made by a plan-and-execute planner after the steps the run has "
                f"done ({len(done)}); resume it with the object that started it",
                run_id=ctx.run_id,
            )
        return rebuilt

    def restore_result(self, result: StepResult) -> StepResult:
        """A stored step result with its output a :class:`StepResponse` again."""
        output = result.output
        if result.tool != STEP_TOOL or not isinstance(output, Mapping):
            return result
        try:
            response = StepResponse.model_validate(output)
        except ValidationError:
            return result
        return result.model_copy(update={"output": response})

    def edited_plan(self, edit: Edit, ctx: RunContext) -> Plan:
        """The plan of ``Edit(steps=[...])``: one step per text, numbered after the
        steps already done. ``Edit(plan=...)`` is read the same way when each of its
        steps has a ``step`` text argument (the paused plan as the trace shows it).

        Raises:
            InvalidPlan: no steps, an empty text, or a plan step without a text.
        """
        problems: list[str] = []
        if edit.steps is not None:
            texts = list(edit.steps)
        else:
            assert edit.plan is not None
            texts = []
            for step in edit.plan.steps:
                text = step.args.get("step")
                if not isinstance(text, str):
                    problems.append(
                        f"step {step.id!r} has no 'step' text argument; a plan-and-execute "
                        "plan is a list of step texts: pass Edit(steps=['...', ...])"
                    )
                texts.append(str(text))
        if not texts:
            problems.append("the plan has no steps; give at least one step text")
        if edit.steps is not None:
            problems.extend(
                f"step {i} is empty; write what the sub-agent should do"
                for i, text in enumerate(texts, 1)
                if not text.strip()
            )
        if problems:
            raise InvalidPlan(problems)
        _take_feedback(ctx, ctx.all_steps)
        return self._chain(ctx, str(ctx.input), [t.strip() for t in texts], _done(ctx))

    def _chain(
        self,
        ctx: RunContext,
        objective: str,
        todo: Sequence[str],
        done: Sequence[tuple[str, str]],
    ) -> Plan:
        executor = self.executor
        offset = len(done)
        known = list(done)

        async def execute(step: str, previous: list[StepResponse], number: int) -> StepResponse:
            history = known + [(todo[i], r.response) for i, r in enumerate(previous)]
            result = await executor.agent.run(executor.prompt(objective, step, history))
            ctx.trace.children[f"step_{number}"] = result.trace
            return StepResponse(response=str(result.output))

        execute.__name__ = STEP_TOOL
        steps = []
        for i, text in enumerate(todo):
            number = offset + i + 1
            steps.append(
                Step(
                    id=f"step_{number}",
                    tool=execute,
                    args={
                        "step": text,
                        "previous": [ref(f"step_{offset + j + 1}") for j in range(i)],
                        "number": number,
                    },
                )
            )
        return Plan(steps, log="\n".join(f"{offset + i + 1}. {t}" for i, t in enumerate(todo)))

    async def final_answer(self, ctx: RunContext) -> Answer:
        done = _done(ctx)
        return Answer(done[-1][1] if done else "No step was completed.")


def _done(ctx: RunContext) -> list[tuple[str, str]]:
    """The steps done so far and their responses (kept up to date by :func:`_take_feedback`)."""
    done: list[tuple[str, str]] = ctx.state.setdefault(_DONE, [])
    return done


def _take_feedback(ctx: RunContext, pairs: Sequence[tuple[Action, Any]]) -> str | None:
    """Note the pairs not seen before (completed steps go to the steps done); the
    feedback on the previous plan if the latest of them says it was rejected (by a
    person, or as invalid)."""
    done = _done(ctx)
    seen = int(ctx.state.get(_SEEN, 0))
    for action, observation in pairs[seen:]:
        if isinstance(observation, StepResponse):
            done.append((str(action.tool_input.get("step", "")), observation.response))
    ctx.state[_SEEN] = len(pairs)
    if len(pairs) > seen and pairs[-1][0].tool == "_Exception":
        return str(pairs[-1][1])
    return None
