"""Mail bodies made safe to show: sanitising, HTML as text, folding quoted history."""

from __future__ import annotations

import pytest

from shared.mail_intake.bodies import cid_references, html_to_text, sanitise_html, split_quoted

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: no database here

REL = "noopener noreferrer nofollow"


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p onclick='x()' style='color:red'>Hallo</p>", "<p>Hallo</p>"),
        ("<script>alert(1)</script><style>p{}</style>ok", "ok"),
        ('<img src="https://tracker.example/p.gif?u=1">', "<img>"),
        ('<img src="http://tracker.example/p.gif">', "<img>"),
        ('<img src="data:image/png;base64,AAAA">', "<img>"),
        ('<img src="cid:logo@x.example" alt="Logo">', '<img src="cid:logo@x.example" alt="Logo">'),
        ('<div style="background:url(https://t.example/x)">x</div>', "<div>x</div>"),
        ('<a href="javascript:alert(1)">j</a>', f'<a rel="{REL}">j</a>'),
        ('<a href="https://o.example">o</a>', f'<a href="https://o.example" rel="{REL}">o</a>'),
        ("<iframe src='https://x.example'></iframe><form><input></form>t", "t"),
        ("<!-- [if mso]>x<![endif] -->t", "t"),
    ],
)  # fmt: skip
def test_sanitise_html(html: str, expected: str) -> None:
    assert sanitise_html(html) == expected


def test_cid_references_are_found_case_insensitively() -> None:
    html = "<img src=\"cid:Logo@X.example\"><img src='CID:sig.png@01D'>"
    assert cid_references(html) == {"logo@x.example", "sig.png@01d"}


def test_html_to_text_keeps_blocks_and_marks_quotes() -> None:
    html = (
        "<html><head><title>t</title><style>p{}</style></head><body>"
        "<p>Hallo&nbsp;Anna,</p><p>zweite<br>Zeile</p><ul><li>eins</li><li>zwei</li></ul>"
        "<blockquote type='cite'><p>alt</p><blockquote>ganz alt</blockquote></blockquote>"
        "</body></html>"
    )
    assert html_to_text(html) == (
        "Hallo Anna,\n\nzweite\nZeile\n\neins\n\nzwei\n\n> alt\n\n> > ganz alt"
    )


WRAPPED = "Am Mo., 4. Mai 2026 um 10:00 Uhr schrieb Anna Muster\n<anna@kunde.example>:\n> alt"
OUTLOOK_DE = (
    "________________________________\nVon: Anna <a@x.example>\nGesendet: Montag\nAn: b\n\nalt"
)


@pytest.mark.parametrize(
    ("text", "reply", "history"),
    [
        (
            "Danke!\n\nAm 03.05.2026 um 10:00 schrieb Anna Muster <anna@kunde.example>:\n> alt",
            "Danke!",
            "Am 03.05.2026 um 10:00 schrieb Anna Muster <anna@kunde.example>:\n> alt",
        ),
        (
            "Danke!\n" + WRAPPED,
            "Danke!",
            WRAPPED,
        ),
        (
            "Thanks\n\nOn Mon, May 4, 2026 at 10:00 AM Jane <j@x.example> wrote:\n> old",
            "Thanks",
            "On Mon, May 4, 2026 at 10:00 AM Jane <j@x.example> wrote:\n> old",
        ),
        (
            "Merci\n\nLe lun. 4 mai 2026 à 10:00, Jean <j@x.example> a écrit :\n> vieux",
            "Merci",
            "Le lun. 4 mai 2026 à 10:00, Jean <j@x.example> a écrit :\n> vieux",
        ),
        (
            "OK\n\n-----Original Message-----\nFrom: x\nSent: y\n\nold",
            "OK",
            "-----Original Message-----\nFrom: x\nSent: y\n\nold",
        ),
        ("OK\n\n" + OUTLOOK_DE, "OK", OUTLOOK_DE),
        (
            "> Frage 1\nAntwort 1\n\n> Rest\n>\n> mehr\n",
            "> Frage 1\nAntwort 1",
            "> Rest\n>\n> mehr",
        ),
        ("Von: heute an gilt der Preis.\nDanke", "Von: heute an gilt der Preis.\nDanke", ""),
        ("> alles nur zitiert\n> nichts Neues", "> alles nur zitiert\n> nichts Neues", ""),
        ("Nur Text.", "Nur Text.", ""),
    ],
    ids=["de", "de-wrapped", "en", "fr", "outlook-en", "outlook-de", "trailing-quote",
         "von-in-text", "all-quoted", "no-quote"],
)  # fmt: skip
def test_split_quoted(text: str, reply: str, history: str) -> None:
    assert split_quoted(text) == (reply, history)
