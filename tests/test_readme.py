"""The README's figures for the real database are the committed reference runs' own: each table row and each
figure quoted is recomputed here from ``results/reference/<name>/run.json``, so a stale number fails CI.

To regenerate the rows after new reference runs: ``PYTHONPATH=. .venv/bin/python -m tests.test_readme``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.config import ROOT
from runner.numbers import fmt, fmt_ms
from runner.view import RunView

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


def simulated_vs_real_rows() -> list[str]:
    """The same servers and waits on the simulated database (default) and on PostgreSQL (postgres), at 500 users."""
    simulated, real = reference("default"), reference("postgres")
    rows = []
    for spec in real.servers:
        if simulated.server(spec.name) is None:
            continue
        sim_rps, sim_p50 = at(simulated, spec.name, 500)
        pg_rps, pg_p50 = at(real, spec.name, 500)
        rows.append(
            f"| {spec.name} ({spec.describe()}) | {fmt(cpu_ms(simulated, spec.name), 2)} | "
            f"{fmt(cpu_ms(real, spec.name), 2)} | {sim_rps} | {pg_rps} | {sim_p50} | {pg_p50} |"
        )
    return rows


def orm_rows() -> list[str]:
    """postgres-orm: each configuration's CPU per request and what it adds over its own side's simulated baseline,
    with its throughput at the highest level (where every server is CPU-bound)."""
    view = reference("postgres-orm")
    top = max(view.users)
    baseline = {s.kind: cpu_ms(view, s.name) for s in view.servers if s.driver == "simulated"}
    rows = []
    for spec in view.servers:
        own = cpu_ms(view, spec.name)
        added = "baseline" if spec.driver == "simulated" else f"+{fmt(own - baseline[spec.kind], 2)}"
        rps, p50 = at(view, spec.name, top)
        rows.append(f"| {spec.name} | {spec.kind} | {fmt(own, 2)} | {added} | {rps} | {p50} |")
    return rows


def pool_rows() -> list[str]:
    """postgres-pool: throughput and median at the highest level against the pool's ceiling in the model."""
    view = reference("postgres-pool")
    top = max(view.users)
    rows = []
    for spec in view.servers:
        rps, p50 = at(view, spec.name, top)
        e = view.expectations[(spec.name, top)]
        rows.append(
            f"| {spec.name} | {rps} | {p50} | {fmt(e.prediction.model_rps)} | {e.prediction.bound_by} |"
        )
    return rows


TABLES = {"simulated against real": simulated_vs_real_rows, "postgres-orm": orm_rows, "postgres-pool": pool_rows}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_row_of_the_readme_table_is_the_reference_runs_own(table: str) -> None:
    text = README.read_text(encoding="utf-8")
    missing = [row for row in TABLES[table]() if row not in text]
    assert missing == [], f"README rows out of date with results/reference (regenerate: python -m tests.test_readme)"


def test_the_references_it_quotes_are_committed() -> None:
    for name in ("default", "postgres", "postgres-orm", "postgres-pool"):
        assert (REFERENCES / name / "run.json").is_file()
        assert Path(REFERENCES / name / "report.md").is_file()


if __name__ == "__main__":
    for title, rows in TABLES.items():
        print(f"## {title}")
        print("\n".join(rows()))
