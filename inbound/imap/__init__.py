"""IMAP poller: takes mail from mailbox folders into inboxes (checkpointed by UIDVALIDITY + UID)."""
