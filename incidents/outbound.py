"""The guarded HTTP client: every request to a URL an account typed (alert-action webhooks, Slack, Teams) is sent
by post_json() here, and those URLs are checked with url_problem() and address_problem() when they are saved.

What it guarantees, so an account cannot use the deployment to reach inside the host's network:
- https only (settings.OUTBOUND_ALLOW_HTTP allows http:// for local development);
- Slack and Teams URLs are on their vendors' incoming-webhook hosts;
- the host is resolved when the request is sent and the connection goes to the address that was checked (the
  adapter of requests-hardened pins it, while TLS still verifies the URL's host name through SNI and the
  certificate), so a name cannot resolve to a public address for the check and to a private one for the connection;
- only public addresses are reached: loopback, private, shared (CGNAT), link-local, reserved, documentation,
  multicast and unspecified addresses are refused, IPv4 and IPv6 alike, including IPv4-mapped and NAT64/6to4
  wrappings of them (settings.OUTBOUND_ALLOW_LOOPBACK allows 127.0.0.0/8 and ::1, for local development only);
- redirects are never followed; proxies and credentials from the environment (.netrc) are not used;
- at most RESPONSE_BYTES of an answer are read.
"""
import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter import EXTRA_BLOCKED_NET_RANGES, InvalidIPAddress
from requests_hardened.ip_filter_adapter import IPFilterAdapter

REFUSED_ADDRESS = "refused: not a public address"
HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
NOT_PUBLIC = "This address is not public"
RESPONSE_BYTES = 2000
CONNECT_TIMEOUT_SECONDS = 5
CA_BUNDLE = True  # requests' default: the certifi bundle

# Incoming-webhook hosts of the vendors (a URL's host must be one of these or end with ".<suffix>").
SLACK_HOSTS = ("hooks.slack.com", "hooks.slack-gov.com")
TEAMS_HOST_SUFFIXES = (
    "webhook.office.com",  # Office 365 connectors: <tenant>.webhook.office.com/webhookb2/...
    "logic.azure.com",  # Workflows (Power Automate), older URLs: prod-NN.<region>.logic.azure.com/workflows/...
    "environment.api.powerplatform.com",  # Workflows, current URLs: <env>.environment.api.powerplatform.com/...
)
VENDOR_HOSTS = {
    "slack": ("Slack incoming webhook", SLACK_HOSTS, False),
    "teams": ("Microsoft Teams webhook", TEAMS_HOST_SUFFIXES, True),
}


class Refused(requests.RequestException):
    """A request the guard does not send; str() is what the delivery records."""


def is_public(address):
    """True when ADDRESS (an IP address, text or ipaddress object) is a public unicast address.

    The loopback allowance of settings.OUTBOUND_ALLOW_LOOPBACK is applied here too."""
    ip = _unwrapped(address)
    if ip.is_loopback and settings.OUTBOUND_ALLOW_LOOPBACK:
        return True
    return ip.is_global and not (
        ip.is_multicast
        or ip.is_reserved
        or ip.is_link_local
        or ip.is_loopback
        or ip.is_unspecified
        or (ip.version == 6 and ip.is_site_local)
        or any(ip in network for network in EXTRA_BLOCKED_NET_RANGES if network.version == ip.version)
    )


def _unwrapped(address):
    """ADDRESS as an ipaddress object, an IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it maps."""
    ip = ipaddress.ip_address(address.strip("[]") if isinstance(address, str) else address)
    return ip.ipv4_mapped if ip.version == 6 and ip.ipv4_mapped is not None else ip


def _literal_address(host):
    """The IP address HOST spells, also in the decimal, octal and hex IPv4 forms resolvers accept; else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def url_problem(url, kind=None):
    """Why URL cannot be an alert action's URL of KIND (an AlertAction.Kind value), without looking anything up;
    None when it can. A host spelled as an address (any IPv4 spelling) must be public."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return "This is not a valid URL."
    schemes = ("https", "http") if settings.OUTBOUND_ALLOW_HTTP else ("https",)
    if parts.scheme not in schemes:
        return "Use an https:// URL."
    if not host:
        return "The URL has no host name."
    if parts.username or parts.password:
        return "Leave user names and passwords out of the URL."
    if kind in VENDOR_HOSTS:
        what, hosts, suffixes = VENDOR_HOSTS[kind]
        if not any(host == allowed or (suffixes and host.endswith("." + allowed)) for allowed in hosts):
            return f"A {what} URL starts with https://{' or https://'.join(('*.' if suffixes else '') + h for h in hosts)}/."
    literal = _literal_address(host)
    if literal is not None and not is_public(literal):
        return _not_public(literal)
    if literal is None and not HOST_NAME.fullmatch(_ascii(host)):
        # Characters URL parsers disagree on (a backslash, spaces) could make the host checked here differ from
        # the host connected to.
        return "The URL's host name is not valid."
    return None


def _ascii(host):
    """HOST in its ASCII (IDNA) form; "" when it has none."""
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return ""


def address_problem(url):
    """Why the host of URL cannot be reached now (it resolves to an address that is not public); None when every
    address it resolves to is public, or when it does not resolve (delivery reports that when it happens)."""
    parts = urlsplit(url)
    try:
        addresses = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    for *_, sockaddr in addresses:
        if not is_public(sockaddr[0]):
            return _not_public(sockaddr[0])
    return None


def _not_public(address):
    return f"{NOT_PUBLIC} ({_unwrapped(address)}): alert actions only reach hosts on the internet."


class GuardedAdapter(IPFilterAdapter):
    """requests-hardened's adapter (resolve once, refuse private addresses, connect to the checked address, verify
    TLS against the URL's host name), with the stricter is_public() applied to the address it pinned."""

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if not is_public(host_params["host"]):
            raise Refused(REFUSED_ADDRESS)
        return host_params, pool_kwargs


@dataclass
class Answer:
    status_code: int
    excerpt: str  # the first RESPONSE_BYTES of the body, for support staff; never shown to account users


def session():
    """A requests session that only reaches public addresses and never follows a redirect."""
    config = Config(
        ip_filter_enable=False,  # the guarded adapters are mounted below instead
        ip_filter_allow_loopback_ips=False,
        never_redirect=True,
        default_timeout=(CONNECT_TIMEOUT_SECONDS, CONNECT_TIMEOUT_SECONDS),
    )
    guarded = HTTPSession(config)
    guarded.trust_env = False
    guarded.verify = CA_BUNDLE
    for scheme, https in (("https://", True), ("http://", False)):
        guarded.mount(scheme, GuardedAdapter(is_https_proto=https, allow_loopback=settings.OUTBOUND_ALLOW_LOOPBACK))
    return guarded


def post_json(url, body, *, timeout, headers=None, kind=None):
    """POST BODY as JSON to URL (of alert action KIND) through the guard. Returns an Answer.

    Raises Refused for a URL or an address the guard does not reach, and requests' exceptions (Timeout,
    ConnectionError, ...) for a failed request."""
    if problem := url_problem(url, kind):
        raise Refused(REFUSED_ADDRESS if problem.startswith(NOT_PUBLIC) else f"refused: {problem}")
    try:
        with session() as guarded, guarded.post(url, json=body, timeout=timeout, headers=headers, stream=True) as response:
            excerpt = response.raw.read(RESPONSE_BYTES, decode_content=True)[:RESPONSE_BYTES]
            return Answer(response.status_code, excerpt.decode(response.encoding or "utf-8", errors="replace"))
    except InvalidIPAddress as exc:  # requests-hardened's own refusal of a private address
        raise Refused(REFUSED_ADDRESS) from exc
