"""The mail with which a staff user sets (or resets) their password: template
``Mitarbeiterzugang``, a single-use link, never a password."""

from __future__ import annotations

from shared import audit
from shared.accounts.staff import issue_staff_token
from shared.config import Settings
from shared.errors import Conflict
from shared.links import PortalLinks
from shared.mail.bounces import bounced
from shared.mail.defaults import STAFF_ACTIVATION_TEMPLATE
from shared.mail.outbox import queue_mail
from shared.mail.templates import active_signature, find_template, render_mail, template_context
from shared.models import OutboxMail, StaffUser


def send_staff_activation(settings: Settings, links: PortalLinks, staff: StaffUser) -> OutboxMail:
    """Queue the mail with a fresh link to the staff user's own address; inside a transaction.

    Raises Conflict when the user has no usable address or is disabled (nothing is written).
    """
    if not staff.active:
        raise Conflict(f"staff user {staff.username!r} is disabled")
    if not staff.email or bounced([staff.email]):
        raise Conflict(f"staff user {staff.username!r} has no usable email address")
    token = issue_staff_token(settings, staff)
    context = template_context(
        portal_client_username=staff.username,
        portal_first_activation_link=links.staff_activation(token),
        link_valid_minutes=str(settings.portal.activation_link_minutes),
    )
    template = find_template(STAFF_ACTIVATION_TEMPLATE, settings.notifications.staff_language)
    mail = render_mail(template, active_signature(), context)
    row = queue_mail(
        kind="staff-activation",
        sender=settings.smtp.email,
        recipients=[staff.email],
        recipient_reason="the staff user's address",
        mail=mail,
    )
    audit.record(audit.STAFF_LINK_SENT, f"staff {staff.username}", f"to {staff.email}")
    return row
