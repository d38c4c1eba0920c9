"""Waiting on an upstream HTTP service: the blocking and awaitable faces the workload calls (``[database] backend =
"http"``), one shared module per side, and the settings both the harness and the apps read."""
