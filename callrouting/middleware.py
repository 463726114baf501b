"""Middleware of the deployment (listed first in settings.MIDDLEWARE, before anything reads a request body)."""
from django.conf import settings
from django.http import HttpResponse, JsonResponse


class RequestSizeLimitMiddleware:
    """Answer 413 to a request whose declared body is larger than settings.MAX_REQUEST_BODY_SIZE, before any of it
    is read, parsed or spooled to disk, and 411 to a body sent without a length (chunked): Django reads no body
    without Content-Length, so such a request is refused rather than left unread. Anonymous requests included."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        declared = request.META.get("CONTENT_LENGTH") or ""
        if not declared.strip() and request.META.get("HTTP_TRANSFER_ENCODING"):
            return self._refuse(request, 411, "Send the request body with a Content-Length.")
        try:
            size = int(declared or 0)
        except ValueError:
            size = -1
        if size < 0:
            return self._refuse(request, 400, "The Content-Length is not a number.")
        limit = settings.MAX_REQUEST_BODY_SIZE
        if size > limit:
            return self._refuse(request, 413, f"The request body is larger than {limit // 1024 // 1024} MB, the limit.")
        return self.get_response(request)

    @staticmethod
    def _refuse(request, status, message):
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": message}, status=status)
        return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
