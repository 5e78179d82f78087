"""Ticket-domain errors."""

from core.errors import Conflict, NotFound


class TicketNotFound(NotFound):
    pass


class InvalidTransition(Conflict):
    pass
