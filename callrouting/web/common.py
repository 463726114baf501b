"""Small helpers the settings pages share: confirmation of destructive actions and pagination."""
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import ProtectedError
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


def query_without_page(request):
    """The current query string without "page", for pagination links that keep the filters."""
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def not_allowed(request, *methods):
    """A 405 response when the request's method is not one of METHODS, else None.

    Views with an id in the URL ask this after looking the row up, so another account's row is a 404 whatever
    the method (HEAD counts as GET)."""
    method = "GET" if request.method == "HEAD" else request.method
    return None if method in methods else HttpResponseNotAllowed(methods)
