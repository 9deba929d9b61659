"""Customers and their contacts, as the workflow system pushes them and staff edit them."""

from __future__ import annotations

from peewee import Case, IntegrityError, fn

from shared import audit
from shared.clock import utcnow
from shared.db import write_transaction
from shared.errors import Conflict, Invalid, NotFound
from shared.files.folders import is_safe_number
from shared.mail.addresses import check_email
from shared.models import LANGUAGES, Contact, Customer, Order, PortalLogin, SystemDefault
from shared.paging import PER_PAGE, Page, page_within

CUSTOMER_FIELDS = (
    "name",
    "email",
    "portal_enabled",
    "create_hotfolder",
    "hotfolder_delete_after_days",
    "language",
)
MAX_DELETE_AFTER_DAYS = 3650
NUMBER_RULE = "use 1–64 letters, digits, '.', '_' or '-'"


def get_customer(customer_no: str) -> Customer:
    customer = Customer.get_or_none(Customer.customer_no == customer_no)
    if customer is None:
        raise NotFound(f"customer {customer_no!r} does not exist")
    return customer


def _values(customer: Customer) -> dict:
    return {name: getattr(customer, name) for name in ("customer_no", *CUSTOMER_FIELDS)}


def _checked(fields: dict) -> dict:
    """``fields`` validated and cleaned; raise Invalid naming the first bad one."""
    unknown = set(fields) - set(CUSTOMER_FIELDS)
    if unknown:
        raise Invalid(sorted(unknown)[0], "unknown field")
    if "name" in fields:
        fields["name"] = fields["name"].strip()
        if not fields["name"]:
            raise Invalid("name", "must not be empty")
    if "email" in fields:
        fields["email"] = check_email("email", fields["email"])
    if "language" in fields and fields["language"] not in LANGUAGES:
        raise Invalid("language", "one of " + ", ".join(LANGUAGES))
    days = fields.get("hotfolder_delete_after_days")
    if days is not None and not 0 <= days <= MAX_DELETE_AFTER_DAYS:
        raise Invalid("hotfolder_delete_after_days", f"from 0 to {MAX_DELETE_AFTER_DAYS}")
    return fields


def _new_customer(customer_no: str, fields: dict) -> Customer:
    if not fields.get("name"):
        raise Invalid("name", "required for a new customer")
    # New customers take what the "ptportal" defaults say unless told otherwise.
    defaults = SystemDefault.portal()
    fields.setdefault("create_hotfolder", defaults.create_hotfolder)
    fields.setdefault("hotfolder_delete_after_days", defaults.hotfolder_delete_after_days)
    customer = Customer.create(customer_no=customer_no, **fields)
    audit.record(
        audit.CUSTOMER_CREATE,
        f"customer {customer_no}",
        audit.changes({}, _values(customer)),
        customer_no=customer_no,
    )
    return customer


def _apply(customer: Customer, fields: dict) -> Customer:
    before = _values(customer)
    for name, value in fields.items():
        setattr(customer, name, value)
    customer.updated_at = utcnow()
    customer.save()
    changed = audit.changes(before, _values(customer))
    if changed:
        audit.record(
            audit.CUSTOMER_UPDATE,
            f"customer {customer.customer_no}",
            changed,
            customer_no=customer.customer_no,
        )
    return customer


def upsert_customer(customer_no: str, **fields) -> tuple[Customer, bool]:
    """Create the customer or update the given fields; returns (customer, created).

    Call inside a write transaction (the API's way: it pushes whatever it knows).
    """
    if not is_safe_number(customer_no):
        raise Invalid("customer_no", NUMBER_RULE)
    fields = _checked(fields)
    customer = Customer.get_or_none(Customer.customer_no == customer_no)
    if customer is None:
        return _new_customer(customer_no, fields), True
    return _apply(customer, fields), False


def create_customer(customer_no: str, **fields) -> Customer:
    """Create a customer; Conflict if the number is taken (staff's form: no silent update)."""
    customer_no = customer_no.strip()
    if not is_safe_number(customer_no):
        raise Invalid("customer_no", NUMBER_RULE)
    fields = _checked(fields)
    try:
        with write_transaction():
            return _new_customer(customer_no, fields)
    except IntegrityError:
        raise Conflict(f"customer {customer_no!r} exists already") from None


def update_customer(customer: Customer, customer_no: str | None = None, **fields) -> Customer:
    """Change a customer's fields; its number only while it has no orders.

    Order folders are named after the customer number (on the portal and in the
    hotfolders), so once an order exists the number stays.
    """
    fields = _checked(fields)
    with write_transaction():
        customer = Customer.get_by_id(customer.id)
        if customer_no is not None and customer_no.strip() != customer.customer_no:
            customer_no = customer_no.strip()
            if not is_safe_number(customer_no):
                raise Invalid("customer_no", NUMBER_RULE)
            if Order.select().where(Order.customer == customer).exists():
                raise Invalid("customer_no", "cannot change: the customer has orders")
            if Customer.select().where(Customer.customer_no == customer_no).exists():
                raise Conflict(f"customer {customer_no!r} exists already")
            fields["customer_no"] = customer_no
        return _apply(customer, fields)


def search_customers(query: str = "", page: int = 1, per_page: int = PER_PAGE) -> Page:
    """Customers whose number, name or address contains ``query``, by number."""
    query = query.strip()[:100]
    customers = Customer.select()
    if query:
        pattern = f"%{query}%"
        customers = customers.where(
            (Customer.customer_no**pattern) | (Customer.name**pattern) | (Customer.email**pattern)
        )
    total = customers.count()
    number = page_within(page, total, per_page)
    by_number = customers.order_by(Customer.customer_no)
    return Page(list(by_number.paginate(number, per_page)), total, number, per_page)


def login_counts(customers: list[Customer]) -> dict[int, tuple[int, int]]:
    """(logins, active logins) per customer id, for a list of customers in one query."""
    ids = [customer.id for customer in customers]
    counts = {customer_id: (0, 0) for customer_id in ids}
    if ids:
        active = fn.SUM(Case(None, [(PortalLogin.state == PortalLogin.STATE_ACTIVE, 1)], 0))
        rows = (
            PortalLogin.select(PortalLogin.customer, fn.COUNT(PortalLogin.id), active)
            .where(PortalLogin.customer.in_(ids))
            .group_by(PortalLogin.customer)
            .tuples()
        )
        for customer_id, total, active_count in rows:
            counts[customer_id] = (total, int(active_count or 0))
    return counts


# --- contacts -------------------------------------------------------------------


def find_contact(customer: Customer, email: str) -> Contact | None:
    """The customer's contact with ``email``; addresses differing only in case are one person."""
    return Contact.get_or_none(
        (Contact.customer == customer) & (fn.LOWER(Contact.email) == email.lower())
    )


def contacts_of(customer: Customer) -> list[Contact]:
    """The customer's contacts, the favorite first."""
    return list(
        Contact.select()
        .where(Contact.customer == customer)
        .order_by(Contact.favorite.desc(), Contact.name, Contact.email)
    )


def add_contact(
    customer: Customer,
    email: str,
    name: str = "",
    favorite: bool | None = None,
    field: str = "email",
) -> Contact:
    """Add (or update, by email) a contact; a new favorite replaces the old one.

    ``favorite=None`` leaves an existing contact's favorite flag as it is. Call inside
    a write transaction.
    """
    email = check_email(field, email, required=True)
    name = name.strip()
    contact = find_contact(customer, email)
    before = (contact.name, contact.favorite) if contact else None
    if favorite and not (contact and contact.favorite):
        Contact.update(favorite=False).where(Contact.customer == customer).execute()
    if contact is None:
        contact = Contact.create(customer=customer, email=email, name=name, favorite=bool(favorite))
    else:
        contact.name = name or contact.name
        if favorite is not None:
            contact.favorite = favorite
        contact.save()
    if before != (contact.name, contact.favorite):
        detail = f"{contact.name} <{contact.email}>" + (" (favorite)" if contact.favorite else "")
        audit.record(
            audit.CONTACT_SAVE,
            f"customer {customer.customer_no}",
            detail,
            customer_no=customer.customer_no,
        )
    return contact


def customer_contact(customer: Customer, contact_id: int) -> Contact:
    contact = Contact.get_or_none((Contact.id == contact_id) & (Contact.customer == customer))
    if contact is None:
        raise NotFound(f"contact {contact_id} of customer {customer.customer_no!r} does not exist")
    return contact


def make_favorite(contact: Contact) -> Contact:
    """Mark ``contact`` as the customer's favorite (the one favorite)."""
    with write_transaction():
        return add_contact(contact.customer, contact.email, contact.name, favorite=True)


def delete_contact(contact: Contact) -> None:
    """Remove a contact; orders that chose it fall back to the favorite or the customer."""
    customer = contact.customer
    with write_transaction():
        contact.delete_instance()
        audit.record(
            audit.CONTACT_DELETE,
            f"customer {customer.customer_no}",
            f"{contact.name} <{contact.email}>",
            customer_no=customer.customer_no,
        )
