"""The portal's side of the hotfolder: what the agents deliver, their state and problems."""
