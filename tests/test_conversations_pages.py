"""The conversation on the order pages, the staff inbox and the mailboxes page, over HTTP."""

from __future__ import annotations

import re

import pytest
from conftest import csrf_from
from conversation_helpers import MAILBOX_ADDRESS, wait_for
from dovecot_helpers import dovecot_fixture, imap_user_fixture  # noqa: F401
from mail_intake_helpers import PNG, mail
from order_helpers import HTMX, PDF, upload
from portal_helpers import signed_in_customer

from shared.accounts.staff import create_staff
from shared.conversations.importing import MailImporter
from shared.mail_intake.imap import open_mailbox
from shared.models import MessageFile, Order, OrderMessage, ReceivedMail

STAFF_PASSWORD = "Satz und Druck seit 1887"


@pytest.fixture
def ini_overrides(dovecot, imap_user, clamd):
    """The test app with the test clamd and a mailbox on the real dovecot."""
    dovecot.create_folder(imap_user, "Processed")
    return {
        "clamav": {"address": clamd.address, "clamd_conf": clamd.conf, "timeout_seconds": 10},
        "mailbox:orders": {
            "host": "localhost",
            "port": dovecot.imaps_port,
            "user": imap_user,
            "password": dovecot.passwords[imap_user],
            "ca_file": dovecot.ca_file,
            "address": MAILBOX_ADDRESS,
        },
    }


class Browser:
    """A signed-in test client that sends the CSRF token with every post."""

    def __init__(self, client, token: str) -> None:
        self.client = client
        self.token = token

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict | None = None, **kwargs):
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kwargs)


@pytest.fixture
def customer(client, api, mailserver):
    signed = signed_in_customer(client, api, mailserver, "K1", "A1")
    return Browser(client, signed.csrf_token)


def _staff(app, settings, *, admin: bool, username: str = "olga") -> Browser:
    create_staff(
        settings, username, "Olga Owner", f"{username}@druckerei.example", admin, STAFF_PASSWORD
    )
    browser = app.test_client()
    token = csrf_from(browser.get("/staff/login").text)
    form = {"username": username, "password": STAFF_PASSWORD, "csrf_token": token}
    assert browser.post("/staff/login", data=form).status_code == 302
    return Browser(browser, csrf_from(browser.get("/staff/").text))


@pytest.fixture
def staff(app, settings):
    return _staff(app, settings, admin=True)


def _import(settings) -> None:
    mailbox = settings.mailbox("orders")
    importer = MailImporter(settings, mailbox)
    importer.clean_work()
    with open_mailbox(mailbox) as connection:
        importer.import_pending(connection)


def _version(html: str) -> str:
    return re.search(r'id="messages"[^>]*hx-get="[^"]*version=([^"&]*)"', html).group(1)


# -- customers ------------------------------------------------------------------------------


def test_customer_writes_and_the_message_appears_without_reload(customer) -> None:
    page = customer.get("/orders/A1").text
    assert 'id="conversation"' in page and 'id="message-form"' in page
    assert "No messages yet." in page
    version = _version(page)
    # Nothing new: the poll swaps nothing.
    assert customer.get(f"/orders/A1/messages?version={version}", headers=HTMX).status_code == 204

    answer = customer.post("/orders/A1/messages", {"body": "Bitte Farben prüfen."}, headers=HTMX)
    assert answer.status_code == 200
    assert answer.headers["HX-Trigger"] == "messages-changed"
    assert '<form id="message-form"' in answer.text and "Bitte Farben" not in answer.text

    update = customer.get(f"/orders/A1/messages?version={version}", headers=HTMX)
    assert update.status_code == 200
    assert update.text.startswith('<div id="messages"')
    assert "Bitte Farben prüfen." in update.text
    assert "HX-Request" in update.headers["Vary"]


def test_an_empty_message_is_answered_in_the_form(customer) -> None:
    answer = customer.post("/orders/A1/messages", {"body": "   "}, headers=HTMX)
    assert answer.status_code == 200
    assert "Please write a message (or attach a file)." in answer.text
    assert "HX-Trigger" not in answer.headers
    assert not OrderMessage.select().exists()


def test_without_javascript_the_form_posts_and_comes_back(customer) -> None:
    answer = customer.post("/orders/A1/messages", {"body": "Ohne JS"})
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/orders/A1#conversation")
    assert "Ohne JS" in customer.get("/orders/A1").text


def test_a_message_without_csrf_token_is_refused(customer) -> None:
    answer = customer.client.post("/orders/A1/messages", data={"body": "x"}, headers=HTMX)
    assert answer.status_code == 400
    assert not OrderMessage.select().exists()


def test_files_uploaded_for_the_message_are_linked_to_it(customer, settings) -> None:
    file = upload(customer.client, {"X-CSRFToken": customer.token}, "A1", "Proof.pdf", PDF)
    customer.post("/orders/A1/messages", {"body": "Anbei", "upload": file.upload_key}, headers=HTMX)
    link = MessageFile.get()
    assert link.file_id == file.id and link.message.body == "Anbei"
    page = customer.get("/orders/A1").text
    assert re.search(
        r'id="message-file-\d+" data-state="clean">\s*<a href="/orders/A1/files/', page
    )


def test_another_customers_conversation_answers_like_a_missing_one(
    customer, client, api, mailserver
) -> None:
    api.post("/customers", {"customer_no": "K2", "name": "Zwei", "email": "k2@example.com"})
    api.post("/orders", {"project_no": "B1", "customer_no": "K2"})
    assert customer.get("/orders/B1/messages", headers=HTMX).status_code == 404
    assert customer.post("/orders/B1/messages", {"body": "x"}, headers=HTMX).status_code == 404
    assert not OrderMessage.select().exists()


# -- staff ----------------------------------------------------------------------------------


def test_staff_message_is_mailed_and_internal_notes_stay_with_staff(
    app, settings, customer, staff, mailserver
) -> None:
    before = len(mailserver.received)
    answer = staff.post("/staff/orders/A1/messages", {"body": "Proof ist fertig."}, headers=HTMX)
    assert answer.headers["HX-Trigger"] == "messages-changed"
    staff.post("/staff/orders/A1/messages", {"body": "Nur intern", "internal": "1"}, headers=HTMX)

    sent = wait_for(lambda: mailserver.received[before:])
    assert len(sent) == 1
    message = sent[0].message
    # The customer signed in with an English browser, so mails to them are English.
    assert message["Subject"].startswith("[Order A1] ")
    assert message["Reply-To"] == MAILBOX_ADDRESS
    assert "Proof ist fertig." in message.get_body(preferencelist=("plain",)).get_content()

    staff_page = staff.get("/staff/orders/A1").text
    assert "Nur intern" in staff_page and "internal note" in staff_page
    assert "Sent as mail to k1@example.com." in staff_page
    customer_page = customer.get("/orders/A1").text
    assert "Proof ist fertig." in customer_page
    assert "Nur intern" not in customer_page


def test_mail_is_shown_safely_with_decoded_names(app, settings, customer, dovecot, imap_user):
    message = mail(
        subject="=?utf-8?q?Re=3A_=5BAuftrag_A1=5D_Gr=C3=BC=C3=9Fe?=",
        sender="=?iso-8859-1?q?J=FCrgen_M=FCller?= <k1@example.com>",
        body="Passt so.\n\nAm 3. Mai 2026 schrieb Olga:\n> Proof anbei\n",
    )
    message.add_alternative(
        '<p onclick="x()">Passt so.</p><img src="https://tracker.example/p.gif">'
        '<img src="cid:logo@kunde.example"><script>alert(1)</script>',
        subtype="html",
    )
    message.get_payload()[1].add_related(
        PNG, maintype="image", subtype="png", cid="<logo@kunde.example>"
    )
    dovecot.append(imap_user, "INBOX", message)
    _import(settings)

    page = customer.get("/orders/A1").text
    assert "Jürgen Müller &lt;k1@example.com&gt;" in page
    entry = re.search(r'<article id="message-\d+".*?</article>', page, re.S).group(0)
    assert re.search(r"<details class=\"quoted\">.*Proof anbei", entry, re.S)
    assert "tracker.example" not in entry and "<script" not in entry and "onclick" not in entry
    image = re.search(r'<img src="(/orders/A1/mail-images/\d+)"', entry).group(1)
    served = customer.get(image)
    assert (served.status_code, served.mimetype, served.data) == (200, "image/png", PNG)

    received = ReceivedMail.get()
    assert received.subject == "Re: [Auftrag A1] Grüße"


# -- staff inbox and mailboxes --------------------------------------------------------------


def test_inbox_filters_and_assigning_a_mail_to_an_order(app, settings, staff, dovecot, imap_user):
    order = Order.create(project_no="A7", customer=_customer())
    dovecot.append(imap_user, "INBOX", mail(subject="Wer bin ich?", sender="x@fremd.example"))
    _import(settings)

    listing = staff.get("/staff/inbox").text
    assert "Wer bin ich?" in listing and "unknown sender" in listing
    fragment = staff.get("/staff/inbox?filter=discarded", headers=HTMX)
    assert fragment.text.startswith('<div id="inbox-list"') and "Wer bin ich?" not in fragment.text

    received = ReceivedMail.get()
    refused = staff.post(f"/staff/inbox/{received.id}/order", {"project_no": "NOPE"})
    assert refused.status_code == 422 and "There is no order NOPE." in refused.text
    done = staff.post(f"/staff/inbox/{received.id}/order", {"project_no": order.project_no})
    assert done.status_code == 302
    assert done.headers["Location"].endswith("/staff/orders/A7#conversation")
    assert "Wer bin ich?" not in staff.get("/staff/inbox").text
    assert OrderMessage.get().order_id == order.id


def test_discarding_from_the_inbox(app, settings, staff, dovecot, imap_user) -> None:
    dovecot.append(imap_user, "INBOX", mail(subject="Werbung", sender="spam@fremd.example"))
    _import(settings)
    received = ReceivedMail.get()
    assert staff.post(f"/staff/inbox/{received.id}/discard").status_code == 302
    assert "Werbung" in staff.get("/staff/inbox?filter=discarded").text
    assert ReceivedMail.get_by_id(received.id).inbox_state == "discarded"


def test_admins_see_the_mailboxes_and_test_a_connection(app, settings, staff) -> None:
    page = staff.get("/staff/mailboxes").text
    assert 'id="mailbox-orders"' in page and MAILBOX_ADDRESS in page
    result = staff.post("/staff/mailboxes/orders/test", headers=HTMX)
    assert result.text.startswith('<div id="mailbox-test-orders" class="flash"')
    assert "certificate verified" in result.text
    assert staff.post("/staff/mailboxes/nope/test").status_code == 404
    other = _staff(app, settings, admin=False, username="paul")
    assert other.get("/staff/mailboxes").status_code == 403


def test_the_conversation_speaks_german(customer) -> None:
    page = customer.get("/orders/A1", headers={"Accept-Language": "de"}).text
    assert "Nachrichten" in page and "Noch keine Nachrichten." in page


def _customer():
    from shared.accounts.customers import upsert_customer

    return upsert_customer("K9", name="Neun", email="k9@example.com")[0]
