"""Notification events and the mails they become: recipients, composition, batches, digest."""
