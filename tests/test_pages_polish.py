"""What every page shares, without a browser: lengths and counts in words ("1 second", not "1 seconds"), the
favicon at /favicon.ico, the navigation's current page. Persona: alice (Acme owner)."""
import pytest
from django.template import Context, Template
from django.test import RequestFactory

from callrouting.templatetags.pages import seconds_in_words


@pytest.mark.parametrize("seconds, words", [
    (0, "0 seconds"), (1, "1 second"), (7, "7 seconds"), (60, "1 minute"), (61, "1 minute 1 second"),
    (125, "2 minutes 5 seconds"), (None, ""),
])
def test_lengths_read_as_people_say_them(seconds, words):
    assert seconds_in_words(seconds) == words


@pytest.mark.parametrize("path, current", [
    ("/numbers/", True), ("/numbers/4/options/", True), ("/incidents/", False), ("/", False),
])
def test_the_navigation_link_of_the_requested_section_is_current(path, current):
    html = Template('{% load pages %}<a href="/numbers/"{% nav_current "/numbers/" %}>')
    rendered = html.render(Context({"request": RequestFactory().get(path)}))
    assert ('aria-current="page"' in rendered) is current


@pytest.mark.parametrize("path, current", [("/people/", True), ("/people/3/", True), ("/me/", True), ("/numbers/", False)])
def test_people_is_current_on_an_owners_own_page_too(path, current):
    html = Template('{% load pages %}<a href="/people/"{% nav_current "/people/" "/me/" %}>')
    rendered = html.render(Context({"request": RequestFactory().get(path)}))
    assert ('aria-current="page"' in rendered) is current


def test_the_favicon_is_served_at_the_root(client, db):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] == "image/x-icon"
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"


def test_every_page_links_the_favicon_and_the_api_tokens(client, alice):
    client.force_login(alice)
    html = client.get("/numbers/").content.decode()
    assert 'rel="icon"' in html and 'href="/settings/api-tokens/"' in html
    assert '<a href="/numbers/" aria-current="page">Numbers</a>' in html
