"""Markdown rendered to sanitised HTML (nh3): user text can never inject script."""

from functools import lru_cache

import markdown as markdown_lib
import nh3
from django.utils.safestring import mark_safe

ALLOWED_TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "h1",
    "h2",
    "h3",
    "h4",
    "hr",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}


def render_markdown(text: str) -> str:
    return _render(text or "")


# The output depends only on the text, so a per-process cache keyed by the text itself is never
# stale; it spares a ticket page re-parsing the same comments on every view.
@lru_cache(maxsize=4096)
def _render(text: str) -> str:
    html = markdown_lib.markdown(text, extensions=["fenced_code", "tables"])
    return mark_safe(  # noqa: S308 - sanitised just above by nh3
        nh3.clean(
            html,
            tags=ALLOWED_TAGS,
            attributes={"a": {"href", "title"}},
            url_schemes={"http", "https", "mailto"},
            link_rel="noopener noreferrer",
        )
    )
