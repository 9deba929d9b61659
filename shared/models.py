"""The data model (SPEC §Domain), bound late to ``shared.db.database``.

Table names follow the seed where it names one (``clients``, ``uplogin``,
``ptportal_account_activation``, ``client_email_template``, ``emailsignatur``)
so people who know PTworkflow recognise them.
"""

from __future__ import annotations

from peewee import (
    BigIntegerField,
    BlobField,
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    DoubleField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from shared.clock import utcnow
from shared.db import database

LANGUAGES = ("de", "en", "fr")


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class StaffUser(BaseModel):
    """A print shop employee: staff, or admin who may also manage settings."""

    ROLE_STAFF = "staff"
    ROLE_ADMIN = "admin"

    username = CharField(unique=True)
    name = CharField()
    email = CharField(default="")
    role = CharField(default=ROLE_STAFF)
    password_hash = CharField(null=True)
    active = BooleanField(default=True)
    created_at = DateTimeField(default=utcnow)
    # Two-factor sign-in (TOTP): the shared secret once confirmed, and the last time step
    # used, so a code seen over someone's shoulder cannot be used a second time.
    totp_secret = CharField(null=True)
    totp_enabled_at = DateTimeField(null=True)
    totp_last_step = BigIntegerField(default=0)
    password_changed_at = DateTimeField(null=True)

    @property
    def is_admin(self) -> bool:
        return self.role == self.ROLE_ADMIN

    @property
    def has_two_factor(self) -> bool:
        return self.totp_enabled_at is not None


class Customer(BaseModel):
    """A print shop customer (seed table ``clients``)."""

    customer_no = CharField(unique=True)
    name = CharField()
    email = CharField(default="")
    portal_enabled = BooleanField(default=False)
    create_hotfolder = BooleanField(default=True)
    hotfolder_delete_after_days = IntegerField(default=30)
    language = CharField(default="de")
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "clients"


class Contact(BaseModel):
    """A contact person of a customer (seed ``PTcontact``); at most one is the favorite."""

    customer = ForeignKeyField(Customer, backref="contacts", on_delete="CASCADE")
    name = CharField(default="")
    email = CharField()
    favorite = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "ptcontact"
        indexes = ((("customer", "email"), True),)


class SystemDefault(BaseModel):
    """Portal-wide defaults (seed: Systemstandards, entry ``ptportal``): how new portal
    logins are made, what new customers get, what the portal shows its customers, and
    whether staff must sign in with a second factor."""

    USERNAME_FROM_CUSTOMER_NO = "customer_no"
    USERNAME_FROM_EMAIL = "email"
    USERNAME_SCHEMES = (USERNAME_FROM_CUSTOMER_NO, USERNAME_FROM_EMAIL)

    name = CharField(unique=True)
    username_from = CharField(default=USERNAME_FROM_CUSTOMER_NO)
    login_state = CharField(default="inactive")
    create_hotfolder = BooleanField(default=True)
    hotfolder_delete_after_days = IntegerField(default=30)
    show_job_description = BooleanField(default=True)
    show_due_date = BooleanField(default=True)
    show_tickets = BooleanField(default=True)
    staff_two_factor_required = BooleanField(default=False)
    updated_at = DateTimeField(null=True)

    class Meta:
        table_name = "system_default"

    @classmethod
    def portal(cls) -> SystemDefault:
        """The ``ptportal`` entry, created with built-in values when missing."""
        entry, _ = cls.get_or_create(name="ptportal")
        return entry


class PortalLogin(BaseModel):
    """A portal login of a customer (seed table ``uplogin``).

    One per customer by default, as in the seed; a customer may have more (each person
    their own username, password, address and activation), and every one of them sees
    the customer's orders. ``email`` is the login's own address, for the activation
    mails of an additional login; empty for the first, whose mail follows the chain.
    """

    STATE_ACTIVE = "active"
    STATE_INACTIVE = "inactive"
    STATES = (STATE_ACTIVE, STATE_INACTIVE)

    customer = ForeignKeyField(Customer, backref="logins", on_delete="CASCADE")
    username = CharField(unique=True)
    email = CharField(default="")
    password_hash = CharField(null=True)
    state = CharField(default=STATE_INACTIVE)
    deactivated_at = DateTimeField(null=True)
    language = CharField(default="")
    password_changed_at = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "uplogin"

    @property
    def is_active(self) -> bool:
        return self.state == self.STATE_ACTIVE


class Activation(BaseModel):
    """Whether a portal login has been used (seed ``ptportal_account_activation``)."""

    login = ForeignKeyField(PortalLogin, backref="activations", unique=True, on_delete="CASCADE")
    checked = IntegerField(default=0)
    updated = DateTimeField(null=True)

    class Meta:
        table_name = "ptportal_account_activation"


class ActivationToken(BaseModel):
    """A single-use link to choose a password; only the SHA-256 of the token is kept."""

    KIND_FIRST = "first"
    KIND_RENEWAL = "renewal"

    login = ForeignKeyField(PortalLogin, backref="tokens", on_delete="CASCADE")
    token_hash = CharField(unique=True)
    kind = CharField(default=KIND_FIRST)
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()
    used_at = DateTimeField(null=True)


class PortalSession(BaseModel):
    """A signed-in browser; deleting the row ends the session wherever the cookie went."""

    key_hash = CharField(unique=True)
    login = ForeignKeyField(PortalLogin, null=True, backref="sessions", on_delete="CASCADE")
    staff = ForeignKeyField(StaffUser, null=True, backref="sessions", on_delete="CASCADE")
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()


class Order(BaseModel):
    """An order (Auftrag/Vorgang) of a customer, with its three folders.

    Closed or cancelled, it drops out of reminders and the digest and takes no more
    uploads from the customer (``shared.files.access``); it can be reopened.
    """

    STATE_OPEN = "open"
    STATE_CLOSED = "closed"
    STATE_CANCELLED = "cancelled"
    STATES = (STATE_OPEN, STATE_CLOSED, STATE_CANCELLED)

    project_no = CharField(unique=True)
    customer = ForeignKeyField(Customer, backref="orders", on_delete="RESTRICT")
    job_description = TextField(default="")
    due_date = DateField(null=True)
    contact = ForeignKeyField(Contact, null=True, backref="orders", on_delete="SET NULL")
    owner = ForeignKeyField(StaffUser, null=True, backref="orders", on_delete="SET NULL")
    folders_created = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)
    state = CharField(default=STATE_OPEN, index=True)
    closed_at = DateTimeField(null=True)
    updated_at = DateTimeField(null=True)
    # What the order says about its print data; the preflight warns about a mismatch.
    trim_width_mm = FloatField(null=True)
    trim_height_mm = FloatField(null=True)
    page_count = IntegerField(null=True)

    class Meta:
        table_name = "orders"
        # Order lists, newest first: a customer's, and staff's over all customers.
        indexes = ((("customer", "created_at"), False), (("created_at",), False))

    @property
    def is_open(self) -> bool:
        return self.state == self.STATE_OPEN


class Ticket(BaseModel):
    """An order ticket (Vorgangsticket)."""

    order = ForeignKeyField(Order, backref="tickets", on_delete="CASCADE")
    ticket_no = CharField()
    title = CharField(default="")
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("order", "ticket_no"), True),)


class OrderFile(BaseModel):
    """A file in one of an order's folders, from the first uploaded byte to its deletion.

    Uploads live in the staging area until scanned clean; only then do they get
    a ``stored_name`` in ``Eingehend``. ``display_name`` is what the customer
    called the file (NFC); ``stored_name`` is safe on every file system.
    """

    STATE_UPLOADING = "uploading"
    STATE_SCANNING = "scanning"
    STATE_WAITING = "waiting_for_scan"
    STATE_CLEAN = "clean"
    STATE_REJECTED = "rejected"
    STATE_TOO_LARGE = "too_large"
    STATE_DELETED = "deleted"
    OPEN_STATES = (STATE_UPLOADING, STATE_SCANNING, STATE_WAITING)

    # The preflight after the scan (``shared.files.preflighting``): "" for files it does
    # not concern (not scanned clean, or placed before it existed), pending until the
    # worker has run it, then the report's status, or not_checked for types it cannot check.
    PREFLIGHT_NONE = ""
    PREFLIGHT_PENDING = "pending"
    PREFLIGHT_OK = "ok"
    PREFLIGHT_WARNINGS = "warnings"
    PREFLIGHT_ERRORS = "errors"
    PREFLIGHT_FAILED = "failed"
    PREFLIGHT_NOT_CHECKED = "not_checked"

    order = ForeignKeyField(Order, backref="files", on_delete="CASCADE")
    folder = CharField()
    display_name = CharField()
    stored_name = CharField(null=True)
    size = BigIntegerField()
    received_bytes = BigIntegerField(default=0)
    sha256 = CharField(null=True)
    state = CharField(index=True)
    signature = CharField(default="")
    upload_key = CharField(unique=True, null=True)
    uploaded_by_login = ForeignKeyField(PortalLogin, null=True, on_delete="SET NULL")
    uploaded_by_staff = ForeignKeyField(StaffUser, null=True, on_delete="SET NULL")
    created_at = DateTimeField(default=utcnow)
    received_at = DateTimeField(null=True)
    scanned_at = DateTimeField(null=True)
    scan_attempts = IntegerField(default=0)
    released_by = ForeignKeyField(StaffUser, null=True, on_delete="SET NULL", backref="releases")
    released_at = DateTimeField(null=True)
    delivered_at = DateTimeField(null=True)
    deleted_at = DateTimeField(null=True)
    # The type read from the content (``shared.files.filetypes``), once known.
    file_type = CharField(default="")
    preflight_status = CharField(default=PREFLIGHT_NONE, index=True)
    preflight_report = TextField(default="")  # JSON, see shared.files.preflighting
    preflight_started_at = DateTimeField(null=True)
    preflight_at = DateTimeField(null=True)

    class Meta:
        indexes = (
            (("order", "folder", "stored_name"), True),
            # The order list's state per order, counted from the index alone.
            (("order", "folder", "state"), False),
            # The hotfolder agents' question, asked every 100 ms while one waits for work:
            # clean uploads in Eingehend not delivered yet.
            (("folder", "state", "delivered_at"), False),
            # The staff hotfolder page: a folder's uploads newest first, all of them or of one
            # state. Every index ends in the id, so these read the newest rows without sorting
            # the folder; the index above sorts by delivered_at after the state.
            (("folder",), False),
            (("folder", "state"), False),
        )


class FileEvent(BaseModel):
    """Something staff should be able to look up later: a rejection, a release, a deletion."""

    file = ForeignKeyField(OrderFile, backref="events", on_delete="CASCADE")
    kind = CharField()
    detail = TextField(default="")
    staff = ForeignKeyField(StaffUser, null=True, on_delete="SET NULL")
    created_at = DateTimeField(default=utcnow, index=True)


class EmailTemplate(BaseModel):
    """A customer email template (seed ``client_email_template``), one row per language."""

    name = CharField()
    language = CharField(default="de")
    subject = CharField()
    content = TextField()
    owner = ForeignKeyField(StaffUser, null=True, backref="templates", on_delete="SET NULL")

    class Meta:
        table_name = "client_email_template"
        indexes = ((("name", "language"), True),)


class EmailSignature(BaseModel):
    """The frame of every outgoing mail (seed ``Emailsignatur``); the active one is used."""

    name = CharField(unique=True)
    head_html = TextField(default="")
    foot_html = TextField(default="")
    head_text = TextField(default="")
    foot_text = TextField(default="")
    status = BooleanField(default=True)

    class Meta:
        table_name = "emailsignatur"


class ApiToken(BaseModel):
    """A bearer token for the API; only its SHA-256 is stored.

    A workflow token (ERP, PTworkflow) reaches the workflow API, an agent token only
    the hotfolder agents' endpoints under ``/api/v1/agent/``.
    """

    SCOPE_WORKFLOW = "workflow"
    SCOPE_AGENT = "agent"
    SCOPES = (SCOPE_WORKFLOW, SCOPE_AGENT)

    name = CharField(unique=True)
    token_hash = CharField(unique=True)
    scope = CharField(default=SCOPE_WORKFLOW)
    created_at = DateTimeField(default=utcnow)
    last_used_at = DateTimeField(null=True)
    # The address the token was last used from, as the portal saw it.
    last_host = CharField(default="")
    revoked_at = DateTimeField(null=True)


class OutboxMail(BaseModel):
    """A mail written in the same transaction as its cause, delivered by the worker."""

    STATUS_PENDING = "pending"
    STATUS_SENDING = "sending"
    STATUS_SENT = "sent"
    STATUS_FAILED = "failed"
    # Left in SENDING by a worker that stopped mid-send: it may or may not have gone out.
    STATUS_UNKNOWN = "unknown"

    message_id = CharField(unique=True)
    kind = CharField()
    idempotency_key = CharField(unique=True, null=True)
    sender = CharField()
    recipients = TextField()
    recipient_reason = CharField(default="")
    reply_to = CharField(default="")
    subject = TextField()
    text_body = TextField()
    html_body = TextField()
    customer = ForeignKeyField(Customer, null=True, backref="mails", on_delete="SET NULL")
    order = ForeignKeyField(Order, null=True, backref="mails", on_delete="SET NULL")
    status = CharField(default=STATUS_PENDING, index=True)
    attempts = IntegerField(default=0)
    next_attempt_at = DateTimeField(default=utcnow, index=True)
    last_error = TextField(default="")
    refused_recipients = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    sent_at = DateTimeField(null=True)

    @property
    def recipient_list(self) -> list[str]:
        return [address for address in self.recipients.split(",") if address]


class AgentHeartbeat(BaseModel):
    """A hotfolder agent: who it is and when it last said it is alive.

    ``agent_id`` is the agent's own, kept in its state folder across restarts; the
    agent reports its host name, process, version, watch mode and queue, and the
    interval it beats at (``heartbeat_seconds``: when it counts as gone).
    """

    agent_id = CharField(unique=True)
    host = CharField()
    pid = IntegerField()
    version = CharField(default="")
    watch_mode = CharField(default="")
    started_at = DateTimeField(default=utcnow)
    seen_at = DateTimeField(default=utcnow, index=True)
    stopped_at = DateTimeField(null=True)
    heartbeat_seconds = FloatField(default=30.0)
    queue_length = IntegerField(default=0)
    address = CharField(default="")
    token = ForeignKeyField(ApiToken, null=True, backref="agents", on_delete="SET NULL")


class JobNotification(BaseModel):
    """One XML job notification for a batch of an order's delivered files.

    The row (with its file name) exists before the XML is written, so a restart
    rewrites the same file instead of emitting a second one.
    """

    order = ForeignKeyField(Order, backref="job_notifications", on_delete="CASCADE")
    claimed_by = CharField()
    file_name = CharField(default="")
    created_at = DateTimeField(default=utcnow)
    written_at = DateTimeField(null=True, index=True)
    mail = ForeignKeyField(OutboxMail, null=True, on_delete="SET NULL")


class Delivery(BaseModel):
    """A clean upload's way into an internal hotfolder: leased while an agent works on it,
    done once the agent confirmed the file in place.

    One row per file (unique), held by one agent (``claimed_by``) until ``lease_until``;
    the agent's heartbeats extend the lease, so only an agent that went silent loses its
    files. ``hotfolder_path`` and ``placed_at`` are what the agent confirmed.
    """

    STATE_INTENT = "intent"
    STATE_DONE = "done"

    file = ForeignKeyField(OrderFile, unique=True, backref="deliveries", on_delete="CASCADE")
    state = CharField(default=STATE_INTENT, index=True)
    claimed_by = CharField()
    hotfolder_path = TextField(default="")
    started_at = DateTimeField(default=utcnow)
    done_at = DateTimeField(null=True)
    attempts = IntegerField(default=0)
    error = TextField(default="")
    notification = ForeignKeyField(
        JobNotification, null=True, backref="deliveries", on_delete="SET NULL"
    )
    lease_until = DateTimeField(null=True)
    placed_at = DateTimeField(null=True)

    class Meta:
        # Leases are renewed per agent on every heartbeat.
        indexes = ((("claimed_by", "state"), False),)


class OutboundTransfer(BaseModel):
    """A file staff dropped into an order's outbound folder, on its way into the portal.

    The agent uploads it with tus: the row is made with the upload (``file``, state
    staging) and marked sent once every byte arrived; the portal's worker scans it
    like any upload. ``source_path`` is the dropped file's path on the agent's host.
    ``active_source`` belongs to the agents before release 4 (unique while open).
    """

    STATE_STAGING = "staging"
    STATE_STAGED = "staged"
    STATE_SENT = "sent"

    active_source = CharField(unique=True, null=True)
    source_path = TextField()
    order = ForeignKeyField(Order, backref="outbound_transfers", on_delete="CASCADE")
    folder = CharField()
    size = BigIntegerField()
    state = CharField(default=STATE_STAGING, index=True)
    claimed_by = CharField()
    file = ForeignKeyField(OrderFile, null=True, backref="transfers", on_delete="SET NULL")
    sent_path = TextField(default="")
    error = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    done_at = DateTimeField(null=True)
    # The agent token that uploads it (over tus): only that token may continue the upload.
    token = ForeignKeyField(ApiToken, null=True, backref="transfers", on_delete="SET NULL")


class AgentError(BaseModel):
    """A problem the agent could not solve by itself (unreadable file, full hotfolder …).

    One open row per path and action, counted while it repeats; resolved once
    the same path succeeds.
    """

    agent_id = CharField()
    action = CharField()
    path = TextField()
    reason = TextField()
    order = ForeignKeyField(Order, null=True, backref="agent_errors", on_delete="CASCADE")
    file = ForeignKeyField(OrderFile, null=True, backref="agent_errors", on_delete="CASCADE")
    occurrences = IntegerField(default=1)
    created_at = DateTimeField(default=utcnow)
    last_seen_at = DateTimeField(default=utcnow, index=True)
    resolved_at = DateTimeField(null=True, index=True)


class MailAttachment(BaseModel):
    """A file attached to an outbox mail (e.g. the XML of a job notification)."""

    mail = ForeignKeyField(OutboxMail, backref="attachments", on_delete="CASCADE")
    file_name = CharField()
    content_type = CharField(default="application/octet-stream")
    content = BlobField()


class NotificationRule(BaseModel):
    """Who gets one notification event's mail; with a customer set, that customer's override."""

    ROLE_CUSTOMER = "customer"
    ROLE_OWNER = "owner"
    ROLE_STAFF = "staff"
    ROLE_ADMINS = "admins"
    ROLES = (ROLE_CUSTOMER, ROLE_OWNER, ROLE_STAFF, ROLE_ADMINS)

    kind = CharField()
    customer = ForeignKeyField(
        Customer, null=True, backref="notification_rules", on_delete="CASCADE"
    )
    active = BooleanField(default=True)
    roles = CharField(default="")
    extra_addresses = TextField(default="")
    template_name = CharField()
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("kind", "customer"), True),)

    @property
    def role_list(self) -> list[str]:
        return [role for role in self.roles.split(",") if role]

    @property
    def address_list(self) -> list[str]:
        return [address for address in self.extra_addresses.split(",") if address]


class NotificationRuleStaff(BaseModel):
    """An additional staff user who gets the mail of a notification rule."""

    rule = ForeignKeyField(NotificationRule, backref="extra_staff", on_delete="CASCADE")
    staff = ForeignKeyField(StaffUser, backref="notification_rules", on_delete="CASCADE")

    class Meta:
        indexes = ((("rule", "staff"), True),)


class Notification(BaseModel):
    """An event that may be mailed; recorded with its cause, batched and sent by the worker."""

    kind = CharField(index=True)
    customer = ForeignKeyField(Customer, null=True, backref="notifications", on_delete="CASCADE")
    order = ForeignKeyField(Order, null=True, backref="notifications", on_delete="CASCADE")
    ticket = ForeignKeyField(Ticket, null=True, on_delete="SET NULL")
    file = ForeignKeyField(OrderFile, null=True, on_delete="SET NULL")
    detail = TextField(default="")
    created_at = DateTimeField(default=utcnow, index=True)
    processed_at = DateTimeField(null=True, index=True)
    outcome = TextField(default="")


class BouncedAddress(BaseModel):
    """An address that hard-bounced (or staff marked so); not mailed again until cleared."""

    email = CharField(unique=True)
    reason = TextField(default="")
    created_by = ForeignKeyField(StaffUser, null=True, on_delete="SET NULL")
    created_at = DateTimeField(default=utcnow)


class DigestRun(BaseModel):
    """The scheduled daily digest of one local date has been queued."""

    day = DateField(unique=True)
    created_at = DateTimeField(default=utcnow)


class StaffToken(BaseModel):
    """A single-use link for a staff user to choose a password; only its SHA-256 is kept."""

    staff = ForeignKeyField(StaffUser, backref="tokens", on_delete="CASCADE")
    token_hash = CharField(unique=True)
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()
    used_at = DateTimeField(null=True)


class RecoveryCode(BaseModel):
    """A one-time code that stands in for the TOTP code (a lost phone); stored hashed."""

    staff = ForeignKeyField(StaffUser, backref="recovery_codes", on_delete="CASCADE")
    code_hash = CharField()
    created_at = DateTimeField(default=utcnow)
    used_at = DateTimeField(null=True)


class AuditEntry(BaseModel):
    """One line of the audit log: who did what, when and from where (``shared.audit``).

    Names, not foreign keys: an entry must read the same after the staff user, login or
    customer it mentions is gone, and nothing but the retention deletes it.
    """

    created_at = DateTimeField(default=utcnow, index=True)
    actor_kind = CharField()
    actor_name = CharField(default="")
    address = CharField(default="")
    action = CharField(index=True)
    target = CharField(default="")
    customer_no = CharField(default="", index=True)
    detail = TextField(default="")

    class Meta:
        table_name = "audit_log"


class RateLimitCounter(BaseModel):
    """Requests counted for one rate limit in its current window, shared by every process.

    ``key`` names the limit and what it counts (an address, a username); ``expires_at`` is
    the end of the window in seconds since the epoch. See ``shared.accounts.rate_limits``.
    """

    key = TextField(unique=True)
    count = IntegerField(default=0)
    # Seconds since the epoch: eight bytes (a four-byte REAL on PostgreSQL rounds them to 128 s).
    expires_at = DoubleField(index=True)


class ReceivedMail(BaseModel):
    """One mail read from a configured mailbox (issue 17), recorded exactly once.

    Unique by mailbox + UIDVALIDITY + UID (the same message read again after a crash) and
    by Message-ID (the same mail in a second mailbox, or delivered twice). ``action`` is
    what matching decided; mail for the staff inbox ("Posteingang") has an ``inbox_state``
    and keeps its raw bytes at ``held_path`` until staff assign or discard it.
    """

    ACTION_ORDER = "to_order"
    ACTION_INBOX = "to_inbox"
    ACTION_RECORD = "record_only"
    ACTION_BOUNCE = "bounce"

    INBOX_OPEN = "open"
    INBOX_ASSIGNED = "assigned"
    INBOX_DISCARDED = "discarded"

    mailbox = CharField()
    uidvalidity = BigIntegerField()
    uid = BigIntegerField()
    message_id = CharField(max_length=1000, unique=True)
    sender = CharField(max_length=1000, default="")
    sender_name = TextField(default="")
    subject = TextField(default="")
    sent_at = DateTimeField(null=True)
    size = BigIntegerField(default=0)
    sha256 = CharField(default="")
    action = CharField(index=True)
    reason = TextField(default="")
    note = TextField(default="")
    auto_reply = BooleanField(default=False)
    text_body = TextField(default="")
    quoted_history = TextField(default="")
    html_body = TextField(default="")
    attachment_list = TextField(default="")
    order = ForeignKeyField(Order, null=True, backref="received_mails", on_delete="SET NULL")
    suggested_order = ForeignKeyField(Order, null=True, on_delete="SET NULL")
    customer = ForeignKeyField(Customer, null=True, backref="received_mails", on_delete="SET NULL")
    inbox_state = CharField(default="", index=True)
    held_path = TextField(default="")
    rejection_answered_at = DateTimeField(null=True)
    handled_by = ForeignKeyField(StaffUser, null=True, on_delete="SET NULL")
    handled_at = DateTimeField(null=True)
    received_at = DateTimeField(default=utcnow, index=True)

    class Meta:
        indexes = ((("mailbox", "uidvalidity", "uid"), True),)

    @property
    def attachments(self) -> list[tuple[str, int, bool]]:
        """(file name, size, inline) of each attachment the mail carried."""
        found = []
        for line in self.attachment_list.splitlines():
            name, _tab, rest = line.rpartition("\t")
            size, _tab, inline = rest.partition(":")
            found.append((name, int(size or 0), inline == "inline"))
        return found


class OrderMessage(BaseModel):
    """One message of an order's conversation: written on the portal or received by mail.

    ``internal`` notes are for staff only; customers never see them (automatic replies
    are recorded as internal too). A staff message that went out as mail points to it.
    """

    AUTHOR_CUSTOMER = "customer"
    AUTHOR_STAFF = "staff"

    SOURCE_PORTAL = "portal"
    SOURCE_MAIL = "mail"
    SOURCE_AUTO_REPLY = "auto_reply"

    order = ForeignKeyField(Order, backref="messages", on_delete="CASCADE")
    author = CharField()
    source = CharField(default=SOURCE_PORTAL)
    internal = BooleanField(default=False)
    login = ForeignKeyField(PortalLogin, null=True, on_delete="SET NULL")
    staff = ForeignKeyField(StaffUser, null=True, on_delete="SET NULL")
    sender = TextField(default="")
    body = TextField(default="")
    received_mail = ForeignKeyField(
        ReceivedMail, null=True, unique=True, backref="messages", on_delete="SET NULL"
    )
    outbox_mail = ForeignKeyField(OutboxMail, null=True, on_delete="SET NULL")
    mail_outcome = TextField(default="")
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("order", "created_at"), False),)


class MessageFile(BaseModel):
    """A file that came with a message: a customer's upload, or a mail's attachment."""

    message = ForeignKeyField(OrderMessage, backref="files", on_delete="CASCADE")
    file = ForeignKeyField(OrderFile, unique=True, backref="message_links", on_delete="CASCADE")


class MessageImage(BaseModel):
    """A signature image or logo of a received mail: shown with it, never print data."""

    received_mail = ForeignKeyField(ReceivedMail, backref="images", on_delete="CASCADE")
    content_id = TextField(default="")
    file_name = TextField(default="")
    content_type = CharField(default="application/octet-stream")
    content = BlobField()


class MailboxState(BaseModel):
    """What the worker last saw of one configured mailbox, for the admins' mailbox page.

    ``reader`` holds the mailbox while ``lease_until`` lies ahead: one reader per mailbox
    however many workers run (``shared.conversations.readers``).
    """

    name = CharField(unique=True)
    reader = CharField(default="")
    lease_until = DateTimeField(null=True)
    uidvalidity = BigIntegerField(default=0)
    idle = BooleanField(default=False)
    checked_at = DateTimeField(null=True)
    imported = IntegerField(default=0)
    imported_at = DateTimeField(null=True)
    error = TextField(default="")
    error_at = DateTimeField(null=True)


class AutoAnswer(BaseModel):
    """When the portal last answered an address automatically (at most once an hour)."""

    address = CharField(max_length=1000, unique=True)
    answered_at = DateTimeField(default=utcnow)


class Proof(BaseModel):
    """A proof the customer is asked to approve (Druckfreigabe): one file, one version.

    Versions count up per order; asking again supersedes the versions before, and only
    the newest undecided one can be decided. What was approved stays readable after its
    file is gone: name, size and SHA-256 are copied here, and the decision is recorded
    with time, login, address and the SHA-256 of the file the customer saw.
    """

    DECISION_APPROVED = "approved"
    DECISION_REJECTED = "rejected"
    DECISIONS = (DECISION_APPROVED, DECISION_REJECTED)

    order = ForeignKeyField(Order, backref="proofs", on_delete="CASCADE")
    version = IntegerField()
    file = ForeignKeyField(OrderFile, null=True, backref="proofs", on_delete="SET NULL")
    file_name = CharField()
    file_size = BigIntegerField()
    sha256 = CharField()
    requested_by = ForeignKeyField(StaffUser, null=True, on_delete="SET NULL")
    requested_by_name = CharField(default="")
    requested_at = DateTimeField(default=utcnow)
    superseded_at = DateTimeField(null=True)
    decision = CharField(default="")
    decided_at = DateTimeField(null=True)
    decided_by = ForeignKeyField(PortalLogin, null=True, on_delete="SET NULL")
    decided_by_username = CharField(default="")
    decided_from = CharField(default="")
    decision_comment = TextField(default="")
    decision_sha256 = CharField(default="")
    # When a hotfolder agent placed the approval file of this decision (once per version).
    approval_placed_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("order", "version"), True),)


ALL_MODELS = [
    StaffUser,
    Customer,
    Contact,
    SystemDefault,
    PortalLogin,
    Activation,
    ActivationToken,
    PortalSession,
    Order,
    Ticket,
    OrderFile,
    FileEvent,
    EmailTemplate,
    EmailSignature,
    ApiToken,
    OutboxMail,
    AgentHeartbeat,
    JobNotification,
    Delivery,
    OutboundTransfer,
    AgentError,
    MailAttachment,
    NotificationRule,
    NotificationRuleStaff,
    Notification,
    BouncedAddress,
    DigestRun,
    StaffToken,
    RecoveryCode,
    AuditEntry,
    RateLimitCounter,
    ReceivedMail,
    OrderMessage,
    MessageFile,
    MessageImage,
    MailboxState,
    AutoAnswer,
    Proof,
]
