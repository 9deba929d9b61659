"""The names of preview files inside a file's preview directory."""

THUMBNAIL_NAME = "thumbnail.png"


def preview_name(page: int, longest_px: int) -> str:
    """The file name of page ``page``'s (from 1) preview at ``longest_px``."""
    return f"page-{page:05d}-{longest_px}px.png"
