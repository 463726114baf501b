"""What the logs may hold: no secrets and no content. Every log record of the process is scrubbed here, once, when
it is created (install() wraps the log record factory), so every handler and every logger, Django's and the
Vonage SDK's included, writes the scrubbed text:

- credentials in headers the Vonage SDK prints at DEBUG (Bearer, Basic), API tokens in an Authorization header
  (Token) and JSON Web Tokens anywhere (Vonage's signed webhooks, the application JWT) become [redacted] and [jwt];
- the per-call, per-leg and per-notification tokens in webhook paths and the tokens of audio and voicemail links
  become [token], and so do invitation and password-reset links (/invitation/<uid>/<token>/,
  /reset/<uid>/<token>/); query strings of URLs and paths become ?[query];
- phone numbers keep their last four digits (+4917612345678 -> ***5678) unless settings.LOG_MASK_NUMBERS is off:
  numbers written with a leading +, numbers quoted in JSON, and log arguments that are a number and nothing else.

Content (transcripts, message bodies) is kept out at the log calls themselves. gunicorn's access log goes through
the same factory in the worker processes (they load the application); its format (Procfile) has no query string.
"""
import logging
import re

CREDENTIALS = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+|\b(Token)\s+[A-Za-z0-9]{20,}")
JWT = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
PATH_TOKEN = re.compile(r"(/(?:call|leg|voice)/)[A-Za-z0-9_-]{16,}")
# Invitation and password-reset links: /<invitation|reset>/<uidb64>/<token>/ (also the set-password step).
ACCOUNT_LINK = re.compile(r"(/(?:invitation|reset)/)[A-Za-z0-9_-]+/[A-Za-z0-9_-]+")
FILE_TOKEN = re.compile(r"(/(?:audio|voicemail)/)[A-Za-z0-9_-]{16,}(?=\.)")
QUERY = re.compile(r"((?:https?://|/)[^\s?\"'<>]*)\?[^\s\"'<>]+")
PLUS_NUMBER = re.compile(r"\+\d{3,11}(\d{4})(?!\d)")
QUOTED_NUMBER = re.compile(r"(?<=[\"'])\+?\d{3,11}(\d{4})(?=[\"'])")
NUMBER_ARGUMENT = re.compile(r"\+?\d{3,11}(\d{4})")


def mask_number(value):
    """A phone number VALUE with all but its last four digits hidden: "+4917612345678" -> "***5678"."""
    digits = re.sub(r"\D", "", str(value))
    return "***" + digits[-4:] if digits else ""


def scrub(text, *, mask_numbers=True):
    """TEXT without JWTs, URL tokens and query strings, and (MASK_NUMBERS) with phone numbers masked."""
    # Each pattern runs only when the text can match it: most log lines need none (this runs for every record).
    if "Bearer" in text or "Basic" in text or "Token" in text:
        text = CREDENTIALS.sub(lambda match: f"{match.group(1) or match.group(2)} [redacted]", text)
    if "eyJ" in text:
        text = JWT.sub("[jwt]", text)
    if "/" in text:
        text = PATH_TOKEN.sub(r"\1[token]", text)
        text = FILE_TOKEN.sub(r"\1[token]", text)
        if "/invitation/" in text or "/reset/" in text:
            text = ACCOUNT_LINK.sub(r"\1[token]", text)
        if "?" in text:
            text = QUERY.sub(r"\1?[query]", text)
    if mask_numbers:
        if "+" in text:
            text = PLUS_NUMBER.sub(r"***\1", text)
        if '"' in text or "'" in text:
            text = QUOTED_NUMBER.sub(r"***\1", text)
    return text


def _masking():
    from django.conf import settings

    return getattr(settings, "LOG_MASK_NUMBERS", True)


def scrub_record(record):
    """Replace RECORD's message (and its traceback text) with the scrubbed text."""
    mask_numbers = _masking()
    args = record.args
    if mask_numbers and isinstance(args, tuple):
        args = tuple(
            mask_number(arg) if isinstance(arg, str) and NUMBER_ARGUMENT.fullmatch(arg) else arg for arg in args
        )
    record.args = args
    try:
        message = record.getMessage()
    except Exception:  # a broken log call: keep the record, as logging itself would report it
        return record
    record.msg, record.args = scrub(message, mask_numbers=mask_numbers), ()
    if record.exc_info and not record.exc_text:
        record.exc_text = scrub(logging.Formatter().formatException(record.exc_info), mask_numbers=mask_numbers)
    return record


def install():
    """Scrub every log record created from now on (idempotent)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "scrubs", False):
        return

    def scrubbing_factory(*args, **kwargs):
        return scrub_record(factory(*args, **kwargs))

    scrubbing_factory.scrubs = True
    logging.setLogRecordFactory(scrubbing_factory)
