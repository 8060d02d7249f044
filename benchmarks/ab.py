"""A/B: one benchmark row of planloop from two checkouts, in alternating fresh processes.

    ./dev python benchmarks/ab.py ROW BASE [CHANGED] [--pairs 8] [--repeats 7]

BASE and CHANGED are checkouts of planloop (CHANGED defaults to this one), for example
a worktree of the commit before a change (``git worktree add --detach ../base HEAD~1``).
Each pair runs ``compare.py --cell planloop_impl ROW`` once in each checkout, each in a
fresh process that imports that checkout's planloop, the order swapped from one pair to
the next. It prints the median of each side and their ratio, CHANGED over BASE.

On this kind of VM the machine's own speed moves by a third or more within an hour, so
two single runs minutes apart cannot show a change of a few percent. Alternating the
two sides makes a drift weigh on both alike. Rows are those of ``compare.ROWS`` that
``compare.cell`` measures (``s1_1000``, ``s1_10``, ``s1_flat``, ``s1_ckpt``, ``fixed``,
``s2_fan_sync``, ``s2_fan_async``, ``s2_layered_sync``, ``s2_layered_async``, ``s3``,
``render``). A ratio below 1 means CHANGED is faster, except for ``s3`` (a rate):
there above 1 does.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path

import compare

ROWS = [row.key for row in compare.ROWS if row.key not in ("import", "rss")]
HERE = Path(__file__).resolve().parent.parent


def measure(checkout: Path, row: str, repeats: int) -> float:
    """One ``compare.py --cell`` of planloop in ``checkout``, in a fresh process."""
    value = compare.fresh_cell("planloop_impl", row, repeats, checkout=checkout)
    if not isinstance(value, float):
        raise SystemExit(f"{row} in {checkout} gave {value!r}, not a number")
    return value


def ab(
    row: str,
    base: Path,
    changed: Path,
    pairs: int,
    repeats: int,
    run: Callable[[Path, str, int], float] = measure,
) -> tuple[float, float]:
    """Medians of ``row`` for ``base`` and ``changed`` over ``pairs`` alternating pairs
    (``base`` first in even pairs, ``changed`` first in odd ones). The same checkout on
    both sides measures the noise itself: its ratio should be 1."""
    if row not in ROWS:
        raise ValueError(f"unknown row {row!r}; one of: {', '.join(ROWS)}")
    if pairs < 1:
        raise ValueError(f"pairs must be >= 1, got {pairs}")
    times: tuple[list[float], list[float]] = ([], [])  # by side: the same checkout twice works
    sides = ((0, base), (1, changed))
    for i in range(pairs):
        for side, checkout in sides if i % 2 == 0 else sides[::-1]:
            times[side].append(run(checkout, row, repeats))
    return statistics.median(times[0]), statistics.median(times[1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("row", choices=ROWS)
    parser.add_argument("base", type=Path, help="the checkout to compare against")
    parser.add_argument("changed", type=Path, nargs="?", default=HERE, help="default: this one")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7, help="passed to compare.py --cell")
    args = parser.parse_args(argv)
    for checkout in (args.base, args.changed):
        if not (checkout / "planloop" / "__init__.py").is_file():
            parser.error(f"{checkout} is not a planloop checkout (no planloop/__init__.py)")
        if not (checkout / "benchmarks" / "compare.py").is_file():
            parser.error(f"{checkout} has no benchmarks/compare.py")
    base, changed = args.base.resolve(), args.changed.resolve()
    a, b = ab(args.row, base, changed, args.pairs, args.repeats)
    print(f"{args.row}: base {a:.4g}  changed {b:.4g}  changed/base {b / a:.3f}")


if __name__ == "__main__":
    main()
