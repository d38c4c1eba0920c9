"""nginx in front of a server (runner/proxy.py): its configuration, command line and lookup as pure functions, the
scenario keys that ask for it, the report's "What the proxy costs", and (integration) a real nginx in front of real
gunicorn and uvicorn: answers through it, the health check, nothing left running or on disk after a normal end, a
failure or Ctrl-C, and a missing or refusing nginx stopping ``python -m runner`` with exit code 2.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import pytest

from runner import cli, proxy, servers, store
from runner.config import (
    ROOT,
    RunConfig,
    ScenarioError,
    ServerConfig,
    ServerSettingError,
    config_from_dict,
    load_config,
)
from runner.proxy import ProxyError
from runner.report import markdown
from runner.report_proxy import proxy_cpu_ms, proxy_section, signed_ms
from tests.runs import complete_run, step, table_rows_match_headers, view_of
from tests.scenarios import small_scenario

NGINX_V = """nginx version: nginx/1.22.1
built with OpenSSL 3.0.9 30 May 2023 (running with OpenSSL 3.0.15 3 Sep 2024)
TLS SNI support enabled
configure arguments: --with-cc-opt='-g -O2' --prefix=/usr/share/nginx --conf-path=/etc/nginx/nginx.conf \
--http-log-path=/var/log/nginx/access.log --error-log-path=/var/log/nginx/error.log --with-http_ssl_module
"""
PROXIED = 'proxy = "nginx"'


# --- finding nginx -------------------------------------------------------------------------------------------------


def _executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_a_given_path_is_used_when_it_is_an_executable_file(tmp_path: Path) -> None:
    binary = _executable(tmp_path / "my-nginx")
    assert proxy.find_nginx(str(binary), which=lambda name: None) == binary


@pytest.mark.parametrize("kind", ["missing", "not executable", "a folder"])
def test_a_given_path_that_is_no_program_is_refused_naming_it_and_where_it_came_from(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "nginx"
    if kind == "not executable":
        target.write_text("not a program")
    elif kind == "a folder":
        target.mkdir()
    with pytest.raises(ProxyError, match="BENCH_NGINX or --nginx") as caught:
        proxy.find_nginx(str(target), which=lambda name: None)
    assert str(target) in str(caught.value)


def test_a_given_name_without_a_slash_is_looked_up_on_path() -> None:
    assert proxy.find_nginx("nginx-debug", which=lambda name: f"/opt/bin/{name}") == Path("/opt/bin/nginx-debug")
    with pytest.raises(ProxyError, match="'nginx-debug'"):
        proxy.find_nginx("nginx-debug", which=lambda name: None)


def test_empty_means_nginx_on_path_then_debians_place(tmp_path: Path) -> None:
    fallback = _executable(tmp_path / "sbin-nginx")
    assert proxy.find_nginx("", which=lambda name: "/usr/bin/nginx", fallback=fallback) == Path("/usr/bin/nginx")
    assert proxy.find_nginx("", which=lambda name: None, fallback=fallback) == fallback


def test_no_nginx_anywhere_says_how_to_install_it_or_give_its_path(tmp_path: Path) -> None:
    with pytest.raises(ProxyError) as caught:
        proxy.find_nginx("", which=lambda name: None, fallback=tmp_path / "none")
    message = str(caught.value)
    assert "not installed" in message and "make nginx" in message and "--nginx" in message


# --- what nginx -V says ----------------------------------------------------------------------------------------------


def test_nginx_v_gives_the_version_and_the_build() -> None:
    nginx = proxy.parse_build(Path("/usr/sbin/nginx"), NGINX_V)
    assert nginx.version == "nginx/1.22.1"
    assert "--prefix=/usr/share/nginx" in nginx.configure
    assert nginx.temp_modules == ("fastcgi", "uwsgi", "scgi")


def test_a_build_without_a_temp_module_gets_no_temp_path_for_it() -> None:
    nginx = proxy.parse_build(Path("n"), NGINX_V.replace("--with-http_ssl_module", "--without-http_uwsgi_module"))
    assert nginx.temp_modules == ("fastcgi", "scgi")


def test_something_that_is_not_nginx_is_refused_with_what_it_printed() -> None:
    with pytest.raises(ProxyError, match=r"/bin/true is not nginx: .*printed 'nothing'"):
        proxy.parse_build(Path("/bin/true"), "")
    with pytest.raises(ProxyError, match="Apache"):
        proxy.parse_build(Path("/usr/sbin/httpd"), "Server version: Apache/2.4")


@pytest.mark.parametrize("module", proxy.REQUIRED_MODULES)
def test_a_build_without_the_proxy_or_upstream_keepalive_is_refused(module: str) -> None:
    with pytest.raises(ProxyError, match=f"built without {module}"):
        proxy.parse_build(Path("n"), NGINX_V.replace("--with-http_ssl_module", f"--without-{module}_module"))


# --- the configuration and the command line ---------------------------------------------------------------------------


def _conf(**changes: Any) -> str:
    values: dict[str, Any] = {
        "workers": 2,
        "port": 8001,
        "app_port": 8002,
        "temp_dir": Path("/tmp/bench-nginx-x"),
        "error_log": Path("/run/raw/s/u0005/nginx-error.log"),
        "user": ("nobody", "nogroup"),
        "app_keep_alive_s": 5,
        "temp_modules": ("fastcgi", "uwsgi", "scgi"),
        "open_files": 8256,
    }
    values.update(changes)
    return proxy.config_text(**values)


def test_the_configuration_states_every_setting_the_measurement_depends_on() -> None:
    text = _conf()
    lines = {line.strip() for line in text.splitlines()}
    for wanted in (
        "daemon off;",
        "master_process on;",
        "worker_processes 2;",
        "user nobody nogroup;",
        'pid "/tmp/bench-nginx-x/nginx.pid";',
        'error_log "/run/raw/s/u0005/nginx-error.log" warn;',
        "access_log off;",
        "proxy_buffering on;",
        "proxy_request_buffering on;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "server 127.0.0.1:8002;",
        f"keepalive {proxy.UPSTREAM_KEEPALIVE};",
        "keepalive_timeout 4000ms;",  # one second before the app's 5 s keep-alive would close the connection
        "listen 127.0.0.1:8001 backlog=2048;",
        "proxy_pass http://app;",
        f"worker_connections {proxy.WORKER_CONNECTIONS};",
        "worker_rlimit_nofile 8256;",
        "client_header_timeout 60s;",
        "client_body_timeout 60s;",
        "keepalive_timeout 75s;",
        "proxy_read_timeout 60s;",
    ):
        assert wanted in lines, wanted
    for module in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        assert f'{module}_temp_path "/tmp/bench-nginx-x/{module}";' in lines
    assert text.count("{") == text.count("}")


def test_paths_are_quoted_so_any_folder_name_works() -> None:
    text = _conf(error_log=Path('/r/my "runs"; x/nginx-error.log'))
    assert 'error_log "/r/my \\"runs\\"; x/nginx-error.log" warn;' in text


def test_not_root_no_user_line_and_a_build_without_modules_no_temp_path_for_them() -> None:
    text = _conf(user=None, temp_modules=())
    assert "user " not in text
    assert "fastcgi_temp_path" not in text and "proxy_temp_path" in text and "client_body_temp_path" in text


@pytest.mark.parametrize(("keep_alive", "idle"), [(None, None), (0, None), (1, 500), (2, 1000), (75, 74000)])
def test_nginx_drops_an_idle_connection_to_the_app_before_the_app_does(
    keep_alive: int | None, idle: int | None
) -> None:
    assert proxy.upstream_idle_ms(keep_alive) == idle
    text = _conf(app_keep_alive_s=keep_alive)
    assert ("keepalive_timeout" in text.split("upstream app")[1].split("}")[0]) == (idle is not None)


def test_worker_connections_stay_within_the_open_file_limit() -> None:
    assert proxy.open_files_limit(1024) == 1024
    assert proxy.open_files_limit(1 << 20) == 2 * proxy.WORKER_CONNECTIONS + 64
    assert "worker_connections 512;" in _conf(open_files=1024)


def test_the_command_line_names_the_error_log_and_the_prefix() -> None:
    argv = proxy.command(Path("/usr/sbin/nginx"), Path("/r/nginx.conf"), Path("/r/nginx-error.log"), Path("/tmp/b"))
    assert argv == ["/usr/sbin/nginx", "-p", "/tmp/b/", "-e", "/r/nginx-error.log", "-c", "/r/nginx.conf"]


def test_files_sit_beside_the_server_log() -> None:
    assert proxy.file_names("server") == ("nginx.conf", "nginx-error.log")
    assert proxy.file_names("flask-gunicorn-1") == ("flask-gunicorn-1-nginx.conf", "flask-gunicorn-1-nginx-error.log")


def test_the_timeouts_and_setup_are_stated_for_the_report() -> None:
    text = proxy.timeouts_text()
    assert "client_header_timeout 60 s" in text and "keepalive_timeout 75 s" in text
    setup = proxy.setup_text(ServerConfig("s", "gunicorn", 3, proxy="nginx", proxy_workers=2))
    assert "2 worker processes" in setup and "server's core" in setup and text in setup


# --- the scenario keys ------------------------------------------------------------------------------------------------


def test_a_proxy_gets_one_worker_unless_told_and_says_so() -> None:
    spec = ServerConfig("s", "gunicorn", 3, proxy="nginx")
    assert spec.proxy_workers == 1
    assert spec.describe() == "3 sync workers, behind nginx"
    assert ServerConfig("u", "uvicorn", proxy="nginx", proxy_workers=2).describe().endswith("behind nginx (2 workers)")
    assert proxy.expected_processes(replace(spec, proxy_workers=3)) == 4


@pytest.mark.parametrize(
    ("settings", "key", "needle"),
    [
        ({"proxy_workers": 2}, "proxy_workers", "applies only behind a proxy"),
        ({"proxy": "haproxy"}, "proxy", "known proxies"),
        ({"proxy": "nginx", "proxy_workers": 0}, "proxy_workers", "whole number > 0"),
        ({"proxy": "nginx", "proxy_workers": True}, "proxy_workers", "whole number > 0"),
    ],
)
def test_bad_proxy_settings_are_refused_naming_the_key(settings: dict[str, Any], key: str, needle: str) -> None:
    with pytest.raises(ServerSettingError, match=needle) as caught:
        ServerConfig("s", "gunicorn", **settings)
    assert caught.value.key == key


def test_a_scenario_error_names_the_server_and_the_key(write_scenario: Callable[..., Path]) -> None:
    path = write_scenario(sync_server="proxy_workers = 2")
    with pytest.raises(ScenarioError, match=r"servers\[0\]\.proxy_workers' of server 'flask-gunicorn'"):
        load_config(str(path))


def test_a_run_json_saved_before_the_proxy_rebuilds_unproxied() -> None:
    config = complete_run()["config"]
    assert "proxy" not in config["servers"][0] and "nginx" not in config["run"]
    rebuilt = config_from_dict(config)
    assert all(s.proxy is None and s.proxy_workers is None for s in rebuilt.servers)
    assert rebuilt.run.nginx == ""


def test_a_proxied_scenario_round_trips_through_run_json(write_scenario: Callable[..., Path]) -> None:
    config = load_config(str(write_scenario(sync_server=PROXIED)))
    assert config.servers[0].proxy == "nginx" and config.servers[0].proxy_workers == 1
    again = config_from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


def test_the_nginx_binary_comes_from_the_file_the_environment_or_a_flag(write_scenario: Callable[..., Path]) -> None:
    path = str(write_scenario())
    assert load_config(path).run.nginx == ""
    assert load_config(path, {"BENCH_NGINX": "/opt/nginx"}).run.nginx == "/opt/nginx"
    assert load_config(path, {"BENCH_NGINX": "/opt/nginx"}, {"--nginx": "/srv/nginx"}).run.nginx == "/srv/nginx"


def test_a_nginx_setting_that_is_not_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(small_scenario().replace("[run]\n", "[run]\nnginx = 3\n"))
    with pytest.raises(ScenarioError, match=r"'run\.nginx' must be a string"):
        load_config(str(path))


def test_no_proxied_server_means_no_check_at_all() -> None:
    assert proxy.check((ServerConfig("s", "gunicorn"),), "/nonexistent/nginx") is None


def test_python_m_runner_with_nginx_missing_exits_2_before_anything_starts(
    write_scenario: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No nginx on PATH nor at Debian's place: the error says so and how to install it; no run folder exists."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(proxy, "FALLBACK", tmp_path / "no-nginx")
    monkeypatch.delenv("BENCH_NGINX", raising=False)
    results = tmp_path / "results"
    assert cli.main([str(write_scenario(sync_server=PROXIED)), "--results-dir", str(results)]) == 2
    err = capsys.readouterr().err
    assert "nginx is not installed" in " ".join(err.split()) and "make nginx" in err
    assert not results.exists()


def test_a_missing_nginx_path_exits_2_naming_it(
    write_scenario: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    code = cli.main(
        [str(write_scenario(sync_server=PROXIED)), "--nginx", "/nowhere/nginx", "--results-dir", str(results)]
    )
    assert code == 2
    assert "/nowhere/nginx" in capsys.readouterr().err
    assert not results.exists()


# --- the report: what the proxy costs ---------------------------------------------------------------------------------

PROXY_NAME = "flask-gunicorn-nginx"


def proxied_run(added: tuple[float, float, float] = (1.5, 2.5, 3.0), proxy_cpu: float = 3.0) -> dict[str, Any]:
    """complete_run at 5, 10 and 50 users with a third configuration, flask-gunicorn behind nginx, whose median is
    ``added`` ms above the direct server's at each level (its p95 twice that)."""
    run = complete_run()
    run["config"]["load"]["users"] = [5, 10, 50]
    run["config"]["servers"].append({"name": PROXY_NAME, "server": "gunicorn", "workers": 3, "proxy": "nginx"})
    run["steps"] += [
        step("flask-gunicorn", 10, rps=3.0, p50=112.0, p95=135.0),
        step("fastapi-uvicorn", 10, rps=3.0, p50=106.0, p95=122.0),
    ]
    direct = {r["users"]: r for r in run["steps"] if r["server"] == "flask-gunicorn"}
    for users, extra in zip((5, 10, 50), added, strict=True):
        d = direct[users]
        lat = d["figures"]["latency"]
        record = step(
            "flask-gunicorn", users, rps=d["figures"]["rps"], p50=lat["p50_ms"] + extra, p95=lat["p95_ms"] + 2 * extra
        )
        record.update(server=PROXY_NAME, files=f"raw/{PROXY_NAME}/u{users:04d}", proxy_cpu_pct=proxy_cpu)
        record["proxy_command"] = ["/usr/sbin/nginx", "-c", "nginx.conf"]
        run["steps"].append(record)
    return run


def test_twins_are_the_same_configuration_without_the_proxy() -> None:
    run = proxied_run()
    run["config"]["servers"].append(
        {"name": "other-nginx", "server": "gunicorn", "workers": 2, "proxy": "nginx", "proxy_workers": 2}
    )
    view = view_of(run)
    assert [(p.name, d.name) for p, d in view.proxy_twins] == [(PROXY_NAME, "flask-gunicorn")]


def test_proxy_cpu_per_request_is_cpu_percent_times_ten_over_throughput() -> None:
    assert proxy_cpu_ms({"proxy_cpu_pct": 3.0, "figures": {"rps": 1.5}}) == pytest.approx(20.0)
    assert proxy_cpu_ms({"figures": {"rps": 1.5}}) is None
    assert proxy_cpu_ms({"proxy_cpu_pct": 3.0, "figures": {"rps": 0}}) is None
    assert signed_ms(1.25) == "+1.2 ms" and signed_ms(-0.5) == "−0.5 ms" and signed_ms(None) == "–"


def test_the_section_says_the_proxy_added_to_the_median_only_when_it_did_everywhere_below_the_knee() -> None:
    view = view_of(proxied_run(added=(1.5, 2.5, -30.0)))
    knee = view.systems["flask-gunicorn"].knee_users
    assert 10 < knee < 50  # 5 and 10 users are judged; 50 is past the knee, where the proxy may do anything
    text = "\n".join(proxy_section(view))
    assert "## What the proxy costs" in text and f"### {PROXY_NAME} against flask-gunicorn" in text
    assert (
        f"**The proxy added between 1.5 ms and 2.5 ms to the median at every level below the knee (about {knee:.0f} "
        "users by the model of flask-gunicorn)** (5, 10 users) (to the p95: between +3.0 ms and +5.0 ms)"
    ) in text
    assert "chance alone could explain the difference" in text  # these steps carry no intervals
    table_rows_match_headers(text)
    row = next(line for line in text.splitlines() if line.startswith("| 5 |"))
    assert "+1.5 ms" in row and "20.0 ms" in row  # nginx: 3% x 10 / 1.5 req/s
    assert "−30.0 ms" in next(line for line in text.splitlines() if line.startswith("| 50 |"))


def test_medians_whose_intervals_are_apart_are_said_to_be_beyond_chance() -> None:
    run = proxied_run()
    for record in run["steps"]:
        p50 = record["figures"]["latency"]["p50_ms"]
        record["figures"]["latency"]["p50_ci_ms"] = [p50 - 0.5, p50 + 0.5]
    text = "\n".join(proxy_section(view_of(run)))
    assert "at each of the 2 level(s) the two medians' 95% intervals are apart" in text


def test_the_section_says_what_happened_when_the_proxy_did_not_add_everywhere() -> None:
    text = "\n".join(proxy_section(view_of(proxied_run(added=(2.0, -1.0, 5.0)))))
    assert "The proxy added" not in text
    assert "did not add to the median at every level below the knee" in text
    assert "higher behind nginx at 1 (by up to 2.0 ms)" in text and "not higher at 1 (by up to 1.0 ms lower)" in text


def test_the_highest_level_is_judged_on_throughput() -> None:
    run = proxied_run()
    last = next(r for r in run["steps"] if r["server"] == PROXY_NAME and r["users"] == 50)
    last["figures"]["rps"] = 4.0  # direct: 5.0
    text = "\n".join(proxy_section(view_of(run)))
    assert (
        "**At 50 users** flask-gunicorn-nginx completed 4.0 requests/s against flask-gunicorn's 5.0 (20% less" in text
    )
    same = "\n".join(proxy_section(view_of(proxied_run())))
    assert "(within 10% of each other)" in same


def test_a_proxied_configuration_without_a_twin_is_said_to_have_none() -> None:
    run = proxied_run()
    run["config"]["servers"][-1]["workers"] = 5
    text = "\n".join(proxy_section(view_of(run)))
    assert "has no twin served directly" in text and "The proxy added" not in text


def test_a_run_without_a_proxy_has_no_such_section_and_an_empty_summary_column(tmp_path: Path) -> None:
    view = view_of(complete_run())
    assert proxy_section(view) == []
    assert "What the proxy costs" not in markdown(view)
    assert all(row["proxy_cpu_pct"] is None for row in view.summary_rows())


def test_the_report_carries_the_section_and_the_setup_states_nginxs_timeouts() -> None:
    view = view_of(proxied_run())
    text = markdown(view)
    assert "## What the proxy costs" in text
    setup = next(line for line in text.splitlines() if line.startswith(f"- **{PROXY_NAME}:**"))
    assert "nginx in front (1 worker process" in setup and "client_header_timeout 60 s" in setup
    assert "between nginx and the app, no keep-alive" in setup
    rows = {(r["server"], r["users"]): r for r in view.summary_rows()}
    assert rows[(PROXY_NAME, 5)]["proxy_cpu_pct"] == 3.0 and rows[("flask-gunicorn", 5)]["proxy_cpu_pct"] is None


# --- integration: a real nginx in front of real servers ---------------------------------------------------------------


def _nginx_or_skip() -> Path:
    try:
        return proxy.find_nginx("")
    except ProxyError as error:
        pytest.fail(f"{error} (make test installs it)")


def _temp_dirs() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), f"{proxy.TEMP_PREFIX}*")))


def _get(url: str, data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


@pytest.fixture
def proxied_config(tmp_path: Path) -> RunConfig:
    path = tmp_path / "proxied.toml"
    path.write_text(small_scenario(name="proxied", sync_server=PROXIED, async_server=PROXIED), encoding="utf-8")
    return load_config(str(path), {}, {})


def _gone(pids: list[int]) -> bool:
    def alive(pid: int) -> bool:
        try:
            return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False

    return not any(alive(pid) for pid in pids)


def _mentioning(path: Path) -> list[psutil.Process]:
    """Processes whose command line names a path under ``path``: an nginx master names its configuration there."""
    return [p for p in psutil.process_iter(["cmdline"]) if str(path) in " ".join(p.info["cmdline"] or [])]


@pytest.mark.integration
@pytest.mark.parametrize("index", [0, 1], ids=["gunicorn sync", "uvicorn"])
def test_requests_reach_the_app_through_nginx_and_nothing_is_left_after(
    proxied_config: RunConfig, tmp_path: Path, index: int
) -> None:
    _nginx_or_skip()
    spec = proxied_config.servers[index]
    cpus = frozenset(sorted(os.sched_getaffinity(0))[-1:])
    before = _temp_dirs()
    with servers.serve(spec, proxied_config, tmp_path / "server.log", cpus) as server:
        running = server.proxy
        assert running is not None
        assert server.url == running.url != server.app_url and server.client_port == running.port
        status, body = _get(f"{server.url}/page?rows=5")
        direct_status, direct_body = _get(f"{server.app_url}/page?rows=5")
        assert (status, json.loads(body)) == (direct_status, json.loads(direct_body)) and status == 200
        # /health through nginx is answered by one of the app's own processes, never by nginx.
        health = json.loads(_get(f"{server.url}/health")[1])
        assert health["pid"] in server.pids() and health["pid"] not in running.pids()
        # The workers (another user when this runs as root) write a large body and a large answer to the private
        # temporary folder: a body over nginx's memory buffer is read whole before the app's 405, not refused.
        status, body = _get(f"{server.url}/page", data=b"x" * 200_000)
        assert status == 405 and json.loads(body)["error"] == "method_not_allowed"
        status, body = _get(f"{server.url}/page?rows=1000")
        assert status == 200 and len(json.loads(body)["items"]) == 1000
        nginx_pids = running.pids()
        assert len(nginx_pids) == proxy.expected_processes(spec)
        if len(os.sched_getaffinity(0)) > 1:
            assert all(os.sched_getaffinity(pid) == cpus for pid in nginx_pids)
        temp_dir = running.temp_dir
        assert temp_dir.is_dir() and str(temp_dir) not in before
        conf = (tmp_path / "nginx.conf").read_text()
        assert f"listen 127.0.0.1:{running.port}" in conf and f"server 127.0.0.1:{server.port};" in conf
        assert running.command[-1] == str(tmp_path / "nginx.conf")
    assert _gone(nginx_pids) and not temp_dir.exists() and _temp_dirs() <= before
    error_log = (tmp_path / "nginx-error.log").read_text()
    assert "Permission denied" not in error_log and "[emerg]" not in error_log


@pytest.mark.integration
@pytest.mark.parametrize("raised", [RuntimeError, KeyboardInterrupt])
def test_a_failure_or_ctrl_c_inside_leaves_no_nginx_and_no_folder(
    proxied_config: RunConfig, tmp_path: Path, raised: type[BaseException]
) -> None:
    _nginx_or_skip()
    before = _temp_dirs()
    seen: list[int] = []
    spec = proxied_config.servers[0]
    with pytest.raises(raised), servers.serve(spec, proxied_config, tmp_path / "server.log", frozenset()) as server:
        assert server.proxy is not None
        seen += server.proxy.pids() + server.pids()
        raise raised("stop")
    assert seen and _gone(seen) and _temp_dirs() <= before


@pytest.mark.integration
def test_nginx_that_refuses_to_start_fails_the_server_with_its_log_and_leaves_nothing(
    proxied_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _nginx_or_skip()
    real = proxy.config_text
    monkeypatch.setattr(proxy, "config_text", lambda **values: real(**values).replace("daemon off;", "no_such_thing;"))
    before = _temp_dirs()
    spec = proxied_config.servers[0]
    with (
        pytest.raises(servers.ServerError, match=r"nginx in front of flask-gunicorn exited (?s:.*)no_such_thing"),
        servers.serve(spec, proxied_config, tmp_path / "server.log", frozenset()),
    ):
        pytest.fail("the server came up although nginx could not")
    assert _temp_dirs() <= before
    assert not _mentioning(tmp_path)


@pytest.mark.integration
def test_nginx_answered_by_a_process_that_is_not_the_apps_is_refused(proxied_config: RunConfig, tmp_path: Path) -> None:
    """The health check must see one of the app's own pids: a list that holds none of them fails it."""
    _nginx_or_skip()
    before = _temp_dirs()
    spec = proxied_config.servers[0]
    direct = replace(spec, proxy=None, proxy_workers=None)
    with servers.serve(direct, proxied_config, tmp_path / "server.log", frozenset()) as app:
        others = proxy.run_proxy(
            spec,
            nginx_setting="",
            port=servers.free_port(),
            app_port=app.port,
            app_pids=lambda: [],
            health_pid=servers._health_pid,
            server_log=tmp_path / "server.log",
            cpus=frozenset(),
            timeout_s=10,
        )
        with pytest.raises(ProxyError, match="which is not one of flask-gunicorn's"), others:
            pytest.fail("nginx was taken as ready")
    assert _temp_dirs() <= before and not _mentioning(tmp_path)


def _runner(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "runner", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip


FAKE_REFUSING = """#!/bin/sh
case " $* " in
  *" -V "*) echo "nginx version: nginx/0.0-fake" >&2; echo "configure arguments: --prefix=/x" >&2; exit 0;;
esac
echo 'nginx: [emerg] unknown directive "keepalive_timeout" in /x/nginx.conf:22' >&2
exit 1
"""


@pytest.mark.integration
@pytest.mark.parametrize(
    ("binary", "needle"),
    [
        ("/nowhere/nginx", "'/nowhere/nginx' (from [run] nginx, BENCH_NGINX or --nginx) does not exist"),
        ("/bin/true", "/bin/true is not nginx"),
        ("/bin/false", "/bin/false -V exited with code 1"),
        ("fake", "refuses the configuration the harness writes for it (`nginx -t` exited with code 1):"),
    ],
)
def test_python_m_runner_exits_2_when_nginx_is_missing_not_nginx_or_refuses(
    tmp_path: Path, binary: str, needle: str
) -> None:
    if binary == "fake":
        fake = tmp_path / "nginx"
        fake.write_text(FAKE_REFUSING)
        fake.chmod(0o755)
        binary = str(fake)
    scenario = tmp_path / "proxied.toml"
    scenario.write_text(small_scenario(name="proxied", sync_server=PROXIED), encoding="utf-8")
    before = _temp_dirs()
    done = _runner([str(scenario), "--nginx", binary, "--results-dir", str(tmp_path / "results")])
    assert done.returncode == 2, done.stderr
    assert needle in " ".join(done.stderr.split()), done.stderr
    assert not (tmp_path / "results").exists() and _temp_dirs() <= before


@pytest.mark.integration
def test_a_sweep_with_a_proxied_twin_records_nginx_and_reports_what_it_costs(tmp_path: Path) -> None:
    _nginx_or_skip()
    scenario = tmp_path / "twins.toml"
    text = small_scenario(name="twins", users="[2, 6]", warmup=1, measure=2)
    text += '\n[[servers]]\nname = "flask-gunicorn-nginx"\nserver = "gunicorn"\nworkers = 2\nproxy = "nginx"\n'
    scenario.write_text(text, encoding="utf-8")
    results = tmp_path / "results"
    before = _temp_dirs()
    done = _runner([str(scenario), "--results-dir", str(results)])
    assert done.returncode == 0, done.stderr
    assert _temp_dirs() <= before
    run_dir = (results / "latest").resolve()
    run = store.load_run(run_dir)
    proxied = [s for s in run["steps"] if s["server"] == "flask-gunicorn-nginx"]
    direct = [s for s in run["steps"] if s["server"] != "flask-gunicorn-nginx"]
    assert len(proxied) == 2 and all(s["status"] == "ok" for s in run["steps"])
    for record in proxied:
        assert record["proxy_cpu_pct"] is not None and record["proxy_cpu_pct"] >= 0
        assert record["proxy_command"][0].endswith("nginx") and record["proxy_version"].startswith("nginx/")
        assert record["command"][:3] == [sys.executable, "-m", "gunicorn"]
        folder = run_dir / record["files"]
        assert (folder / "nginx.conf").is_file() and (folder / "proxy_resources.csv").is_file()
    assert all("proxy_cpu_pct" not in s and "proxy_command" not in s for s in direct)
    with (run_dir / store.SUMMARY_FILE).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["server"] for r in rows if r["proxy_cpu_pct"]} == {"flask-gunicorn-nginx"}
    report = (run_dir / "report.md").read_text()
    assert "## What the proxy costs" in report and "### flask-gunicorn-nginx against flask-gunicorn" in report
    assert not _mentioning(run_dir)
