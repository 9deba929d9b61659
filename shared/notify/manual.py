"""Staff send any template about an order to its customer by hand (seed 004).

The template's owner is the sender and gets a copy; a template without owner
goes out from the portal's address and the copy goes to whoever pressed send.
"""

from __future__ import annotations

from email.utils import formataddr

from shared.accounts.logins import issue_token, primary_login
from shared.config import Settings
from shared.errors import Conflict
from shared.links import PortalLinks
from shared.mail.outbox import queue_mail
from shared.mail.templates import RenderedMail, active_signature, render_mail, template_context
from shared.models import ActivationToken, EmailTemplate, Order, OutboxMail, StaffUser
from shared.notify.compose import customer_language, order_values, reply_address, with_reference
from shared.notify.recipients import Addressee, customer_address

FIRST_LINK = "portal_first_activation_link"


def recipient(order: Order) -> Addressee:
    """The customer address (order contact, favorite, customer email); no staff escalation."""
    found = customer_address(order.customer, order)
    if found is None:
        raise Conflict(
            f"customer {order.customer.customer_no} has no usable email address "
            "(none stored, or all on the bounce list)"
        )
    return found


def _sender(settings: Settings, template: EmailTemplate, staff: StaffUser) -> tuple[str, str]:
    """(From, copy address): the template's owner when it has a usable one."""
    owner = template.owner if template.owner_id else None
    if owner is not None and owner.active and owner.email:
        return formataddr((owner.name, owner.email)), owner.email
    return settings.smtp.email, staff.email


def render_manual(
    settings: Settings,
    links: PortalLinks,
    template: EmailTemplate,
    order: Order,
    *,
    with_link: bool,
) -> RenderedMail:
    """The mail as the customer gets it; ``with_link`` issues a real activation link."""
    customer = order.customer
    language = customer_language(customer)
    values = order_values(links, order, customer, language)
    login = primary_login(customer)
    if FIRST_LINK in template.content and login is not None and login.is_active:
        if with_link:
            token = issue_token(settings, login, ActivationToken.KIND_RENEWAL)
            values[FIRST_LINK] = links.activation(token, language)
        else:
            values[FIRST_LINK] = "(link created when the mail is sent)"
    values["link_valid_minutes"] = str(settings.portal.activation_link_minutes)
    mail = render_mail(template, active_signature(), template_context(**values))
    return with_reference(mail, order.project_no, template.language)


def send_manual(
    settings: Settings,
    links: PortalLinks,
    template: EmailTemplate,
    order: Order,
    staff: StaffUser,
) -> list[OutboxMail]:
    """Queue the mail to the customer and the sender's copy; call inside a transaction."""
    to = recipient(order)
    sender, copy_to = _sender(settings, template, staff)
    mail = render_manual(settings, links, template, order, with_link=True)
    common = {"sender": sender, "mail": mail, "customer": order.customer, "order": order}
    rows = [
        queue_mail(
            kind="manual",
            recipients=[to.email],
            recipient_reason=f"{to.reason}, sent by {staff.username}",
            reply_to=reply_address(settings, order),
            **common,
        )
    ]
    if copy_to:
        rows.append(
            queue_mail(
                kind="manual-copy",
                recipients=[copy_to],
                recipient_reason="copy for the sender",
                **common,
            )
        )
    return rows
