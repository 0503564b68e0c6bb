"""The in-process channel layer: fan-out stays linear in sockets, expiry still happens (design.md P4)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.layers import get_channel_layer

from qfexdash.channel_layers import SweepingInMemoryChannelLayer


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_one_update_to_a_thousand_channels_sweeps_once_not_a_thousand_times() -> None:
    clock = Clock()
    layer = SweepingInMemoryChannelLayer(sweep_seconds=1.0, clock=clock)
    channels = [await layer.new_channel() for _ in range(1000)]
    for channel in channels:
        await layer.group_add("account-1", channel)
    await layer.group_send("account-1", {"type": "feed.message", "text": "diff"})
    received = [await layer.receive(channel) for channel in channels]
    assert [message["text"] for message in received] == ["diff"] * 1000
    # Channels' own layer walks every channel on each of those 1001 calls.
    assert layer.sweeps == 1
    clock.now += 1.0
    await layer.group_send("account-1", {"type": "feed.message", "text": "next"})
    assert layer.sweeps == 2
    assert (await layer.receive(channels[0]))["text"] == "next"


async def test_expired_messages_and_memberships_still_go_at_the_next_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    wall = Clock()  # the messages' own expiry times come from time.time(), as in Channels
    monkeypatch.setattr("channels.layers.time.time", wall)
    clock = Clock()
    layer = SweepingInMemoryChannelLayer(sweep_seconds=1.0, clock=clock, expiry=30, group_expiry=3600)
    stalled, alive, old = [await layer.new_channel() for _ in range(3)]
    for channel in (stalled, alive):
        await layer.group_add("account-1", channel)
    wall.now -= 3500
    await layer.group_add("account-1", old)  # joined almost an hour ago, never renewed
    wall.now += 3500
    await layer.group_send("account-1", {"type": "feed.message", "text": "one"})
    assert (await layer.receive(alive))["text"] == "one"  # `stalled` never reads its copy

    wall.now += 200  # `stalled`'s message and `old`'s membership have expired; no sweep is due yet
    await layer.group_send("account-1", {"type": "feed.message", "text": "two"})
    assert set(layer.groups["account-1"]) == {stalled, alive, old}

    clock.now += 1.0
    await layer.group_send("account-1", {"type": "feed.message", "text": "three"})
    # A channel whose message expired leaves its groups; so does a membership past group_expiry.
    assert set(layer.groups["account-1"]) == {alive}
    assert [(await layer.receive(alive))["text"] for _ in range(2)] == ["two", "three"]


def test_negative_sweep_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="sweep_seconds"):
        SweepingInMemoryChannelLayer(sweep_seconds=-1)


def test_without_redis_the_server_uses_the_sweeping_layer(settings: Any) -> None:
    from qfexdash import settings as project_settings

    settings.CHANNEL_LAYERS = project_settings.CHANNEL_LAYERS
    assert not getattr(project_settings, "REDIS_URL", "")
    assert isinstance(get_channel_layer(), SweepingInMemoryChannelLayer)


async def test_a_full_channel_still_drops_instead_of_blocking() -> None:
    layer = SweepingInMemoryChannelLayer(capacity=1)
    channel = await layer.new_channel()
    await layer.group_add("account-1", channel)
    await layer.group_send("account-1", {"type": "feed.message", "text": "one"})
    await asyncio.wait_for(layer.group_send("account-1", {"type": "feed.message", "text": "two"}), 5)
    assert (await layer.receive(channel))["text"] == "one"
