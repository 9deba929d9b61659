"""Mail intake for order conversations: mailbox settings, IMAP, parsing and matching.

Works on plain data only — no Flask, no watchdog, no database models — so the worker,
the portal's admin page and the tests can all call it. A mailbox's settings are a
``[mailbox:NAME]`` section of client.ini (``shared.config.MailboxSettings``). The modules:

- ``imap``: one verified-TLS IMAP connection: list, fetch to a file, move or flag, IDLE.
- ``parsing``: raw message bytes → ``InboundMail`` (never raises on bad MIME).
- ``headers``: decoded header text and addresses, odd charsets repaired.
- ``message_ids``: the ``<id>`` tokens of Message-ID, In-Reply-To and References.
- ``bodies``: sanitised HTML, HTML as text, quoted history split off.
- ``attachments``: safe names, inline-image rule, staging without a second copy in memory.
- ``automatic``: auto-replies and delivery reports.
- ``matching``: which order (or the staff inbox) a mail belongs to; the auto-answer gate.
"""
