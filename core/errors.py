"""The error hierarchy. Retry and reporting decisions follow the class, never the message."""

from __future__ import annotations


class ThreadlineError(Exception):
    """Base class of every error Threadline raises on purpose."""


class UserError(ThreadlineError):
    """The sender, agent or admin did something we refuse; tell them, log at info."""


class OperatorError(ThreadlineError):
    """Configuration or infrastructure is wrong; an operator must act (alert)."""


class NotFound(UserError):
    """A referenced object does not exist (or belongs to another tenant)."""


class Conflict(UserError):
    """The request contradicts the current state (duplicate, wrong status transition)."""


class InvalidInput(UserError):
    """Input that can never be accepted as it is (malformed mail, bad field)."""


class TemporaryFailure(OperatorError):
    """A dependency is unavailable right now; the caller should retry later."""


class ConfigurationError(OperatorError):
    """Settings are missing or contradictory."""
