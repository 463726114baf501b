"""Renderers of the REST API: JSON, and DRF's browsable API in a browser."""
from csp.constants import UNSAFE_INLINE
from rest_framework import renderers


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """DRF's browsable API, whose templates carry inline styles (style attributes, the code highlighting's
    <style>): its pages alone allow inline styles. Scripts stay limited to this site's static files."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None:
            # Read by django-csp's middleware, as its csp_update decorator would set it.
            response._csp_update = {"style-src": [UNSAFE_INLINE]}
        return super().render(data, accepted_media_type, renderer_context)
