"""XML job notifications: valid against the XSD whatever the names, batched, written once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from agent_helpers import agent_settings, clean_upload, make_order, notifications, wait_for
from conftest import tasks_for
from lxml import etree

from hotfolder_agent import job_xml, notification
from hotfolder_agent.context import make_context
from hotfolder_agent.delivery import deliver
from hotfolder_agent.heartbeat import beat
from hotfolder_agent.notifier import Notifier
from hotfolder_agent.workers import FileWorkers
from shared.clock import utcnow
from shared.db import bind_database, database
from shared.mail.delivery import deliver_due
from shared.models import AgentError, Delivery, JobNotification, MailAttachment, OutboxMail
from shared.schema import init_database

TRICKY_CUSTOMER = "Müller & Söhne <Druck> \"Ost\" 'GmbH'"
TRICKY_FILES = [
    "Angebot & Preise <final> \"v2\" 'neu'.pdf",
    "Брошюра 東京 ٣٤ Ωμέγα.pdf",
    "plain.pdf",
]


@pytest.fixture
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(job_xml.SCHEMA_PATH)))


@pytest.fixture
def notify_world(tmp_path, clamd, mailserver, request):
    agent = getattr(request, "param", {})
    settings = agent_settings(tmp_path, clamd, smtp_port=mailserver.port, **agent)
    bind_database(settings.database.url)
    init_database("Testdruck")
    yield settings
    database.close()


def context(settings):
    return make_context(settings, tasks_for(settings))


def validated(schema: etree.XMLSchema, path) -> etree._ElementTree:
    document = etree.parse(str(path))
    assert schema.validate(document), schema.error_log
    return document


def test_every_notification_is_valid_and_carries_names_exactly(notify_world, schema):
    settings = notify_world
    order = make_order(
        settings,
        "A-2026.1",
        "K_7",
        name=TRICKY_CUSTOMER,
        job="Flyer & Poster <A5> \"4/4\" 'matt' – 東京",
        contact="anna@example.com",
        contact_name="Anna <Beispiel> & Co",
    )
    ctx = context(settings)
    files = [clean_upload(settings, order, name, name.encode() * 100) for name in TRICKY_FILES]
    for file in files:
        deliver(ctx, file)
    written = notification.flush(ctx)

    assert written == notifications(settings) and len(written) == 3, "window 0: one per file"
    for path, file in zip(written, files, strict=True):
        document = validated(schema, path)
        assert document.findtext("order/number") == "A-2026.1"
        assert document.findtext("order/customer/name") == TRICKY_CUSTOMER
        assert document.findtext("order/customer/number") == "K_7"
        assert document.findtext("order/jobDescription").startswith("Flyer & Poster <A5>")
        assert document.findtext("order/contact/name") == "Anna <Beispiel> & Co"
        assert document.findtext("order/contact/email") == "anna@example.com"
        assert document.findtext("files/file/name") == file.display_name
        assert document.findtext("files/file/sha256") == file.sha256
        assert int(document.findtext("files/file/size")) == file.size
        delivered = Delivery.get(Delivery.file == file.id)
        assert document.findtext("files/file/hotfolderPath") == delivered.hotfolder_path
    assert not list(settings.agent.notification_dir.glob(".*")), "no temporary files left"


@pytest.mark.parametrize("notify_world", [{"batch_window_seconds": "10"}], indirect=True)
def test_files_finishing_within_the_window_share_one_notification_per_order(notify_world, schema):
    settings = notify_world
    first, second = make_order(settings, "A1"), make_order(settings, "A2", "K2")
    ctx = context(settings)
    for n in range(3):
        deliver(ctx, clean_upload(settings, first, f"{n}.pdf", b"%d" % n))
    deliver(ctx, clean_upload(settings, second, "x.pdf", b"x"))

    assert notification.flush(ctx) == [], "the window is still open"
    written = notification.flush(ctx, now=utcnow() + timedelta(seconds=11))

    counts = sorted(validated(schema, path).find("files").get("count") for path in written)
    assert counts == ["1", "3"]
    assert notification.flush(ctx, now=utcnow() + timedelta(seconds=60)) == []


def test_a_notification_interrupted_before_its_xml_is_written_once_after_restart(
    notify_world, schema
):
    settings = notify_world
    order = make_order(settings, "A1")
    crashed = context(settings)
    beat(crashed)
    deliver(crashed, clean_upload(settings, order, "a.pdf", b"a"))
    batch = notification.due_batches(0, utcnow())[0]
    [opened] = notification.open_notifications(crashed, [batch])
    beat(crashed, stopped=True)  # killed before writing the XML

    written = notification.flush(context(settings))

    assert [path.name for path in written] == [opened.file_name]
    assert notifications(settings) == written
    assert JobNotification.select().count() == 1
    validated(schema, written[0])


@pytest.mark.parametrize("notify_world", [{"notify_email": "prepress@shop.example"}], indirect=True)
def test_notification_goes_as_xml_attachment_through_the_outbox(notify_world, mailserver, schema):
    settings = notify_world
    order = make_order(settings, "A1", name=TRICKY_CUSTOMER)
    # Queued only: the test delivers below.
    ctx = make_context(settings, tasks_for(settings, immediate=False))
    deliver(ctx, clean_upload(settings, order, TRICKY_FILES[0], b"data"))
    [path] = notification.flush(ctx)

    mail = OutboxMail.get(OutboxMail.kind == notification.MAIL_KIND)
    assert mail.recipient_list == ["prepress@shop.example"]
    assert MailAttachment.get(MailAttachment.mail == mail).file_name == path.name
    report = deliver_due(settings.smtp)
    assert report.sent == 1, report
    message = mailserver.received[-1].message
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == path.name
    assert attachment.get_content_type() == "application/xml"
    assert attachment.get_content() == path.read_bytes()
    assert "A1" in message["Subject"]
    assert schema.validate(etree.fromstring(attachment.get_content()))


def test_notifications_written_in_a_worker_process_are_the_same(notify_world, schema):
    settings = notify_world
    order = make_order(settings, "A1", name=TRICKY_CUSTOMER)
    ctx = context(settings)
    for name in TRICKY_FILES:
        deliver(ctx, clean_upload(settings, order, name, name.encode()))
    workers = FileWorkers(1)
    try:
        written = notification.flush(ctx, writer=workers)
    finally:
        workers.shutdown()

    assert written == notifications(settings) and len(written) == len(TRICKY_FILES)
    for path in written:
        notification_row = JobNotification.get(JobNotification.file_name == path.name)
        assert notification_row.written_at is not None
        assert path.read_bytes() == job_xml.build_xml(ctx, notification_row)
        validated(schema, path)
    assert not list(settings.agent.notification_dir.glob(".*")), "no temporary files left"


def test_the_notifier_reports_an_unwritable_folder_and_writes_once_it_is_fixed(notify_world):
    settings = notify_world
    order = make_order(settings, "A1")
    ctx = context(settings)
    directory = settings.agent.notification_dir
    directory.parent.mkdir(parents=True, exist_ok=True)
    directory.write_bytes(b"a file where the folder should be")
    notifier = Notifier(ctx)
    notifier.start()
    try:
        deliver(ctx, clean_upload(settings, order, "a.pdf", b"a"))
        notifier.deliveries_done()
        wait_for(lambda: AgentError.select().where(AgentError.action == "notify").exists())
        error = AgentError.get(AgentError.action == "notify")
        assert error.path == str(directory) and error.resolved_at is None
        assert JobNotification.get().written_at is None, "not recorded as written"

        directory.unlink()
        notifier.check_soon()
        wait_for(lambda: notifications(settings))
        wait_for(lambda: AgentError.get_by_id(error.id).resolved_at is not None)
    finally:
        notifier.stop()
    assert JobNotification.get().written_at is not None
    assert len(notifications(settings)) == 1, "the notification opened before is the one written"
