"""Rendering through the real Graphviz (system ``dot`` or pygraphviz), no mocks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import planloop
from planloop import MachineSpec, Plan, PlanloopError, RunResult, Step
from planloop.models import ToolCall
from planloop.testing import ScriptedModel
from planloop.visualize import (
    Diagram,
    InvalidFormat,
    Node,
    RenderError,
    escape_label,
    render,
    render_dot,
    to_dot,
    to_svg,
)
from tests._child import run_without_dot


@planloop.tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def run() -> RunResult:
    model = ScriptedModel([[ToolCall("add", {"a": 1, "b": 2}), ToolCall("nope", {})], "3"])
    return planloop.Agent(model, [add]).run_sync("x")


def is_svg(text: str) -> bool:
    return text.lstrip().startswith(("<?xml", "<svg")) and "<svg" in text


@pytest.mark.parametrize(
    ("suffix", "magic"),
    [(".svg", b"<svg"), (".png", b"\x89PNG\r\n\x1a\n"), (".pdf", b"%PDF")],
)
def test_render_writes_each_format_by_suffix(tmp_path: Path, suffix: str, magic: bytes) -> None:
    out = render(run(), tmp_path / f"run{suffix}")
    assert out == tmp_path / f"run{suffix}"
    data = out.read_bytes()
    if suffix == ".svg":
        assert is_svg(data.decode("utf-8"))
    else:
        assert data.startswith(magic)


def test_render_writes_dot_text_and_honours_an_explicit_format(tmp_path: Path) -> None:
    result = run()
    out = render(result, tmp_path / "run.dot", timings=False)
    assert out.read_text("utf-8") == to_dot(result, timings=False)
    out = render(result, tmp_path / "picture.bin", format="png")
    assert out.read_bytes().startswith(b"\x89PNG")


def test_unknown_suffix_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidFormat) as info:
        render(run(), tmp_path / "run.gif")
    assert str(info.value) == (
        f"cannot tell the image format of {str(tmp_path / 'run.gif')!r} from '.gif'; "
        "use one of: .dot, .gv, .pdf, .png, .svg (or pass format=)"
    )
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, PlanloopError)
    assert not (tmp_path / "run.gif").exists()
    with pytest.raises(InvalidFormat, match="from no suffix"):
        render(run(), tmp_path / "run")
    with pytest.raises(InvalidFormat) as info:
        render(run(), tmp_path / "run.svg", format="gif")
    assert str(info.value) == "unknown format 'gif'; use one of: dot, svg, png, pdf"
    with pytest.raises(InvalidFormat) as info:
        render_dot("digraph { a }", "jpg")
    assert str(info.value) == "unknown image format 'jpg'; use one of: svg, png, pdf"


def test_repr_svg_of_engine_objects_is_svg() -> None:
    result = run()
    assert is_svg(result.trace._repr_svg_() or "")
    assert is_svg(result._repr_svg_() or "")
    assert is_svg(MachineSpec.default()._repr_svg_() or "")
    assert is_svg(Plan([Step(id="a", tool="add")])._repr_svg_() or "")


def test_to_svg_returns_text() -> None:
    svg = to_svg(MachineSpec.default())
    assert is_svg(svg)
    assert ">observe</text>" in svg


NASTY = [
    'double "quotes" and \\"escaped\\"',
    "backslash at the end \\",
    "\\\\ two at the end \\\\",
    "record syntax {a|b} <port> } { > <",
    "line\nbreaks\r\nand\rreturns",
    "".join(chr(c) for c in range(32)) + "\x7f\x85",
    "emoji 😀🚀 and accents éàü ✓ 中文",
    "html &lt;b&gt; &amp; &#x1F600; & done",
    "escapes \\N \\G \\l \\r \\E",
    "x" * 10_000,
    "",
    "lone surrogate \ud800 here",
    "\nstarts with a line break",
    "\n",
]


@pytest.mark.parametrize("text", NASTY, ids=range(len(NASTY)))
def test_nasty_labels_give_dot_that_graphviz_renders(text: str) -> None:
    diagram = Diagram(title=text, nodes=(Node("n", text), Node(text, text)))
    svg = render_dot(to_dot(diagram), "svg").decode("utf-8")
    assert is_svg(svg)
    assert svg.count('class="node"') == 2


def test_escaped_label_shows_the_text_as_written() -> None:
    text = 'a "b" \\ {c} <d> & &lt;'
    dot = f"digraph {{ n [label={escape_label(text)}] }}"
    svg = render_dot(dot, "svg").decode("utf-8")
    assert ">a &quot;b&quot; \\ {c} &lt;d&gt; &amp; &amp;lt;</text>" in svg


def test_rendering_prints_nothing_to_stderr(tmp_path: Path) -> None:
    code = (
        "import planloop; from planloop.visualize import render; "
        f"render(planloop.MachineSpec.default(), {str(tmp_path / 'spec.png')!r})"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert (tmp_path / "spec.png").read_bytes().startswith(b"\x89PNG")


def test_without_graphviz_dot_text_works_and_images_name_the_install(tmp_path: Path) -> None:
    # A process with neither a `dot` program on PATH nor pygraphviz importable.
    code = f"""
import sys
sys.modules["pygraphviz"] = None
import planloop
from planloop.visualize import RenderError, render, to_dot
spec = planloop.MachineSpec.default()
assert to_dot(spec).startswith("digraph")
assert spec._repr_svg_() is None
render(spec, {str(tmp_path / "spec.dot")!r})
try:
    render(spec, {str(tmp_path / "spec.svg")!r})
except RenderError as exc:
    print(exc)
"""
    done = run_without_dot(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "cannot render svg: no `dot` program on PATH; pygraphviz is not installed; "
        "install Graphviz with `pip install pygraphviz` or `apt-get install graphviz` "
        "(DOT text needs neither: use to_dot())"
    )
    assert (tmp_path / "spec.dot").read_text().startswith("digraph")
    assert not (tmp_path / "spec.svg").exists()


def test_render_error_is_a_planloop_runtime_error() -> None:
    assert issubclass(RenderError, PlanloopError)
    assert issubclass(RenderError, RuntimeError)


def test_importing_visualize_loads_no_graphviz() -> None:
    code = (
        "import sys, planloop.visualize; "
        "print([m for m in ('pygraphviz', 'graphviz', 'networkx') if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


# A label that starts with a line break, beside another node with a label: the
# Graphviz that pygraphviz 2.0.4's Linux wheels bundle segfaults laying it out.
# planloop's own DOT never has one (see escape_label); hand-written DOT can.
CRASHES_SOME_GRAPHVIZ = 'digraph { p [label="p"]; a [label="\\nx"]; }'


def test_a_graphviz_crash_is_a_render_error_not_the_end_of_the_program() -> None:
    outcome: bytes | RenderError
    try:
        outcome = render_dot(CRASHES_SOME_GRAPHVIZ, "svg")
    except RenderError as exc:
        outcome = exc
    if isinstance(outcome, RenderError):  # the Graphviz here has that bug: a child crashed
        assert "crashed (SIGSEGV) drawing this graph" in str(outcome)
    else:  # a Graphviz without it
        assert is_svg(outcome.decode("utf-8"))
    assert is_svg(render_dot("digraph { a -> b }", "svg").decode("utf-8"))  # still drawing


def test_escape_label_never_starts_a_label_with_a_line_break() -> None:
    assert escape_label("\nx") == '" \\nx"'
    assert escape_label("x\n") == '"x\\n"'


BIG = "digraph {" + " ".join(f"n{i} -> n{i + 1};" for i in range(2000)) + "}"


def test_drawing_has_a_time_limit_and_says_so() -> None:
    with pytest.raises(RenderError) as info:
        render_dot(BIG, "svg", timeout=0.001)
    message = str(info.value)
    assert "timed out" in message
    assert "took longer than 0.001 s" in message
    assert "timeout=" in message
    assert "to_dot()" in message
    assert "install" not in message  # Graphviz is here: it was only slow


def test_to_svg_and_render_take_a_timeout(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"took longer than 0\.001 s"):
        to_svg(run(), timeout=0.001)
    with pytest.raises(RenderError, match=r"took longer than 0\.001 s"):
        render(run(), tmp_path / "run.svg", timeout=0.001)
    assert not (tmp_path / "run.svg").exists()


def dot_program(where: Path, first_line: str) -> None:
    """A `dot` program in ``where`` that draws with the Graphviz pygraphviz bundles."""
    import pygraphviz

    site = str(Path(pygraphviz.__file__).parent.parent)
    where.mkdir(exist_ok=True)
    program = where / "dot"
    program.write_text(
        f"{first_line}\n"
        "import sys\n"
        f"sys.path.insert(0, {site!r})\n"
        "import pygraphviz\n"
        "graph = pygraphviz.AGraph(string=sys.stdin.buffer.read().decode('utf-8'))\n"
        "sys.stdout.buffer.write(graph.draw(format=sys.argv[1][2:], prog='dot'))\n"
    )
    program.chmod(0o755)


def test_a_dot_program_that_times_out_is_not_tried_again_with_pygraphviz(tmp_path: Path) -> None:
    # A real `dot` on PATH that is too slow for the timeout: the error says it
    # timed out, and pygraphviz is not then given a second full timeout.
    dot_program(tmp_path / "bin", f"#!{sys.executable}")
    code = f"""
from planloop.visualize import RenderError, render_dot
assert render_dot("digraph {{ a -> b }}", "svg").startswith(b"<?xml")
try:
    render_dot({BIG!r}, "svg", timeout=0.001)
except RenderError as exc:
    print(exc)
"""
    done = run_without_dot(code, tmp_path / "bin")
    assert done.returncode == 0, done.stderr
    message = done.stdout.strip()
    assert message.startswith(f"cannot render svg: timed out: `{tmp_path / 'bin' / 'dot'}` took")
    assert "took longer than 0.001 s" in message
    assert "pygraphviz" not in message
    assert "install" not in message


def test_a_dot_program_that_cannot_start_falls_back_to_pygraphviz(tmp_path: Path) -> None:
    dot_program(tmp_path / "bin", f"#!{tmp_path / 'no-such-python'}")
    code = """
from planloop.visualize import render_dot
print(render_dot("digraph { a -> b }", "svg")[:5])
"""
    done = run_without_dot(code, tmp_path / "bin")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "b'<?xml'"


def test_a_frozen_program_does_not_start_itself_to_draw(tmp_path: Path) -> None:
    # In a frozen app sys.executable is the app: running it with -c would start the app.
    code = """
import sys
sys.frozen = True
from planloop.visualize import RenderError, render_dot
try:
    render_dot("digraph { a }", "svg")
except RenderError as exc:
    print(exc)
"""
    done = run_without_dot(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "no Python executable to start one with" in done.stdout
    assert "install Graphviz's `dot` program instead" in done.stdout
