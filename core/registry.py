"""The registry of what plugins add: jobs, event subscriptions, `up` components, CLI, HTTP.

`core` never imports `inbound`, `bots`, `knowledge` or `admin_api`; they register here through
the `threadline.plugins` entry point group (see pyproject.toml), loaded by entry points.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from core.settings import Settings
    from core.tickets.events import DomainEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobContext:
    """What a job handler gets: ids, never a live session from another unit of work."""

    settings: Settings
    session_factory: sessionmaker[Session]
    tenant_id: uuid.UUID
    outbox_id: int
    attempt: int
    registry: Registry | None = None  # to record follow-up events (e.g. delivery changed)


JobHandler = Callable[[JobContext, dict[str, Any]], None]


@dataclass(frozen=True)
class ContactErasure:
    """Whose content to erase: one contact of one tenant. Erasers run first, while the contact's
    tickets (`ticket_ids`) still exist, in the tenant's unit of work of the erasure."""

    tenant_id: uuid.UUID
    contact_id: uuid.UUID
    email: str  # normalised (trimmed, lower case)
    ticket_ids: tuple[uuid.UUID, ...]


# An adapter's own rows about the contact (e.g. widget transcripts): deletes them in `session`
# (never commits) and returns the blob hashes they named, removed after commit if nothing else does.
ContactEraser = Callable[["Session", ContactErasure], list[str]]


@dataclass(frozen=True)
class JobSpec:
    name: str
    handler: JobHandler
    queue: str = "default"
    # Many short idempotent runs: a worker may take several waiting rows at once (core/jobs/runner.py).
    batch: bool = False
    # Whether events should fan out to this job at all under these settings (a Teams job in an install
    # without a Teams bot would be claimed, run and finished for nothing: ~1/4 of a mail's jobs).
    wanted: Callable[[Settings], bool] | None = None
    # Whether this one event concerns the job (read in the transaction that records it: e.g. webhooks
    # only when the tenant has a receiver for the kind). False writes no row, as the job would do nothing.
    concerns: Callable[[Session, DomainEvent], bool] | None = None


@dataclass(frozen=True)
class Component:
    """A long-running part `threadline up` supervises, run as `threadline <command>`."""

    name: str
    command: tuple[str, ...]
    describe: Callable[[Settings], str]  # where it listens, for the startup banner
    enabled: Callable[[Settings], bool] = lambda _settings: True
    order: int = 50


class SurfaceNotifier(Protocol):
    """Port: an agent surface (Slack, Teams) that wants to hear about ticket events."""

    def name(self) -> str: ...


@dataclass
class Registry:
    jobs: dict[str, JobSpec] = field(default_factory=dict)
    subscriptions: dict[str, list[str]] = field(default_factory=dict)
    components: dict[str, Component] = field(default_factory=dict)
    cli_groups: list[Callable[[Any], None]] = field(default_factory=list)
    http_mounts: list[Callable[[Any, Settings], None]] = field(default_factory=list)
    # ticket channel value ("email", "widget", ...) -> job that delivers a public reply there
    delivery_jobs: dict[str, str] = field(default_factory=dict)
    # what adapters keep about a contact outside core's tables, for `threadline contacts erase`
    contact_erasers: list[ContactEraser] = field(default_factory=list)
    # The settings the `wanted` conditions are read from, at each fan-out (so a change made to the
    # settings object later counts); None (a bare registry): every subscribed job is wanted.
    settings: Settings | None = None

    def add_job(
        self, name: str, handler: JobHandler, *, queue: str = "default", batch: bool = False,
        wanted: Callable[[Settings], bool] | None = None,
        concerns: Callable[[Session, DomainEvent], bool] | None = None,
    ) -> None:
        if name in self.jobs:
            raise ValueError(f"job {name!r} registered twice")
        self.jobs[name] = JobSpec(name, handler, queue, batch, wanted, concerns)

    def bind(self, settings: Settings) -> Registry:
        self.settings = settings
        return self

    def subscribe(self, event_kind: str, job_name: str) -> None:
        """Run `job_name` once for every event of this kind (fan-out happens at write time)."""
        self.subscriptions.setdefault(event_kind, []).append(job_name)

    def add_component(self, component: Component) -> None:
        self.components[component.name] = component

    def add_cli(self, register: Callable[[Any], None]) -> None:
        self.cli_groups.append(register)

    def add_http(self, mount: Callable[[Any, Settings], None]) -> None:
        self.http_mounts.append(mount)

    def add_delivery(self, channel: str, job_name: str) -> None:
        """The job that delivers public replies on tickets of this channel of origin."""
        self.delivery_jobs[channel] = job_name

    def add_contact_eraser(self, eraser: ContactEraser) -> None:
        self.contact_erasers.append(eraser)

    def jobs_for(self, event_kind: str) -> Sequence[str]:
        jobs = self.subscriptions.get(event_kind, ())
        if self.settings is None:
            return jobs
        return [job for job in jobs if self._wanted(job, self.settings)]

    def concerned(self, job: str, session: Session, event: DomainEvent) -> bool:
        spec = self.jobs.get(job)
        return spec is None or spec.concerns is None or spec.concerns(session, event)

    def _wanted(self, job: str, settings: Settings) -> bool:
        spec = self.jobs.get(job)
        return spec is None or spec.wanted is None or spec.wanted(settings)


def load_plugins(registry: Registry) -> Registry:
    """Let every installed plugin register itself; core's own parts are always present."""
    from core.plugin import register as register_core

    register_core(registry)
    for ep in sorted(entry_points(group="threadline.plugins"), key=lambda e: e.name):
        if ep.name == "core":
            continue
        ep.load()(registry)
    return registry
