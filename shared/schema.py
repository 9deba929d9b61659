"""Create or update the schema and the built-in rows; safe to run again on any database."""

from shared.db import write_transaction
from shared.mail.defaults import install_defaults
from shared.migrations import migrate_database
from shared.models import SystemDefault


def init_database(shop_name: str) -> list[str]:
    """Migrate to the current schema, then add the ``ptportal`` defaults and templates."""
    done = migrate_database()
    with write_transaction():
        SystemDefault.portal()
        install_defaults(shop_name)
    return done
