"""Customers and their contacts, as the workflow system pushes them."""

from __future__ import annotations

from peewee import fn

from shared.clock import utcnow
from shared.errors import Invalid, NotFound
from shared.files.folders import is_safe_number
from shared.mail.addresses import check_email
from shared.models import LANGUAGES, Contact, Customer, SystemDefault

CUSTOMER_FIELDS = (
    "name",
    "email",
    "portal_enabled",
    "create_hotfolder",
    "hotfolder_delete_after_days",
    "language",
)


def get_customer(customer_no: str) -> Customer:
    customer = Customer.get_or_none(Customer.customer_no == customer_no)
    if customer is None:
        raise NotFound(f"customer {customer_no!r} does not exist")
    return customer


def upsert_customer(customer_no: str, **fields) -> tuple[Customer, bool]:
    """Create the customer or update the given fields; returns (customer, created)."""
    if not is_safe_number(customer_no):
        raise Invalid("customer_no", "use 1–64 letters, digits, '.', '_' or '-'")
    unknown = set(fields) - set(CUSTOMER_FIELDS)
    if unknown:
        raise Invalid(sorted(unknown)[0], "unknown field")
    if "name" in fields and not fields["name"].strip():
        raise Invalid("name", "must not be empty")
    if "email" in fields:
        fields["email"] = check_email("email", fields["email"])
    if "language" in fields and fields["language"] not in LANGUAGES:
        raise Invalid("language", "one of " + ", ".join(LANGUAGES))
    customer = Customer.get_or_none(Customer.customer_no == customer_no)
    if customer is None:
        if not fields.get("name"):
            raise Invalid("name", "required for a new customer")
        defaults = SystemDefault.portal()
        fields.setdefault("create_hotfolder", defaults.create_hotfolder)
        fields.setdefault("hotfolder_delete_after_days", defaults.hotfolder_delete_after_days)
        return Customer.create(customer_no=customer_no, **fields), True
    for name, value in fields.items():
        setattr(customer, name, value)
    customer.updated_at = utcnow()
    customer.save()
    return customer, False


def find_contact(customer: Customer, email: str) -> Contact | None:
    """The customer's contact with ``email``; addresses differing only in case are one person."""
    return Contact.get_or_none(
        (Contact.customer == customer) & (fn.LOWER(Contact.email) == email.lower())
    )


def add_contact(
    customer: Customer,
    email: str,
    name: str = "",
    favorite: bool | None = None,
    field: str = "email",
) -> Contact:
    """Add (or update, by email) a contact; a new favorite replaces the old one.

    ``favorite=None`` leaves an existing contact's favorite flag as it is.
    """
    email = check_email(field, email, required=True)
    if favorite:
        Contact.update(favorite=False).where(Contact.customer == customer).execute()
    contact = find_contact(customer, email)
    if contact is None:
        return Contact.create(customer=customer, email=email, name=name, favorite=bool(favorite))
    contact.name = name or contact.name
    if favorite is not None:
        contact.favorite = favorite
    contact.save()
    return contact
