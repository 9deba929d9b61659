"""Who may see, upload and download which file of which order: one home for the rules.

- A customer's login reaches only its customer's orders; any other order answers like a
  missing one. Staff reach every order.
- Customers see everything in ``Eingehend`` (their own uploads, whatever their state) and
  only clean files in the other folders (what staff placed for them).
- Customers download clean files; staff also download held files (too large to scan) to
  look at them before releasing them. Nothing else is ever handed out.
- Previews (thumbnail, pages) of a file go to whoever may download it, and only of a file
  the virus scan passed: never of a rejected, held or unscanned (released) one.
- Customers upload into their own order's ``Eingehend`` while their login is active, the
  customer may use the portal and the order is open: a closed or cancelled order takes
  no more uploads from customers (also not the rest of one started before it was
  closed); staff place files in ``In Bearbeitung`` and ``Final`` whatever its state.
- A hotfolder agent (agent token) takes clean uploads in ``Eingehend`` of customers with
  a hotfolder, and downloads only those; it places staff files in ``In Bearbeitung`` and
  ``Final`` like staff, and continues only the uploads its own token started.
"""

from __future__ import annotations

from peewee import Expression

from shared.errors import Invalid, ServiceError
from shared.files.folders import FOLDER_FINAL, FOLDER_IN_PROGRESS, FOLDER_INCOMING, ORDER_FOLDERS
from shared.models import (
    ApiToken,
    Customer,
    Order,
    OrderFile,
    OutboundTransfer,
    PortalLogin,
    StaffUser,
)

STAFF_FOLDERS = (FOLDER_IN_PROGRESS, FOLDER_FINAL)


class NotAllowed(ServiceError):
    """The login may not upload here (inactive, portal off, another customer, another folder)."""


class OrderClosed(NotAllowed):
    """The order is closed or cancelled: the customer may no longer upload into it."""


def reachable_order(project_no: str, customer: Customer | None) -> Order | None:
    """The order ``project_no`` if ``customer`` may see it (None: staff, who see every one)."""
    condition = Order.project_no == project_no
    if customer is not None:
        condition &= Order.customer == customer
    return Order.get_or_none(condition)


def visible_to_customer() -> Expression:
    """The files of an order a customer sees (a query condition on ``OrderFile``)."""
    return (OrderFile.folder == FOLDER_INCOMING) | (OrderFile.state == OrderFile.STATE_CLEAN)


def may_download(file: OrderFile, *, staff: bool) -> bool:
    """Whether the file's bytes may be handed out to a customer (or to staff)."""
    if file.state == OrderFile.STATE_CLEAN:
        return file.stored_name is not None
    return staff and file.state == OrderFile.STATE_TOO_LARGE


def may_preview(file: OrderFile, *, staff: bool) -> bool:
    """Whether previews of the file may be shown: downloadable, and scanned clean."""
    return (
        may_download(file, staff=staff)
        and file.state == OrderFile.STATE_CLEAN
        and file.scanned_at is not None
        and file.released_at is None
    )


def previewable_file(order: Order, file_id: int, *, staff: bool) -> OrderFile | None:
    """The order's file ``file_id`` if its previews may be shown; None otherwise (like missing)."""
    file = OrderFile.get_or_none((OrderFile.id == file_id) & (OrderFile.order == order))
    if file is None or not may_preview(file, staff=staff):
        return None
    return file


def downloadable_file(order: Order, file_id: int, *, staff: bool) -> OrderFile | None:
    """The order's file ``file_id`` if it may be downloaded; None otherwise (like missing)."""
    file = OrderFile.get_or_none((OrderFile.id == file_id) & (OrderFile.order == order))
    if file is None or not may_download(file, staff=staff):
        return None
    return file


def for_hotfolder() -> Expression:
    """The files hotfolder agents take (a condition on ``OrderFile`` joined with its
    ``Order`` and ``Customer``): clean uploads in Eingehend, stored with their checksum,
    of customers with a hotfolder (seed 004 "Create Hotfolder")."""
    return (
        (OrderFile.folder == FOLDER_INCOMING)
        & (OrderFile.state == OrderFile.STATE_CLEAN)
        & OrderFile.stored_name.is_null(False)
        & OrderFile.sha256.is_null(False)
        & (Customer.create_hotfolder == True)  # noqa: E712  (SQL, not Python)
    )


def agent_may_download(file: OrderFile) -> bool:
    """Whether a hotfolder agent may have the file's bytes: the ``for_hotfolder`` rule."""
    return (
        file.folder == FOLDER_INCOMING
        and file.state == OrderFile.STATE_CLEAN
        and bool(file.stored_name)
        and bool(file.sha256)
        and file.order.customer.create_hotfolder
    )


def staff_upload_folder(requested: str) -> str:
    """The folder staff asked to place a file in; NotAllowed for any other."""
    if requested not in STAFF_FOLDERS:
        raise NotAllowed(f"staff place files in {' or '.join(STAFF_FOLDERS)}")
    return requested


def check_uploader(order: Order, login: PortalLogin | None, folder: str) -> None:
    """A customer's ``login`` uploads into its own order's Eingehend while it may use the
    portal; the shop's side (``login`` None) into any of the order's folders. Call inside
    the upload's transaction: the login's state is read anew."""
    if login is None:
        if folder not in ORDER_FOLDERS:
            raise Invalid("folder", "one of " + ", ".join(ORDER_FOLDERS))
        return
    if folder != FOLDER_INCOMING:
        raise NotAllowed(f"customers upload into {FOLDER_INCOMING} only")
    login = PortalLogin.get_by_id(login.id)
    if login.customer_id != order.customer_id:
        raise NotAllowed("the order belongs to another customer")
    if not login.is_active or not order.customer.portal_enabled:
        raise NotAllowed("the portal login is not active")
    check_order_open(order)


def check_order_open(order: Order) -> None:
    """Customers upload only into open orders; the order's state is read anew."""
    state = Order.select(Order.state).where(Order.id == order.id).scalar()
    if state != Order.STATE_OPEN:
        raise OrderClosed(f"order {order.project_no} is {state}")


def check_upload_continues(file: OrderFile) -> None:
    """A customer's unfinished upload takes more bytes only while its order is open."""
    if file.uploaded_by_login_id is not None:
        check_order_open(file.order)


def own_upload(
    upload_key: str,
    *,
    customer: Customer | None = None,
    staff: StaffUser | None = None,
    token: ApiToken | None = None,
) -> OrderFile | None:
    """An unfinished or finished upload by ``upload_key``: a customer's own into Eingehend,
    one this staff user started, or one this agent token started; None for anybody else's
    (like a missing one)."""
    condition = (OrderFile.upload_key == upload_key) & (OrderFile.state != OrderFile.STATE_DELETED)
    query = OrderFile.select().join(Order).switch(OrderFile)
    if staff is not None:
        condition &= OrderFile.uploaded_by_staff == staff
    elif customer is not None:
        condition &= (Order.customer == customer) & (OrderFile.folder == FOLDER_INCOMING)
    elif token is not None:
        query = query.join(OutboundTransfer, on=(OutboundTransfer.file == OrderFile.id))
        condition &= OutboundTransfer.token == token
    else:
        return None
    return query.where(condition).get_or_none()
