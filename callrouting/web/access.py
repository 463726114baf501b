"""Who may see and change what on the settings pages.

Every page is of the signed-in user's account: rows are looked up through callrouting.tenancy, so another
account's row is a 404 exactly like a missing one. Account admins (owner, admin) edit; responders view and
accept/resolve incidents. Support staff have no account: they work in the Django admin and are sent there.
"""
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.utils import timezone


def account_view(view):
    """Views for signed-in account users; sets request.account and shows times in the account's time zone."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if user.account_id is None:
            if user.is_staff:
                return redirect("admin:index")
            raise PermissionDenied("This login belongs to no account.")
        request.account = user.account
        request.can_edit = user.is_account_admin
        with timezone.override(request.account.timezone):
            return view(request, *args, **kwargs)

    return wrapper


def require_admin(request):
    """Refuse (403) a change by anyone but the account's owner or admins. Call after the 404 lookups."""
    if not request.user.is_account_admin:
        raise PermissionDenied("Only the account's owner and admins change settings.")
