"""``python -m runner.serve {sync,async,NAME}``: run one server in the foreground, as the benchmark runs it.

For pointing other tools (wrk, a browser, your own Locust file) at exactly the server the benchmark measures: the
command line comes from :func:`runner.servers.command` and the environment from :func:`runner.servers.server_env`,
so the two can never differ. ``sync`` and ``async`` serve the scenario's first gunicorn or uvicorn configuration;
any other word names a configuration of the scenario, e.g. ``flask-gevent``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace

from runner import backends
from runner.config import ROOT, RunConfig, ScenarioError, ServerConfig, ServerType, load_config
from runner.servers import HOST, command, port_in_use, server_env

KINDS: dict[str, ServerType] = {"sync": "gunicorn", "async": "uvicorn"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.serve", description=__doc__.splitlines()[0])
    parser.add_argument(
        "kind", help="sync (Flask/gunicorn), async (FastAPI/uvicorn), or the name of one of the scenario's servers"
    )
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000)")
    parser.add_argument("--workers", type=int, default=None, help="workers (default: the scenario's)")
    parser.add_argument("--scenario", default="default", help="scenario whose waits and workers to use")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        print(f"error: --port {args.port} is not a TCP port (1-65535)", file=sys.stderr)
        return 2
    try:
        config = load_config(args.scenario, os.environ, {})
    except ScenarioError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.kind in KINDS:
        server = KINDS[args.kind]
        spec = next((s for s in config.servers if s.server == server), ServerConfig(name=server, server=server))
    else:
        named = {s.name: s for s in config.servers}
        if args.kind not in named:
            choices = ", ".join([*sorted(KINDS), *named])
            print(
                f"error: {args.kind!r} is not sync, async or a server of {config.source} ({choices})", file=sys.stderr
            )
            return 2
        spec = named[args.kind]
    if args.workers is not None:
        if args.workers < 1:
            print(f"error: --workers must be at least 1, got {args.workers}", file=sys.stderr)
            return 2
        spec = replace(spec, workers=args.workers)
    if port_in_use(args.port):
        again = (
            f"make serve-{args.kind} PORT={args.port + 1}"
            if args.kind in KINDS
            else f"python -m runner.serve {args.kind} --scenario {args.scenario} --port {args.port + 1}"
        )
        print(
            f"error: port {args.port} on {HOST} is already in use. Stop what holds it, or choose another port, "
            f"e.g. {again}",
            file=sys.stderr,
        )
        return 2
    if spec.proxy is not None:
        # Only the app runs in the foreground: the proxy in front is the benchmark's (runner.proxy), per step.
        print(f"{spec.name}: served directly here, without its {spec.proxy} in front", file=sys.stderr)
        spec = replace(spec, proxy=None, proxy_workers=None)
    argv_server = command(spec, args.port)
    print(f"{spec.name}: {spec.describe()} on http://{HOST}:{args.port} (Ctrl-C stops it)", file=sys.stderr)
    os.chdir(ROOT)
    if config.database.backend == "simulated":
        os.execve(argv_server[0], argv_server, server_env(config, spec))  # noqa: S606 (an argument list, no shell)
    return _serve_with_database(config, spec, argv_server)


def _serve_with_database(config: RunConfig, spec: ServerConfig, argv_server: list[str]) -> int:
    """A PostgreSQL or upstream scenario: the database (the embedded cluster, or the scenario's server, checked) or
    the upstream service stays up while the server runs in the foreground, and is stopped (the cluster removed)
    when it ends (Ctrl-C included)."""
    try:
        with backends.run_backend(config, frozenset()) as database:
            if database is not None:
                print(f"database: {database.describe()}", file=sys.stderr)
            env = server_env(backends.served(config, database), spec)
            try:
                return subprocess.call(argv_server, env=env, cwd=ROOT)  # the terminal's Ctrl-C reaches it too
            except KeyboardInterrupt:
                return 130
    except (ScenarioError, *backends.BackendError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
