"""Screenshots of the live page for docs/ (``make screenshots``): desk and phone, light and dark.

Starts the same stack as the end-to-end tests — the QFEX simulator with the demo's books (4 000 orders on
"Desk main"), qfexdash on a real Daphne with the demo users, Debian's Chromium — through
:mod:`bench.harness.demo`, the one place that knows how to start it, and writes PNGs into docs/screenshots/.
The simulator is seeded and paused, so two runs show the same book (ages and clocks aside).

    .venv/bin/python -m bench.screenshots [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.harness import ROOT
from bench.harness.demo import DESK, PHONE


@dataclass(frozen=True)
class Shot:
    name: str
    path: str  # "live:<label>" for an account's live page, else a site path
    viewport: tuple[int, int]
    scheme: str


SHOTS = (
    Shot("live-desk-light", "live:Desk main", DESK, "light"),
    Shot("live-desk-dark", "live:Desk main", DESK, "dark"),
    Shot("live-phone-light", "live:Desk main", PHONE, "light"),
    Shot("live-phone-dark", "live:Desk main", PHONE, "dark"),
    Shot("all-accounts-desk-light", "/accounts/all/", DESK, "light"),
    Shot("accounts-desk-light", "/", DESK, "light"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="folder for the PNGs")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="qfexdash-shots-settings-"))
    # This process only reads the demo's account list (Django models); nothing of it may land in the repo.
    os.environ.update(
        DJANGO_SETTINGS_MODULE="qfexdash.settings",
        QFEXDASH_STATE_DIR=str(scratch),
        DATABASE_URL=f"sqlite:///{scratch / 'unused.sqlite3'}",
        SECRET_KEY=secrets.token_urlsafe(48),
    )
    import django

    django.setup()
    from playwright.sync_api import sync_playwright

    from bench.harness.chromium import CHROMIUM, CHROMIUM_ARGS
    from bench.harness.demo import PATIENCE_MS, demo_site, sign_in
    from orders.management.demo_world import simulator_accounts
    from orders.simulator import Simulator

    args.out.mkdir(parents=True, exist_ok=True)
    with (
        Simulator(accounts=simulator_accounts(), seed=1, pace=0.0) as sim,
        tempfile.TemporaryDirectory(prefix="qfexdash-shots-") as tmp,
        demo_site(Path(tmp), sim) as site,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for shot in SHOTS:
                context = browser.new_context(
                    viewport={"width": shot.viewport[0], "height": shot.viewport[1]},
                    color_scheme=shot.scheme,  # type: ignore[arg-type]
                    is_mobile=shot.viewport == PHONE,
                    has_touch=shot.viewport == PHONE,
                    timezone_id="UTC",
                )
                context.set_default_timeout(PATIENCE_MS * 3)
                page = context.new_page()
                sign_in(page, site)
                kind, _, label = shot.path.partition(":")
                page.goto(site.page_url(site.live_path(label) if kind == "live" else shot.path))
                if page.evaluate("() => !!document.getElementById('live-config')"):
                    page.wait_for_function(
                        "() => document.body.dataset.state === 'live' && document.body.dataset.summarized",
                        timeout=PATIENCE_MS * 3,
                    )
                target = args.out / f"{shot.name}.png"
                page.screenshot(path=str(target))
                print(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
                context.close()
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
