"""Prices for `plan`'s estimates: batchctl's list (pricing.yaml), under the project's own.

A price is looked up by backend, region and item, never borrowed from another region:
a region without prices gives "no price", which the estimate reports rather than hides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

# The count each item's price is for (see pricing.yaml).
UNITS = {"job": 1, "object": 1_000_000, "request": 1000, "restore": 1000, "retrieval": 1}
OWN = "batchctl.yaml"


@dataclass(frozen=True)
class Price:
    """One price: US dollars for ``unit`` of the item, and where it comes from."""

    usd: float
    source: str
    read: str | None = None  # the day it was read (None: not confirmed against a page)
    via: str | None = None  # what was read that day, when not the source itself

    @property
    def confirmed(self) -> bool:
        """Whether a page with the price was read (or the project set it)."""
        return self.read is not None or self.source == OWN


def unit(item: str) -> int:
    """How many of the item one price is for."""
    return UNITS[item.split(".", 1)[0]]


@cache
def shipped() -> dict[str, dict[str, dict[str, Price]]]:
    """batchctl's own prices, read once from the package."""
    text = resources.files("runner.reconcile").joinpath("pricing.yaml").read_text("utf-8")
    data = yaml.safe_load(text) or {}
    book: dict[str, dict[str, dict[str, Price]]] = {}
    for backend, regions in data.items():
        for region, items in (regions or {}).items():
            for item, entry in (items or {}).items():
                book.setdefault(backend, {}).setdefault(region, {})[item] = Price(
                    usd=float(entry["usd"]),
                    source=str(entry["source"]),
                    read=None if entry.get("read") is None else str(entry["read"]),
                    via=entry.get("via"),
                )
    return book


class PriceBook:
    """batchctl's prices with the project's (batchctl.yaml ``pricing:``) over them."""

    def __init__(
        self, overrides: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None
    ) -> None:
        self.book = {
            b: {r: dict(items) for r, items in regions.items()} for b, regions in shipped().items()
        }
        for backend, regions in (overrides or {}).items():
            for region, items in regions.items():
                for item, usd in items.items():
                    self.book.setdefault(backend, {}).setdefault(region, {})[item] = Price(
                        float(usd), OWN
                    )

    def get(self, backend: str, region: str | None, item: str) -> Price | None:
        """The price of ``item`` on ``backend`` in ``region``, or None."""
        if region is None:
            return None
        return self.book.get(backend, {}).get(region, {}).get(item)
