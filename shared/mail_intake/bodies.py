"""Mail bodies made safe to show: sanitised HTML, HTML as text, quoted history split off."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

# What mail programs use for layout; no scripts, styles, forms, frames or objects.
_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "col", "colgroup",
    "dd", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
    "img", "li", "ol", "p", "pre", "s", "small", "span", "strike", "strong", "sub", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
# No style attribute: CSS can load remote images (background: url(…)) that track the reader.
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align", "valign"},
    "th": {"colspan", "rowspan", "align", "valign"},
    "font": {"color"},
    "blockquote": {"type"},
}
# cid: is how a mail's HTML points at its own inline images.
_URL_SCHEMES = {"http", "https", "mailto", "cid"}
_BLOCKS = {
    "address", "blockquote", "br", "div", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "li", "ol", "p", "pre", "table", "tr", "ul",
}  # fmt: skip
_INVISIBLE = {"script", "style", "head", "title"}

# The line a mail program writes above the quoted mail, in German, English and French.
_ATTRIBUTION = re.compile(
    r"^\s*(?:"
    r"Am\s.+\sschrieb\s.+:"
    r"|On\s.+\swrote:"
    r"|Le\s.+\sa\s+écrit\s*:"
    r"|-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine"
    r"|Originalnachricht|Weitergeleitete Nachricht|Forwarded message)\s*-{2,}"
    r")\s*$",
    re.IGNORECASE,
)
# Outlook quotes as a header block: "Von: …" followed by "Gesendet: …" / "An: …".
_OUTLOOK_FROM = re.compile(r"^\s*\*?(?:Von|From|De)\s*:\*?\s+\S", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(
    r"^\s*\*?(?:Gesendet|Sent|Envoyé|Datum|Date|An|To|À|Betreff|Subject|Objet)\s*:",
    re.IGNORECASE,
)
_UNDERSCORES = re.compile(r"^\s*_{10,}\s*$")


def sanitise_html(html: str) -> str:
    """``html`` without scripts, styles, event handlers or remote images; cid: images stay.

    An ``<img>`` keeps its ``src`` only when it is ``cid:…`` (an image inside this mail,
    which the page maps to the stored inline image); http(s) and data: sources are
    dropped, so opening a mail never tells a sender that it was read.
    """
    if not html:
        return ""
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        attribute_filter=_only_cid_images,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def _only_cid_images(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src":
        return value if value.strip().lower().startswith("cid:") else None
    if tag == "a" and attribute == "href" and value.strip().lower().startswith("cid:"):
        return None
    return value


def cid_references(html: str) -> set[str]:
    """The Content-IDs an HTML body points at (``src="cid:logo@x"`` → ``logo@x``)."""
    return {
        match.strip("<> ").lower()
        for match in re.findall(r"""cid:([^"'\s>)]+)""", html or "", re.IGNORECASE)
    }


class _TextCollector(HTMLParser):
    """Collects text line by line; block elements end a line, blockquotes add "> "."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._current: list[str] = []
        self._current_depth = 0
        self._depth = 0
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _INVISIBLE:
            self._skipping += 1
        elif tag in _BLOCKS:
            self.end_line()
        if tag == "blockquote":
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCKS:
            self.end_line()
        if tag == "blockquote":
            self._depth = max(0, self._depth - 1)

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        if not self._current:
            self._current_depth = self._depth
        self._current.append(re.sub(r"\s+", " ", data))

    def end_line(self) -> None:
        text = "".join(self._current).strip()
        if text:
            self.lines.append("> " * self._current_depth + text)
        elif self.lines and self.lines[-1]:
            self.lines.append("")  # one blank line between blocks, never more
        self._current = []


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML body: blocks become lines, blockquotes ``> `` lines."""
    collector = _TextCollector()
    try:
        collector.feed(html or "")
        collector.close()
    except Exception:  # html.parser is lenient, but a body must never stop the import
        return nh3.clean(html or "", tags=set())
    collector.end_line()
    return "\n".join(collector.lines).strip()


def split_quoted(text: str) -> tuple[str, str]:
    """``(reply, quoted_history)``: the history below a reply, for the page to fold away.

    History starts at an attribution line ("Am … schrieb …:", "On … wrote:", "Le … a écrit
    :", "-----Original Message-----"), at an Outlook header block ("Von:" followed by
    "Gesendet:"/"An:"), or where only ">" lines remain. A mail that would be all history
    (a bare forward) is left whole.
    """
    lines = (text or "").split("\n")
    start = _history_start(lines)
    if start is None:
        return text, ""
    reply = "\n".join(lines[:start]).rstrip()
    if not reply.strip():
        return text, ""
    return reply, "\n".join(lines[start:]).strip("\n")


def _history_start(lines: list[str]) -> int | None:
    for index, line in enumerate(lines):
        joined = line + " " + lines[index + 1] if index + 1 < len(lines) else line
        if _ATTRIBUTION.match(line) or (
            # "Am 3. Mai 2026 um 10:00 schrieb Anna Muster\n<anna@example.de>:" wraps.
            not line.rstrip().endswith(":") and _ATTRIBUTION.match(joined)
        ):
            return _include_separator(lines, index)
        if _OUTLOOK_FROM.match(line) and any(
            _OUTLOOK_NEXT.match(following) for following in lines[index + 1 : index + 5]
        ):
            return _include_separator(lines, index)
    return _trailing_quote_start(lines)


def _include_separator(lines: list[str], index: int) -> int:
    """Step back over blank lines and Outlook's ``______`` rule above the history."""
    while index > 0 and (not lines[index - 1].strip() or _UNDERSCORES.match(lines[index - 1])):
        index -= 1
    return index


def _trailing_quote_start(lines: list[str]) -> int | None:
    """Where the final run of ``>`` lines (blank lines allowed) begins, if there is one."""
    index = len(lines)
    found = None
    while index > 0:
        line = lines[index - 1]
        if line.lstrip().startswith(">"):
            found = index - 1
        elif line.strip():
            break
        index -= 1
    return None if found is None else _include_separator(lines, found)
