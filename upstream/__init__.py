"""The upstream HTTP service the ``http`` backend waits on (see :mod:`upstream.service`)."""
