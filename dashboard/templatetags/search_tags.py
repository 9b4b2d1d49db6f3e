"""Search snippets in templates: the stored text escaped, the matched spans in <mark>.

The one filter here that returns markup; every piece of text goes through format_html's
escaping, and only the <mark> tags are ours.
"""

from __future__ import annotations

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from sessions_api.search.snippets import Snippet

register = template.Library()


@register.filter
def highlighted(snippet: Snippet | None) -> SafeString:
    if snippet is None:
        return format_html("")
    return format_html_join(
        "",
        "{}",
        (
            (format_html("<mark>{}</mark>", piece) if marked else piece,)
            for piece, marked in snippet.parts()
        ),
    )


_KINDS = {
    "message": "message",
    "tool_call": "tool call",
    "tool_result": "tool result",
    "log": "log entry",
    "step": "step",
    "session": "session fields",
}


@register.filter
def hit_kind(kind: str) -> str:
    """What a matched entry is, in words (plain text: autoescaped as usual)."""
    return _KINDS.get(kind, kind)
