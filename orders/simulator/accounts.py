"""Simulated exchange accounts (API key pairs and the books behind them) and the fixed demo accounts."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Namespace for deriving a stable user id from a public key when none is given.
_USER_ID_NAMESPACE = uuid.UUID("5b0b6c7e-4f7a-4c1e-9a51-3f1f0c6d2a10")


@dataclass(frozen=True)
class SimAccount:
    """One API key pair of the simulated exchange and the books it can see.

    `user_id` is the primary account's id (derived from the public key when empty); `subaccounts` are the
    ids a session may pick with `account_id` in its auth message. `orders`/`twaps` size the primary book,
    `subaccount_orders`/`subaccount_twaps` each subaccount's book. The secret never appears in the repr.
    """

    public_key: str
    secret: str = field(repr=False)
    user_id: str = ""
    subaccounts: tuple[str, ...] = ()
    orders: int = 50
    twaps: int = 3
    subaccount_orders: int = 20
    subaccount_twaps: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.public_key, str) or not self.public_key:
            raise ValueError("public_key must be a non-empty string")
        if not isinstance(self.secret, str) or not self.secret:
            raise ValueError(f"secret of {self.public_key} must be a non-empty string")
        if not isinstance(self.user_id, str):
            raise ValueError(f"user_id of {self.public_key} must be a string")
        if not self.user_id:
            object.__setattr__(self, "user_id", str(uuid.uuid5(_USER_ID_NAMESPACE, self.public_key)))
        if isinstance(self.subaccounts, str) or not all(isinstance(s, str) and s for s in self.subaccounts):
            raise ValueError(f"subaccounts of {self.public_key} must be a list of non-empty strings")
        object.__setattr__(self, "subaccounts", tuple(self.subaccounts))
        if self.user_id in self.subaccounts:
            raise ValueError(f"subaccounts of {self.public_key} must not repeat its user_id")
        for name in ("orders", "twaps", "subaccount_orders", "subaccount_twaps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} of {self.public_key} must be a whole number, 0 or more")


# Fixed, well-known credentials for the local demo ONLY. They are accepted by nothing but this simulator;
# they are not secret and must never be used for a real QFEX account.
DEMO_ACCOUNTS: tuple[SimAccount, ...] = (
    SimAccount(
        public_key="qfex_pub_demo_alpha",
        secret="qfex_secret_demo_alpha_SIMULATOR_ONLY",  # noqa: S106 - public demo value
        user_id="6f1d2c3b-8a4e-4b7f-9c21-0d5e6a7b8c91",
        subaccounts=("c2a9e4f1-7b3d-4e8a-b6c5-1f0e9d8c7b62",),
        orders=120,
        twaps=4,
        subaccount_orders=25,
        subaccount_twaps=1,
    ),
    SimAccount(
        public_key="qfex_pub_demo_beta",
        secret="qfex_secret_demo_beta_SIMULATOR_ONLY",  # noqa: S106 - public demo value
        user_id="9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c63",
        orders=40,
        twaps=2,
    ),
)

_ACCOUNT_KEYS = frozenset(
    {"public_key", "secret", "user_id", "subaccounts", "orders", "twaps", "subaccount_orders", "subaccount_twaps"}
)


def accounts_from_json(data: object) -> list[SimAccount]:
    """Build accounts from the parsed accounts file (a JSON list of objects); ValueError names the bad entry.

    Messages never quote a secret value.
    """
    if not isinstance(data, list) or not data:
        raise ValueError("the accounts file must hold a non-empty JSON list of account objects")
    accounts = []
    for number, entry in enumerate(data, start=1):
        if not isinstance(entry, Mapping):
            raise ValueError(f"accounts entry {number} must be a JSON object")
        unknown = sorted(set(entry) - _ACCOUNT_KEYS)
        if unknown:
            raise ValueError(f"accounts entry {number} has unknown field(s): {', '.join(unknown)}")
        for required in ("public_key", "secret"):
            if not isinstance(entry.get(required), str) or not entry.get(required):
                raise ValueError(f"accounts entry {number}: {required!r} must be a non-empty string")
        subaccounts = entry.get("subaccounts", [])
        if not isinstance(subaccounts, list):
            raise ValueError(f"accounts entry {number}: 'subaccounts' must be a list of strings")
        kwargs = {key: value for key, value in entry.items() if key != "subaccounts"}
        try:
            accounts.append(SimAccount(**kwargs, subaccounts=tuple(subaccounts)))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"accounts entry {number}: {exc}") from None
    check_unique(accounts)
    return accounts


def check_unique(accounts: Iterable[SimAccount]) -> None:
    """Public keys must be unique, and a subaccount id may not also be another account's primary id."""
    keys: set[str] = set()
    primaries = {account.user_id for account in accounts}
    owners: dict[str, str] = {}
    for account in accounts:
        if account.public_key in keys:
            raise ValueError(f"public key {account.public_key} appears twice")
        keys.add(account.public_key)
        for sub in account.subaccounts:
            if sub in primaries:
                raise ValueError(f"subaccount {sub} of {account.public_key} is also a primary user_id")
            if owners.setdefault(sub, account.user_id) != account.user_id:
                raise ValueError(f"subaccount {sub} belongs to two different users")
