"""``report.html``: the run's report as one self-contained file that opens offline in any browser.

The body is converted from the very markdown that becomes ``report.md`` (``report.markdown(view)``, passed in by
the caller), so the two never disagree; only what a markdown file cannot carry is added: the charts embedded as
``data:`` URIs, the configuration, the exact server commands and the environment, each read through the run's
:class:`runner.view.RunView` (the configuration and the environment shown exactly as ``run.json`` saved them).

Everything that comes from the run is data, never markup. Python-Markdown passes raw HTML through, so its raw-HTML
handling is switched off here (a scenario description containing ``<script>`` shows as text), and every link and
image the markdown could produce is checked after conversion: an image is kept only as an embedded chart of this
run, a link only as an anchor within the page. The page loads nothing from anywhere, which its
Content-Security-Policy also enforces, and needs no JavaScript.
"""

from __future__ import annotations

import base64
import html
import json
import re
import shlex
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

# Python-Markdown ships no type information (and types-Markdown is not among the locked dependencies).
import markdown as markdown_lib  # type: ignore[import-untyped]
from markdown.treeprocessors import Treeprocessor  # type: ignore[import-untyped]

from runner import files, store
from runner.view import RunView

HTML_FILE = "report.html"
CHARTS_DIR = store.CHARTS_DIR
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# No network, no script, no frames: images only as data: URIs, styles only from the page itself.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)
# Arguments after which a server command names the port it listens on, chosen afresh for every step.
PORT_OPTIONS = frozenset({"--port", "-p", "--bind", "-b"})

STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1f2328; background: #fff; margin: 0; }
main { max-width: 1320px; margin: 0 auto; padding: 1.5rem 2rem 3rem; }
h1 { font-size: 1.7rem; margin-top: 0.5rem; }
h2 { font-size: 1.35rem; margin-top: 2.2rem; padding-bottom: 0.2rem; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1.1rem; margin-top: 1.6rem; }
code, pre { font: 0.88em/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; }
code { background: #f3f4f6; padding: 0.1em 0.3em; border-radius: 4px; }
pre { background: #f6f8fa; padding: 0.8rem 1rem; border-radius: 6px; overflow-x: auto; white-space: pre-wrap; }
pre code { background: none; padding: 0; }
blockquote { margin: 1rem 0; padding: 0.4rem 1rem; border-left: 4px solid #d4a72c; background: #fff8c5; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.86rem; display: block; overflow-x: auto;
        max-width: 100%; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.45rem; text-align: right; white-space: nowrap;
         vertical-align: top; }
th { background: #f6f8fa; white-space: normal; }
th:first-child, td:first-child { text-align: left; }
tbody tr:nth-child(even) td { background: #fafbfc; }
table.kv th, table.kv td, table.rows th, table.rows td { text-align: left; white-space: pre-wrap; }
table.kv th, table.rows td:first-child { white-space: nowrap; }
table.kv th { font-weight: 600; }
table.kv table.kv { margin: 0; font-size: 1em; }
img { max-width: 100%; height: auto; display: block; margin: 1rem auto; border: 1px solid #eaeef2; }
figure { margin: 1rem 0; }
figcaption { text-align: center; color: #59636e; font-size: 0.85rem; }
nav.contents { font-size: 0.9rem; color: #59636e; border-bottom: 1px solid #d0d7de; padding-bottom: 0.5rem; }
nav.contents a { margin-right: 0.9rem; }
a { color: #0969da; }
.missing { color: #9a6700; font-style: italic; }
.none { color: #59636e; }
footer { margin-top: 3rem; color: #59636e; font-size: 0.8rem; }
""".strip()


def write_html(view: RunView, text: str) -> Path:
    """Write ``report.html`` beside the run's ``run.json``, atomically, and return its path.

    ``text`` is the markdown written to ``report.md``: taking it rather than producing it again guarantees that
    the two files carry the same text.
    """
    page = build_html(view, text)
    path = view.path / HTML_FILE
    files.write_atomically(path, lambda f: f.write(page))
    return path


def build_html(view: RunView, text: str) -> str:
    """The whole page as a string: the converted report, unreferenced charts, configuration and environment."""
    charts = _EmbedCharts(view.path / CHARTS_DIR)
    converter = markdown_lib.Markdown(
        extensions=["tables", "fenced_code", "toc"], extension_configs={"toc": {"marker": ""}}, output_format="html"
    )
    # Raw HTML in the markdown is data from run.json (a scenario's description, a server's error): show it as text.
    converter.preprocessors.deregister("html_block")
    converter.inlinePatterns.deregister("html")
    # After inline processing (20) and the table of contents (5), so every <img> and <a> exists by then.
    converter.treeprocessors.register(charts, "embed_charts", 1)
    body = converter.convert(text)
    sections: list[tuple[str, str, str]] = []  # (id, title, html)
    extra = charts.unreferenced()
    if extra:
        sections.append(("html-charts", "Charts", "".join(extra)))
    sections.append(("html-configuration", "Configuration", _configuration(view)))
    sections.append(("html-environment", "Environment", _environment(view)))
    title = f"Sync vs async: {view.config.name}"
    links = [(t["id"], html.unescape(t["name"])) for t in _toc_level(getattr(converter, "toc_tokens", []), 2)]
    links += [(ident, name) for ident, name, _ in sections]
    nav = " ".join(f'<a href="#{_esc(ident)}">{_esc(name)}</a>' for ident, name in links)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{_esc(title)}</title>",
        f"<style>\n{STYLE}\n</style>",
        "</head>",
        "<body>",
        "<main>",
        f'<nav class="contents" aria-label="Contents">{nav}</nav>',
        body,
        *(f'<section id="{ident}">\n<h2>{_esc(name)}</h2>\n{content}\n</section>' for ident, name, content in sections),
        "<footer>Drawn from run.json alone (<code>python plots.py &lt;run folder&gt;</code>); report.md has the same "
        "text. This file loads nothing from the network.</footer>",
        "</main>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)


def _toc_level(tokens: list[dict[str, Any]], level: int) -> list[dict[str, Any]]:
    """The headings of one level, wherever they sit in the toc extension's nested tokens."""
    found: list[dict[str, Any]] = []
    for token in tokens:
        if token.get("level") == level:
            found.append(token)
        found += _toc_level(token.get("children", []), level)
    return found


class _EmbedCharts(Treeprocessor):  # type: ignore[misc]  # (untyped base class, see the import)
    """Turn the markdown's chart references into data: URIs and everything else that could fetch or navigate into
    text, so the page stands alone and data cannot point it anywhere."""

    def __init__(self, charts_dir: Path) -> None:
        super().__init__()
        self.charts_dir = charts_dir
        self.referenced: set[str] = set()

    def run(self, root: Element) -> None:
        for element in list(root.iter()):
            for name in list(element.attrib):
                # Nothing the markdown extensions used here makes an event handler; refuse one all the same.
                if name.lower().startswith("on"):
                    del element.attrib[name]
            if element.tag == "img":
                self._image(element)
            elif element.tag == "a":
                href = element.get("href", "")
                if not href.startswith("#"):
                    # A link from data (a description, an error) is kept as its text: the report points nowhere.
                    element.tag = "span"
                    element.attrib.clear()

    def _image(self, element: Element) -> None:
        src = element.get("src", "")
        alt = element.get("alt", "")
        chart = self._chart(src)
        if chart is not None:
            self.referenced.add(chart.name)
            element.attrib = {"src": _data_uri(chart), "alt": alt, "title": f"{CHARTS_DIR}/{chart.name}"}
            return
        element.tag = "span"
        element.attrib = {"class": "missing"}
        element.text = f"[{alt or 'image'}: {src} is not a chart of this run, or it was not drawn]"

    def _chart(self, src: str) -> Path | None:
        """The PNG under ``charts/`` that ``src`` names, or None: nothing outside that folder is ever read."""
        if not src.startswith(f"{CHARTS_DIR}/") or "\\" in src:
            return None
        path = self.charts_dir / src.removeprefix(f"{CHARTS_DIR}/")
        if path.parent != self.charts_dir or not _is_chart(path):
            return None
        return path

    def unreferenced(self) -> list[str]:
        """Figures for the charts on disk that the markdown does not show, so no drawn chart is left out."""
        if not self.charts_dir.is_dir():
            return []
        figures = []
        for path in sorted(self.charts_dir.iterdir()):
            if path.name in self.referenced or not _is_chart(path):
                continue
            caption = _esc(f"{CHARTS_DIR}/{path.name}")
            alt = _esc(path.stem.replace("_", " "))
            figures.append(
                f'<figure><img src="{_data_uri(path)}" alt="{alt}" title="{caption}">'
                f"<figcaption>{caption}</figcaption></figure>\n"
            )
        return figures


def _is_chart(path: Path) -> bool:
    """A finished PNG: not a hidden temporary file being drawn, and really a PNG (a browser could not show it)."""
    if path.name.startswith(".") or path.suffix.lower() != ".png" or not path.is_file():
        return False
    with path.open("rb") as handle:
        return handle.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _scalar(value: Any) -> str:
    """One value as JSON spells it (true, null, 0.1), strings as themselves: the table shows what run.json says."""
    if isinstance(value, str):
        return _esc(value.strip("\n")) if value.strip() else '<span class="none">(empty)</span>'
    if value is None:
        return '<span class="none">null</span>'
    return _esc(json.dumps(value))


def _value(value: Any) -> str:
    """Any JSON value as nested tables: objects as key/value rows, lists of objects as one row each."""
    if isinstance(value, dict):
        if not value:
            return '<span class="none">(none)</span>'
        rows = "".join(f'<tr><th scope="row">{_esc(k)}</th><td>{_value(v)}</td></tr>' for k, v in value.items())
        return f'<table class="kv"><tbody>{rows}</tbody></table>'
    if isinstance(value, list):
        return _list(value)
    return _scalar(value)


def _list(values: list[Any]) -> str:
    """Objects as one table row each (the servers), plain values on one line (the user levels)."""
    if not values:
        return '<span class="none">(none)</span>'
    if all(isinstance(v, dict) for v in values):
        keys = list(dict.fromkeys(k for v in values for k in v))
        head = "".join(f'<th scope="col">{_esc(k)}</th>' for k in keys)
        rows = "".join(
            "<tr>" + "".join(f"<td>{_value(v[k]) if k in v else ''}</td>" for k in keys) + "</tr>" for v in values
        )
        return f'<table class="rows"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
    if all(not isinstance(v, dict | list) for v in values):
        return ", ".join(_scalar(v) for v in values)
    return "<ol>" + "".join(f"<li>{_value(v)}</li>" for v in values) + "</ol>"


def _json_details(summary: str, value: Any) -> str:
    """The section's data exactly as saved, to copy from: the table above is for reading."""
    text = json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False, default=str)
    return f"<details><summary>{_esc(summary)}</summary><pre><code>{_esc(text)}</code></pre></details>"


def _mask_port(command: list[str]) -> list[str]:
    """A command with its listen port blanked, to tell steps that differ only in the free port they were given."""
    masked = list(command)
    for i in range(1, len(masked)):
        if masked[i - 1] in PORT_OPTIONS:
            masked[i] = re.sub(r"\d+$", "PORT", masked[i])
    return masked


def server_commands(view: RunView) -> list[tuple[str, list[int], list[str]]]:
    """(server, user levels, command) for each distinct way a server was started, the port aside.

    Each step starts a fresh server on a free port, so its recorded command differs from the last one's in the
    port only; one row per server says that once, with the first step's exact command. A command that differs in
    anything else gets its own row.
    """
    groups: dict[tuple[str, tuple[str, ...]], tuple[list[int], list[str]]] = {}
    for step in view.records:
        command = step.get("command")
        if not isinstance(command, list) or not all(isinstance(arg, str) for arg in command):
            continue
        env = step.get("command_env")
        prefix = [f"{k}={v}" for k, v in sorted(env.items())] if isinstance(env, dict) else []
        key = (str(step.get("server")), tuple(prefix + _mask_port(command)))
        levels, _ = groups.setdefault(key, ([], prefix + list(command)))
        if int(step.get("users", 0)) not in levels:  # a repeated step is one level, not several
            levels.append(int(step.get("users", 0)))
    return [(server, levels, command) for (server, _), (levels, command) in groups.items()]


def _configuration(view: RunView) -> str:
    config = view.saved_config
    parts = ["<p>The scenario as it was run (after any overrides), from run.json.</p>", _value(config)]
    commands = server_commands(view)
    if commands:
        rows = "".join(
            f"<tr><td>{_esc(server)}</td><td>{_esc(', '.join(str(n) for n in levels))}</td>"
            f"<td><code>{_esc(shlex.join(command))}</code></td></tr>"
            for server, levels, command in commands
        )
        parts += [
            "<h3>Server commands</h3>",
            "<p>Each step starts a fresh server on a free port: the command shown is the first step's, exactly as "
            "run; the other steps in its row differ from it in the port only.</p>",
            '<table class="rows"><thead><tr><th scope="col">server</th><th scope="col">users</th>'
            f'<th scope="col">command</th></tr></thead><tbody>{rows}</tbody></table>',
        ]
    parts.append(_json_details("The configuration as saved in run.json", config))
    return "\n".join(parts)


def _environment(view: RunView) -> str:
    keys = ("status", "started", "finished", "format", "format_version", "missing_steps")
    about = {key: view.doc[key] for key in keys if key in view.doc}
    metadata = view.metadata
    return "\n".join(
        [
            "<h3>Run</h3>",
            _value(about),
            "<h3>Machine and software</h3>",
            "<p>Recorded when the run started.</p>",
            _value(metadata),
            _json_details("The environment as saved in run.json", metadata),
        ]
    )
