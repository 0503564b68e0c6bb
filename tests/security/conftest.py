"""Fixtures for the security tests: the consumer tests' live setup (real ASGI app, simulator, fast feed
timings) and the page tests' settings (fast password hasher, clean cache), plus the personas."""

from tests.live.consumers.conftest import application, fast_live_settings, fresh_feed, live_team_account, sim
from tests.personas import *  # noqa: F403  (the persona fixtures)
from tests.web.fixtures import *  # noqa: F403  (client_for and the page-test settings)

__all__ = ["application", "fast_live_settings", "fresh_feed", "live_team_account", "sim"]
