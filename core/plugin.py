"""Core's own parts in the registry: the worker, the scheduler and the webhook delivery job."""

from __future__ import annotations

from core.registry import Component, Registry
from core.webhooks import delivery as webhooks


def register(registry: Registry) -> None:
    registry.add_component(
        Component(
            name="worker",
            command=("worker",),
            describe=lambda s: f"{s.worker_threads} job threads + outbox relay",
            order=20,
        )
    )
    registry.add_component(
        Component(name="scheduler", command=("scheduler",), describe=lambda s: "maintenance every 30 s", order=90)
    )
    webhooks.register(registry)
