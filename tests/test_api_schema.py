"""The OpenAPI schema: generated without warnings and valid (drf-spectacular's validator), and served with its
documentation pages from this installation (no CDN)."""
import pytest
from django.core.management import call_command


def test_schema_generates_and_validates(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in ("/api/numbers/{id}/", "/api/incidents/{id}/accept/", "/api/calls/", "/api/escalation-rules/"):
        assert path in text
    assert "tokenAuth" in text


@pytest.mark.django_db
def test_docs_pages_are_served_without_a_cdn(client, alice):
    client.force_login(alice)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"openapi" in schema.content
    for page, script in (("/api/docs/", "/static/drf_spectacular_sidecar/"),
                         ("/api/redoc/", "/api/redoc/redoc.standalone.js")):
        html = client.get(page).content.decode()
        assert script in html and "cdn." not in html
    # Redoc's bundle comes from the sidecar with Redocly's CDN logo replaced by this installation's icon.
    bundle = client.get("/api/redoc/redoc.standalone.js")
    assert bundle.status_code == 200 and bundle["Content-Type"].startswith("text/javascript")
    text = bundle.content.decode()
    assert "cdn.redoc.ly" not in text and "/static/img/favicon.svg" in text and len(text) > 500_000
    assert client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js").status_code == 200
