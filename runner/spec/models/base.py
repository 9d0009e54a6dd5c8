"""The base models: camelCase aliases, unknown keys refused, frozen; exactly-one-of choices."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    model_validator,
)
from pydantic.alias_generators import to_camel

API_VERSION = "batchctl/v1"
MAX_PRIORITY = 2_147_483_647
DEFAULT_TARGET = "local"


class Model(BaseModel):
    """Base of every resource model: camelCase keys, unknown keys refused, frozen."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        coerce_numbers_to_str=True,
    )


class OneOf(Model):
    """A model whose fields are alternatives: exactly one must be given."""

    # Alternatives that take no parameters may be written as `untag:` (null).
    _empty_ok: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def alternatives(cls) -> tuple[tuple[str, str], ...]:
        """(field name, alias) of each alternative; read from pydantic once per class.

        ``model_fields`` builds a new mapping on every access: asked per spec and per job
        it was a large share of planning 100,000 jobs (bench/reconcile.py).
        """
        found: tuple[tuple[str, str], ...] | None = _ALTERNATIVES.get(cls)
        if found is None:
            found = tuple((n, f.alias or n) for n, f in cls.model_fields.items())
            _ALTERNATIVES[cls] = found
        return found

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        names = [alias for _, alias in cls.alternatives()]
        given = [k for k in data if k in names and data[k] is not None]
        if not given:
            # `untag:` (null) names an operation without parameters.
            given = [k for k in data if k in cls._empty_ok and data[k] is None]
        if len(given) != 1:
            found = f"found {', '.join(given)}" if given else "found none"
            raise ValueError(f"exactly one of {', '.join(names)} is required ({found})")
        key = given[0]
        if data[key] is None:
            return {**data, key: {}}
        return data

    @property
    def choice(self) -> str:
        """The alias of the alternative that was given."""
        for name, alias in self.alternatives():
            if getattr(self, name) is not None:
                return alias
        raise AssertionError("validated OneOf without a choice")

    @property
    def value(self) -> Any:
        """The parameters of the alternative that was given."""
        for name, _ in self.alternatives():
            found = getattr(self, name)
            if found is not None:
                return found
        raise AssertionError("validated OneOf without a choice")


_ALTERNATIVES: dict[type[OneOf], tuple[tuple[str, str], ...]] = {}


def one_of_schema(schema: dict[str, Any]) -> None:
    schema["minProperties"] = 1
    schema["maxProperties"] = 1
