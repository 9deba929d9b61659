"""Matching rules on plain data: order, inbox, record only, bounce — and the sender check."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.mail_intake.automatic import DeliveryStatus
from shared.mail_intake.headers import MailAddress
from shared.mail_intake.matching import (
    BOUNCE,
    Decision,
    OrderFacts,
    SenderFacts,
    bounce,
    decide,
    may_answer_automatically,
    record_only,
    subject_project_numbers,
    to_inbox,
    to_order,
)
from shared.mail_intake.parsing import InboundMail

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: no database here

ANNA = "anna@kunde.example"
ORDER_4711 = OrderFacts(
    4711, "4711", frozenset({"Anna@Kunde.example", "buero@kunde.example"}), True
)
ORDER_4712 = OrderFacts(4712, "A-4712", frozenset({"einkauf@andere.example"}), True)
CLOSED_4700 = OrderFacts(4700, "4700", frozenset({ANNA}), False)
SENT = {"<portal-1@druckerei.example>": ORDER_4711, "<portal-2@druckerei.example>": ORDER_4712}
PROJECTS = {"4711": ORDER_4711, "A-4712": ORDER_4712, "4700": CLOSED_4700}
SENDERS = {
    ANNA: SenderFacts(customer_ids=(1,), open_order_ids=(4711,)),
    "buero@kunde.example": SenderFacts(customer_ids=(1, 2), open_order_ids=(4711, 4715)),
    "neu@kunde.example": SenderFacts(customer_ids=(1,), open_order_ids=()),
}


def inbound(
    sender: str | None = ANNA,
    subject: str = "Druckdaten",
    in_reply_to: tuple[str, ...] = (),
    references: tuple[str, ...] = (),
    **changes,
) -> InboundMail:
    mail = InboundMail(
        message_id="<m@kunde.example>",
        message_id_synthesised=False,
        in_reply_to=in_reply_to,
        references=references,
        sender=MailAddress(sender, "") if sender else None,
        to=(),
        cc=(),
        reply_to=(),
        subject=subject,
        date=None,
        auto_reply=False,
        auto_reply_reason="",
        delivery_report=False,
        delivery_statuses=(),
        text_body="",
        quoted_history="",
        html_body="",
        attachments=(),
        over_limits="",
        problems=(),
        size=0,
        sha256="",
    )
    return replace(mail, **changes)


def run(mail: InboundMail) -> Decision:
    return decide(mail, SENT.get, PROJECTS.get, SENDERS.get)


def test_reply_to_a_portal_mail_goes_to_its_order() -> None:
    decision = run(inbound(in_reply_to=("<portal-1@druckerei.example>",)))
    assert decision == to_order(4711, "reply to portal mail <portal-1@druckerei.example>")


def test_references_count_newest_first() -> None:
    decision = run(
        inbound(
            sender="einkauf@andere.example",
            references=("<portal-1@druckerei.example>", "<portal-2@druckerei.example>"),
        )
    )
    assert decision == to_order(4712, "reply to portal mail <portal-2@druckerei.example>")


def test_the_message_id_match_wins_over_the_subject() -> None:
    decision = run(
        inbound(subject="[Auftrag A-4712]", in_reply_to=("<portal-1@druckerei.example>",))
    )
    assert decision.order_id == 4711


@pytest.mark.parametrize(
    "subject",
    [
        "[Auftrag 4711] Druckdaten",
        "AW: [Auftrag 4711] Druckdaten",
        "Re: WG: Fwd: [auftrag 4711]",
        "[AUFTRAG: 4711]",
        "[Auftrag Nr. 4711] Korrektur",
        "[Order 4711] proofs",
        "RE: [order #4711]",
        "[Commande 4711] épreuves",
        "Fwd: [Commande n° 4711]",
        "RE : [Commande 4711] Message concernant votre commande 4711",
        "TR : RE : [Commande 4711] Vos fichiers sont disponibles",
    ],
)
def test_subject_reference_goes_to_the_order(subject: str) -> None:
    assert run(inbound(subject=subject)) == to_order(4711, "subject names order 4711")


def test_subject_reference_with_letters_and_unknown_numbers() -> None:
    assert subject_project_numbers("[Auftrag A-4712] und [Order 9999]") == ("A-4712", "9999")
    assert subject_project_numbers("Auftrag 4711 ohne Klammern") == ()
    decision = run(inbound(subject="[Auftrag 9999] unbekannt"))
    assert decision == to_inbox("known sender with one open order", suggested_order_id=4711)


def test_sender_addresses_compare_case_insensitively() -> None:
    decision = run(inbound(sender="ANNA@KUNDE.EXAMPLE", subject="[Auftrag 4711]"))
    assert decision == to_order(4711, "subject names order 4711")


def test_sender_check_stops_a_subject_naming_another_customers_order() -> None:
    decision = run(inbound(subject="[Auftrag A-4712] bitte stornieren"))
    assert decision == to_inbox(
        "subject names order A-4712, but the sender anna@kunde.example "
        "is not an address of its customer",
        suggested_order_id=4712,
    )


def test_sender_check_stops_a_reply_from_someone_else() -> None:
    decision = run(
        inbound(sender="fremd@evil.example", in_reply_to=("<portal-1@druckerei.example>",))
    )
    assert decision == to_inbox(
        "reply to portal mail <portal-1@druckerei.example>, but the sender "
        "fremd@evil.example is not an address of its customer",
        suggested_order_id=4711,
    )


def test_sender_check_without_a_sender() -> None:
    decision = run(inbound(sender=None, subject="[Auftrag 4711]"))
    assert decision == to_inbox(
        "subject names order 4711, but the sender (none) is not an address of its customer",
        suggested_order_id=4711,
    )


def test_a_closed_order_is_suggested_not_written_into() -> None:
    decision = run(inbound(subject="[Auftrag 4700] Nachbestellung"))
    assert decision == to_inbox(
        "subject names order 4700, but the order is closed", suggested_order_id=4700
    )


def test_known_sender_with_one_open_order_is_suggested() -> None:
    decision = run(inbound(subject="Neue Daten"))
    assert decision == to_inbox("known sender with one open order", suggested_order_id=4711)


@pytest.mark.parametrize(
    ("sender", "reason"),
    [
        ("buero@kunde.example", "known sender with 2 open orders"),
        ("neu@kunde.example", "known sender with 0 open orders"),
        ("wer@unbekannt.example", "unknown sender"),
        (None, "no sender address"),
    ],
)
def test_everyone_else_goes_to_the_inbox(sender: str | None, reason: str) -> None:
    assert run(inbound(sender=sender, subject="Hallo")) == to_inbox(reason)


def test_auto_replies_are_recorded_with_their_order_only() -> None:
    oof = inbound(
        subject="Abwesenheitsnotiz: [Auftrag 4711]",
        auto_reply=True,
        auto_reply_reason="out-of-office subject: Abwesenheitsnotiz: [Auftrag 4711]",
    )
    assert run(oof) == record_only(
        "automatic reply (out-of-office subject: Abwesenheitsnotiz: [Auftrag 4711])", 4711
    )
    stranger = replace(oof, sender=MailAddress("fremd@evil.example", ""))
    assert run(stranger).order_id is None
    assert run(stranger).action == "record_only"


def failure(address: str, action: str = "failed", status: str = "5.1.1") -> DeliveryStatus:
    return DeliveryStatus(address, action, status, "", 550)


def test_delivery_reports_bounce_the_failed_addresses() -> None:
    report = inbound(
        sender="MAILER-DAEMON@mx.example",
        delivery_report=True,
        auto_reply=True,
        auto_reply_reason="Auto-Submitted: auto-replied",
        delivery_statuses=(
            failure("Gone@Kunde.example"),
            failure("slow@x.example", "delayed", "4.4.1"),
            failure("gone@kunde.example"),
        ),
    )
    decision = run(report)
    assert decision == bounce(["gone@kunde.example"])
    assert (decision.action, decision.addresses) == (BOUNCE, ("gone@kunde.example",))


def test_delivery_reports_without_failures() -> None:
    delayed = inbound(
        delivery_report=True, delivery_statuses=(failure("slow@x.example", "delayed", "4.4.1"),)
    )
    unreadable = inbound(delivery_report=True)
    assert run(delayed) == record_only("delivery report without a failed recipient (e.g. delayed)")
    assert run(unreadable) == to_inbox(
        "delivery report that names no recipient in a form we can read"
    )


NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("last", "allowed"),
    [
        (None, True),
        (NOW - timedelta(minutes=59, seconds=59), False),
        (NOW - timedelta(hours=1), True),
        (NOW - timedelta(days=3), True),
        (NOW, False),
    ],
)
def test_one_automatic_answer_per_sender_and_hour(last: datetime | None, allowed: bool) -> None:
    assert may_answer_automatically(last, NOW) is allowed
