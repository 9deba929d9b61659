"""Staff pages for customers (seed 004: Kunden, PTcontact, Portal Zugänge, PTportal
Aktivierung): list and search, create and edit, contacts with the favorite, the portal
logins with state and activation, a new activation link, per-customer notification rules."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from portal.forms import Form, done, reply
from portal.partials import page_number, wants_fragment
from portal.users import staff_required
from shared.accounts.customers import (
    MAX_DELETE_AFTER_DAYS,
    add_contact,
    contacts_of,
    create_customer,
    customer_contact,
    delete_contact,
    get_customer,
    login_counts,
    make_favorite,
    search_customers,
    update_customer,
)
from shared.accounts.logins import (
    create_folders_for_customer,
    create_login,
    logins_with_activation,
    set_login_state,
    update_login,
)
from shared.db import write_transaction
from shared.errors import Conflict, Invalid, NotFound
from shared.events import EVENTS
from shared.models import LANGUAGES, ActivationToken, Customer, PortalLogin, SystemDefault
from shared.notify.activation import send_activation_mail
from shared.notify.rules import customer_override

# "/staff/new-customer", not "/staff/customers/new": that is the page of customer "new".
bp = Blueprint("customers", __name__, url_prefix="/staff")

LANGUAGE_NAMES = {"de": "Deutsch", "en": "English", "fr": "Français"}


def _settings():
    return current_app.config["PTPORTAL_SETTINGS"]


def _customer(customer_no: str) -> Customer:
    try:
        return get_customer(customer_no)
    except NotFound:
        abort(404)


def _login(customer: Customer, login_id: int) -> PortalLogin:
    login = PortalLogin.get_or_none(
        (PortalLogin.id == login_id) & (PortalLogin.customer == customer)
    )
    if login is None:
        abort(404)
    return login


def _customer_values(customer: Customer) -> dict[str, str]:
    """A stored customer as the form shows it."""
    return {
        "customer_no": customer.customer_no,
        "name": customer.name,
        "email": customer.email,
        "language": customer.language,
        "portal_enabled": "1" if customer.portal_enabled else "",
        "create_hotfolder": "1" if customer.create_hotfolder else "",
        "hotfolder_delete_after_days": str(customer.hotfolder_delete_after_days),
    }


def _new_customer_values() -> dict[str, str]:
    defaults = SystemDefault.portal()
    return {
        "language": "de",
        "portal_enabled": "1",
        "create_hotfolder": "1" if defaults.create_hotfolder else "",
        "hotfolder_delete_after_days": str(defaults.hotfolder_delete_after_days),
    }


def _read_customer(form: Form) -> dict:
    """The customer fields of the form, checked (problems go into ``form``)."""
    return {
        "name": form.text("name", required=True),
        "email": form.email("email"),
        "language": form.choice("language", LANGUAGES),
        "portal_enabled": form.checked("portal_enabled"),
        "create_hotfolder": form.checked("create_hotfolder"),
        "hotfolder_delete_after_days": form.integer(
            "hotfolder_delete_after_days", 0, MAX_DELETE_AFTER_DAYS
        ),
    }


def _refuse(form: Form, exc: Invalid | Conflict) -> None:
    """A refusal of the domain, in the staff user's language, under its field."""
    if isinstance(exc, Conflict):
        form.refuse("customer_no", _("A customer with this number exists already."))
    elif exc.field == "customer_no" and "orders" in exc.message:
        form.refuse("customer_no", _("The number cannot change: the customer has orders."))
    elif exc.field == "customer_no":
        form.refuse("customer_no", _("Use 1–64 letters, digits, '.', '_' or '-'."))
    else:
        form.refuse(exc.field, exc.message)


# --- list, create ----------------------------------------------------------------


@bp.get("/customers/")
@staff_required
def index():
    """Every customer, searchable by number, name or address, a page at a time."""
    query = request.args.get("q", "")
    page = search_customers(query, page_number())
    context = {"page": page, "query": query, "logins": login_counts(page.items)}
    template = "staff/_customer_list.html" if wants_fragment() else "staff/customers.html"
    return render_template(template, **context)


def _new_page(form: Form):
    return {"form": form, "languages": LANGUAGE_NAMES}


@bp.get("/new-customer")
@staff_required
def new():
    """The form for a new customer, prefilled from the system defaults."""
    return render_template("staff/customer_new.html", **_new_page(Form(_new_customer_values())))


@bp.post("/new-customer")
@staff_required
def create():
    """Create the customer; a taken number is refused next to its field."""
    form = Form(request.form)
    customer_no = form.text("customer_no", required=True, max_length=64)
    fields = _read_customer(form)
    if form.ok:
        try:
            customer = create_customer(customer_no, **fields)
        except (Invalid, Conflict) as exc:
            _refuse(form, exc)
        else:
            flash(_("The customer %(number)s was created.", number=customer.customer_no))
            return done(url_for(".show", customer_no=customer.customer_no))
    return reply("staff/_customer_form.html", "staff/customer_new.html", **_new_page(form))


# --- one customer ------------------------------------------------------------------


def _overrides(customer: Customer) -> dict[str, bool]:
    return {kind: customer_override(kind, customer) is not None for kind in EVENTS}


def _page_context(customer: Customer, **forms) -> dict:
    """What ``staff/customer.html`` and its partials need; ``forms`` replace the blank ones."""
    has_logins = PortalLogin.select().where(PortalLogin.customer == customer).exists()
    defaults = SystemDefault.portal()
    blank_login = {"state": defaults.login_state}
    if defaults.login_state == PortalLogin.STATE_ACTIVE and customer.portal_enabled:
        blank_login["send_link"] = "1"
    return {
        "customer": customer,
        "form": forms.get("form") or Form(_customer_values(customer)),
        "contact_form": forms.get("contact_form") or Form(),
        "login_form": forms.get("login_form") or Form(blank_login),
        "edit_form": forms.get("edit_form"),
        "contacts": contacts_of(customer),
        "logins": logins_with_activation(customer),
        "has_logins": has_logins,
        "defaults": defaults,
        "languages": LANGUAGE_NAMES,
        "events": EVENTS,
        "overrides": _overrides(customer),
        "has_orders": customer.orders.exists(),
        "notice": forms.get("notice", ""),
    }


@bp.get("/customers/<customer_no>")
@staff_required
def show(customer_no: str):
    """One customer: details, contacts, portal logins, notification settings, orders."""
    return render_template("staff/customer.html", **_page_context(_customer(customer_no)))


def _partial_or_page(partial: str, customer: Customer, **forms):
    """After a change: htmx gets the partial again, a browser the page (422 with problems)."""
    context = _page_context(customer, **forms)
    if wants_fragment():
        return render_template(partial, **context)
    failed = any(isinstance(f, Form) and not f.ok for f in forms.values())
    if failed:
        return render_template("staff/customer.html", **context), 422
    if forms.get("notice"):
        flash(forms["notice"])
    return redirect(url_for(".show", customer_no=customer.customer_no), 303)


@bp.post("/customers/<customer_no>")
@staff_required
def update(customer_no: str):
    """Store the customer's details; its number only while it has no orders."""
    customer = _customer(customer_no)
    form = Form(request.form)
    new_number = form.text("customer_no", required=True, max_length=64)
    fields = _read_customer(form)
    if form.ok:
        try:
            customer = update_customer(customer, customer_no=new_number, **fields)
        except (Invalid, Conflict) as exc:
            _refuse(form, exc)
        else:
            if customer.customer_no != customer_no:
                flash(_("The customer's details were saved."))
                return done(url_for(".show", customer_no=customer.customer_no))
            notice = _("The customer's details were saved.")
            return _partial_or_page("staff/_customer_form.html", customer, notice=notice)
    return _partial_or_page("staff/_customer_form.html", customer, form=form)


# --- contacts ---------------------------------------------------------------------


@bp.post("/customers/<customer_no>/contacts")
@staff_required
def add_contact_view(customer_no: str):
    """Add a contact (or update the one with this address)."""
    customer = _customer(customer_no)
    form = Form(request.form)
    email = form.email("email", required=True)
    name = form.text("name")
    favorite = form.checked("favorite")
    if form.ok:
        with write_transaction():
            add_contact(customer, email, name, favorite or None)
        notice = _("The contact %(email)s was saved.", email=email)
        return _partial_or_page("staff/_contacts.html", customer, notice=notice)
    return _partial_or_page("staff/_contacts.html", customer, contact_form=form)


@bp.post("/customers/<customer_no>/contacts/<int:contact_id>/favorite")
@staff_required
def favorite(customer_no: str, contact_id: int):
    """Make a contact the favorite: mails go there when an order names no contact."""
    customer = _customer(customer_no)
    try:
        contact = make_favorite(customer_contact(customer, contact_id))
    except NotFound:
        abort(404)
    notice = _("%(email)s is now the favorite contact.", email=contact.email)
    return _partial_or_page("staff/_contacts.html", customer, notice=notice)


@bp.post("/customers/<customer_no>/contacts/<int:contact_id>/delete")
@staff_required
def remove_contact(customer_no: str, contact_id: int):
    """Remove a contact."""
    customer = _customer(customer_no)
    try:
        contact = customer_contact(customer, contact_id)
    except NotFound:
        abort(404)
    delete_contact(contact)
    notice = _("The contact %(email)s was removed.", email=contact.email)
    return _partial_or_page("staff/_contacts.html", customer, notice=notice)


# --- portal logins -------------------------------------------------------------------


def _login_refusal(form: Form, exc: Invalid | Conflict) -> None:
    if isinstance(exc, Conflict):
        form.refuse("username", _("This username is taken."))
    elif exc.field == "username":
        form.refuse("username", _("At most 100 characters without spaces."))
    elif exc.field == "email":
        form.refuse("email", _("This is not an email address."))
    else:
        form.refuse(exc.field, exc.message)


class _NoAddress(Exception):
    """The activation link has nowhere to go (the whole new login is not stored then)."""


def _send_link(customer: Customer, login: PortalLogin) -> str:
    """Queue a new activation link; returns the notice for staff. Inside a transaction."""
    kind = ActivationToken.KIND_RENEWAL if login.password_hash else ActivationToken.KIND_FIRST
    mail = send_activation_mail(
        _settings(), current_app.extensions["ptportal.links"], login, None, kind
    )
    return _(
        "A new activation link for %(username)s goes to %(address)s.",
        username=login.username,
        address=mail.recipients,
    )


@bp.post("/customers/<customer_no>/logins")
@staff_required
def add_login(customer_no: str):
    """Create a portal login from the system defaults (username, state) or as typed."""
    customer = _customer(customer_no)
    form = Form(request.form)
    has_logins = PortalLogin.select().where(PortalLogin.customer == customer).exists()
    username = form.text("username", max_length=100)
    # A further person gets the mails of their own login at their own address.
    email = form.email("email", required=has_logins)
    language = form.choice("language", ("", *LANGUAGES))
    state = form.choice("state", PortalLogin.STATES)
    send_link = form.checked("send_link")
    if send_link and state != PortalLogin.STATE_ACTIVE:
        form.error("send_link", _("Only an active login can get an activation link."))
    if send_link and not customer.portal_enabled:
        form.error("send_link", _("Switch the portal on for this customer first."))
    if form.ok:
        try:
            with write_transaction():
                login = create_login(customer, username, state, email, language)
                if login.is_active:
                    create_folders_for_customer(_settings(), customer)
                notice = _("The portal login %(username)s was created.", username=login.username)
                if send_link:
                    try:
                        notice += " " + _send_link(customer, login)
                    except Conflict:
                        raise _NoAddress() from None
        except _NoAddress:
            form.refuse("send_link", _("There is no usable address for the activation link."))
        except (Invalid, Conflict) as exc:
            _login_refusal(form, exc)
        else:
            current_app.extensions["ptportal.tasks"].deliver_soon()
            return _partial_or_page("staff/_logins.html", customer, notice=notice)
    return _partial_or_page("staff/_logins.html", customer, login_form=form)


@bp.post("/customers/<customer_no>/logins/<int:login_id>")
@staff_required
def edit_login(customer_no: str, login_id: int):
    """Adjust a login: username, own address, language."""
    customer = _customer(customer_no)
    login = _login(customer, login_id)
    form = Form(request.form)
    username = form.text("username", required=True, max_length=100)
    email = form.email("email")
    language = form.choice("language", ("", *LANGUAGES))
    if form.ok:
        try:
            login = update_login(login, username=username, email=email, language=language)
        except (Invalid, Conflict) as exc:
            _login_refusal(form, exc)
        else:
            notice = _("The portal login %(username)s was saved.", username=login.username)
            return _partial_or_page("staff/_logins.html", customer, notice=notice)
    form.data = form.data.copy()
    form.data["login_id"] = str(login.id)
    return _partial_or_page("staff/_logins.html", customer, edit_form=form)


@bp.post("/customers/<customer_no>/logins/<int:login_id>/state")
@staff_required
def login_state(customer_no: str, login_id: int):
    """Set a login active (its customer's order folders appear) or inactive (signed out)."""
    customer = _customer(customer_no)
    login = _login(customer, login_id)
    state = request.form.get("state", "")
    if state not in PortalLogin.STATES:
        abort(400)
    with write_transaction():
        set_login_state(_settings(), PortalLogin.get_by_id(login.id), state)
    if state == PortalLogin.STATE_ACTIVE:
        notice = _("%(username)s is active.", username=login.username)
    else:
        notice = _("%(username)s is inactive and signed out.", username=login.username)
    return _partial_or_page("staff/_logins.html", customer, notice=notice)


@bp.post("/customers/<customer_no>/logins/<int:login_id>/activation")
@staff_required
def send_activation(customer_no: str, login_id: int):
    """Send a new activation link (template "Hotfolder Portalzugang")."""
    customer = _customer(customer_no)
    login = _login(customer, login_id)
    if not login.is_active:
        notice = _(
            "Set %(username)s active first: the link of an inactive login does not work.",
            username=login.username,
        )
    elif not customer.portal_enabled:
        notice = _("Switch the portal on for this customer first.")
    else:
        try:
            with write_transaction():
                notice = _send_link(customer, login)
        except Conflict:
            notice = _(
                "There is no usable address for the activation link: add the login's own "
                "address, a contact or the customer's address."
            )
        else:
            current_app.extensions["ptportal.tasks"].deliver_soon()
    return _partial_or_page("staff/_logins.html", customer, notice=notice)
