"""Code shared by the portal and the hotfolder agent: config, models, storage, mail.

Nothing here imports Flask or watchdog, so both processes can use it.
"""
