"""What the API documentation pages need beyond drf-spectacular: Redoc's bundle without its one third-party
request. The bundle (from drf-spectacular-sidecar) always shows Redocly's logo from their CDN beside "API docs by
Redocly"; served from here with our own icon in its place, the documentation pages load nothing from outside."""
import functools
from pathlib import Path

from django.contrib.staticfiles import finders
from django.http import HttpResponse
from django.templatetags.static import static
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

REDOC_BUNDLE = "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@functools.cache
def redoc_bundle_text():
    """The sidecar's Redoc bundle with the CDN logo replaced by this installation's icon (read once per process)."""
    text = Path(finders.find(REDOC_BUNDLE)).read_text(encoding="utf-8")
    return text.replace(REDOCLY_LOGO, static("img/favicon.svg"))


@require_GET
@cache_control(public=True, max_age=24 * 3600)
def redoc_bundle(request):
    return HttpResponse(redoc_bundle_text(), content_type="text/javascript; charset=utf-8")
