"""Fixtures of the job-queue tests: a real PostgreSQL and real worker processes (tests/fixtures/jobqueue.py)."""

from tests.fixtures.jobqueue import null_template, queue_db, workers  # noqa: F401
from tests.fixtures.postgres import fresh_db, postgres  # noqa: F401
