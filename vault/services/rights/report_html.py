"""The access report as a printable letter a resident can read (HTML, Jinja2, autoescaped).

It renders the report's JSON form (the pdv.v1.AccessReport message as `pdv subject report`
prints it: proto field names, timestamps as RFC 3339 text), so the letter and the JSON can
never disagree. Plain words come from the report itself (catalog labels and the log's words,
report_words.py); ids a resident has no use for appear only masked, tokens never whole, and
receipts and log entry ids stay in the JSON form.
"""

from __future__ import annotations

from datetime import datetime

from jinja2 import Environment, PackageLoader, StrictUndefined

TEMPLATE = "access_report.html.j2"


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _day(text: str | None) -> str:
    at = _parse(text)
    return f"{at.day} {at:%B %Y}" if at else "an unrecorded date"


def _moment(text: str | None) -> str:
    at = _parse(text)
    return f"{at.day} {at:%B %Y}, {at:%H:%M} UTC" if at else "an unrecorded time"


def masked_id(value: str | None) -> str:
    """An id shown only by its last four characters."""
    return "…" + value[-4:] if value and len(value) > 4 else "…"


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("vault.services.rights", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(day=_day, moment=_moment, masked_id=masked_id)
    return env


def render(report: dict) -> str:
    """The letter for one report, given its JSON form (as `pdv subject report` prints it)."""
    return _environment().get_template(TEMPLATE).render(report=_complete(report))


# JSON leaves out an unset optional field (a notice never recorded, a hold not released):
# the template tells those apart from false, so they are put back as None.
_OPTIONAL = {"values": ("notice_given", "notice_id", "value", "collected_at", "expires_at"),
             "consent": ("since",), "holds": ("released_at", "placed_at"), "accesses": ("at", "partner_agreement",
                                                                                        "field_label"),
             "destroyed": ("at",), "holders": ("first_issued_at", "last_issued_at")}


def _complete(report: dict) -> dict:
    out = dict(report)
    out.setdefault("generated_at", None)
    out.setdefault("case_id", "")
    out.setdefault("holders", [])
    for section, names in _OPTIONAL.items():
        out[section] = [{**{n: None for n in names}, "corrections": [], "field_labels": [], **item}
                        for item in report.get(section, [])]
    return out
