"""Staff pages for orders: the list with filters, a new order, and on an order's page its
details (edit, owner, close, cancel, reopen) and its tickets."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.forms import Form, done, reply
from portal.partials import page_number, wants_fragment
from portal.users import staff_required
from shared.accounts.customers import contacts_of
from shared.errors import Conflict, Invalid, NotFound
from shared.files.access import reachable_order
from shared.mail.templates import TemplateProblem
from shared.models import Order, StaffUser
from shared.orders import orders as new_order
from shared.orders.listing import NO_OWNER, OrderFilter, filter_orders, order_states
from shared.orders.orders import (
    MAX_JOB_DESCRIPTION,
    add_ticket,
    create_order,
    set_order_state,
    tickets_of,
    update_order,
)

# "/staff/new-order", not "/staff/orders/new": that is the page of order "new".
bp = Blueprint("staff_orders", __name__, url_prefix="/staff")


def _settings():
    return current_app.config["PTPORTAL_SETTINGS"]


def _order(project_no: str) -> Order:
    order = reachable_order(project_no, None)
    if order is None:
        abort(404)
    return order


def owner_choices(current: StaffUser | None = None) -> list[StaffUser]:
    """Active staff users (and the current owner, even if disabled), by name."""
    condition = StaffUser.active == True  # noqa: E712
    if current is not None:
        condition |= StaffUser.id == current.id
    return list(StaffUser.select().where(condition).order_by(StaffUser.name))


def owner_options(owners: list[StaffUser]) -> list[tuple[str, str]]:
    """(username, label) pairs for the owner select, "nobody" first."""
    options = [("", _("nobody"))]
    for staff in owners:
        label = f"{staff.name} ({staff.username})"
        options.append((staff.username, label if staff.active else f"{label} – {_('disabled')}"))
    return options


# --- list ------------------------------------------------------------------------


@bp.get("/orders/")
@staff_required
def index():
    """Every order, narrowed by search text, customer, state and owner."""
    typed = {
        name: request.args.get(name, "").strip()[:100]
        for name in ("q", "customer", "state", "owner")
    }
    filters = OrderFilter(
        query=typed["q"],
        customer_no=typed["customer"],
        state=typed["state"] if typed["state"] in Order.STATES else "",
        owner=typed["owner"],
    )
    page = filter_orders(filters, page_number())
    context = {
        "page": page,
        "states": order_states(page.items),
        "typed": typed,
        "order_states": Order.STATES,
        "owners": owner_choices(),
        "no_owner": NO_OWNER,
    }
    template = "staff/_order_table.html" if wants_fragment() else "staff/orders.html"
    return render_template(template, **context)


# --- new order ---------------------------------------------------------------------


def _new_context(form: Form) -> dict:
    return {
        "form": form,
        "owner_options": owner_options(owner_choices()),
        "max_job": MAX_JOB_DESCRIPTION,
    }


@bp.get("/new-order")
@staff_required
def new():
    """The form for a new order (the customer prefilled when coming from its page)."""
    typed = {"customer_no": request.args.get("customer", ""), "owner": current_user.staff.username}
    return render_template("staff/order_new.html", **_new_context(Form(typed)))


def _order_refusal(form: Form, exc: Exception) -> None:
    if isinstance(exc, Conflict):
        form.refuse("project_no", _("An order with this number exists already."))
    elif isinstance(exc, TemplateProblem):
        form.refuse("project_no", str(exc))
    elif exc.field == "project_no":
        form.refuse("project_no", _("Use 1–64 letters, digits, '.', '_' or '-'."))
    elif exc.field == "customer_no":
        form.refuse("customer_no", _("There is no customer with this number."))
    elif exc.field == "contact_email" and "usable" in exc.message:
        form.refuse(
            "contact_email",
            _(
                "The customer has no address for the portal access: give a contact's "
                "address here or add one to the customer."
            ),
        )
    elif exc.field == "contact_email":
        form.refuse("contact_email", _("This is not an email address."))
    elif exc.field == "owner":
        form.refuse("owner", _("Please choose an active staff user."))
    else:
        form.refuse(exc.field, exc.message)


@bp.post("/new-order")
@staff_required
def create():
    """Create the order; the portal login, activation mail and folders follow the switches."""
    form = Form(request.form)
    values = {
        "project_no": form.text("project_no", required=True, max_length=64),
        "customer_no": form.text("customer_no", required=True, max_length=64),
        "job_description": form.text("job_description", max_length=MAX_JOB_DESCRIPTION),
        "due_date": form.date("due_date"),
        "contact_email": form.email("contact_email"),
        "owner": form.text("owner", max_length=100),
    }
    if form.ok:
        try:
            order, actions = create_order(
                _settings(), current_app.extensions["ptportal.links"], **values
            )
        except (Invalid, Conflict, TemplateProblem) as exc:
            _order_refusal(form, exc)
        else:
            current_app.extensions["ptportal.tasks"].deliver_soon()
            flash(_("The order %(number)s was created.", number=order.project_no))
            for action in actions:
                flash(_action_text(action))
            return done(url_for("staff.show_order", project_no=order.project_no))
    return reply("staff/_order_new_form.html", "staff/order_new.html", **_new_context(form))


def _action_text(action: str) -> str:
    return {
        new_order.ACTION_LOGIN_CREATED: _("A portal login was created for the customer."),
        new_order.ACTION_ACTIVATION_QUEUED: _("The activation mail is on its way to the customer."),
        new_order.ACTION_LOGIN_ACTIVATED: _("The portal login was set active."),
        new_order.ACTION_FOLDERS_CREATED: _("The order's folders exist."),
    }.get(action, action)


# --- on the order's page -------------------------------------------------------------


def _order_values(order: Order) -> dict[str, str]:
    return {
        "job_description": order.job_description,
        "due_date": order.due_date.isoformat() if order.due_date else "",
        "contact_email": order.contact.email if order.contact_id else "",
        "owner": order.owner.username if order.owner_id else "",
    }


def order_panels(order: Order, **forms) -> dict:
    """What the staff order page's details and tickets partials need."""
    return {
        "order_form": forms.get("order_form") or Form(_order_values(order)),
        "ticket_form": forms.get("ticket_form") or Form(),
        "owner_options": owner_options(owner_choices(order.owner if order.owner_id else None)),
        "contacts": contacts_of(order.customer),
        "tickets": tickets_of(order),
        "order_states": Order.STATES,
        "max_job": MAX_JOB_DESCRIPTION,
        "notice": forms.get("notice", ""),
        "ticket_notice": forms.get("ticket_notice", ""),
    }


def _after(partial: str, order: Order, **forms):
    """htmx: the partial again; a browser: the order page (with problems: 422)."""
    order = Order.get_by_id(order.id)
    context = {"order": order, **order_panels(order, **forms)}
    if wants_fragment():
        return render_template(partial, **context)
    failed = any(isinstance(f, Form) and not f.ok for f in forms.values())
    if failed:
        flash(_("Please check the form."))
    for key in ("notice", "ticket_notice"):
        if forms.get(key):
            flash(forms[key])
    return redirect(url_for("staff.show_order", project_no=order.project_no), 303)


@bp.post("/orders/<project_no>/edit")
@staff_required
def edit(project_no: str):
    """Change job description, due date, contact and owner."""
    order = _order(project_no)
    form = Form(request.form)
    values = {
        "job_description": form.text("job_description", max_length=MAX_JOB_DESCRIPTION),
        "due_date": form.date("due_date"),
        "contact_email": form.email("contact_email"),
        "owner": form.text("owner", max_length=100),
    }
    if form.ok:
        try:
            update_order(project_no, **values)
        except (Invalid, Conflict, NotFound) as exc:
            if isinstance(exc, NotFound):
                abort(404)
            _order_refusal(form, exc)
        else:
            return _after("staff/_order_details.html", order, notice=_("The order was saved."))
    return _after("staff/_order_details.html", order, order_form=form)


@bp.post("/orders/<project_no>/state")
@staff_required
def state(project_no: str):
    """Close or cancel the order, or open it again."""
    order = _order(project_no)
    wanted = request.form.get("state", "")
    if wanted not in Order.STATES:
        abort(400)
    set_order_state(project_no, wanted)
    notice = {
        Order.STATE_OPEN: _("The order is open again."),
        Order.STATE_CLOSED: _("The order is closed: no more uploads, reminders or digest lines."),
        Order.STATE_CANCELLED: _(
            "The order is cancelled: no more uploads, reminders or digest lines."
        ),
    }[wanted]
    return _after("staff/_order_details.html", order, notice=notice)


@bp.post("/orders/<project_no>/tickets")
@staff_required
def add_ticket_view(project_no: str):
    """Add a ticket (Vorgangsticket) to the order."""
    order = _order(project_no)
    form = Form(request.form)
    ticket_no = form.text("ticket_no", required=True, max_length=64)
    title = form.text("title", max_length=200)
    if form.ok:
        try:
            ticket = add_ticket(project_no, ticket_no, title)
        except Conflict:
            form.refuse("ticket_no", _("This order has a ticket with this number already."))
        except Invalid as exc:
            form.refuse(exc.field, exc.message)
        else:
            current_app.extensions["ptportal.tasks"].deliver_soon()
            notice = _("The ticket %(number)s was added.", number=ticket.ticket_no)
            return _after("staff/_order_tickets.html", order, ticket_notice=notice)
    return _after("staff/_order_tickets.html", order, ticket_form=form)
