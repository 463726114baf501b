"""Small helpers the settings pages share: confirmation of destructive actions and pagination."""
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import ProtectedError, Q
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect, render

PAGE_SIZE = 50


def confirm_delete(request, obj, *, back_url, done_url, what=None, consequences=(), delete=None):
    """GET: a page asking to confirm deleting OBJ. POST: delete it (with DELETE, default obj.delete) and go to
    DONE_URL. A row other rows still need (ProtectedError) is kept, with the reason shown."""
    what = what or f"{obj._meta.verbose_name} “{obj}”"
    if request.method == "POST":
        try:
            (delete or obj.delete)()
        except ProtectedError as exc:
            used_by = ", ".join(sorted({str(row) for row in exc.protected_objects})[:5])
            messages.error(request, f"The {what} is still used ({used_by}); change those first.")
            return redirect(back_url)
        messages.success(request, f"Deleted the {what}.")
        return redirect(done_url)
    return render(
        request,
        "web/confirm_delete.html",
        {"object": obj, "what": what, "back_url": back_url, "consequences": consequences},
    )


def paginate(request, queryset, size=PAGE_SIZE):
    """The requested page of QUERYSET (a bad page number gives the first or last page, never an error)."""
    return Paginator(queryset, size).get_page(request.GET.get("page"))


class KeysetPage:
    """One page of a list shown newest first, found by position: the rows older than row BEFORE (or newer than
    row AFTER), so that the last page of a long history costs what the first one does."""

    def __init__(self, rows, *, has_newer, has_older):
        self.rows = rows
        self.has_newer = has_newer and bool(rows)
        self.has_older = has_older and bool(rows)

    def __iter__(self):
        return iter(self.rows)

    def __len__(self):
        return len(self.rows)

    @property
    def newer_than(self):
        return self.rows[0].pk

    @property
    def older_than(self):
        return self.rows[-1].pk


def keyset_paginate(request, queryset, time_field, size=PAGE_SIZE, *, prefix=""):
    """The page of QUERYSET (ordered by TIME_FIELD and id, newest first) that ?before=<id> or ?after=<id> ask
    for; the first page without either, or when that row is not in QUERYSET (deleted, or filtered out).
    PREFIX names the parameters of a second list on the same page (?calls_before=<id>)."""
    newest_first = queryset.order_by(f"-{time_field}", "-id")
    for param, older in ((f"{prefix}before", True), (f"{prefix}after", False)):
        value = request.GET.get(param, "")
        anchor = queryset.filter(pk=value).values_list(time_field, flat=True).first() if value.isdigit() else None
        if anchor is None:
            continue
        if older:
            rows = newest_first.filter(
                Q(**{f"{time_field}__lte": anchor}), Q(**{f"{time_field}__lt": anchor}) | Q(pk__lt=value)
            )
        else:
            rows = queryset.order_by(time_field, "id").filter(
                Q(**{f"{time_field}__gte": anchor}), Q(**{f"{time_field}__gt": anchor}) | Q(pk__gt=value)
            )
        rows = list(rows[: size + 1])
        more = len(rows) > size
        rows = rows[:size]
        if older:
            return KeysetPage(rows, has_newer=True, has_older=more)
        return KeysetPage(rows[::-1], has_newer=more, has_older=True)
    rows = list(newest_first[: size + 1])
    return KeysetPage(rows[:size], has_newer=False, has_older=len(rows) > size)


def query_without_page(request):
    """The current query string without the page's position, for pagination links that keep the filters."""
    params = request.GET.copy()
    for name in ("page", "before", "after"):
        params.pop(name, None)
    return params.urlencode()


def not_allowed(request, *methods):
    """A 405 response when the request's method is not one of METHODS, else None.

    Views with an id in the URL ask this after looking the row up, so another account's row is a 404 whatever
    the method (HEAD counts as GET)."""
    method = "GET" if request.method == "HEAD" else request.method
    return None if method in methods else HttpResponseNotAllowed(methods)
