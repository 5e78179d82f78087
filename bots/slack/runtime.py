"""Everything a Slack listener needs, built once per process."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from slack_sdk import WebClient

from bots.slack.users import UserDirectory
from bots.surface.deps import SurfaceDeps
from core.db.session import tenant_scope
from core.jobs.outbox import enqueue


@dataclass
class SlackDeps:
    surface: SurfaceDeps
    client: WebClient
    users: UserDirectory
    bot_user_id: str | None
    team_id: str | None = None  # the workspace this request came from (its installation's team)
    workspace_tenant: uuid.UUID | None = None  # that installation's tenant (OAuth installs)
    single_workspace: bool = True  # SLACK_BOT_TOKEN: one workspace, no installation rows

    def request_reaction(self, tenant_id: uuid.UUID, channel: str, ts: str, name: str) -> None:
        """Reactions are Slack calls: done by a job, not in the listener."""
        from bots.slack.tasks import REACT_JOB

        with tenant_scope(self.surface.factory, tenant_id) as session:
            enqueue(session=session, tenant_id=tenant_id, job=REACT_JOB,
                    payload={"channel": channel, "ts": ts, "name": name})
