"""The signed-in user's REST API tokens: list, create (the value is shown on the answer to the POST and never
again: only its digest is stored), revoke."""
import datetime as dt

from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from escalation.models import ApiToken

from .. import configuration
from .access import account_view
from .common import confirm_delete, not_allowed
from .forms import ApiTokenForm


@never_cache  # the answer to a creation holds the token's value: no browser or proxy may keep it
@account_view
def api_tokens(request):
    if refused := not_allowed(request, "GET", "POST"):
        return refused
    form = ApiTokenForm(request.POST or None)
    created = None
    status = 200
    if form.is_bound:
        if form.is_valid():
            days = form.cleaned_data["expires_in"]
            expiry = timezone.now() + dt.timedelta(days=days) if days else None
            token, value = configuration.create_api_token(request.user, form.cleaned_data["name"], expiry)
            created = {"token": token, "value": value}
            form = ApiTokenForm()
        else:
            status = 400
    tokens = ApiToken.objects.filter(user=request.user)
    return render(request, "web/api_tokens.html", {"form": form, "tokens": tokens, "created": created}, status=status)


@account_view
def api_token_revoke(request, token_pk):
    token = get_object_or_404(ApiToken, pk=token_pk, user=request.user)
    if refused := not_allowed(request, "GET", "POST"):
        return refused
    back = reverse("web:api-tokens")
    return confirm_delete(
        request, token, back_url=back, done_url=back, what=f"API token “{token.name}”",
        consequences=["Requests with this token fail from now on."],
        delete=lambda: configuration.revoke_api_token(token),
    )
