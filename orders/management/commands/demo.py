"""Start the whole demo: migrate, simulator with lively books, demo users, and the site on Daphne."""

from __future__ import annotations

import argparse
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from orders.management.terminal import TerminalSafeCommand

DEFAULT_PASSWORD = "qfexdash-demo"  # noqa: S105 - a local demo login, printed on start


class Command(TerminalSafeCommand):
    help = "Run the local demo: QFEX simulator + qfexdash on Daphne with demo users and accounts."
    requires_system_checks: list[str] = []  # the encryption key file is created below, before checks matter

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="Port for the web site (default 8000).")
        parser.add_argument("--password", default=DEFAULT_PASSWORD, help="Password for the demo users.")
        parser.add_argument("--sim-port", type=int, default=0, help="Port for the simulator (default: any free).")
        parser.add_argument("--seed", type=int, default=1, help="Simulator seed (same seed, same books).")
        parser.add_argument("--pace", type=float, default=4.0, help="Simulated order events per second.")

    def handle(self, *args: Any, **options: Any) -> None:
        from orders.accounts.encryption import ensure_local_key_file
        from orders.management.demo_world import demo_refusal

        # Before anything is written (a key file, a migration, a user): S36.
        refusal = demo_refusal()
        if refusal is not None:
            raise CommandError(refusal)

        if not 0 < options["port"] < 65536:
            raise CommandError("--port must be between 1 and 65535.")
        if options["pace"] < 0:
            raise CommandError("--pace must be zero or more events per second.")
        if not settings.QFEXDASH_ENCRYPTION_KEYS:
            path, created = ensure_local_key_file()
            note = "Created" if created else "Using"
            self.stdout.write(
                f"{note} the local encryption key file {path} (set QFEXDASH_ENCRYPTION_KEYS to use your own)."
            )
        call_command("migrate", interactive=False, verbosity=0)
        call_command("check")

        from orders.management.demo_world import (
            DEMO_USERNAME,
            TEAMMATE_USERNAME,
            build_demo_world,
            demo_users_exist,
            simulator_accounts,
        )
        from orders.simulator import Simulator

        simulator = Simulator(
            accounts=simulator_accounts(), seed=options["seed"], pace=options["pace"], port=options["sim_port"]
        )
        simulator.start()
        # The demo's simulator listens on loopback: allow exactly its address and port as a custom endpoint
        # (S22), and sign in without a second factor (S30) — both only for this process.
        settings.QFEXDASH_CUSTOM_ENDPOINTS = [*settings.QFEXDASH_CUSTOM_ENDPOINTS, simulator.url.split("//", 1)[1]]
        settings.QFEXDASH_REQUIRE_2FA = False
        try:
            new_users = not demo_users_exist()
            build_demo_world(simulator_url=simulator.url, password=options["password"])
            url = f"http://127.0.0.1:{options['port']}/"
            self.stdout.write(self.style.SUCCESS(f"qfexdash demo at {url}"))
            if new_users:
                how = f"password {options['password']!r}"
            else:
                how = "with the passwords they already had (the demo never changes an existing user)"
            self.stdout.write(f"  sign in as {DEMO_USERNAME!r} (team admin) or {TEAMMATE_USERNAME!r} (viewer), {how}")
            self.stdout.write(f"  QFEX simulator at {simulator.url} ({options['pace']:g} events/s). Ctrl-C stops.")
            self._serve(options["port"])
        finally:
            simulator.stop()

    def _serve(self, port: int) -> None:
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        from qfexdash.asgi import application

        Server(
            application=application,
            endpoints=build_endpoint_description_strings(host="127.0.0.1", port=port),
            verbosity=0,
        ).run()
