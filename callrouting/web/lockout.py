"""The page a locked-out login gets (django-axes' AXES_LOCKOUT_CALLABLE), for the product login and the admin."""
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render


def locked_out(request, original_response=None, credentials=None):
    """The login page again, with the lockout explained, as 429 Too Many Requests."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(
        request,
        "registration/login.html",
        {"form": AuthenticationForm(request), "locked_out": True, "lockout_minutes": minutes,
         "next": request.POST.get("next", "")},
        status=429,
    )
