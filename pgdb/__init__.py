"""The real database behind both apps: PostgreSQL through the drivers and layers people use, sync and async.

Each face answers the workload's calls (:class:`simdb.BlockingDatabase`, :class:`simdb.AsyncDatabase`) with the
rows the simulated database fabricates, so the JSON is the same on both backends; only the connection, the
protocol, the rows and the pool are real. Modules, from the bottom up: :mod:`pgdb.queries` (the SQL and how long
it waits), :mod:`pgdb.failures` (driver errors into :class:`simdb.DatabaseUnavailable`), :mod:`pgdb.orm` (the
mapped classes and statements), :mod:`pgdb.schema` (create, seed and check the tables), :mod:`pgdb.blocking` and
:mod:`pgdb.aio` (the faces), :mod:`pgdb.choose` (which face a server process uses). This package imports
:mod:`simdb`, never the reverse.
"""
