"""gunicorn settings for the sync app.

These are the defaults for ``make serve-sync``; the benchmark runner passes ``--workers`` and ``--bind`` on the
command line, which gunicorn lets override this file. Everything that makes a measured run fair lives here.
"""

wsgi_app = "sync_app.app:create_app()"
bind = "127.0.0.1:8000"  # loopback only: nothing outside this machine is ever served
workers = 3  # gunicorn's own advice for one core (2 x cores + 1); a scenario states its own count
worker_class = "sync"  # one request at a time per worker: the model this benchmark is about
threads = 1
backlog = 2048  # gunicorn's default; a burst waits here, in the kernel, for a free worker
timeout = 30
graceful_timeout = 5
# No keepalive setting: the sync worker closes the connection after every response whatever it says.
accesslog = None  # access logs distort results; uvicorn runs with --no-access-log to match
errorlog = "-"
loglevel = "warning"
proc_name = "bench-sync"
