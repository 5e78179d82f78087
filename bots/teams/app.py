"""build_teams_bot: the Teams adapter's one dispatcher over the plain functions in listeners/.

Card actions (`adaptiveCard/action` invokes) are answered synchronously with the replacement
card; messages, edits and deletes are acknowledged at once and handled after the answer (Teams
re-sends what is not answered within 15 s), de-duplicated by activity id first. One error path:
our UserErrors become a line the agent sees; anything else is logged with a reference id that
the agent is shown too.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

from bots.surface import actions
from bots.surface.deps import SurfaceDeps
from bots.teams import cards
from bots.teams.activity import Incoming
from bots.teams.auth import RequestVerifier
from bots.teams.connector import connector_for
from bots.teams.ids import SURFACE
from bots.teams.listeners import card_actions, messages
from bots.teams.runtime import TeamsDeps
from bots.teams.users import TeamsDirectory
from core.errors import OperatorError, UserError

log = logging.getLogger(__name__)

CARD_ACTION = "adaptiveCard/action"
_HANDLERS: dict[str, Callable[[Incoming, TeamsDeps], None]] = {
    "message": messages.on_message,
    "messageUpdate": messages.on_update,
    "messageDelete": messages.on_delete,
}


def build_teams_deps(surface: SurfaceDeps) -> TeamsDeps:
    connector = connector_for(surface.settings)
    return TeamsDeps(surface, connector, TeamsDirectory(connector), RequestVerifier(surface.settings))


def delivery_key(incoming: Incoming) -> str:
    """What makes a delivery the same delivery: an edit keeps its message's id, so its text counts."""
    extra = incoming.text if incoming.type == "messageUpdate" else ""
    digest = hashlib.sha256(f"{incoming.conversation_id}\n{incoming.id}\n{extra}".encode()).hexdigest()[:40]
    return f"{incoming.type}:{digest}"


class TeamsBot:
    def __init__(self, deps: TeamsDeps) -> None:
        self.deps = deps

    def wants(self, incoming: Incoming) -> bool:
        """True when this activity is ours to handle later (and is not a repeat delivery)."""
        if incoming.type not in _HANDLERS or not incoming.id:
            return False
        return actions.first_time(self.deps.surface, surface=SURFACE, event_id=delivery_key(incoming))

    def handle(self, incoming: Incoming) -> None:
        """After the answer: one listener; failures are told in the thread (nothing else shows them)."""
        try:
            _HANDLERS[incoming.type](incoming, self.deps)
        except UserError as exc:
            log.info("teams message refused", extra={"reason": str(exc)})
            self._tell(incoming, f"⚠️ Your message was not handled: {exc}")
        except Exception:  # unknown: logged with a reference the agent can quote
            ref = uuid.uuid4().hex[:10]
            log.exception("teams listener failed", extra={"ref": ref})
            self._tell(incoming, f"❌ Your message was not handled: something went wrong (reference {ref}).")

    def invoke(self, incoming: Incoming) -> dict[str, Any]:
        if incoming.name != CARD_ACTION:
            return {"statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": ""}
        try:
            return card_actions.on_card_action(incoming, self.deps)
        except UserError as exc:
            log.info("teams card action refused", extra={"reason": str(exc)})
            return cards.invoke_message(f"⚠️ {exc}")
        except Exception:
            ref = uuid.uuid4().hex[:10]
            log.exception("teams card action failed", extra={"ref": ref})
            return cards.invoke_message(f"❌ Something went wrong (reference {ref}).")

    def _tell(self, incoming: Incoming, line: str) -> None:
        try:
            self.deps.connector.send(incoming.service_url, conversation_id=incoming.conversation_id,
                                     activity=cards.message(cards.failure_card(line), summary=line))
        except OperatorError:
            log.warning("could not tell the agent in the thread", extra={"conversation": incoming.conversation_id})


def build_teams_bot(surface: SurfaceDeps) -> TeamsBot:
    return TeamsBot(build_teams_deps(surface))
