"""The portal's side of the hotfolder: what the agents deliver (``deliveries``: leases,
confirmations), what they report (``reports``: heartbeats, problems, notifications), staff
files going back (``outbound``), their state for staff (``status``) and when an agent
counts as gone (``agents``)."""
