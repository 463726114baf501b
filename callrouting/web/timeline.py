"""The two-week "who is on call" timeline of a schedule, as rows of CSS bars (one row per local day)."""
import datetime as dt
from dataclasses import dataclass, field

from escalation.oncall import OVERRIDE, local_instant

PALETTE_SIZE = 8


@dataclass
class Bar:
    user: object
    start: dt.datetime
    end: dt.datetime
    source: str
    colour: int
    left: float
    width: float


@dataclass
class Day:
    date: dt.date
    bars: list = field(default_factory=list)


def timeline(schedule, now, days=14):
    """(days, legend) for SCHEDULE from the start of NOW's local day: DAYS Day rows of Bars (left/width in % of
    the day, times in the schedule's zone) and [(user, colour index)] in order of first appearance."""
    tz = schedule.tz
    first = now.astimezone(tz).date()
    midnights = [local_instant(first + dt.timedelta(days=i), dt.time(0), tz) for i in range(days + 1)]
    shifts = schedule.shifts_between(midnights[0], midnights[-1])
    colours = {}
    rows = []
    for index in range(days):
        day_start, day_end = midnights[index], midnights[index + 1]
        length = (day_end - day_start).total_seconds()
        row = Day(first + dt.timedelta(days=index))
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
                    source=source,
                    colour=colour,
                    left=round((start - day_start).total_seconds() / length * 100, 3),
                    width=round((end - start).total_seconds() / length * 100, 3),
                )
            )
        rows.append(row)
    return rows, list(colours.values())
