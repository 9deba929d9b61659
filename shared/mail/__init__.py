"""Outgoing mail: templates, the outbox, SMTP delivery and a local catcher."""
