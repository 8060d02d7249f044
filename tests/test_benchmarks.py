"""The benchmark harness runs, at tiny sizes: results are checked, never timings."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import compare  # noqa: E402
import peers  # noqa: E402
import run  # noqa: E402

TINY: peers.Graph = {"a": ([], 0.001), "b": ([], 0.001), "join": (["a", "b"], 0.0)}


@pytest.mark.parametrize("sync_tool", [True, False])
def test_planloop_loop_runs_k_iterations(sync_tool: bool) -> None:
    assert run.agent_run(3, sync_tool=sync_tool) > 0  # asserts the iteration count itself
    assert run.agent_run(0, sync_tool=sync_tool) > 0
    assert run.floor_run(3) > 0


@pytest.mark.parametrize("sync", [True, False])
def test_planloop_and_floor_run_a_dag(sync: bool) -> None:
    assert run.planloop_makespan(TINY, sync) > 0
    assert run.plain_makespan(TINY, sync) > 0


def test_layers_and_graphs() -> None:
    graph, critical = run.layered_graph()
    assert [len(layer) for layer in peers.layers(graph)] == [20] * 5
    assert critical == pytest.approx(0.1)
    chains = peers.chains_graph(2, 3)
    assert len(chains) == 7
    assert peers.layers(chains)[-1] == ["join"]


@pytest.mark.parametrize("module", ["floor", "planloop_impl"])
def test_own_implementations(module: str) -> None:
    impl = peers.load(module)
    assert impl.s1(2) > 0
    assert impl.s1(2, checkpoint=True) > 0
    assert impl.s2(TINY, True) > 0
    assert impl.s3(2, 3) > 0


def test_render_long_run() -> None:
    assert run.render_long_run() > 0  # asserts the folded picture itself


@pytest.mark.parametrize("module", peers.PEERS)
def test_peer_runs_k_iterations(module: str) -> None:
    if not peers.installed(module):
        pytest.skip(f"{module}: {peers.load(module).PACKAGE} is not installed")
    impl = peers.load(module)
    # each s1 asserts that the peer ran exactly K tool calls and answered "done"
    assert impl.s1(2) > 0
    assert impl.s1(0) > 0
    outcomes = [
        _value_or_reason(lambda: impl.s1(2, checkpoint=True)),
        _value_or_reason(lambda: impl.s2(TINY, True)),  # each asserts every step ran once
        _value_or_reason(lambda: impl.s2(TINY, False)),
        _value_or_reason(lambda: impl.s3(2, 3)),
    ]
    assert all(o > 0 if isinstance(o, float) else o for o in outcomes)


def _value_or_reason(fn: Callable[[], float]) -> float | str:
    try:
        return fn()
    except peers.NotExpressible as e:
        return str(e)


def test_peers_import_lazily_and_missing_ones_are_skipped() -> None:
    hidden = ["langgraph", "burr", "pydantic_graph", "langchain_classic", "langchain_core"]
    code = (
        f"import sys; sys.modules.update(dict.fromkeys({hidden!r})); "
        f"sys.path.insert(0, {str(BENCHMARKS)!r}); import peers; "
        "print([peers.installed(m) for m in peers.IMPLEMENTATIONS])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[True,", "True,", "False,", "False,", "False,", "False]"]


def test_table_formats_values_and_reasons() -> None:
    cells: dict[str, dict[str, compare.Cell]] = {
        "floor": {"s1_1000": 5e-6, "s3": 200_000.0},
        "planloop_impl": {"s1_1000": 30e-6, "s3": 100_000.0, "s1_ckpt": 100e-6},
        "burr_peer": {"s1_1000": 300e-6, "s3": 10_000.0, "s1_ckpt": "n/a: why"},
    }
    text = compare.table(cells)
    lines = text.splitlines()
    assert lines[0] == (
        "| scenario | target | plain-Python floor | planloop | planloop ÷ floor | Burr |"
    )
    assert (
        "| S1 loop overhead, K = 1,000, tracing on | ≤ 40 µs/iter | 5.0 µs | 30.0 µs ✓ | 6.0× "
        "| 300.0 µs (×10.0) |"
    ) in lines
    assert any("100,000 steps/s ✓ | 2.0× | 10,000 steps/s (×10.0) |" in line for line in lines)
    assert any("| n/a: why |" in line for line in lines)


def test_flatness_is_the_per_iteration_ratio_of_runs_measured_in_alternation() -> None:
    calls: list[int] = []

    def s1(k: int) -> float:  # 1 s per iteration, 10 s fixed, each run in turn
        calls.append(k)
        return 10.0 + k

    ratio = compare.flatness(s1, rounds=4)
    assert ratio == pytest.approx((20 / 10) / (1010 / 1000))
    assert calls == [1000, *[10] * 10] * 4
    compare.flatness(s1, rounds=3, shorts=2)
    assert calls[-9:] == [1000, 10, 10] * 3


def test_ab_alternates_the_two_checkouts_and_takes_each_sides_median() -> None:
    import ab

    calls: list[tuple[str, str, int]] = []
    values = {"base": iter([1.0, 3.0, 2.0]), "new": iter([10.0, 30.0, 20.0])}

    def fake(checkout: Path, row: str, repeats: int) -> float:
        calls.append((checkout.name, row, repeats))
        return next(values[checkout.name])

    medians = ab.ab("s3", Path("base"), Path("new"), pairs=3, repeats=2, run=fake)
    assert medians == (2.0, 20.0)
    assert [c[0] for c in calls] == ["base", "new", "new", "base", "base", "new"]
    assert {c[1:] for c in calls} == {("s3", 2)}
    with pytest.raises(ValueError, match="unknown row 'S3'"):
        ab.ab("S3", Path("base"), Path("new"), pairs=1, repeats=1, run=fake)


def test_ab_measures_a_row_in_a_fresh_process_of_each_checkout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import ab

    here = BENCHMARKS.parent
    ab.main(["s1_10", str(here), str(here), "--pairs", "1", "--repeats", "1"])
    line = capsys.readouterr().out.strip()
    assert line.startswith("s1_10: base ") and " changed/base " in line
    assert float(line.rsplit(" ", 1)[1]) > 0
    with pytest.raises(SystemExit):
        ab.main(["s1_10", str(here / "benchmarks")])  # not a checkout: refused
