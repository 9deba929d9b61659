"""Create the schema and the built-in rows; safe to run again on an existing database."""

from shared.db import database, write_transaction
from shared.mail.defaults import install_defaults
from shared.models import ALL_MODELS, SystemDefault


def init_database(shop_name: str) -> None:
    """Create missing tables, the ``ptportal`` system defaults and the default templates."""
    database.create_tables(ALL_MODELS, safe=True)
    with write_transaction():
        SystemDefault.portal()
        install_defaults(shop_name)
