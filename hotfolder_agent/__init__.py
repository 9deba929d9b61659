"""The hotfolder agent on the print shop's workflow server (``python -m hotfolder_agent``).

It fetches clean uploads from the portal over HTTPS into the internal hotfolders,
writes an XML job notification per order batch, and sends files staff drop into an
order's outbound folder back to the portal. It has no database and no view of the
portal's storage: everything goes through the agent endpoints with an agent token
(``client``), and what it must remember lives in its own state folder (``state``). It
imports neither ``portal`` nor the portal's models or database (import-linter).
"""
