"""The hotfolder agent on the print shop's workflow server (``python -m hotfolder_agent``).

It copies clean uploads from the portal's ``Eingehend`` folders into the internal
hotfolders, writes an XML job notification per batch, and sends files staff drop
into an order's outbound folder back to the portal. It shares ``shared`` with the
portal and never imports ``portal``.
"""
