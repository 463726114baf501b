from django.contrib import admin
from django.urls import include, path

from .monitoring import healthz, metrics
from .views import favicon
from .web.people import InvitationView

urlpatterns = [
    path("admin/", admin.site.urls),
    # Browsers and feed readers ask for /favicon.ico whatever the page links.
    path("favicon.ico", favicon, name="favicon"),
    path("accounts/invitation/<uidb64>/<token>/", InvitationView.as_view(), name="invitation"),
    path("accounts/", include("django.contrib.auth.urls")),
    # For load balancers and monitors: /healthz without login, /metrics with METRICS_TOKEN (see README, Monitoring).
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("vonage/", include("callrouting.webhook_urls")),
    path("api/", include("callrouting.api.urls")),
    # Public, token-addressed media: custom audio fetched by Vonage, voicemail links in alert actions.
    path("", include("callrouting.public_urls")),
    path("test-call/", include("callrouting.testcall")),
    # The settings pages (/, /numbers/, /incidents/<pk>/, ...) share the /incidents/ prefix with incidents.urls;
    # no path is in both (see callrouting/web/urls.py).
    path("", include("callrouting.web.urls")),
    path("incidents/", include("incidents.urls")),
]
