"""The contract on the wire: gunicorn and uvicorn, started as a run starts them, sent the same bytes over a plain
socket, must answer with the same status line, the same body to the byte and the same Content-Type (and
Content-Length, and Allow where there is one).

A plain socket, because every HTTP client library normalises something on the way out (a repeated slash, a dot
segment, an escape, the method's case) and follows redirects on the way back, which is exactly what this file
must see. The cases are those README's "The endpoints" decides: other methods, trailing, repeated and escaped
slashes, bytes that are not UTF-8, a query too long, and a few ordinary requests beside them.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from runner.config import load_config
from runner.servers import serve
from simdb import workload as wl
from tests.scenarios import small_scenario

pytestmark = pytest.mark.integration

SERVERS = ("gunicorn", "uvicorn")
# Absurd (about 15 times the longest query string the apps read), yet under the 65,535 bytes of a request target
# that uvicorn's parser (httptools) accepts at all: past that, uvicorn refuses the request itself (see below).
LONG = "rows=" + "0" * 60_000
HTTPTOOLS_MAX_URL = 65_535
QUICK = "user_ms=0&listing_ms=0&work_ms=0"  # a page that waits on nothing


@dataclass(frozen=True)
class Reply:
    """One response as it came off the socket."""

    status_line: bytes
    headers: dict[bytes, bytes]  # names lowercased; each name once (none of those compared repeats)
    body: bytes

    def same_as(self) -> tuple[bytes, bytes | None, bytes | None, bytes | None, bytes]:
        """What both servers must agree on; Date, Server, Connection and Server-Timing's values may differ."""
        h = self.headers
        return self.status_line, h.get(b"content-type"), h.get(b"content-length"), h.get(b"allow"), self.body


def exchange(url: str, method: str, target: str, version: str = "HTTP/1.1") -> Reply:
    """Send one request, exactly these bytes, and read the response until the server closes the connection."""
    host, port = url.removeprefix("http://").split(":")
    head = f"{method} {target} {version}\r\nHost: {host}:{port}\r\nConnection: close\r\n"
    if method in ("POST", "PUT", "PATCH"):
        head += "Content-Length: 0\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall((head + "\r\n").encode("ascii"))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    assert b"\r\n\r\n" in raw, f"{method} {target[:80]}: no complete response from {url}: {raw[:200]!r}"
    header_block, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = header_block.split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return Reply(status_line, headers, body)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Real gunicorn (sync workers) and uvicorn (async endpoints) with a small scenario's settings, by URL."""
    folder: Path = tmp_path_factory.mktemp("raw-contract")
    scenario = folder / "raw-contract.toml"
    scenario.write_text(small_scenario(name="raw-contract", users="[1]"), encoding="utf-8")
    config = load_config(str(scenario))
    with ExitStack() as stack:
        urls: dict[str, str] = {}
        for spec in config.servers:
            running = stack.enter_context(serve(spec, config, folder / f"{spec.server}.log", frozenset()))
            urls[spec.server] = running.url
        assert set(urls) == set(SERVERS)
        yield urls


# (method, target, status, the body expected; None where only the two servers' agreement is checked)
CASES: list[tuple[str, str, int, bytes | None]] = [
    ("OPTIONS", "/page", 405, wl.json_bytes(wl.http_error_body(405, "OPTIONS"))),
    ("POST", "/short", 405, wl.json_bytes(wl.http_error_body(405, "POST"))),
    ("DELETE", "/health", 405, wl.json_bytes(wl.http_error_body(405, "DELETE"))),
    ("TRACE", "/page", 405, wl.json_bytes(wl.http_error_body(405, "TRACE"))),
    ("OPTIONS", "/nowhere", 404, wl.json_bytes(wl.http_error_body(404, "OPTIONS"))),
    ("GET", "/page/", 404, wl.json_bytes(wl.http_error_body(404, "GET"))),
    ("GET", "/health/", 404, wl.json_bytes(wl.http_error_body(404, "GET"))),
    ("GET", "//page", 404, wl.json_bytes(wl.http_error_body(404, "GET"))),
    ("POST", "//page", 404, wl.json_bytes(wl.http_error_body(404, "POST"))),
    ("GET", "/page//", 404, wl.json_bytes(wl.http_error_body(404, "GET"))),
    ("GET", "/page%2F", 404, wl.json_bytes(wl.http_error_body(404, "GET"))),
    ("GET", "/%2Fpage", 404, wl.json_bytes(wl.http_error_body(404, "GET"))),
    ("GET", "/page%2Fitems", 404, wl.json_bytes(wl.http_error_body(404, "GET"))),
    ("GET", "/%ff%fe", 404, wl.json_bytes(wl.http_error_body(404, "GET"))),
    ("GET", "/nowhere", 404, wl.json_bytes(wl.http_error_body(404, "GET"))),
    (
        "GET",
        "/page?user_ms=%ff%fe",
        400,
        wl.json_bytes(wl.ParamError("user_ms", "must be a number between 0 and 5000, got '%ff%fe'").body()),
    ),
    ("GET", "/page?%FF=1", 400, None),
    ("GET", "/page?rows=1&rows=2", 400, wl.json_bytes(wl.ParamError("rows", "given more than once").body())),
    ("GET", "/short?query_ms=1e9", 400, None),
    ("GET", "/health?verbose", 400, None),
    ("GET", "/page?" + LONG, 414, wl.json_bytes(wl.QueryTooLong(len(LONG)).body())),
    ("GET", "/nowhere?" + LONG, 404, wl.json_bytes(wl.http_error_body(404, "GET"))),
    ("GET", f"/page?{QUICK}&rows=3", 200, None),
    ("GET", f"/pa%67e?{QUICK}&rows=0", 200, None),  # an escaped letter is still the letter, on both
    ("GET", f"/page?{QUICK}&rows=%31", 200, None),
    ("GET", "/short?query_ms=0&&", 200, wl.json_bytes({"ok": True})),
    ("GET", "/short?query_ms=0#a-fragment", 200, wl.json_bytes({"ok": True})),  # a client should not send one
    ("GET", "http://127.0.0.1/short?query_ms=0", 200, wl.json_bytes({"ok": True})),  # the absolute form
    ("OPTIONS", "*", 404, wl.json_bytes(wl.http_error_body(404, "OPTIONS"))),  # the asterisk form
    ("HEAD", f"/page?{QUICK}", 200, b""),
    ("HEAD", "/page/", 404, b""),
    ("HEAD", "/page?rows=x", 400, b""),
]


@pytest.mark.parametrize(
    ("method", "target", "status", "body"),
    CASES,
    ids=[f"{method} {target[:48]}" for method, target, _, _ in CASES],
)
def test_both_servers_answer_the_same_bytes(
    servers: dict[str, str], method: str, target: str, status: int, body: bytes | None
) -> None:
    replies = {name: exchange(url, method, target) for name, url in servers.items()}
    for name, reply in replies.items():
        assert reply.status_line.startswith(f"HTTP/1.1 {status} ".encode()), (name, reply)
        assert reply.headers.get(b"content-type") == wl.JSON_TYPE.encode(), (name, reply)
        assert reply.headers.get(b"allow") == (b"GET, HEAD" if status == 405 else None), (name, reply)
        assert b"location" not in reply.headers, (name, reply)  # nothing redirects
        if body is not None:
            assert reply.body == body, (name, reply)
    gunicorn, uvicorn = (replies[name].same_as() for name in SERVERS)
    assert gunicorn == uvicorn, replies


def test_a_head_answer_is_the_get_answer_without_its_body(servers: dict[str, str]) -> None:
    """HEAD runs the page as GET does and says how long its body would be: the same on both servers."""
    for name, url in servers.items():
        get = exchange(url, "GET", f"/page?{QUICK}&rows=4")
        head = exchange(url, "HEAD", f"/page?{QUICK}&rows=4")
        assert (head.status_line, head.body) == (get.status_line, b""), name
        assert head.headers[b"content-length"] == get.headers[b"content-length"] == str(len(get.body)).encode()
        assert b"server-timing" in head.headers, name


def test_health_differs_only_in_the_app_and_pid_it_names(servers: dict[str, str]) -> None:
    replies = {name: exchange(url, "GET", "/health") for name, url in servers.items()}
    assert {r.status_line for r in replies.values()} == {b"HTTP/1.1 200 OK"}
    bodies = {name: reply.body for name, reply in replies.items()}
    assert bodies["gunicorn"].startswith(b'{"status":"ok","app":"flask","pid":'), bodies
    assert bodies["uvicorn"].startswith(b'{"status":"ok","app":"fastapi","pid":'), bodies


# What a server refuses before its app is called, so no app can make the two agree (README, "The endpoints"):
# (method, target, gunicorn's status and content type, uvicorn's). uvicorn's parser knows a fixed list of methods
# and parses request targets up to 65,535 bytes; gunicorn hands the app any upper-case method and any length (its
# own limit is lifted in sync_app/gunicorn.conf.py) but refuses a lower-case method itself.
REFUSED_BY_A_SERVER = [
    ("FOO", "/page", (405, wl.JSON_TYPE), (400, "text/plain; charset=utf-8")),
    ("get", "/page", (400, "text/html"), (400, "text/plain; charset=utf-8")),
    ("GET", "/page?rows=" + "0" * HTTPTOOLS_MAX_URL, (414, wl.JSON_TYPE), (400, "text/plain; charset=utf-8")),
]


@pytest.mark.parametrize(
    ("method", "target", "gunicorn", "uvicorn"),
    REFUSED_BY_A_SERVER,
    ids=[f"{method} {target[:24]}" for method, target, _, _ in REFUSED_BY_A_SERVER],
)
def test_what_a_server_refuses_itself_is_a_4xx_from_both_as_documented(
    servers: dict[str, str], method: str, target: str, gunicorn: tuple[int, str], uvicorn: tuple[int, str]
) -> None:
    """Not the contract (the answers differ), but held to what README says of them: a 4xx from each, never a 5xx
    or a hang, and where the app does answer, its JSON."""
    for name, (status, content_type) in (("gunicorn", gunicorn), ("uvicorn", uvicorn)):
        reply = exchange(servers[name], method, target)
        assert reply.status_line.startswith(f"HTTP/1.1 {status} ".encode()), (name, reply)
        assert reply.headers.get(b"content-type") == content_type.encode(), (name, reply)


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize(("target", "status"), [("/page", 405), ("/nowhere", 404)])
def test_an_answer_before_a_body_is_read_reaches_a_client_still_sending_it(
    servers: dict[str, str], server: str, target: str, status: int
) -> None:
    """A client that sends its body in pieces (nginx forwards one from its buffer file so) must get the whole answer:
    an app that answers 404 or 405 and closes with the body still arriving resets the connection (gunicorn's sync
    worker did, every time; through nginx that was a 502 now and then). Both apps read it first, up to a bound."""
    host, port = servers[server].removeprefix("http://").split(":")
    body = b"x" * 200_000  # over a loopback socket's buffers, under wl.MAX_DRAIN_BYTES
    assert len(body) < wl.MAX_DRAIN_BYTES
    head = f"POST {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    for attempt in range(5):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(head.encode("ascii"))
            for start in range(0, len(body), 16_384):
                sock.sendall(body[start : start + 16_384])  # BrokenPipeError here is the defect
                time.sleep(0.002)  # the app answers while the body is still on its way
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        raw = b"".join(chunks)
        assert raw.startswith(f"HTTP/1.1 {status} ".encode()), f"attempt {attempt}: {raw[:80]!r}"
        assert raw.endswith(wl.json_bytes(wl.http_error_body(status, "POST")))
