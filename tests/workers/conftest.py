"""Fixtures for the workers tests."""

# make_session is a fixture: importing it here makes it available to this folder.
from tests.support.job_sessions import make_session  # noqa: F401
