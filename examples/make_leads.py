"""Write ``leads.csv``: 1,000 synthetic leads on fictional numbers, the same every time.

Every number is +1 NPA 555 01xx, the range reserved for fiction in the North American plan,
spread over ten area codes so all 1,000 are distinct and valid E.164.

    python examples/make_leads.py
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

AREA_CODES = ("212", "305", "312", "415", "512", "617", "702", "808", "206", "303")
FIRST = ("Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jun")
LAST = ("Lovelace", "Okafor", "Nguyen", "Patel", "Rossi", "Haddad", "Kim", "Silva", "Berg")
PLANS = ("basic", "plus", "pro")


def main() -> None:
    rng = random.Random(5)
    path = Path(__file__).with_name("leads.csv")
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["phone_number", "customer_name", "plan", "renewal_date"])
        for area in AREA_CODES:
            for line in range(100, 200):
                name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
                renewal = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                writer.writerow([f"+1{area}5550{line}", name, rng.choice(PLANS), renewal])


if __name__ == "__main__":
    main()
