"""Kept list fragments (portal/fragments.py), row links (portal/links.py), page formats.

A kept fragment is found again only by everything it shows, so every change to what a
list shows must show at once: these tests change rows behind the page's back (as the
scanner, the agent or staff do) and look again.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from datetime import date, datetime

import pytest
import test_orders
from agent_helpers import clean_upload, make_order
from flask import render_template_string, template_rendered, url_for
from flask_babel import force_locale
from jinja2 import ChoiceLoader, DictLoader
from markupsafe import Markup
from portal_helpers import signed_in_customer
from test_hotfolder_pages import signed_in

from hotfolder_agent.context import make_context
from hotfolder_agent.delivery import deliver
from portal.fragments import FragmentCache
from portal.links import link_for
from shared.db import write_transaction
from shared.models import Order, OrderFile
from shared.storage import FOLDER_FINAL
from shared.worker import BackgroundTasks

# The fixtures of the order pages: the app scans with clamd, a signed-in customer K1 with A1.
ini_overrides = test_orders.ini_overrides
customer = test_orders.customer


@contextmanager
def renders(app):
    """Names of the templates rendered inside the block."""
    names: list[str] = []

    def note(_sender, template, context, **_extra):
        names.append(template.name)

    template_rendered.connect(note, app)
    try:
        yield names
    finally:
        template_rendered.disconnect(note, app)


def _file(order: Order, name: str, folder: str = "Eingehend", state: str = "clean") -> OrderFile:
    with write_transaction():
        return OrderFile.create(
            order=order,
            folder=folder,
            display_name=name,
            stored_name=name,
            size=2048,
            received_bytes=2048,
            state=state,
        )


# --- the cache itself -------------------------------------------------------------------


def test_cache_drops_the_least_recently_used_beyond_its_budget():
    texts = [Markup(str(number) * 1000) for number in range(5)]
    cache = FragmentCache(budget_bytes=3 * (sys.getsizeof(texts[0]) + sys.getsizeof(b"\x00")))
    for number, text in enumerate(texts[:3]):
        cache.put(bytes([number]), text)
    assert cache.get(b"\x00") == texts[0]  # now the most recently used
    cache.put(b"\x03", texts[3])
    assert cache.get(b"\x01") is None
    assert [cache.get(bytes([n])) for n in (0, 2, 3)] == [texts[0], texts[2], texts[3]]
    assert len(cache) == 3 and cache.used_bytes <= cache.budget_bytes
    cache.put(b"\x04", Markup("x" * 10_000))  # larger than the whole budget: not kept
    assert cache.get(b"\x04") is None and len(cache) == 3


# --- customer pages ---------------------------------------------------------------------


def test_order_list_is_rendered_once_and_shows_each_change_at_once(app, client, customer):
    order = Order.get(Order.project_no == "A1")
    with renders(app) as names:
        first = client.get("/orders").text
        assert client.get("/orders").text == first
    # Signing in showed the list already: kept since, it is not rendered again.
    assert names.count("orders/_order_list.html") <= 1
    assert "Waiting for data" in first

    file = _file(order, "Innen.pdf", state="scanning")
    assert "Checking upload" in client.get("/orders").text
    with write_transaction():
        OrderFile.update(state="clean").where(OrderFile.id == file.id).execute()
    assert "Data received" in client.get("/orders").text
    _file(order, "Final.pdf", folder=FOLDER_FINAL)
    assert "Final files ready" in client.get("/orders").text
    with write_transaction():
        Order.update(job_description="Broschüre A4, 500 Stück").where(
            Order.id == order.id
        ).execute()
    assert "Broschüre A4, 500 Stück" in client.get("/orders").text

    german = client.get("/orders?lang=de").text
    assert "Finale Dateien bereit" in german and "Final files ready" not in german
    assert "Final files ready" in client.get("/orders?lang=en").text


def test_order_list_htmx_fragment_is_the_kept_list(client, customer):
    page = client.get("/orders").text
    fragment = client.get("/orders", headers={"HX-Request": "true"}).text
    assert fragment.lstrip().startswith('<div id="order-list">') and fragment in page


def test_folder_view_shows_new_files_progress_and_states_at_once(app, client, customer):
    order = Order.get(Order.project_no == "A1")
    with renders(app) as names:
        first = client.get("/orders/A1").text
        assert client.get("/orders/A1/files").text in first
    assert names.count("orders/_files.html") <= 1

    with write_transaction():
        uploading = OrderFile.create(
            order=order, folder="Eingehend", display_name="Gross.pdf", size=1000, state="uploading"
        )
    assert "uploading 0 %" in client.get("/orders/A1/files").text
    with write_transaction():
        OrderFile.update(received_bytes=420).where(OrderFile.id == uploading.id).execute()
    listing = client.get("/orders/A1/files").text
    assert "uploading 42 %" in listing and "every 2s" in listing
    with write_transaction():
        OrderFile.update(state="rejected", signature="Test.EICAR").where(
            OrderFile.id == uploading.id
        ).execute()
    listing = client.get("/orders/A1/files").text
    assert "rejected: Test.EICAR" in listing and "every 2s" not in listing


def test_customers_never_get_each_others_kept_lists(app, client, api, mailserver, customer):
    _file(Order.get(Order.project_no == "A1"), "Geheim-K1.pdf")
    assert "Geheim-K1.pdf" in client.get("/orders/A1").text
    other = app.test_client()
    signed_in_customer(other, api, mailserver, "K2", "B1")
    assert "Geheim-K1.pdf" not in other.get("/orders/B1").text
    assert other.get("/orders/A1").status_code == 404
    listing = other.get("/orders").text
    assert "B1" in listing and ">A1<" not in listing


# --- staff pages ------------------------------------------------------------------------


def test_hotfolder_uploads_show_the_delivery_at_once(app, settings):
    staff = signed_in(app, settings, "anna", admin=False)
    ctx = make_context(settings, BackgroundTasks(settings, immediate=True))
    order = make_order(settings, "A-100", "K1", name="Muster & Co")
    file = clean_upload(settings, order, "Innenteil.pdf", b"inside" * 100)
    with renders(app) as names:
        before = staff.get("/staff/hotfolder/").text
        assert staff.get("/staff/hotfolder/").text.count("Innenteil.pdf") == 1
    assert names.count("staff/_hotfolder_uploads.html") == 1
    assert 'data-stage="clean"' in before

    deliver(ctx, file)
    after = staff.get("/staff/hotfolder/").text
    assert 'data-stage="in_hotfolder"' in after and "A-100" in after


# --- row links and formats ----------------------------------------------------------------


@pytest.mark.parametrize("value", ["A1", "A 1/ä?#%&+", "2026-0001", "..", 42])
def test_row_links_are_what_url_for_builds(app, value):
    with app.test_request_context("/", base_url="http://portal.example/prefix"):
        assert link_for("orders.show", "project_no")(value) == url_for(
            "orders.show", project_no=value
        )
        if isinstance(value, int):
            download = link_for("orders.download", "file_id", project_no="A 1")
            assert download(value) == url_for("orders.download", project_no="A 1", file_id=value)


def test_row_links_refuse_arguments_outside_the_path(app):
    with app.test_request_context("/"), pytest.raises(ValueError, match="not a path argument"):
        link_for("orders.index", "q")


def test_date_filters_follow_the_page_language_and_forced_locales(app):
    template = "{{ day|dateformat }} · {{ moment|local_time }} · {{ size|filesize }}"
    values = {"day": date(2026, 5, 4), "moment": datetime(2026, 5, 4, 10, 30), "size": 1536}
    probe = "{% macro show(day, moment, size) %}" + template + "{% endmacro %}"
    app.jinja_env.loader = ChoiceLoader(
        [DictLoader({"_fragments_probe.html": probe}), app.jinja_env.loader]
    )
    with app.test_request_context("/?lang=de"):
        german = render_template_string(template, **values)
        with force_locale("en"):
            english = render_template_string(template, **values)
        # A macro imported without context has no page format handed in: it looks it up.
        macro = render_template_string(
            '{% import "_fragments_probe.html" as probe %}{{ probe.show(day, moment, size) }}',
            **values,
        )
    assert german == "04.05.2026 · 04.05.26, 12:30 · 1,5 KB"
    assert english == "May 4, 2026 · 5/4/26, 12:30\u202fPM · 1.5 KB"
    assert macro.strip() == german
