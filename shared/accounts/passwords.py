"""Password rules (NIST SP 800-63B style) and Argon2id hashing.

Rules: at least 12 characters, up to 256, no composition rules, not the
username, not in the shipped list of common passwords (zxcvbn's list, MIT).
Anything over 1 KiB is refused before it reaches the hasher.

Hashing uses argon2-cffi's Argon2id with the parameters from client.ini; the
defaults (t=3, m=64 MiB, p=4) are RFC 9106's second recommended profile.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import cache
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from shared.config import SecuritySettings

MIN_LENGTH = 12
MAX_LENGTH = 256
MAX_INPUT_BYTES = 1024

RULE_LENGTH = "length"
RULE_TOO_LONG = "too_long"
RULE_USERNAME = "username"
RULE_COMMON = "common"


@dataclass(frozen=True)
class PasswordCheck:
    """Which rules a candidate password breaks; empty means acceptable."""

    broken: frozenset[str]
    length: int

    @property
    def ok(self) -> bool:
        return not self.broken


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lower-cased."""
    text = resources.files("shared").joinpath("data/common-passwords.txt").read_text("utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def check_password(password: str, username: str = "") -> PasswordCheck:
    """Check ``password`` against the rules without hashing it."""
    broken = set()
    if len(password.encode("utf-8")) > MAX_INPUT_BYTES or len(password) > MAX_LENGTH:
        broken.add(RULE_TOO_LONG)
    elif len(password) < MIN_LENGTH:
        broken.add(RULE_LENGTH)
    folded = password.strip().casefold()
    if username and folded == username.strip().casefold():
        broken.add(RULE_USERNAME)
    if folded in common_passwords():
        broken.add(RULE_COMMON)
    return PasswordCheck(frozenset(broken), len(password))


def make_hasher(security: SecuritySettings) -> PasswordHasher:
    """An Argon2id hasher with the configured cost."""
    return PasswordHasher(
        time_cost=security.argon2_time_cost,
        memory_cost=security.argon2_memory_kib,
        parallelism=security.argon2_parallelism,
        type=Type.ID,
    )


def argon2_slots(security: SecuritySettings) -> int:
    """How many Argon2 computations may run at once in one process.

    Each holds its memory cost (64 MiB by default) until it ends and already keeps
    ``parallelism`` threads busy: more at once only adds memory, not speed
    (bench/README.md, benchmark 6).
    """
    return max(1, (os.cpu_count() or 1) // security.argon2_parallelism)


class PasswordVault:
    """Hashes and verifies passwords; tells when a stored hash should be upgraded."""

    def __init__(self, security: SecuritySettings) -> None:
        self._hasher = make_hasher(security)
        self._slots = threading.BoundedSemaphore(argon2_slots(security))
        self._dummy_hash = self.hash("timing-equaliser-not-a-password")

    def hash(self, password: str) -> str:
        with self._slots:
            return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True if ``password`` matches; costs the same when there is no stored hash."""
        if len(password.encode("utf-8")) > MAX_INPUT_BYTES:
            return False
        try:
            with self._slots:
                matches = self._hasher.verify(stored_hash or self._dummy_hash, password)
            return matches and bool(stored_hash)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)
