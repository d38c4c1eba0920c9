"""``report.html``: one self-contained page from the same markdown as ``report.md``, charts embedded, data escaped.

The unit tests build the page from the reference run's real ``run.json`` with small hand-made PNGs; the browser
test draws the real charts with ``render.render`` and opens the result in Debian's Chromium, offline.
"""

from __future__ import annotations

import base64
import copy
import os
import shutil
import struct
import time
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from runner import files, html_report, render, report, store
from runner.view import RunView
from tests.runs import view_of

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "results" / "reference" / "default"
# Those the reference report refers to.
CHARTS = ("response_times.png", "throughput.png", "resources.png", "timeline.png", "burst.png")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INJECTION = '<script>alert("x")</script><img src="https://evil.example/p.png" onerror="alert(1)">'


def png(width: int) -> bytes:
    """A real, tiny RGB PNG; its width makes each file's bytes distinct."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x1b\x9e\x77" * width for _ in range(2))
    header = struct.pack(">IIBBBBB", width, 2, 8, 2, 0, 0, 0)
    return (
        html_report.PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )


class Page(HTMLParser):
    """Every start tag with its attributes, and the text, of an HTML page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def attrs(self, tag: str, name: str) -> list[str]:
        return [a.get(name) or "" for t, a in self.tags if t == tag]


def reference_run() -> dict[str, Any]:
    return copy.deepcopy(store.load_run(REFERENCE))


def run_folder(tmp_path: Path, run: dict[str, Any], charts: tuple[str, ...] = CHARTS) -> Path:
    """A run folder with ``run.json`` and a small PNG for each named chart."""
    run_dir = tmp_path / "run"
    files.write_json(run_dir / store.RUN_FILE, run)
    (run_dir / "charts").mkdir()
    for width, name in enumerate(charts, start=1):
        (run_dir / "charts" / name).write_bytes(png(width))
    return run_dir


def write_page(run_dir: Path) -> Path:
    """report.html of the run saved in ``run_dir``, from the same markdown as report.md, as rendering writes it."""
    view = RunView.load(run_dir)
    return html_report.write_html(view, report.markdown(view))


def embedded(page: Page) -> list[bytes]:
    prefix = "data:image/png;base64,"
    sources = page.attrs("img", "src")
    assert all(src.startswith(prefix) for src in sources), [src[:40] for src in sources]
    return [base64.b64decode(src.removeprefix(prefix)) for src in sources]


def assert_nothing_to_fetch(text: str) -> None:
    """No URL to load or follow: images are data: URIs, links only anchors in the page, no script at all."""
    page = Page(text)
    assert "script" not in [tag for tag, _ in page.tags]
    for tag, attrs in page.tags:
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        for name in ("src", "href", "srcset", "action", "formaction", "poster", "background", "data"):
            if name not in attrs:
                continue
            value = attrs[name] or ""
            if tag == "img" and name == "src":
                assert value.startswith("data:image/png;base64,")
            elif name == "href":
                assert value.startswith("#"), (tag, attrs)
            else:
                assert not value, (tag, attrs)
    assert "@import" not in text and "url(" not in text


# --- unit tests, no browser ---------------------------------------------------------------------------------------


def test_every_chart_is_embedded_once_as_a_data_uri_and_unreferenced_ones_get_a_section(tmp_path: Path) -> None:
    run_dir = run_folder(tmp_path, reference_run(), (*CHARTS, "extra.png"))
    (run_dir / "charts" / ".throughput.png.tmp.png").write_bytes(png(9))  # a chart still being drawn
    (run_dir / "charts" / "notes.png").write_text("not a png", encoding="utf-8")
    path = write_page(run_dir)
    assert path == run_dir / "report.html"
    text = path.read_text(encoding="utf-8")
    page = Page(text)
    on_disk = {(run_dir / "charts" / name).read_bytes() for name in (*CHARTS, "extra.png")}
    images = embedded(page)
    assert len(images) == len(CHARTS) + 1
    assert set(images) == on_disk
    assert '<section id="html-charts">' in text
    # The referenced charts sit where the markdown puts them, before the tables; the extra one in its own section.
    assert (
        text.index('title="charts/response_times.png"')
        < text.index('id="results-per-user-level"')
        < text.index('title="charts/extra.png"')
    )
    assert [a.get("alt") for t, a in page.tags if t == "img"][:3] == ["Response times", "Throughput", "Timeline"]


def test_a_run_without_some_charts_still_renders(tmp_path: Path) -> None:
    run_dir = run_folder(tmp_path, reference_run(), ("response_times.png",))
    text = write_page(run_dir).read_text(encoding="utf-8")
    page = Page(text)
    assert len(embedded(page)) == 1
    assert "charts/throughput.png is not a chart of this run, or it was not drawn" in text
    assert "charts/timeline.png is not a chart of this run, or it was not drawn" in text
    assert "Charts</h2>" not in text  # nothing unreferenced to add
    shutil.rmtree(run_dir / "charts")
    text = write_page(run_dir).read_text(encoding="utf-8")
    assert embedded(Page(text)) == []
    assert "<h2 id=" in text and "Results per user level" in text


def test_the_page_is_the_markdown_of_report_md_plus_configuration_and_environment(tmp_path: Path) -> None:
    run = reference_run()
    run_dir = run_folder(tmp_path, run)
    view = RunView.load(run_dir)
    text = report.markdown(view)
    page_text = html_report.build_html(view, text)
    assert html_report.write_html(view, text).read_text(encoding="utf-8") == page_text
    body = "".join(Page(page_text).text)
    for line in text.splitlines():
        if line.startswith("#"):
            assert line.lstrip("# ").replace("`", "") in body
    rows = sum(1 for line in text.splitlines() if line.startswith("|") and not line.startswith("|---"))
    assert page_text.count("<tr>") >= rows
    top = next(s for s in run["steps"] if s["server"] == "fastapi-uvicorn" and s["users"] == 500)
    assert f"{top['figures']['rps']:.1f}" in body  # a figure from the tables
    for section in ("Configuration", "Server commands", "Environment"):
        assert f">{section}</h" in page_text
    assert run["config"]["source_sha256"] in body  # the config, in full
    assert run["metadata"]["git"]["commit"] in body  # the environment's commit
    assert "--timeout-graceful-shutdown 3" in body  # the exact server command


def test_the_page_shows_the_view_it_is_given(tmp_path: Path) -> None:
    """Everything on the page comes from the view (the run as the caller read it), not from rereading the folder."""
    run = reference_run()
    run_dir = run_folder(tmp_path, run)
    run["config"]["name"] = "renamed"
    run["metadata"]["cpu_model"] = "Another CPU"
    run["status"] = "interrupted"
    view = view_of(run, run_dir)
    text = html_report.build_html(view, report.markdown(view))
    assert "<title>Sync vs async: renamed</title>" in text
    body = "".join(Page(text).text)
    assert "Another CPU" in body and "interrupted" in body
    assert len(embedded(Page(text))) == len(CHARTS)  # the charts of the view's folder


def test_server_commands_are_grouped_when_steps_differ_only_in_the_port() -> None:
    run = reference_run()
    commands = html_report.server_commands(view_of(run))
    levels = run["config"]["load"]["users"]
    assert [(server, levels) for server, levels, _ in commands] == [
        ("flask-gunicorn", levels),
        ("fastapi-uvicorn", levels),
    ]
    assert commands[0][2] == run["steps"][0]["command"]  # the first step's command, exactly
    odd = run["steps"][2]  # flask-gunicorn at the second level
    assert odd["server"] == "flask-gunicorn"
    odd["command"] = [*odd["command"], "--preload"]
    rows = html_report.server_commands(view_of(run))
    assert [(server, levels) for server, levels, _ in rows][:2] == [
        ("flask-gunicorn", [n for n in levels if n != odd["users"]]),
        ("fastapi-uvicorn", levels),
    ]
    assert rows[2][0:2] == ("flask-gunicorn", [odd["users"]])


def test_the_page_refers_to_nothing_outside_itself(tmp_path: Path) -> None:
    run_dir = run_folder(tmp_path, reference_run())
    text = write_page(run_dir).read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    assert "default-src 'none'; img-src data:" in text  # the browser enforces it too
    assert_nothing_to_fetch(text)


def test_text_from_the_run_cannot_inject_html_scripts_or_urls(tmp_path: Path) -> None:
    run = reference_run()
    run["config"]["name"] = "evil` " + INJECTION + " `name"
    run["config"]["description"] = "\n\n".join(
        [
            INJECTION,
            "<div onclick='alert(2)'>block</div>",
            "[click me](javascript:alert(3)) and [away](https://evil.example/) and <https://evil.example/auto>",
            "![tracker](https://evil.example/t.png) ![escape](charts/../run.json) ![abs](charts//etc/passwd)",
            "```\n" + INJECTION + "\n```",
            "[ref]: https://evil.example/ref\n\n[by reference][ref]",
        ]
    )
    run["steps"][0]["status"] = "failed"
    run["steps"][0]["error"] = INJECTION + "\nsecond line"
    run["status"] = "incomplete"
    run["metadata"]["packages"][INJECTION] = INJECTION
    run["steps"][1]["command"] = [*run["steps"][1]["command"], INJECTION]
    run_dir = run_folder(tmp_path, run)
    text = write_page(run_dir).read_text(encoding="utf-8")
    assert_nothing_to_fetch(text)
    assert len(embedded(Page(text))) == len(CHARTS)
    # The hostile text is still there to read, as text.
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text or "&lt;script&gt;alert" in text
    body = "".join(Page(text).text)
    assert '<script>alert("x")</script>' in body
    assert "click me" in body and "by reference" in body
    assert "<title>Sync vs async: evil` &lt;script&gt;" in text


def test_the_file_is_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = run_folder(tmp_path, reference_run())
    calls: list[Path] = []
    real = files.write_atomically

    def spy(path: Path, write: Any) -> None:
        calls.append(path)
        real(path, write)

    monkeypatch.setattr(files, "write_atomically", spy)
    write_page(run_dir)
    assert calls == [run_dir / "report.html"]
    monkeypatch.undo()

    before = (run_dir / "report.html").read_bytes()
    run = store.load_run(run_dir)
    run["config"]["description"] = "a new description"
    view = view_of(run, run_dir)

    def fail(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        html_report.write_html(view, report.markdown(view))
    assert (run_dir / "report.html").read_bytes() == before  # the old page, whole
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".")] == []  # no half-written file left


# --- the real pipeline in a real browser ---------------------------------------------------------------------------


@pytest.mark.integration
def test_report_html_opens_offline_in_chromium_with_every_chart(tmp_path: Path) -> None:
    """render.render draws the reference run's charts and page; headless Chromium shows it without a fetch."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser test opens report.html in Debian's Chromium. Run `make test` "
            "(which installs it) or `apt-get install chromium`."
        )
    from playwright.sync_api import ConsoleMessage, Request, Route, sync_playwright

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copyfile(REFERENCE / store.RUN_FILE, run_dir / store.RUN_FILE)
    written = render.render(run_dir)
    page_path = run_dir / "report.html"
    assert page_path in written
    charts = sorted(p for p in (run_dir / "charts").glob("*.png") if not p.name.startswith("."))
    assert [p.name for p in charts] == sorted(p.name for p in written if p.suffix == ".png")
    assert {p.name for p in charts} >= set(CHARTS)

    console: list[str] = []
    errors: list[str] = []
    requests: list[str] = []
    blocked: list[str] = []

    def route(r: Route) -> None:
        if r.request.url.startswith(("file:", "data:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    def on_console(message: ConsoleMessage) -> None:
        if message.type in {"error", "warning"}:
            console.append(f"{message.type}: {message.text}")

    def on_request(request: Request) -> None:
        requests.append(request.url)

    started = time.monotonic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=120_000)
        try:
            context = browser.new_context(offline=True, java_script_enabled=True)
            context.route("**/*", route)
            page = context.new_page()
            page.on("console", on_console)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("request", on_request)
            page.goto(page_path.as_uri(), wait_until="load", timeout=60_000)
            images = page.evaluate(
                "() => Array.from(document.images).map(i => ({complete: i.complete, width: i.naturalWidth,"
                " src: i.currentSrc.slice(0, 22), alt: i.alt}))"
            )
            tables = page.evaluate(
                "() => ({all: document.querySelectorAll('table').length,"
                " results: Array.from(document.querySelectorAll('h2 ~ table thead th')).map(t => t.textContent),"
                " config: document.querySelectorAll('#html-configuration table').length,"
                " environment: document.querySelectorAll('#html-environment table').length,"
                " scripts: document.scripts.length})"
            )
            title = page.title()
        finally:
            browser.close()
    assert time.monotonic() - started < 120

    assert len(images) == len(charts), images
    for image in images:
        assert image["complete"] and image["width"] > 0, image
        assert image["src"] == "data:image/png;base64,"
    assert {i["alt"] for i in images} == {
        "Response times",
        "Throughput",
        "Timeline",
        "CPU and memory per level",
        "The burst over time",
    }
    heads = tables["results"]
    assert any(heads[i : i + 2] == ["users", "flask-gunicorn req/s"] for i in range(len(heads)))  # the results
    assert tables["all"] >= 5 and tables["config"] >= 1 and tables["environment"] >= 1
    assert tables["scripts"] == 0
    assert title == "Sync vs async: default"
    assert console == []
    assert errors == []
    assert blocked == []
    assert [url for url in requests if not url.startswith("data:")] == [page_path.as_uri()]
