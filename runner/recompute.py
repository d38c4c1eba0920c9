"""A run's figures recomputed from the raw files it keeps, and refused when they are not what ``run.json`` says.

``run.json`` is the source of every table and chart, but it is the harness's own summary of what Locust wrote.
Where a folder still holds each step's Locust files (a run folder as measured, or a reference made with
``python -m runner.reference``, which ships them compressed), a reader need not take that summary on trust: every
measured step's ``figures`` are computed again with the same function the sweep used
(:func:`runner.stats.step_figures`) and compared, figure by figure, with the stored ones after the same JSON round
trip ``run.json`` went through (NaN becomes null, tuples lists). They must be equal exactly. A difference means
that a request log, a window file or ``run.json`` was changed after the run, or that the stored figures were
computed by another version of :mod:`runner.stats`; either way what would be drawn is not what the raw data
gives, so it is an error naming the step, the figure and both values, and nothing is drawn. A figure is never
quietly replaced by its recomputation: that would overwrite what was measured.

A folder none of whose measured steps keeps its files (a reference made before references shipped raw data) is
drawn from ``run.json`` as before. One that keeps some steps' files but not others' is refused: a reference that
can be checked only in part would look checked.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import files, store
from runner.loadgen import StepFiles
from runner.open_figures import open_figures
from runner.open_view import open_records
from runner.stats import COMPRESSED_SUFFIX, OutputError, step_figures
from runner.store import is_ok
from runner.view import RunView

# How many differing figures one error lists before it only counts the rest, and how much of each value it shows.
SHOWN_DIFFERENCES = 5
SHOWN_CHARS = 120


class _Absent:
    """A figure one side does not hold, shown as such in a message."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class StepSources:
    """The files a step's figures are computed from: Locust's totals, the request log (``requests.csv`` as
    Locust wrote it or ``requests.csv.gz`` as a reference ships it) and the window file."""

    folder: Path
    json: Path
    raw: Path
    meta: Path


def compressed(path: Path) -> Path:
    """Where the gzip-compressed copy of a file goes: its name with ``.gz`` added (``requests.csv.gz``)."""
    return path.with_name(path.name + COMPRESSED_SUFFIX)


def request_log(folder: Path) -> Path | None:
    """The step's request log, plain or compressed; None when the folder holds neither. Both at once is refused:
    they may differ, and nothing says which one the figures came from."""
    plain = StepFiles.inside(folder).raw
    packed = compressed(plain)
    if plain.is_file() and packed.is_file():
        raise store.ResultsError(f"{folder} holds both {plain.name} and {packed.name}; keep only one")
    if plain.is_file():
        return plain
    return packed if packed.is_file() else None


def step_folder(run_dir: Path, record: Mapping[str, Any]) -> Path | None:
    """The folder a step record names in ``files`` (relative to the run folder); None when it names none (a
    record from before steps named their folder). A name leading out of the run folder is refused."""
    name = record.get("files")
    if not isinstance(name, str) or not name:
        return None
    folder = run_dir / name
    if not folder.resolve().is_relative_to(run_dir.resolve()):
        raise store.ResultsError(f"{run_dir / store.RUN_FILE}: a step's files {name!r} lie outside the run folder")
    return folder


def step_sources(run_dir: Path, record: Mapping[str, Any]) -> StepSources | None:
    """A step's Locust files, or None when its folder keeps no request log. A request log without the totals or
    the window it is read with is refused, naming the missing file."""
    folder = step_folder(run_dir, record)
    if folder is None:
        return None
    raw = request_log(folder)
    if raw is None:
        return None
    named = StepFiles.inside(folder)
    for needed in (named.json, named.meta):
        if not needed.is_file():
            raise store.ResultsError(
                f"{folder} holds {raw.name} but not {needed.name}: its figures cannot be recomputed"
            )
    return StepSources(folder, named.json, raw, named.meta)


def measured_sources(view: RunView) -> list[tuple[dict[str, Any], StepSources]]:
    """Every measured step with its files; empty when no measured step keeps any. ResultsError when some keep
    theirs and others do not, naming the first that does not."""
    records = [*view.records, *open_records(view.doc)]
    found = [(record, step_sources(view.path, record)) for record in records if is_ok(record)]
    kept = [(record, sources) for record, sources in found if sources is not None]
    if kept and len(kept) < len(found):
        record = next(r for r, sources in found if sources is None)
        raise store.ResultsError(
            f"{view.path}: {view.record_name(record)} keeps no request log under {record.get('files')!r} while "
            f"{len(kept)} other step(s) keep theirs; a run's raw data must be complete to be checked"
        )
    return kept


def stored_form(value: Any) -> Any:
    """``value`` as it reads back from ``run.json``: the writer's own conversion (:func:`runner.files.jsonable`),
    then through JSON text and back."""
    return json.loads(json.dumps(files.jsonable(value), allow_nan=False))


def differences(stored: Any, fresh: Any, where: str = "") -> list[tuple[str, Any, Any]]:
    """Each figure that differs between two stored forms, as (dotted name, stored, fresh); exact equality.

    A figure ``run.json`` does not hold at all is not a difference: a later version of :mod:`runner.stats` computes
    more from the same raw files (the server's own times, say), and a run measured before it still redraws, with
    the new figure taken from its raw data. Every figure it does hold must match."""
    if stored is ABSENT:
        return []
    if isinstance(stored, Mapping) and isinstance(fresh, Mapping):
        keys = [*fresh, *(k for k in stored if k not in fresh)]
        found: list[tuple[str, Any, Any]] = []
        for key in keys:
            found += differences(stored.get(key, ABSENT), fresh.get(key, ABSENT), f"{where}.{key}" if where else key)
        return found
    if isinstance(stored, list) and isinstance(fresh, list) and len(stored) == len(fresh):
        return [
            d for i, (a, b) in enumerate(zip(stored, fresh, strict=True)) for d in differences(a, b, f"{where}[{i}]")
        ]
    same = type(stored) is type(fresh) and stored == fresh
    return [] if same else [(where, stored, fresh)]


def recomputed(view: RunView) -> Mapping[str, Any]:
    """The run's document with every measured step's figures recomputed from its raw files, each checked equal
    to the stored one (ResultsError naming the step, the figure and both values otherwise). The document as
    saved, untouched, when no measured step keeps its files."""
    sources = measured_sources(view)
    if not sources:
        return view.doc
    doc = copy.deepcopy(dict(view.doc))
    # Record objects of the copy, in the same order as the view's: the recomputation replaces their figures.
    copies = {id(original): copied for original, copied in zip(view.records, doc["steps"], strict=True)}
    copies |= {id(original): copied for original, copied in zip(open_records(view.doc), open_records(doc), strict=True)}
    for record, found in sources:
        try:
            figures = (
                open_figures(found.raw, found.meta)
                if record.get("arrival") == "open"
                else step_figures(found.json, found.raw, found.meta)
            )
            fresh = stored_form(figures.to_dict())
        except OutputError as error:
            raise store.ResultsError(f"{view.record_name(record)}: {error}") from None
        differing = differences(record.get("figures"), fresh)
        if differing:
            raise store.ResultsError(_mismatch(view, record, found, differing))
        copies[id(record)]["figures"] = fresh
    return doc


def _mismatch(
    view: RunView, record: Mapping[str, Any], found: StepSources, differing: list[tuple[str, Any, Any]]
) -> str:
    shown = "; ".join(
        f"{name}: {_shown(stored)} in {store.RUN_FILE}, {_shown(fresh)} from the raw files"
        for name, stored, fresh in differing[:SHOWN_DIFFERENCES]
    )
    more = len(differing) - SHOWN_DIFFERENCES
    return (
        f"{view.file}: {view.record_name(record)} ({found.folder.relative_to(view.path)}) does not recompute to its "
        f"stored figures: {shown}" + (f"; and {more} more" if more > 0 else "") + ". A request log, window file or "
        f"{store.RUN_FILE} was changed after the run, or its figures were computed by another version of the "
        "harness; nothing was drawn"
    )


def _shown(value: Any) -> str:
    """A value as a message shows it: its repr, cut short when it is a whole section of figures."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."
