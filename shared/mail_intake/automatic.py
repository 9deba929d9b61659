"""Mail that no person wrote: auto-replies (out of office, lists) and delivery reports.

Auto-replies are recorded but never answered, so two auto-responders cannot talk to each
other through the portal. Delivery reports name the recipients that failed, for the
bounce list; whether a failure is permanent is decided there (``is_hard_bounce``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from shared.mail_intake.headers import MailAddress, header_text

# Precedence values mailing lists and vacation programs set (RFC 2076; RFC 3834 §3.1.8).
_AUTOMATIC_PRECEDENCE = {"bulk", "junk", "auto_reply", "list"}
# Subjects auto-responders start with, in German, English and French. Whole phrases are
# specific enough on their own ("Out of Office: Druckdaten"); single words such as
# "Absence" only count when a colon or nothing follows ("Absence : …", not "Absence of …").
_PHRASES = (
    "abwesenheitsnotiz",
    "automatische antwort",
    "automatische rückantwort",
    "out of office",
    "out-of-office",
    "automatic reply",
    "auto-reply",
    "autoreply",
    "auto reply",
    "réponse automatique",
    "reponse automatique",
    "message d'absence",
    "absent du bureau",
)
_WORDS = ("absence", "absent", "abwesend", "abwesenheit", "vacation", "congés")
_SUBJECT = re.compile(
    r"^\s*(?:"
    + "|".join(re.escape(phrase).replace(r"\ ", r"\s+") for phrase in _PHRASES)
    + r"|(?:"
    + "|".join(re.escape(word) for word in _WORDS)
    + r")\s*(?::|$))",
    re.IGNORECASE,
)
_BOUNCE_SENDERS = {"mailer-daemon", "postmaster"}
_SMTP_CODE = re.compile(r"\b([245]\d\d)\b")


@dataclass(frozen=True)
class DeliveryStatus:
    """One recipient block of a delivery report (RFC 3464)."""

    recipient: str
    action: str  # failed, delayed, delivered, relayed, expanded
    status: str  # enhanced status code such as 5.1.1, or ""
    diagnostic: str
    smtp_code: int | None  # from "Diagnostic-Code: smtp; 550 …", for is_hard_bounce

    @property
    def failed(self) -> bool:
        return self.action == "failed" or self.status.startswith("5")


def auto_reply_reason(message: Message, subject: str) -> str:
    """Why ``message`` is an automatic reply, or "" when a person seems to have written it."""
    auto_submitted = header_text(message, "Auto-Submitted").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response"):
        if header_text(message, name):
            return f"{name} header"
    precedence = header_text(message, "Precedence").lower()
    if precedence in _AUTOMATIC_PRECEDENCE:
        return f"Precedence: {precedence}"
    if _SUBJECT.match(subject):
        return f"out-of-office subject: {subject[:80]}"
    return ""


def is_delivery_report(message: Message, sender: MailAddress | None) -> bool:
    """A DSN (multipart/report; report-type=delivery-status) or mail from a mailer daemon."""
    if (
        message.get_content_type() == "multipart/report"
        and str(message.get_param("report-type", "")).lower() == "delivery-status"
    ):
        return True
    local_part = sender.address.rsplit("@", 1)[0].lower() if sender else ""
    return local_part in _BOUNCE_SENDERS


def delivery_statuses(message: Message) -> tuple[DeliveryStatus, ...]:
    """Every recipient block of the report's message/delivery-status part.

    Mailers that send no such part often name the failed recipients in
    ``X-Failed-Recipients`` (Exim); those count as failed with an unknown status.
    """
    found: list[DeliveryStatus] = []
    for part in message.walk():
        if part.get_content_type() == "message/delivery-status":
            found.extend(_recipient_blocks(part))
    if not found:
        for address in header_text(message, "X-Failed-Recipients").split(","):
            if "@" in address:
                found.append(DeliveryStatus(address.strip(), "failed", "", "", None))
    return tuple(found)


def _recipient_blocks(part: Message) -> list[DeliveryStatus]:
    """The per-recipient field groups; the first group (per-message fields) names nobody."""
    payload = part.get_payload()
    blocks = payload if isinstance(payload, list) else []
    statuses = []
    for block in blocks:
        recipient = _address_field(block.get("Final-Recipient") or block.get("Original-Recipient"))
        if not recipient:
            continue
        diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
        code = _SMTP_CODE.search(diagnostic.partition(";")[2] or diagnostic)
        statuses.append(
            DeliveryStatus(
                recipient=recipient,
                action=str(block.get("Action", "")).strip().lower(),
                status=str(block.get("Status", "")).strip().split(" ")[0],
                diagnostic=diagnostic[:500],
                smtp_code=int(code.group(1)) if code else None,
            )
        )
    return statuses


def _address_field(value: object) -> str:
    """``user@example.com`` from ``rfc822; <user@example.com>``."""
    text = str(value or "")
    address = text.partition(";")[2] if ";" in text else text
    address = address.strip().strip("<>").strip()
    return address if "@" in address else ""
