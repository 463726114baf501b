"""The "who is on call" timeline of a schedule, as rows of bars (one row per local day), for one, two or four
weeks from any day, with the present moment marked."""
import datetime as dt
from dataclasses import dataclass, field

from escalation.oncall import OVERRIDE, local_instant

PALETTE_SIZE = 8
VIEW_WEEKS = (1, 2, 4)
DEFAULT_WEEKS = 2
# How far the timeline pages from today: enough for any planning, and far from the ends of datetime.
MAX_PAGING = dt.timedelta(days=5 * 366)


@dataclass
class Bar:
    user: object
    start: dt.datetime  # the part of the shift on this day
    end: dt.datetime
    shift_start: dt.datetime  # the whole shift, for an override that covers it
    shift_end: dt.datetime
    source: str
    colour: int
    left: float  # % of the day
    width: float

    @property
    def is_override(self):
        return self.source == "override"


@dataclass
class Day:
    date: dt.date
    bars: list = field(default_factory=list)
    now: float | None = None  # where the present moment is, in % of the day, on today's row only


@dataclass
class Window:
    """Which part of the timeline a page shows: WEEKS weeks from the local date START."""

    start: dt.date
    weeks: int

    @property
    def days(self):
        return self.weeks * 7

    @property
    def end(self):
        """The last day shown."""
        return self.start + dt.timedelta(days=self.days - 1)

    def earlier(self):
        return Window(self.start - dt.timedelta(days=self.days), self.weeks)

    def later(self):
        return Window(self.start + dt.timedelta(days=self.days), self.weeks)

    def with_weeks(self, weeks):
        return Window(self.start, weeks)

    def query(self):
        return {"start": self.start.isoformat(), "weeks": self.weeks}


def window_from(params, today):
    """The Window that query PARAMS ask for ("start" date, "weeks" 1, 2 or 4); today and two weeks for anything
    missing or unusable, and a start at most MAX_PAGING from TODAY."""
    try:
        weeks = int(params.get("weeks", DEFAULT_WEEKS))
    except (TypeError, ValueError):
        weeks = DEFAULT_WEEKS
    if weeks not in VIEW_WEEKS:
        weeks = DEFAULT_WEEKS
    try:
        start = dt.date.fromisoformat(params.get("start") or "")
    except (TypeError, ValueError):
        start = today
    start = min(max(start, today - MAX_PAGING), today + MAX_PAGING)
    return Window(start, weeks)


def timeline(schedule, now, window):
    """(days, legend) for SCHEDULE over WINDOW: Day rows of Bars (left/width in % of the day, times in the
    schedule's zone; today's row marks NOW) and [(user, colour index)] in order of first appearance."""
    tz = schedule.tz
    midnights = [local_instant(window.start + dt.timedelta(days=i), dt.time(0), tz) for i in range(window.days + 1)]
    shifts = schedule.shifts_between(midnights[0], midnights[-1])
    colours = {}
    rows = []
    for index in range(window.days):
        day_start, day_end = midnights[index], midnights[index + 1]
        length = (day_end - day_start).total_seconds()
        row = Day(window.start + dt.timedelta(days=index))
        if day_start <= now < day_end:
            row.now = round((now - day_start).total_seconds() / length * 100, 3)
        for shift in shifts:
            start, end = max(shift.start, day_start), min(shift.end, day_end)
            if start >= end:
                continue
            colour = colours.setdefault(shift.user.pk, (shift.user, len(colours) % PALETTE_SIZE))[1]
            source = "override" if shift.source == OVERRIDE else str(shift.source)
            row.bars.append(
                Bar(
                    user=shift.user,
                    start=start.astimezone(tz),
                    end=end.astimezone(tz),
                    shift_start=shift.start.astimezone(tz),
                    shift_end=shift.end.astimezone(tz),
                    source=source,
                    colour=colour,
                    left=round((start - day_start).total_seconds() / length * 100, 3),
                    width=round((end - start).total_seconds() / length * 100, 3),
                )
            )
        rows.append(row)
    return rows, list(colours.values())
