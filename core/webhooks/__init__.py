"""Outgoing webhooks: per-tenant subscriptions to ticket and message events, signed, retried, logged."""
