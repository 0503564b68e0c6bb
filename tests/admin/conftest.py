"""Fixtures: the shared personas plus the page-test settings (test key, fast hasher, clean cache)."""

from tests.pages.fixtures import *  # noqa: F403
from tests.personas import *  # noqa: F403
