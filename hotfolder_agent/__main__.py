"""``python -m hotfolder_agent --config client.ini``."""

from hotfolder_agent.cli import main

main()
