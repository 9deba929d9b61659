"""Conversations per order: messages on the portal and by mail, the mail reader, the staff inbox.

- ``messages``: an order's conversation; customers and staff write, staff messages go out
  as mail, customer messages notify the owner.
- ``lookups``: what matching needs from the database (sent Message-IDs, order numbers,
  known senders) and when an order counts as open.
- ``importing``: one mailbox's mail into orders, the staff inbox or the bounce list,
  exactly once.
- ``readers``: the worker's thread per mailbox (IMAP IDLE, else polling) and its lease.
- ``inbox``: the staff inbox ("Posteingang"): assign to an order or customer, or discard.
- ``answers``: the few mails the portal sends a sender by itself, at most once an hour.
- ``seams``: the test seam that stops the import at a named step.
"""
