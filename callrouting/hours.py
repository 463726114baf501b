"""Support hours as plain data: weekly ranges in a time zone, holidays, and the questions asked of them.

No database here: RoutingNumber.support_calendar() loads the rows once and hands them to SupportCalendar.

Semantics (documented for the settings pages too):
- a range is WEEKDAY START-END in the number's time zone, START included, END excluded; END 00:00 means midnight
  at the end of the day (24:00), so 09:00-17:00 is in hours from 09:00:00 to 16:59:59;
- a range never crosses midnight (support through the night is two ranges); ranges of one day may not overlap;
- a holiday is a local date that is outside support hours all day;
- local times are converted with the zone's rules of that day: a range starting inside a spring-forward gap
  starts at the end of the gap; a repeated hour in autumn is in hours both times when the range covers it.
"""
import datetime as dt

from django.db import models

SEARCH_DAYS = 400  # next_start() looks this far ahead (a year of holidays and then some), then gives up
MIDNIGHT = dt.time(0)
DAY_SECONDS = 86400
MAX_ICAL_DATES = 2000
MAX_EVENT_DAYS = 366
RRULE_YEARS = 3  # recurring events (RRULE) are expanded this many years ahead


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


def _seconds(value, *, end=False):
    seconds = value.hour * 3600 + value.minute * 60 + value.second
    return DAY_SECONDS if end and seconds == 0 else seconds


def valid_range(start, end):
    """True when END is after START (END 00:00 = 24:00, so 00:00-00:00 is the whole day)."""
    return _seconds(end, end=True) > _seconds(start)


def overlaps(first, second):
    """True when two (start, end) ranges of one day share a moment (touching ends do not overlap)."""
    (s1, e1), (s2, e2) = first, second
    return _seconds(s1) < _seconds(e2, end=True) and _seconds(s2) < _seconds(e1, end=True)


def _exists(naive, tz):
    """True when the local wall time NAIVE exists in TZ (it is not skipped by a spring-forward change)."""
    aware = naive.replace(tzinfo=tz)
    return aware.astimezone(dt.timezone.utc).astimezone(tz).replace(tzinfo=None) == naive


class SupportCalendar:
    """Weekly RANGES [(weekday, start, end)] in TZ with HOLIDAYS (a set of local dates, loaded for FIRST..LAST)."""

    def __init__(self, tz, ranges, holidays=(), *, first=None, last=None):
        self.tz = tz
        self.holidays = set(holidays)
        self.first, self.last = first, last
        self.by_weekday = {day: [] for day in range(7)}
        for weekday, start, end in ranges:
            self.by_weekday[weekday].append((_seconds(start), _seconds(end, end=True), start, end))
        for day in self.by_weekday.values():
            day.sort()

    def covers(self, day):
        """True when the loaded holidays cover the searches made from local date DAY."""
        if self.first is None or self.last is None:
            return True
        return self.first < day and day + dt.timedelta(days=SEARCH_DAYS) < self.last

    def in_hours(self, at):
        local = at.astimezone(self.tz)
        if local.date() in self.holidays:
            return False
        seconds = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        return any(start <= seconds < end for start, end, *_ in self.by_weekday[local.weekday()])

    def _start_instant(self, day, start, end_seconds):
        """The aware moment the range starting at START on local date DAY begins, or None when the whole range
        falls into a skipped hour."""
        naive = dt.datetime.combine(day, start)
        for _ in range(24 * 60):
            if _seconds(naive.time()) >= end_seconds or naive.date() != day:
                return None
            if _exists(naive, self.tz):
                return naive.replace(tzinfo=self.tz)
            naive += dt.timedelta(minutes=1)
        return None

    def next_start(self, after):
        """The first moment at or after AFTER at which support hours begin (the moment before it is outside),
        or None when none begins within SEARCH_DAYS days."""
        today = after.astimezone(self.tz).date()
        for offset in range(SEARCH_DAYS + 1):
            day = today + dt.timedelta(days=offset)
            if day in self.holidays:
                continue
            for _, end_seconds, start, _ in self.by_weekday[day.weekday()]:
                candidate = self._start_instant(day, start, end_seconds)
                if candidate is None or candidate < after:
                    continue
                # In UTC: arithmetic on an aware local datetime is wall-clock arithmetic, wrong across a change.
                if not self.in_hours(candidate.astimezone(dt.timezone.utc) - dt.timedelta(seconds=1)):
                    return candidate
        return None


# --- iCalendar import ----------------------------------------------------------------------------------------


class CalendarError(ValueError):
    """An iCalendar file that cannot be used; the message says why, for the person who uploaded it."""


def _as_date(value):
    return value.date() if isinstance(value, dt.datetime) else value


def _event_days(start, end):
    """The dates an event from START to END (exclusive; None: a single day) covers, in the event's own time."""
    first = _as_date(start)
    if isinstance(start, dt.datetime):
        last = (end - dt.timedelta(microseconds=1)).date() if end is not None and end > start else first
    else:
        last = _as_date(end) - dt.timedelta(days=1) if end is not None and _as_date(end) > first else first
    days = (last - first).days + 1
    if days > MAX_EVENT_DAYS:
        raise CalendarError(f"it lasts {days} days (at most {MAX_EVENT_DAYS})")
    return [first + dt.timedelta(days=i) for i in range(days)]


def holidays_from_ical(data, *, today=None):
    """[(date, name)] of the VEVENTs in the iCalendar DATA (bytes), sorted, one per date.

    All-day events cover DTSTART up to DTEND (exclusive), so a multi-day event gives every date in it; timed
    events cover the dates they touch. RRULEs are expanded RRULE_YEARS ahead (EXDATEs are not applied).
    Raises CalendarError with a message that names the problem.
    """
    import icalendar
    from dateutil.rrule import rrulestr

    if not data or not data.strip():
        raise CalendarError("The file is empty.")
    if b"BEGIN:VCALENDAR" not in data[:4096].upper():
        raise CalendarError("This is not an iCalendar file (.ics): it does not start with BEGIN:VCALENDAR.")
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except Exception as exc:  # icalendar raises ValueError, KeyError, ... for broken input
        raise CalendarError(f"The iCalendar file cannot be read: {exc}") from exc
    events = list(calendar.walk("VEVENT"))
    if not events:
        raise CalendarError("The calendar has no events (VEVENT): nothing to import.")
    today = today or dt.date.today()
    horizon = today.replace(year=today.year + RRULE_YEARS) if not (today.month == 2 and today.day == 29) else (
        today + dt.timedelta(days=365 * RRULE_YEARS)
    )
    found = {}
    for number, event in enumerate(events, 1):
        name = str(event.get("SUMMARY") or "").strip()[:200]
        label = f"event {number}" + (f" (“{name}”)" if name else "")
        try:
            start = event.decoded("DTSTART")
        except KeyError:
            raise CalendarError(f"The {label} has no start date (DTSTART).") from None
        except Exception as exc:
            raise CalendarError(f"The {label} has an unreadable start date: {exc}") from exc
        try:
            if event.get("DTEND") is not None:
                end = event.decoded("DTEND")
            elif event.get("DURATION") is not None:
                end = start + event.decoded("DURATION")
            else:
                end = None
            starts = [start]
            if event.get("RRULE") is not None:
                naive = start if isinstance(start, dt.datetime) else dt.datetime.combine(start, dt.time())
                rule = rrulestr(event["RRULE"].to_ical().decode(), dtstart=naive.replace(tzinfo=None))
                limit = dt.datetime.combine(horizon, dt.time())
                starts = []
                for occurrence in rule:
                    if occurrence > limit or len(starts) >= MAX_ICAL_DATES:
                        break
                    starts.append(occurrence if isinstance(start, dt.datetime) else occurrence.date())
            for begin in starts:
                shift = (begin - start) if end is not None else None
                for day in _event_days(begin, end + shift if end is not None else None):
                    found.setdefault(day, name)
        except CalendarError as exc:
            raise CalendarError(f"The {label}: {exc}.") from exc
        except Exception as exc:
            raise CalendarError(f"The {label} cannot be read: {exc}") from exc
        if len(found) > MAX_ICAL_DATES:
            raise CalendarError(f"The calendar has more than {MAX_ICAL_DATES} dates.")
    return sorted(found.items())
