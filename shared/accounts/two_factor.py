"""Two-factor sign-in for staff: TOTP (RFC 6238, any authenticator app) and recovery codes.

- Setting up: a new secret is shown (as a QR code, drawn by the portal) and only stored
  once a code computed from it has been typed in, so a mistyped scan locks nobody out.
- Signing in: a code of the current 30-second step or of the one before or after (clocks
  drift); each step works once per user (``totp_last_step``), so a code seen over a
  shoulder cannot be replayed.
- Recovery codes: ten random codes of 80 bits, shown once, stored as SHA-256 (with that
  much randomness a slow hash adds nothing), each usable once instead of a TOTP code.
"""

from __future__ import annotations

import secrets
import time

import pyotp

from shared import audit
from shared.accounts.staff import record_staff_sign_in, two_factor_required
from shared.clock import utcnow
from shared.db import write_transaction
from shared.errors import Conflict, Invalid
from shared.models import RecoveryCode, StaffUser
from shared.tokens import token_hash

RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
_RECOVERY_LENGTH = 16  # 16 characters of 31: 79 bits


def new_secret() -> str:
    """A fresh TOTP secret (base32, 160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, username: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def _clean(code: str) -> str:
    return "".join(character for character in code.lower() if character.isalnum())


def _matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step whose TOTP equals ``code`` (now, one before or one after), or None."""
    code = _clean(code)
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now = time.time() if now is None else now
    current = int(now // totp.interval)
    for step in (current, current - 1, current + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _new_recovery_codes(staff: StaffUser) -> list[str]:
    """Replace the user's recovery codes; returns the new ones (shown once)."""
    RecoveryCode.delete().where(RecoveryCode.staff == staff).execute()
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        codes.append("-".join(raw[index : index + 4] for index in range(0, len(raw), 4)))
        RecoveryCode.create(staff=staff, code_hash=token_hash(raw))
    return codes


def enable(staff: StaffUser, secret: str, code: str, now: float | None = None) -> list[str]:
    """Store ``secret`` once ``code`` proves the app has it; returns the recovery codes."""
    step = _matching_step(secret, code, now)
    if step is None:
        raise Invalid("code", "the code does not match; check the phone's time and try again")
    with write_transaction():
        staff = StaffUser.get_by_id(staff.id)
        staff.totp_secret = secret
        staff.totp_enabled_at = utcnow()
        staff.totp_last_step = step
        staff.save()
        codes = _new_recovery_codes(staff)
        audit.record(audit.TWO_FACTOR_ENABLE, f"staff {staff.username}")
    return codes


def disable(staff: StaffUser, *, by_admin: bool = False) -> None:
    """Switch two-factor sign-in off (an admin may do it for someone who lost everything).

    Staff cannot switch it off for themselves while admins require it.
    """
    if two_factor_required() and not by_admin:
        raise Conflict("two-factor sign-in is required for every staff user")
    with write_transaction():
        StaffUser.update(totp_secret=None, totp_enabled_at=None, totp_last_step=0).where(
            StaffUser.id == staff.id
        ).execute()
        RecoveryCode.delete().where(RecoveryCode.staff == staff).execute()
        detail = "by an admin" if by_admin else ""
        audit.record(audit.TWO_FACTOR_DISABLE, f"staff {staff.username}", detail)


def renew_recovery_codes(staff: StaffUser) -> list[str]:
    """New recovery codes; the old ones stop working."""
    if not staff.has_two_factor:
        raise Conflict("two-factor sign-in is not set up")
    with write_transaction():
        codes = _new_recovery_codes(staff)
        audit.record(audit.RECOVERY_CODES_NEW, f"staff {staff.username}")
    return codes


def unused_recovery_codes(staff: StaffUser) -> int:
    return (
        RecoveryCode.select()
        .where((RecoveryCode.staff == staff) & RecoveryCode.used_at.is_null())
        .count()
    )


def verify(staff: StaffUser, code: str, now: float | None = None) -> bool:
    """The second step of a sign-in: a TOTP code, or an unused recovery code.

    A success is recorded as the staff user's sign-in, a failure as such.
    """
    with write_transaction():
        staff = StaffUser.get_by_id(staff.id)
        if staff.active and staff.totp_secret:
            step = _matching_step(staff.totp_secret, code, now)
            if step is not None and step > staff.totp_last_step:
                staff.totp_last_step = step
                staff.save(only=[StaffUser.totp_last_step])
                record_staff_sign_in(staff, "password and TOTP code")
                return True
            if _use_recovery_code(staff, code):
                left = unused_recovery_codes(staff)
                audit.record(
                    audit.RECOVERY_CODE_USED,
                    f"staff {staff.username}",
                    f"{left} left",
                    actor=audit.current_actor().as_(audit.ACTOR_STAFF, staff.username),
                )
                record_staff_sign_in(staff, "password and recovery code")
                return True
        audit.record(audit.SECOND_FACTOR_FAILED, f"staff {staff.username}", "wrong code")
        return False


def _use_recovery_code(staff: StaffUser, code: str) -> bool:
    cleaned = _clean(code)
    if len(cleaned) != _RECOVERY_LENGTH:
        return False
    return bool(
        RecoveryCode.update(used_at=utcnow())
        .where(
            (RecoveryCode.staff == staff)
            & (RecoveryCode.code_hash == token_hash(cleaned))
            & RecoveryCode.used_at.is_null()
        )
        .execute()
    )


def enrol_at_sign_in(staff: StaffUser, secret: str, code: str, now: float | None = None):
    """Set up TOTP as the second step of a sign-in (admins require it, none set up yet):
    returns the recovery codes and records the sign-in."""
    codes = enable(staff, secret, code, now)
    with write_transaction():
        record_staff_sign_in(staff, "password and a newly set-up TOTP code")
    return codes
