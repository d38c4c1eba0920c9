"""The README's figures for the real database are the committed reference runs' own: each table row and each
figure quoted is recomputed here from ``results/reference/<name>/run.json``, so a stale number fails CI.

To regenerate the rows after new reference runs: ``PYTHONPATH=. .venv/bin/python -m tests.test_readme``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.config import ROOT
from runner.numbers import fmt, fmt_ms
from runner.report_drivers import Difference, differences
from runner.view import RunView
from tests import readme_blocks

REFERENCES = ROOT / "results" / "reference"
README = ROOT / "README.md"


def reference(name: str) -> RunView:
    return RunView.load(REFERENCES / name)


def cpu_ms(view: RunView, server: str) -> float:
    """CPU per request, as the model calibrates it: server CPU over requests, pooled over the server's steps that
    used less than 70% of their core (so a CPU-bound step's queueing does not inflate it)."""
    return view.calibrations[server].cpu_per_request_ms


def at(view: RunView, server: str, users: int) -> tuple[str, str]:
    """Throughput and median at a level, as the report prints them."""
    record = view.ok_step(server, users)
    assert record is not None, f"{view.path.name}: {server} at {users} users was not measured"
    return fmt(record["figures"]["rps"]), fmt_ms(record["figures"]["latency"]["p50_ms"])


def added(view: RunView) -> dict[str, Difference]:
    """Each real-driver configuration's CPU per request over its simulated twin, judged level by level (the
    report's own reckoning, runner.report_drivers), by configuration name."""
    return {d.added_to: d for d in differences(view) if d.added_to is not None}


def server_times(view: RunView, server: str, users: int) -> dict[str, float]:
    record = view.ok_step(server, users)
    assert record is not None, f"{view.path.name}: {server} at {users} users was not measured"
    times: dict[str, float] = record["figures"]["server"]
    return times


def simulated_vs_real_rows() -> list[str]:
    """postgres: each configuration on PostgreSQL beside the same configuration on the simulated database, same
    waits, same run (``<name>-simulated``): CPU per request added (same levels, with its verdict), and throughput,
    median and the measured wait for a connection at the highest level."""
    view = reference("postgres")
    top = max(view.users)
    costs = added(view)
    rows = []
    for spec in view.servers:
        baseline = view.server(f"{spec.name}-simulated")
        if baseline is None:
            continue
        sim_rps, sim_p50 = at(view, baseline.name, top)
        pg_rps, pg_p50 = at(view, spec.name, top)
        cost = costs[spec.name]
        rows.append(
            f"| {spec.name} ({spec.describe()}) | {cost.overall_ms:+.2f} ({cost.verdict}) | {sim_rps} | {pg_rps} | "
            f"{sim_p50} | {pg_p50} | {fmt_ms(server_times(view, spec.name, top)['pool_mean_ms'])} |"
        )
    return rows


def orm_rows() -> list[str]:
    """postgres-orm: each configuration's CPU per request, what it adds over its simulated twin at the same levels
    and whether that appeared at every level, with its throughput and median at the highest level."""
    view = reference("postgres-orm")
    top = max(view.users)
    costs = added(view)
    rows = []
    for spec in view.servers:
        own = cpu_ms(view, spec.name)
        cost = costs.get(spec.name)
        extra = "baseline | –" if cost is None else f"{cost.overall_ms:+.2f} | {cost.verdict}"
        rps, p50 = at(view, spec.name, top)
        rows.append(f"| {spec.name} | {spec.kind} | {fmt(own, 2)} | {extra} | {rps} | {p50} |")
    return rows


def pool_rows() -> list[str]:
    """postgres-pool: throughput and median at the highest level against the pool's ceiling in the model."""
    view = reference("postgres-pool")
    top = max(view.users)
    rows = []
    for spec in view.servers:
        rps, p50 = at(view, spec.name, top)
        e = view.expectations[(spec.name, top)]
        times = server_times(view, spec.name, top)
        rows.append(
            f"| {spec.name} | {rps} | {p50} | {fmt_ms(times['pool_mean_ms'])} | {fmt_ms(times['outside_mean_ms'])} | "
            f"{fmt(e.prediction.model_rps)} | {e.prediction.bound_by} |"
        )
    return rows


@pytest.mark.parametrize("name", sorted(readme_blocks.BLOCKS))
def test_every_generated_block_of_the_readme_is_the_references_own(name: str) -> None:
    """Each block between its markers is what tests/readme_blocks.py computes from the committed references
    (regenerate: PYTHONPATH=. .venv/bin/python -m tests.readme_blocks)."""
    text = README.read_text(encoding="utf-8")
    assert readme_blocks.current(text, name) == readme_blocks.BLOCKS[name](), f"README block {name!r} is stale"


TABLES = {"simulated against real": simulated_vs_real_rows, "postgres-orm": orm_rows, "postgres-pool": pool_rows}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_row_of_the_readme_table_is_the_reference_runs_own(table: str) -> None:
    text = README.read_text(encoding="utf-8")
    missing = [row for row in TABLES[table]() if row not in text]
    assert missing == [], "README rows out of date with results/reference (regenerate: python -m tests.test_readme)"


def test_the_reading_of_the_orm_table_holds() -> None:
    """ "The raw drivers add well under a millisecond ...; the ORM adds more than the raw driver under the same server
    at every level compared, and the async ORM's addition is larger than the sync one's. At 400 users only the two
    ORM configurations fall below 95% of the best throughput"."""
    view = reference("postgres-orm")
    top = max(view.users)
    costs = added(view)
    orm = {s.name for s in view.servers if s.driver == "sqlalchemy"}
    assert all(c.verdict == "appeared" for c in costs.values()), costs
    assert all(c.overall_ms is not None and c.overall_ms < 0.75 for n, c in costs.items() if n not in orm), costs
    for difference in differences(view):
        if difference.claim.startswith(("the ORM", "the async ORM")):
            assert difference.verdict == "appeared", difference
    rps = {s.name: float(at(view, s.name, top)[0]) for s in view.servers}
    short = {name for name, value in rps.items() if value < 0.95 * max(rps.values())}
    assert short == orm, rps


def test_the_reading_of_the_pool_table_holds() -> None:
    """ "No configuration reaches the pool's ceiling ...: asyncpg closest, psycopg's async pool fewest, gthread
    between; on the event loops nearly all of the response time is the wait for a connection; most of gthread's
    requests wait outside the handler for a thread, and those with one wait a few hundred milliseconds for a
    connection; the server's CPU stays below half its core"."""
    view = reference("postgres-pool")
    top = max(view.users)
    rps = {s.name: float(at(view, s.name, top)[0]) for s in view.servers}
    ceiling = {s.name: view.expectations[(s.name, top)].prediction.model_rps for s in view.servers}
    assert all(rps[name] < ceiling[name] for name in rps), (rps, ceiling)
    assert rps["fastapi-asyncpg"] > rps["flask-gthread"] > rps["fastapi-psycopg"], rps
    for spec in view.servers:
        record = view.ok_step(spec.name, top)
        assert record is not None
        assert record["server_cpu_pct"] < 50, record["server"]
        times, mean = record["figures"]["server"], record["figures"]["latency"]["mean_ms"]
        if spec.kind == "async":
            assert times["pool_mean_ms"] >= 0.9 * mean, (spec.name, times)
        else:
            assert times["outside_mean_ms"] > mean / 2 > times["pool_mean_ms"], (spec.name, times)
            assert 100 <= times["pool_mean_ms"] < 1000, (spec.name, times)


def test_the_reading_of_simulated_against_real_holds() -> None:
    """The sentences under the table: sync workers the same (about 31/s, 11 s outside the handler, a tenth of a
    millisecond for a connection), the event loop slower on PostgreSQL with a median over a second, every request
    waiting over a second for a connection and milliseconds outside the handler, the driver's CPU about a millisecond
    on either side, and the sized gthread server's figures."""
    view = reference("postgres")
    top = max(view.users)

    def figures(name: str) -> tuple[float, float]:
        record = view.ok_step(name, top)
        assert record is not None
        return float(record["figures"]["rps"]), float(record["figures"]["latency"]["p50_ms"])

    for name in ("flask-gunicorn", "flask-gunicorn-simulated"):
        assert 30 <= figures(name)[0] <= 34
    sync = server_times(view, "flask-gunicorn", top)
    assert 10_000 <= sync["outside_mean_ms"] < 12_000 and sync["pool_mean_ms"] < 0.2, sync
    real, simulated = figures("fastapi-uvicorn"), figures("fastapi-uvicorn-simulated")
    assert real[0] < simulated[0] and real[1] > 1000 > simulated[1]
    loop = server_times(view, "fastapi-uvicorn", top)
    assert loop["pool_waited_pct"] >= 99.5, loop
    assert loop["outside_mean_ms"] < 100, loop
    assert all(0 < (d.overall_ms or 0) < 1.5 for d in added(view).values()), added(view)  # "about a millisecond"
    gthread_rps, gthread_p50 = at(view, "flask-gthread", top)
    assert figures("flask-gthread")[0] > real[0] and figures("flask-gthread")[1] < 1000
    readme = README.read_text(encoding="utf-8")
    assert f"served\n{gthread_rps} requests/s at a {gthread_p50} median at 500 users" in readme
    assert f"connections, {fmt_ms(loop['pool_mean_ms'])} on average" in readme


def test_every_reference_ran_on_one_machine() -> None:
    """The README sets references side by side, so they must share a machine (each report names it)."""
    models = {name: str(reference(name).metadata.get("cpu_model")) for name in readme_blocks.ALL_REFERENCES}
    assert len(set(models.values())) == 1, models


def test_the_references_it_quotes_are_committed() -> None:
    for name in ("postgres", "postgres-orm", "postgres-pool"):
        assert (REFERENCES / name / "run.json").is_file()
        assert Path(REFERENCES / name / "report.md").is_file()


if __name__ == "__main__":
    for title, rows in TABLES.items():
        print(f"## {title}")
        print("\n".join(rows()))
