"""Generate ``data/recipients.csv``: a synthetic recipient list with realistic mess.

Deterministic (fixed seed): running it again writes the same file. About 2,000
rows; numbers in many notations (``+31 6 1234 5678``, ``0612345678``,
``0031612345678``, ``(020) 555-0100``, foreign numbers), some invalid or
missing, some recipients listed twice, names with accents and emoji, a
``segment`` and a ``preferred_channel`` column.

Usage::

    python data/make_recipients.py [output.csv]
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

import phonenumbers

SEED = 20261129
N_PEOPLE = 1960
N_DUPLICATES = 40

FIRST = [
    "Anna", "Bram", "Daan", "Emma", "Femke", "Lars", "Sanne", "Thijs", "Noor", "Sem",
    "José", "Zoë", "Renée", "Łukasz", "Çağla", "Søren", "Anaïs", "Björn", "Inés", "François",
    "Mia 😊", "Luca 🚀", "Lotte 🌷", "Jürgen", "Chloé", "Siobhán", "Dvořák", "Ayşe", "Nguyễn", "Ольга",
]
LAST = [
    "de Vries", "Jansen", "van den Berg", "Bakker", "Visser", "Smit", "Meijer", "de Boer",
    "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Dijk", "Müller", "Dubois",
    "García", "O'Brien", "Kowalski", "Yılmaz", "Øster", "Ferreira", "Nováková",
]
SEGMENTS = ["loyal", "new", "lapsed", "vip"]
CHANNELS = ["SMS", "WhatsApp", "WhatsApp", "Viber", "RCS", ""]
CITIES = ["Amsterdam", "Rotterdam", "Utrecht", "Breda", "Den Haag", "Eindhoven", "Groningen"]


def _valid(text: str, region: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(text, region))
    except phonenumbers.NumberParseException:
        return False


def _nl_mobile(rng: random.Random) -> str:
    digits = f"6{rng.randrange(10**7, 10**8)}"
    style = rng.random()
    if style < 0.25:
        return f"+31 6 {digits[1:5]} {digits[5:]}"
    if style < 0.45:
        return f"0{digits}"
    if style < 0.65:
        return f"0031{digits}"
    if style < 0.75:
        return f"+31{digits}"
    if style < 0.85:
        return f"06-{digits[1:]}"
    return f"+31 (0)6 {digits[1:3]} {digits[3:5]} {digits[5:7]} {digits[7:]}"


def _nl_landline(rng: random.Random) -> str:
    area = rng.choice(["20", "10", "30", "76", "40"])
    rest = f"{rng.randrange(10**6, 10**7)}" if len(area) == 2 else f"{rng.randrange(10**5, 10**6)}"
    return f"(0{area}) {rest[:3]}-{rest[3:]}"


def _foreign(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["BE", "DE", "GB", "FR"])
    if kind == "BE":
        return f"+32 47{rng.randrange(0, 10)} {rng.randrange(10, 100)} {rng.randrange(10, 100)} {rng.randrange(10, 100)}", "BE"
    if kind == "DE":
        return f"+49 151 {rng.randrange(10**7, 10**8)}", "DE"
    if kind == "GB":
        return f"+44 7911 {rng.randrange(10**5, 10**6)}", "GB"
    return f"+33 6 {rng.randrange(10, 100)} {rng.randrange(10, 100)} {rng.randrange(10, 100)} {rng.randrange(10, 100)}", "FR"


INVALID = ["0612", "12345", "n/a", "+31 6 1234 567a", "00316123", "+99 123456", "06-1234-567", "unknown", "0"]


def _phone(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.03:
        return ""  # missing
    if r < 0.07:
        return rng.choice(INVALID)
    while True:
        if r < 0.80:
            text, region = _nl_mobile(rng), "NL"
        elif r < 0.90:
            text, region = _nl_landline(rng), "NL"
        else:
            text, region = _foreign(rng)
        if _valid(text, region):
            return text


def rows(seed: int = SEED) -> list[dict[str, str]]:
    """The recipient rows (deterministic for a seed)."""
    rng = random.Random(seed)
    people = []
    for i in range(N_PEOPLE):
        people.append(
            {
                "customer_id": f"C{100000 + i}",
                "first_name": rng.choice(FIRST),
                "last_name": rng.choice(LAST),
                "phone": _phone(rng),
                "segment": rng.choice(SEGMENTS),
                "preferred_channel": rng.choice(CHANNELS),
                "city": rng.choice(CITIES),
                "loyalty_points": str(rng.randrange(0, 5000)),
            }
        )
    # the same person imported twice (e.g. from two source lists)
    for _ in range(N_DUPLICATES):
        twin = dict(rng.choice(people[: N_PEOPLE // 2]))
        people.insert(rng.randrange(N_PEOPLE // 2, len(people)), twin)
    return people


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else Path(__file__).with_name("recipients.csv")
    data = rows()
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(data[0]))
        writer.writeheader()
        writer.writerows(data)
    print(f"wrote {len(data)} rows to {out}")


if __name__ == "__main__":
    main()
