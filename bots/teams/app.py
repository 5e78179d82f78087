"""build_teams_bot: the Teams adapter's one dispatcher over the plain functions in listeners/.

Every activity is stored with its outbox job before it is answered (bots/teams/inbound.py).
Messages, edits and deletes are then handled by a worker (`teams.activity`). Card actions
(`adaptiveCard/action` invokes) must be answered synchronously with the replacement card: their
job (`teams.invoke`) is run at once in the request, and its outcome (done, or the refusal) is
kept under the delivery's key, so a re-sent invoke reads the outcome instead of acting twice.
One error path: our UserErrors become a line the agent sees; anything else is logged with a
reference id that the agent is shown too, with a Retry button for a message.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from bots.surface.deps import SurfaceDeps
from bots.teams import cards, inbound
from bots.teams.activity import Incoming, parse
from bots.teams.auth import RequestVerifier
from bots.teams.connector import connector_for
from bots.teams.listeners import card_actions, messages
from bots.teams.runtime import TeamsDeps
from bots.teams.users import TeamsDirectory
from core.db.session import tenant_scope
from core.errors import OperatorError, TemporaryFailure, UserError
from core.jobs import effects
from core.jobs.models import JobEffect
from core.jobs.runner import JobFailed, run_outbox_job
from core.registry import JobContext

log = logging.getLogger(__name__)

CARD_ACTION = "adaptiveCard/action"
TASK_FETCH = "task/fetch"  # a dialog (Slack's modal): "View the full original"
OUTCOME_WAIT_SECONDS = 10.0  # Teams re-sends an invoke not answered within 15 s
_HANDLERS: dict[str, Callable[[Incoming, TeamsDeps], None]] = {
    "message": messages.on_message,
    "messageUpdate": messages.on_update,
    "messageDelete": messages.on_delete,
}


def build_teams_deps(surface: SurfaceDeps) -> TeamsDeps:
    connector = connector_for(surface.settings)
    return TeamsDeps(surface, connector, TeamsDirectory(connector), RequestVerifier(surface.settings))


def outcome_key(incoming: Incoming) -> str:
    return f"{inbound.INVOKE_JOB}:{inbound.delivery_key(incoming)}"


class TeamsBot:
    def __init__(self, deps: TeamsDeps) -> None:
        self.deps = deps

    def accept(self, incoming: Incoming, body: dict[str, Any]) -> None:
        """Before the 200: the activity is stored with its job (or is a repeat, or not ours)."""
        inbound.accept(self.deps, incoming, body)

    def handle(self, incoming: Incoming, *, job_id: int) -> None:
        """In the worker: one listener; failures are told in the thread (nothing else shows them)."""
        try:
            _HANDLERS[incoming.type](incoming, self.deps)
        except UserError as exc:
            log.info("teams message refused", extra={"reason": str(exc)})
            self._tell(incoming, cards.failure_card(f"⚠️ Your message was not handled: {exc}"))
        except TemporaryFailure:
            raise  # the job is retried with a backoff: the activity is stored
        except Exception:  # unknown: logged with a reference the agent can quote, and a Retry
            ref = uuid.uuid4().hex[:10]
            log.exception("teams listener failed", extra={"ref": ref})
            line = f"❌ Your message was not handled: something went wrong (reference {ref})."
            self._tell(incoming, cards.failure_card(line, retry_job=job_id if incoming.type == "message" else None))

    def invoke(self, incoming: Incoming, body: dict[str, Any]) -> dict[str, Any]:
        try:
            if incoming.name == TASK_FETCH:
                return card_actions.view_original(incoming, self.deps)
            if incoming.name != CARD_ACTION:
                return {"statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": ""}
            card_actions.parse_action(incoming)
            tenant = card_actions.tenant_of(self.deps, incoming)
        except UserError as exc:
            log.info("teams card action refused", extra={"reason": str(exc)})
            return cards.invoke_message(f"⚠️ {exc}")
        job = inbound.accept(self.deps, incoming, body)
        if job is not None:
            s = self.deps.surface
            try:
                run_outbox_job(job, settings=s.settings, factory=s.factory, registry=s.registry)
            except JobFailed:
                pass  # a temporary failure: the worker retries the stored action
        outcome = self._outcome(tenant, outcome_key(incoming))
        if outcome is None:
            return cards.invoke_message("⏳ Threadline is still working on this; it will be done shortly.")
        if "refusal" in outcome:
            return cards.invoke_message(f"⚠️ {outcome['refusal']}")
        if "error" in outcome:
            return cards.invoke_message(f"❌ Something went wrong (reference {outcome['error']}).")
        try:
            return card_actions.answer(incoming, self.deps, tenant)
        except UserError as exc:
            return cards.invoke_message(f"⚠️ {exc}")

    def _outcome(self, tenant: uuid.UUID, key: str) -> dict[str, Any] | None:
        """The action's recorded outcome; a worker may be running it still, so wait a little."""
        deadline = time.monotonic() + OUTCOME_WAIT_SECONDS
        while True:
            with tenant_scope(self.deps.surface.factory, tenant) as session:
                found = session.execute(select(JobEffect.result).where(
                    JobEffect.tenant_id == tenant, JobEffect.key == key)).scalar_one_or_none()
            if found is not None or time.monotonic() > deadline:
                return dict(found) if found is not None else None
            time.sleep(0.1)

    def _tell(self, incoming: Incoming, card: cards.Card) -> None:
        try:
            self.deps.connector.send(incoming.service_url, conversation_id=incoming.conversation_id,
                                     activity=cards.message(card, summary="Your message was not handled"))
        except OperatorError:
            log.warning("could not tell the agent in the thread", extra={"conversation": incoming.conversation_id})


def build_teams_bot(surface: SurfaceDeps) -> TeamsBot:
    return TeamsBot(build_teams_deps(surface))


# ---- the jobs: a stored activity handled by a worker ----

_bots: dict[int, tuple[object, TeamsBot]] = {}
_bots_lock = threading.Lock()


def _bot(ctx: JobContext) -> TeamsBot:
    """One bot per settings object in this process (its member cache outlives one job)."""
    assert ctx.registry is not None
    with _bots_lock:
        hit = _bots.get(id(ctx.settings))
        if hit is None or hit[0] is not ctx.settings:
            hit = _bots[id(ctx.settings)] = (ctx.settings, build_teams_bot(
                SurfaceDeps(ctx.settings, ctx.session_factory, ctx.registry)))
        return hit[1]


def _configured(ctx: JobContext) -> bool:
    return bool(ctx.settings.teams_app_id and ctx.settings.teams_app_password)


def activity_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    if _configured(ctx):
        _bot(ctx).handle(parse(payload["activity"]), job_id=ctx.outbox_id)


def invoke_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Do a card action once and keep its outcome (done, or what to tell the clicker) by its key."""
    if not _configured(ctx):
        return
    bot = _bot(ctx)
    incoming = parse(payload["activity"])
    outcome: dict[str, Any] = {"done": True}
    try:
        card_actions.act(incoming, bot.deps, job_tenant=ctx.tenant_id)
    except UserError as exc:
        log.info("teams card action refused", extra={"reason": str(exc)})
        outcome = {"refusal": str(exc)}
    except TemporaryFailure:
        raise
    except Exception:
        ref = uuid.uuid4().hex[:10]
        log.exception("teams card action failed", extra={"ref": ref})
        outcome = {"error": ref}
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        effects.claim_once(session, tenant_id=ctx.tenant_id, key=outcome_key(incoming), result=outcome,
                           outbox_id=ctx.outbox_id)
