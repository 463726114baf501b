"""Template helpers shared by the pages: where the navigation is, and durations and counts in words."""
from django import template
from django.utils.safestring import mark_safe
from django.utils.translation import ngettext

register = template.Library()


@register.simple_tag(takes_context=True)
def nav_current(context, *prefixes):
    """' aria-current="page"' on the navigation link one of whose PREFIXES starts the requested path ("/" only on
    "/"): People also stands for an owner's own page, /me/, which their navigation has no link of its own for."""
    request = context.get("request")
    path = request.path if request else ""
    current = any(path == prefix if prefix == "/" else path.startswith(prefix) for prefix in prefixes)
    return mark_safe(' aria-current="page"') if current else ""


@register.filter
def seconds_in_words(seconds):
    """'1 second', '45 seconds', '1 minute 5 seconds', '2 minutes': a recording's length as people say it."""
    if seconds in (None, ""):
        return ""
    seconds = int(seconds)
    minutes, rest = divmod(seconds, 60)
    parts = []
    if minutes:
        parts.append(ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes})
    if rest or not minutes:
        parts.append(ngettext("%(count)d second", "%(count)d seconds", rest) % {"count": rest})
    return " ".join(parts)
