"""gunicorn settings for the sync app.

These are the defaults for ``make serve-sync``; the benchmark runner passes ``--workers``, ``--worker-class`` (with
``--threads`` for gthread, ``--worker-connections`` for gevent, ``--keep-alive`` for both) and ``--bind`` on the
command line, which gunicorn lets override this file. Everything that makes a measured run fair lives here.
"""

import ctypes
import signal
import sys

wsgi_app = "sync_app.app:create_app()"
bind = "127.0.0.1:8000"  # loopback only: nothing outside this machine is ever served
workers = 3  # gunicorn's own advice for one core (2 x cores + 1); a scenario states its own count
worker_class = "sync"  # one request at a time per worker, the model this benchmark is about; a scenario may
# choose gthread (threads per worker) or gevent (the stdlib monkey-patched, so time.sleep yields to gevent's hub)
threads = 1
backlog = 2048  # gunicorn's default; a burst waits here, in the kernel, for a free worker
timeout = 30
graceful_timeout = 5
# The sync worker closes the connection after every response whatever this says; gthread and gevent keep an idle
# connection open this long, as uvicorn does by default (its --timeout-keep-alive is 5 s; gunicorn's default is 2).
keepalive = 5
# No request-line limit of gunicorn's own (its default, 4094 bytes, answers a longer line with its own HTML 414):
# the apps bound the query string themselves (simdb.workload.MAX_QUERY_BYTES), so a long request gets the same
# JSON 414 from both servers (uvicorn's parser refuses only targets past 65,535 bytes; README, "The endpoints").
limit_request_line = 0
accesslog = None  # access logs distort results; uvicorn runs with --no-access-log to match
errorlog = "-"
loglevel = "warning"
proc_name = "bench-sync"


def post_fork(server: object, worker: object) -> None:
    """Each worker dies with its master (Linux ``PR_SET_PDEATHSIG``).

    The benchmark arms the master the same way, so a harness killed outright leaves no server behind; the
    workers need their own setting because the kernel clears it on fork. Without it an orphaned sync worker
    lingers until its next select() times out (``timeout / 2``, 15 s here). It costs nothing per request. It runs
    for every worker class (gunicorn calls it right after the fork, before gevent patches anything), and
    gthread's request threads belong to the worker process the signal kills.
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
