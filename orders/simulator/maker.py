"""What new simulated orders and TWAPs look like: symbols, prices, sizes, ids and client ids.

Every draw comes from the market's seeded `random.Random` and every time from its virtual clock, in a fixed
order, so the same seed and calls give the same orders. Prices and quantities are whole numbers of
ticks/steps turned into floats through `Decimal`, so they serialise as clean JSON numbers such as 187.25.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class SymbolSpec:
    symbol: str
    reference_price: Decimal
    tick: Decimal
    quantity_step: Decimal
    max_steps: int  # largest order size, in quantity steps


SYMBOLS: tuple[SymbolSpec, ...] = (
    SymbolSpec("AAPL-USD", Decimal("187.25"), Decimal("0.01"), Decimal("0.1"), 500),
    SymbolSpec("NVDA-USD", Decimal("135.40"), Decimal("0.01"), Decimal("0.1"), 800),
    SymbolSpec("TSLA-USD", Decimal("248.50"), Decimal("0.01"), Decimal("0.1"), 400),
    SymbolSpec("GOOG-USD", Decimal("176.80"), Decimal("0.01"), Decimal("0.1"), 400),
    SymbolSpec("US500-USD", Decimal("5987.5"), Decimal("0.1"), Decimal("0.01"), 300),
    SymbolSpec("US100-USD", Decimal("21250.0"), Decimal("0.5"), Decimal("0.01"), 200),
    SymbolSpec("GOLD-USD", Decimal("2654.3"), Decimal("0.1"), Decimal("0.01"), 500),
    SymbolSpec("OIL-USD", Decimal("71.42"), Decimal("0.01"), Decimal("1"), 200),
    SymbolSpec("EURUSD-USD", Decimal("1.08345"), Decimal("0.00001"), Decimal("100"), 1000),
)
_SPECS = {spec.symbol: spec for spec in SYMBOLS}
_FALLBACK_SPEC = SymbolSpec("", Decimal("100"), Decimal("0.01"), Decimal("0.01"), 100)
_CLIENT_ID_PREFIXES = ("grid", "mm-bot", "hedge", "rebal", "manual", "arb")
_FREE_TEXT_IDS = ("scalp AAPL #3", "désk β / ladder 2", "tp+sl 50%", "night run — keep", "O'Brien's hedge")
_TWAP_INTERVALS = (30, 60, 120, 300)


def wire_number(value: Decimal) -> float:
    # float(Decimal) is the double nearest the decimal, whose shortest repr is that decimal again.
    return float(value)


def as_decimal(value: object) -> Decimal:
    """A wire number as an exact Decimal; anything unusable (a test may inject odd values) counts as 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return Decimal(0)
    try:
        result = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except ArithmeticError:
        return Decimal(0)
    return result if result.is_finite() else Decimal(0)


def plain(value: object) -> object:
    """Make a caller-supplied field serialisable as a JSON number when it is a Decimal."""
    return float(value) if isinstance(value, Decimal) else value


def spec_of(symbol: object) -> SymbolSpec:
    """The symbol's tick, step and reference price (made-up ones for a symbol the list does not know)."""
    return _SPECS.get(symbol, _FALLBACK_SPEC) if isinstance(symbol, str) else _FALLBACK_SPEC


class OrderMaker:
    """New orders and TWAPs of a market, drawn from its `rng`, stamped by its clock (`stamp(seconds_ago)`)."""

    def __init__(self, rng: random.Random, stamp: Callable[[float], float]) -> None:
        self.rng = rng
        self._stamp = stamp

    def new_id(self) -> str:
        """A random UUID (version 4) from the seeded source."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def price(self, spec: SymbolSpec, spread_pct: float = 3.0) -> Decimal:
        ref_ticks = int(spec.reference_price / spec.tick)
        ticks = ref_ticks + self.rng.randint(-int(ref_ticks * spread_pct / 100), int(ref_ticks * spread_pct / 100))
        return max(ticks, 1) * spec.tick

    def _client_order_id(self) -> str:
        roll = self.rng.random()
        if roll < 0.4:
            return ""
        if roll < 0.9:
            return f"{self.rng.choice(_CLIENT_ID_PREFIXES)}-{self.rng.randint(1, 9999):04d}"
        return self.rng.choice(_FREE_TEXT_IDS)

    def order(self, book_id: str, age: float = 0.0) -> dict[str, Any]:
        """A new resting order (status ACK) of this book, placed `age` seconds ago."""
        spec = self.rng.choice(SYMBOLS)
        side = self.rng.choice(("BUY", "SELL"))
        kind = self.rng.choices(("LIMIT", "ALO", "TAKE_PROFIT", "STOP_LOSS"), weights=(70, 15, 8, 7))[0]
        price = self.price(spec)
        quantity = self.rng.randint(1, spec.max_steps) * spec.quantity_step
        take_profit = stop_loss = Decimal(0)
        if kind == "LIMIT" and self.rng.random() < 0.2:
            sign = 1 if side == "BUY" else -1
            take_profit = price + sign * self.rng.randint(10, 300) * spec.tick
            stop_loss = max(price - sign * self.rng.randint(10, 300) * spec.tick, spec.tick)
        return {
            "order_id": self.new_id(),
            "symbol": spec.symbol,
            "status": "ACK",
            "quantity": wire_number(quantity),
            "price": wire_number(price),
            "take_profit": wire_number(take_profit),
            "stop_loss": wire_number(stop_loss),
            "side": side,
            "type": kind,
            "time_in_force": "IOC" if kind in ("TAKE_PROFIT", "STOP_LOSS") else "GTC",
            "user_id": book_id,
            "client_order_id": self._client_order_id(),
            "quantity_remaining": wire_number(quantity),
            "update_time": self._stamp(age),
            "trade_id": None,
        }

    def twap(self, book_id: str, history: bool = False) -> tuple[dict[str, Any], int]:
        """A running TWAP and how many of its slices ran: none, or (`history`) some, started long enough ago."""
        spec = self.rng.choice(SYMBOLS)
        slices = self.rng.randint(2, 40)
        interval = self.rng.choice(_TWAP_INTERVALS)
        per_slice = self.rng.randint(1, max(1, spec.max_steps // 10)) * spec.quantity_step
        done = self.rng.randint(0, slices - 1) if history else 0
        created = self._stamp(done * interval + self.rng.uniform(0, interval) if history else 0.0)
        client_id = self.rng.choice((None, "", f"rebalance-{spec.symbol.split('-')[0].lower()}-{slices:03d}"))
        twap: dict[str, Any] = {
            "twap_id": self.new_id(),
            "client_twap_id": client_id,
            "user_id": book_id,
            "status": "RUNNING",
            "symbol": spec.symbol,
            "total_quantity": wire_number(per_slice * slices),
            "filled_quantity": wire_number(per_slice * done),
            "average_fill_price": wire_number(self.price(spec, 0.5)) if done else 0.0,
            "total_num_orders": slices,
            "order_interval_secs": interval,
            "reduce_only": self.rng.random() < 0.15,
            "side": self.rng.choice(("BUY", "SELL")),
            "created_at": created,
            "updated_at": round(created + done * interval, 6) if done else created,
        }
        return twap, done
