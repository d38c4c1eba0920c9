"""``python -m runner.reference <run> <name>`` (``make reference RUN=<run> NAME=<name>``): a measured run made a
committed reference, ``results/reference/<name>/``, with the raw data a reader needs to recompute its figures.

A reference ships ``run.json``, ``summary.csv``, ``charts/``, ``report.md`` and ``report.html``, and for every step
record the Locust files its figures are computed from, under the same relative folder as in the run
(``raw/<server>/u<users>/``): the request log gzip-compressed as ``requests.csv.gz`` (the bulk: up to a few
hundred KB per step, about 1 MB for a PostgreSQL reference's run, of which gzip keeps about a quarter), and as they
are ``window.json`` and ``locust.json`` (a few KB each) and the server's and the database's sampled CPU and memory
(``resources.csv``, ``database_resources.csv``: about 5 KB per step, sampled four times a second, so compressing
them would save little and cost their readability). Not the server's and Locust's logs: no figure comes from
them, and a failure they would explain keeps a run from becoming a reference at all. ``python plots.py
results/reference/<name>`` then recomputes every step's figures from those files and refuses the folder if they
differ from ``run.json`` (:mod:`runner.recompute`).

Only a complete run becomes a reference, and an existing reference is replaced only with ``--replace`` (git keeps
the old one). The reference is built and rendered in a temporary folder beside the target and renamed into place
once whole, so there is never half a reference: a run whose raw files do not recompute to its figures, or any
other failure, leaves the references as they were.

Exit status: 0 when the reference was made; 2 when it was refused (not a complete run, the target exists, a step
without its files, raw files that disagree with ``run.json``), the message naming the folder or file.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from runner import charts, recompute, render, store
from runner.config import ROOT
from runner.open_view import open_records
from runner.stats import COMPRESSED_SUFFIX
from runner.sweep import DATABASE_RESOURCES_FILE, RESOURCES_FILE
from runner.upstream import RESOURCES_FILE as UPSTREAM_RESOURCES_FILE
from runner.view import RunView

REFERENCES = ROOT / "results" / "reference"
# A reference's name is one plain folder name: no path, nothing hidden.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Beside the Locust files, what else of a step folder a reference keeps (each where the step has it).
SAMPLED_FILES = (RESOURCES_FILE, DATABASE_RESOURCES_FILE, UPSTREAM_RESOURCES_FILE)


class Refused(Exception):
    """The reference cannot be made as asked; the message names the folder and says why."""


def make_reference(run_dir: Path, name: str, *, references: Path = REFERENCES, replace: bool = False) -> Path:
    """Make ``references/<name>`` from the complete run in ``run_dir`` (see the module's description) and return
    it. Raises :class:`Refused` (or :class:`runner.store.ResultsError` for a folder that is not a readable run, or
    whose raw files disagree with its figures); nothing is left behind either way."""
    run_dir = Path(run_dir)
    if not NAME.fullmatch(name):
        raise Refused(f"{name!r} is not a reference name: use letters, digits, '.', '-' and '_' (e.g. 'default')")
    view = RunView.load(run_dir)
    if not view.complete:
        missing = len(view.missing_steps()) + sum(1 for r in view.records if r.get("status") != "ok")
        raise Refused(
            f"{run_dir} is not a complete run (status {view.status!r}, {missing} step(s) not measured): only a "
            "complete run becomes a reference; finish it with `make benchmark RESUME=...` first"
        )
    target = Path(references) / name
    if _exists(target) and not replace:
        raise Refused(f"{target} exists: give --replace (make reference ... REPLACE=1) to replace it deliberately")
    steps = _step_files(view)
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".building", dir=target.parent))
    try:
        _shared_mode(building)
        _copy_run(view.path, building)
        for relative, sources in steps:
            _copy_step(sources, building / relative)
        render.render(building)
        _move_into_place(building, target, replace)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(building)
    return target


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _step_files(view: RunView) -> list[tuple[Path, recompute.StepSources]]:
    """Each step record's folder (relative to the run) and Locust files; a complete run has every step's."""
    found: list[tuple[Path, recompute.StepSources]] = []
    for record in [*view.records, *open_records(view.doc)]:
        sources = recompute.step_sources(view.path, record)
        if sources is None:
            raise Refused(
                f"{view.path}: {view.record_name(record)} keeps no request log under {record.get('files')!r}: "
                "a reference ships every step's raw data"
            )
        found.append((sources.folder.relative_to(view.path), sources))
    return found


def _shared_mode(folder: Path) -> None:
    """mkdtemp makes its folder private (0700); a reference is meant to be read by anyone, as a new folder is."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)


def _copy_run(run_dir: Path, into: Path) -> None:
    """run.json, summary.csv and the charts, as the run has them (the rendering redraws the last two)."""
    shutil.copyfile(run_dir / store.RUN_FILE, into / store.RUN_FILE)
    if (run_dir / store.SUMMARY_FILE).is_file():
        shutil.copyfile(run_dir / store.SUMMARY_FILE, into / store.SUMMARY_FILE)
    if (run_dir / charts.CHARTS_DIR).is_dir():
        shutil.copytree(run_dir / charts.CHARTS_DIR, into / charts.CHARTS_DIR, copy_function=shutil.copyfile)


def _copy_step(sources: recompute.StepSources, into: Path) -> None:
    into.mkdir(parents=True)
    for plain in (sources.json, sources.meta, *(sources.folder / name for name in SAMPLED_FILES)):
        if plain.is_file():
            shutil.copyfile(plain, into / plain.name)
    if sources.raw.suffix == COMPRESSED_SUFFIX:
        shutil.copyfile(sources.raw, into / sources.raw.name)  # a reference made from a reference
    else:
        gzip_copy(sources.raw, into / recompute.compressed(sources.raw).name)


def gzip_copy(source: Path, target: Path) -> None:
    """``source`` gzip-compressed into ``target``, the same bytes every time for the same file: no name and no
    time in the header, so a reference made again from the same run does not change in git."""
    with (
        source.open("rb") as plain,
        target.open("wb") as out,
        gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as packed,
    ):
        shutil.copyfileobj(plain, packed)


def _move_into_place(building: Path, target: Path, replace: bool) -> None:
    """Rename the finished folder to ``target``. A reference replaced is first moved aside (and put back if the
    rename fails), so the target is always one whole reference or the other."""
    if not _exists(target):
        try:
            os.rename(building, target)
        except OSError as error:  # another process made it meanwhile
            raise Refused(f"{target} appeared while the reference was built; nothing was changed ({error})") from None
        return
    if not replace:
        raise Refused(f"{target} appeared while the reference was built; nothing was changed")
    aside = building.with_name(building.name.removesuffix(".building") + ".replaced")
    os.rename(target, aside)
    try:
        os.rename(building, target)
    except BaseException:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m runner.reference",
        description="Make a complete run a committed reference (results/reference/<name>/), raw data included.",
    )
    parser.add_argument("run", type=Path, help="a complete run folder (e.g. results/latest)")
    parser.add_argument("name", help="the reference's name, usually the scenario's (e.g. default)")
    parser.add_argument("--replace", action="store_true", help="replace an existing reference of that name")
    args = parser.parse_args(argv)
    try:
        target = make_reference(args.run, args.name, references=REFERENCES, replace=args.replace)
    except (Refused, store.ResultsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (KeyError, TypeError, ValueError) as error:
        # As plots.py: a damaged figure the loader did not catch is named, not dumped.
        print(f"error: {args.run / store.RUN_FILE} has a damaged figure ({error!r})", file=sys.stderr)
        return 2
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
