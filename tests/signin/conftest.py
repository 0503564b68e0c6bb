"""Fixtures: the shared personas plus the page-test settings (test key, fast hasher, clean cache)."""

from tests.personas import *  # noqa: F403
from tests.web.fixtures import *  # noqa: F403
