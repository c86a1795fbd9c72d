"""The Procrastinate app every queue command shares, with factory's build task registered on it."""

from __future__ import annotations

import procrastinate

from factory.queue.db import CONNECT_TIMEOUT
from factory.queue.runner import register


def make_app(url: str, *, sync: bool = False) -> procrastinate.App:
    """The Procrastinate app on url: the async psycopg 3 connector for workers (its pool checks a connection
    before lending it, so dead ones are replaced after a database restart), the sync one for CLI commands."""
    connector: procrastinate.BaseConnector
    if sync:
        connector = procrastinate.SyncPsycopgConnector(conninfo=url, kwargs={"connect_timeout": CONNECT_TIMEOUT},
                                                       min_size=1, max_size=2)
    else:
        connector = procrastinate.PsycopgConnector(conninfo=url, kwargs={"connect_timeout": CONNECT_TIMEOUT},
                                                   min_size=1, max_size=4)
    app = procrastinate.App(connector=connector)
    register(app)
    return app
