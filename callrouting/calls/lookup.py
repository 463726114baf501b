"""Which routing number a call is for, what its caller is called, and the number's routing options."""
from django.core.exceptions import ValidationError

from escalation.models import normalize_phone_number

from .. import phrases
from ..models import Call, RoutingNumber


# The language of each routing number this process has looked up (digits -> language), so that with the
# database down a caller still hears the apology in the number's language. Bounded; best effort per process.
_LANGUAGES = {}


_LANGUAGES_MAX = 1000


def find_number(to):
    """The RoutingNumber for the dialled number TO (Vonage sends digits without '+'), or None."""
    raw = str(to or "").strip()
    if not raw:
        return None
    digits = raw[1:] if raw.startswith("+") else raw
    if digits.isascii() and digits.isdigit() and 8 <= len(digits) <= 15:
        e164 = "+" + digits  # what Vonage sends: E.164 digits, as stored
    else:
        try:
            e164 = normalize_phone_number("+" + digits)
        except ValidationError:
            return None
    number = (
        # With its flow, so a call on the published version needs no other query for the number.
        RoutingNumber.objects.select_related("alert_source", "flow").filter(phone_number=e164).first()
    )
    if number is not None:
        if len(_LANGUAGES) >= _LANGUAGES_MAX:
            _LANGUAGES.clear()
        _LANGUAGES[e164[1:]] = number.language
    return number


def known_language(*numbers):
    """The language of the first of NUMBERS (as Vonage sends them) that is a routing number this process has
    seen, without asking the database; the default language when none is known."""
    for value in numbers:
        digits = str(value or "").strip().lstrip("+")
        if digits in _LANGUAGES:
            return _LANGUAGES[digits]
    return phrases.DEFAULT_LANGUAGE


def caller_number(value):
    """The caller as stored and shown: E.164 ("+4915550000100") when Vonage's digits (it sends no "+") form a
    valid number, else the raw value ("Unknown", a SIP URI, a withheld or malformed number), cut to fit."""
    raw = str(value or "").strip()
    digits = raw[1:] if raw.startswith("+") else raw
    if digits.isascii() and digits.isdigit():
        try:
            return normalize_phone_number("+" + digits)
        except ValidationError:
            pass
    return raw[: Call._meta.get_field("caller").max_length]


def options_of(number):
    return list(number.options.select_related("escalation_policy"))
