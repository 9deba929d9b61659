"""Helpers for tests of order pages, uploads and downloads as customers and staff see them."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask, Response, request_finished

from shared.db import database
from shared.files.folders import order_dir
from shared.files.intake import make_scanner, scan_received
from shared.files.receiving import append_chunk, start_upload
from shared.models import Order, OrderFile, PortalLogin

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK_TYPE = "application/offset+octet-stream"
HTMX = {"HX-Request": "true"}
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8  # 2,057 bytes, clean


# Helpers shared with test_staff.py: tus as tus-js-client speaks it, and what ends up on disk.


def announce(client, headers: dict[str, str], project_no: str, name: str, size: int, **query):
    """tus creation: POST /orders/<no>/uploads (``query`` e.g. ``folder="Final"`` for staff)."""
    encoded = base64.b64encode(name.encode()).decode()
    headers = TUS | headers | {"Upload-Length": str(size), "Upload-Metadata": f"filename {encoded}"}
    return client.post(f"/orders/{project_no}/uploads", headers=headers, query_string=query)


def upload(client, headers: dict[str, str], project_no: str, name: str, data: bytes, **query):
    """A whole tus upload in one PATCH; the test app scans at once. Returns the file's row."""
    response = announce(client, headers, project_no, name, len(data), **query)
    assert response.status_code == 201, response.text
    location = response.headers["Location"]
    response = client.patch(
        location,
        data=data,
        headers=TUS | headers | {"Upload-Offset": "0"},
        content_type=CHUNK_TYPE,
    )
    assert response.status_code == 204, response.text
    return OrderFile.get(OrderFile.upload_key == location.rsplit("/", 1)[1])


def folder_files(settings, folder: str, customer_no: str = "K1", project_no: str = "A1"):
    """Names of the files in one of the order's folders on disk."""
    directory = order_dir(settings.storage.order_root, customer_no, project_no) / folder
    return sorted(path.name for path in directory.iterdir()) if directory.is_dir() else []


def all_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def row_of(html: str, file: OrderFile) -> str:
    """The table row of ``file`` in a file list."""
    match = re.search(rf'<tr id="file-{file.id}".*?</tr>', html, re.S)
    assert match, f"file {file.id} is not listed"
    return match.group(0)


def folder_section(html: str, folder: str) -> str:
    """The ``<section>`` of one folder in the file list."""
    match = re.search(rf"<h2[^>]*>{folder}</h2>.*?</section>", html, re.S)
    assert match, f"no section for {folder}"
    return match.group(0)


def files_trigger(html: str) -> str:
    """The ``hx-trigger`` of the file list: when htmx reloads it."""
    return re.search(r'<div id="files"[^>]*hx-trigger="([^"]*)"', html).group(1)


def without_csrf(html: str) -> str:
    """The page without its CSRF tokens, which carry a timestamp."""
    return re.sub(r'(value="|"X-CSRFToken": ")[\w.-]+', r"\1…", html)


def download_url(file: OrderFile) -> str:
    return f"/orders/{file.order.project_no}/files/{file.id}"


def add_order(api, project_no: str, customer_no: str = "K1", **fields) -> None:
    response = api.post("/orders", {"project_no": project_no, "customer_no": customer_no} | fields)
    assert response.status_code == 201, response.text


def foreign_file(settings, project_no: str = "B1", username: str = "k2") -> OrderFile:
    """A clean file uploaded by another customer into their own order."""
    order = Order.get(Order.project_no == project_no)
    login = PortalLogin.get(PortalLogin.username == username)
    file = start_upload(settings, order, "fremd.pdf", len(PDF), login=login)
    append_chunk(settings, file, 0, io.BytesIO(PDF), len(PDF))
    file = scan_received(settings, make_scanner(settings), file.id)
    assert file.state == OrderFile.STATE_CLEAN
    return file


@contextmanager
def responses_sent(app: Flask) -> Iterator[list[Response]]:
    """The response objects the app hands to the server (the test client only sees bytes)."""
    sent: list[Response] = []

    def record(_sender, response: Response, **_extra) -> None:
        sent.append(response)

    with request_finished.connected_to(record, app):
        yield sent


@contextmanager
def counted_statements() -> Iterator[list[str]]:
    """The SQL statements the app runs inside the block."""
    connection = database.obj
    original = connection.execute_sql
    statements: list[str] = []

    def counting(sql, *args, **kwargs):
        statements.append(sql)
        return original(sql, *args, **kwargs)

    connection.execute_sql = counting
    try:
        yield statements
    finally:
        del connection.execute_sql
