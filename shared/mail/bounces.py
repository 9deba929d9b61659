"""Hard bounces: addresses that are not mailed again until staff clear them.

An address lands here when the mail server answers its RCPT with a permanent
"no such user" (5xx with enhanced status 5.1.x, or a bare 550/551/553) or when
staff mark it bounced by hand. A policy refusal such as ``550 5.7.1 relaying
denied`` says nothing about the address and does not count.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from shared.clock import utcnow
from shared.errors import NotFound
from shared.mail.addresses import check_email, normalise
from shared.models import BouncedAddress, StaffUser

log = logging.getLogger(__name__)

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.\d{1,3}\b")
_USER_UNKNOWN_CODES = (550, 551, 553)


def is_hard_bounce(code: int, answer: str) -> bool:
    """True if an RCPT answer says the mailbox does not exist (for good)."""
    if code < 500:
        return False
    enhanced = _ENHANCED.match(answer)
    if enhanced:
        return enhanced.group(1) == "5" and enhanced.group(2) == "1"
    return code in _USER_UNKNOWN_CODES


def bounced(addresses: Iterable[str]) -> set[str]:
    """Those of ``addresses`` (normalised) that are on the bounce list."""
    wanted = {normalise(address) for address in addresses if address}
    if not wanted:
        return set()
    rows = BouncedAddress.select(BouncedAddress.email).where(BouncedAddress.email.in_(wanted))
    return {row.email for row in rows}


def is_bounced(address: str) -> bool:
    return bool(bounced([address]))


def record_bounce(address: str, reason: str, staff: StaffUser | None = None) -> BouncedAddress:
    """Put ``address`` on the bounce list (or refresh its reason); call inside a transaction."""
    email = normalise(address)
    row, created = BouncedAddress.get_or_create(
        email=email, defaults={"reason": reason, "created_by": staff}
    )
    if not created:
        row.reason = reason
        row.created_by = staff
        row.created_at = utcnow()
        row.save()
    log.warning("address %s is on the bounce list: %s", email, reason)
    return row


def mark_bounced(address: str, reason: str, staff: StaffUser) -> BouncedAddress:
    """Staff put an address on the list by hand; call inside a transaction."""
    check_email("email", normalise(address), required=True)
    return record_bounce(address, reason or "marked by staff", staff)


def clear_bounce(bounce_id: int) -> str:
    """Take an address off the list so it is mailed again; returns the address."""
    row = BouncedAddress.get_or_none(BouncedAddress.id == bounce_id)
    if row is None:
        raise NotFound("this address is not on the bounce list")
    row.delete_instance()
    log.info("address %s cleared from the bounce list", row.email)
    return row.email


def bounce_list() -> list[BouncedAddress]:
    """Every address on the bounce list, newest first."""
    return list(BouncedAddress.select().order_by(BouncedAddress.created_at.desc()))
