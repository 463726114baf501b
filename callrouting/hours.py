"""Support hours as plain data: weekly ranges in a time zone, holidays, and the questions asked of them.

No database here: SupportCalendar.hours_calendar() (callrouting.flows.models) loads the rows once and hands them to SupportCalendar.

Semantics (documented for the settings pages too):
- a range is WEEKDAY START-END in the number's time zone, START included, END excluded; END 00:00 means midnight
  at the end of the day (24:00), so 09:00-17:00 is in hours from 09:00:00 to 16:59:59;
- a range never crosses midnight (support through the night is two ranges); ranges of one day may not overlap;
- a holiday is a local date that is outside support hours all day;
- local times are converted with the zone's rules of that day: a range starting inside a spring-forward gap
  starts at the end of the gap; a repeated hour in autumn is in hours both times when the range covers it.
"""
import datetime as dt
import zoneinfo

from django.db import models

SEARCH_DAYS = 400  # next_start() looks this far ahead (a year of holidays and then some), then gives up
MIDNIGHT = dt.time(0)
DAY_SECONDS = 86400


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


def zone(name):
    """The ZoneInfo NAME (UTC when it is empty or unknown: a stored zone Python no longer knows must not break calls)."""
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.timezone.utc


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

    def status(self, at):
        """"holiday" when AT's local date is a holiday, else "in_hours" or "out_of_hours"."""
        if at.astimezone(self.tz).date() in self.holidays:
            return "holiday"
        return "in_hours" if self.in_hours(at) else "out_of_hours"

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
# An import does bounded work whatever the file says: the budgets below are checked before anything is expanded.

MAX_ICAL_DATES = 2000  # holiday dates one file may give
MAX_ICAL_EVENTS = 2000  # VEVENTs in one file
MAX_RECURRING_EVENTS = 50  # VEVENTs with an RRULE
MAX_OCCURRENCES = 5000  # occurrences inside the import window, all events together
MAX_EVENT_DAYS = 366
# The parser's own work is bounded before it runs: a file may hold at most this many components (BEGIN: lines; an
# event with an alarm and the time zones count too) nested at most this deep (VCALENDAR > VEVENT > VALARM is 3),
# and this many content lines.
MAX_ICAL_COMPONENTS = 3 * MAX_ICAL_EVENTS + 100
MAX_ICAL_DEPTH = 4
MAX_ICAL_LINES = 40_000
MAX_RULE_PERIODS = 100_000  # the recurrence engine's steps (days, weeks, months or years) for all rules together
ICAL_YEARS_BACK = 1  # the import window: from a year back ...
RRULE_YEARS = 3  # ... to this many years ahead
# The Gregorian calendar (dates and weekdays) repeats every 400 years, so a rule that has no occurrence in
# 400 x INTERVAL years has none at all.
CALENDAR_CYCLE_YEARS = 400
# Rules repeating more often than daily are refused: a holiday is a whole day.
PERIODS_PER_YEAR = {"DAILY": 366, "WEEKLY": 53, "MONTHLY": 12, "YEARLY": 1}
# Daily and weekly rules may only narrow the weekdays and months: every such rule occurs (a month has every
# weekday), so the engine never searches for an occurrence that does not exist.
DENSE_RULE_PARTS = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTH", "WKST"}
RULE_PARTS = DENSE_RULE_PARTS | {"BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYSETPOS"}


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


def import_window(today):
    """The dates an import keeps: (first, last), from ICAL_YEARS_BACK before TODAY to RRULE_YEARS after it."""
    def years_from(day, years):
        try:
            return day.replace(year=day.year + years)
        except ValueError:  # 29 February
            return day.replace(year=day.year + years, day=28)

    return years_from(today, -ICAL_YEARS_BACK), years_from(today, RRULE_YEARS)


def _rules(event):
    rules = event.get("RRULE")
    return [] if rules is None else rules if isinstance(rules, list) else [rules]


def _never_occurs(recur, start):
    """True when the rule RECUR (an icalendar vRecur) starting at START never occurs, whatever its COUNT or UNTIL.

    The engine looks for a next occurrence up to the year 9999, so an impossible rule (the 30th of February) would
    be searched for thousands of years. The pattern repeats every 400 x INTERVAL years: starting the search that
    far before 9999 (same weekdays, same phase) bounds it to at most 800 years of the rule's steps.
    """
    from dateutil.rrule import rrulestr
    from icalendar.prop import vRecur

    pattern = vRecur({key: value for key, value in recur.items() if key not in ("COUNT", "UNTIL")})
    cycle = CALENDAR_CYCLE_YEARS * int((recur.get("INTERVAL") or [1])[0])
    naive = start if isinstance(start, dt.datetime) else dt.datetime.combine(start, dt.time())
    shift = max(0, (dt.MAXYEAR - cycle - naive.year) // cycle) * cycle
    probe = rrulestr(pattern.to_ical().decode(), dtstart=naive.replace(tzinfo=None, year=naive.year + shift))
    return probe.after(probe._dtstart, inc=True) is None


def _check_rule(recur, start, window_last):
    """Refuse a rule the import cannot expand within its budget; returns the engine steps its expansion takes."""
    freq = str((recur.get("FREQ") or [""])[0]).upper()
    if freq not in PERIODS_PER_YEAR:
        raise CalendarError(f"it repeats {freq.lower() or 'without a frequency'}; holidays repeat at most daily")
    allowed = DENSE_RULE_PARTS if freq in ("DAILY", "WEEKLY") else RULE_PARTS
    if unknown := sorted(set(recur) - allowed):
        raise CalendarError(f"its {freq.lower()} repetition uses {', '.join(unknown)}, which this import does not read")
    try:
        interval = int((recur.get("INTERVAL") or [1])[0])
    except (TypeError, ValueError):
        raise CalendarError("its INTERVAL is not a number") from None
    if interval < 1:
        raise CalendarError("its INTERVAL is not a positive number")
    until = (recur.get("UNTIL") or [None])[0]
    last_year = min(window_last.year, _as_date(until).year) if isinstance(until, dt.date) else window_last.year
    years = max(1, last_year - _as_date(start).year + 1)
    steps = years * PERIODS_PER_YEAR[freq] // interval + 1
    if allowed is RULE_PARTS:
        if _never_occurs(recur, start):
            raise CalendarError("its repetition never happens (no such date)")
        steps += 2 * CALENDAR_CYCLE_YEARS * PERIODS_PER_YEAR[freq]
    return steps


def _check_structure(data):
    """Refuse DATA when parsing it would be more work than a holiday calendar needs: too many lines or components,
    or components nested deeper than iCalendar nests them. One pass over the bytes, before the parser runs."""
    lines = data.splitlines()
    if len(lines) > MAX_ICAL_LINES:
        raise CalendarError(f"The file has {len(lines)} lines (at most {MAX_ICAL_LINES}).")
    components = depth = 0
    for line in lines:
        name = line[:6].upper()
        if name == b"BEGIN:":
            components += 1
            depth += 1
            if components > MAX_ICAL_COMPONENTS:
                raise CalendarError(f"The calendar has more than {MAX_ICAL_COMPONENTS} components (events, alarms, ...).")
            if depth > MAX_ICAL_DEPTH:
                raise CalendarError(f"The calendar nests components more than {MAX_ICAL_DEPTH} deep.")
        elif line[:4].upper() == b"END:":
            depth = max(0, depth - 1)


def holidays_from_ical(data, *, today=None):
    """[(date, name)] of the VEVENTs in the iCalendar DATA (bytes) inside the import window, sorted, one per date.

    All-day events cover DTSTART up to DTEND (exclusive), so a multi-day event gives every date in it; timed
    events cover the dates they touch. Repeating events (RRULE, RDATE, EXDATE) are expanded by
    recurring-ical-events inside import_window(TODAY). Raises CalendarError with a message that names the problem;
    every budget (events, rule steps, occurrences, dates) is checked before the work it bounds is done.
    """
    import icalendar
    import recurring_ical_events

    if not data or not data.strip():
        raise CalendarError("The file is empty.")
    if b"BEGIN:VCALENDAR" not in data[:4096].upper():
        raise CalendarError("This is not an iCalendar file (.ics): it does not start with BEGIN:VCALENDAR.")
    _check_structure(data)
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except Exception as exc:  # icalendar raises ValueError, KeyError, ... for broken input
        raise CalendarError(f"The iCalendar file cannot be read: {exc}") from exc
    events = list(calendar.walk("VEVENT"))
    if not events:
        raise CalendarError("The calendar has no events (VEVENT): nothing to import.")
    if len(events) > MAX_ICAL_EVENTS:
        raise CalendarError(f"The calendar has {len(events)} events (at most {MAX_ICAL_EVENTS}).")
    first, last = import_window(today or dt.date.today())
    steps = recurring = 0
    for number, event in enumerate(events, 1):
        label = _label(number, event)
        try:
            start = event.decoded("DTSTART")
        except KeyError:
            raise CalendarError(f"The {label} has no start date (DTSTART).") from None
        except Exception as exc:
            raise CalendarError(f"The {label} has an unreadable start date: {exc}") from exc
        if not isinstance(start, dt.date):
            raise CalendarError(f"The {label} has an unreadable start date: {event.get('DTSTART').to_ical().decode()}")
        rules = _rules(event)
        recurring += bool(rules)
        if recurring > MAX_RECURRING_EVENTS:
            raise CalendarError(f"The calendar has more than {MAX_RECURRING_EVENTS} repeating events.")
        for recur in rules:
            try:
                steps += _check_rule(recur, start, last)
            except CalendarError as exc:
                raise CalendarError(f"The {label}: {exc}.") from exc
            except Exception as exc:
                raise CalendarError(f"The {label} has a repetition that cannot be read: {exc}") from exc
        if steps > MAX_RULE_PERIODS:
            raise CalendarError(
                "The repeating events reach too far back or repeat too often to expand: let them start closer "
                "to today or repeat less often."
            )
    try:
        occurrences = recurring_ical_events.of(calendar).between(first, last + dt.timedelta(days=1))
    except Exception as exc:
        raise CalendarError(f"The repeating events cannot be read: {exc}") from exc
    if len(occurrences) > MAX_OCCURRENCES:
        raise CalendarError(f"The events happen more than {MAX_OCCURRENCES} times in the next {RRULE_YEARS} years.")
    found = {}
    # An event that does not repeat counts whatever its date; repetitions count inside the window.
    single = [(event, None) for event in events if not _repeats(event)]
    for event, window in [*single, *((occurrence, (first, last)) for occurrence in occurrences)]:
        name = _name(event)
        start = event.decoded("DTSTART")
        try:
            if event.get("DTEND") is not None:
                end = event.decoded("DTEND")
            elif event.get("DURATION") is not None:
                end = start + event.decoded("DURATION")
            else:
                end = None
            days = _event_days(start, end)
        except CalendarError as exc:
            raise CalendarError(f"The event{f' “{name}”' if name else ''}: {exc}.") from exc
        except Exception as exc:
            raise CalendarError(f"The event{f' “{name}”' if name else ''} has an unreadable end: {exc}") from exc
        for day in days:
            if window is None or window[0] <= day <= window[1]:
                found.setdefault(day, name)
        if len(found) > MAX_ICAL_DATES:
            raise CalendarError(f"The calendar has more than {MAX_ICAL_DATES} dates.")
    return sorted(found.items())


def _repeats(event):
    return any(event.get(key) is not None for key in ("RRULE", "RDATE", "RECURRENCE-ID"))


def _name(event):
    return str(event.get("SUMMARY") or "").strip()[:200]


def _label(number, event):
    name = _name(event)
    return f"event {number}" + (f" (“{name}”)" if name else "")
