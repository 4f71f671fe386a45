"""Read a calendar invitation (text/calendar part or .ics attachment) for its organiser and attendees.

Parsed with `icalendar`. Only ORGANIZER and ATTENDEE (their address and CN) are read: the event's
summary, description, location and times are never looked at, let alone kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from icalendar import Calendar

MAX_CALENDAR_BYTES = 256 * 1024
MAX_PEOPLE_PER_INVITATION = 200


@dataclass(frozen=True)
class Invitee:
    address: str
    name: str | None
    organizer: bool


def invitation_people(data: bytes | str) -> list[Invitee]:
    """The organiser and attendees of every event in an iCalendar object; [] when it cannot be read."""
    if len(data) > MAX_CALENDAR_BYTES:
        return []
    try:
        calendar = Calendar.from_ical(data)
    except (ValueError, IndexError, KeyError):
        return []
    people: dict[str, Invitee] = {}
    for event in calendar.walk("VEVENT"):
        organizer = event.get("ORGANIZER")
        if organizer is not None:
            _add(people, organizer, organizer=True)
        attendees = event.get("ATTENDEE") or []
        for attendee in attendees if isinstance(attendees, list) else [attendees]:
            _add(people, attendee, organizer=False)
            if len(people) >= MAX_PEOPLE_PER_INVITATION:
                return list(people.values())
    return list(people.values())


def _add(people: dict[str, Invitee], value, *, organizer: bool) -> None:
    text = str(value).strip()
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:") :]
    if "@" not in text:
        return
    address = text.lower()
    params = getattr(value, "params", {}) or {}
    name = params.get("CN")
    name = str(name).strip().strip('"') if name else None
    if name and "@" in name:
        name = None  # a CN that is the address again names nobody
    if address not in people or organizer:
        people[address] = Invitee(address, name or (people[address].name if address in people else None), organizer)


__all__ = ["Invitee", "invitation_people", "MAX_CALENDAR_BYTES"]
