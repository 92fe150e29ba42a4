"""The batch validator, compiled from the field declarations: plain Python, no serializer per item.

`coercer_build(spec)` turns one FieldSpec into a function value -> typed value | Invalid; the OpenAPI
serializer fields (ingestion.serializers) call the same functions, so both accept the same input.
In JSON mode types must be real JSON types (no "1" for 1); in text mode (CSV) "" is absent and
"true"/"false" and numbers are read from their text.
"""

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from cskpi.currencies import ISO_4217_CODES
from cskpi.errors import CappedErrors, text_clip
from ingestion.fields import FieldSpec, FieldType, RecordSpec

PG_INT_MAX = 2**31 - 1
AMOUNT_MAX_INTEGER_DIGITS = 18  # DecimalField(max_digits=24, decimal_places=6)
AMOUNT_PLACES = Decimal("0.000001")

_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?P<offset>Z|z|[+-]\d{2}(?::?\d{2})?)?"
)
# Years 0002-9998: at the ends of Python's range a UTC offset pushes the instant out of it (year 0 or
# 10000), which no column can hold. The schema states it with this prefix pattern (no lookaheads).
YEAR_MIN, YEAR_MAX = 2, 9998
DATETIME_YEAR_PATTERN = r"^(000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-"
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
_SLUG = re.compile(SLUG_PATTERN[1:-1])
# Department slugs are Django slugs (cskpi's DepartmentInputSerializer): the schema states the pattern.
DEPARTMENT_PATTERN = r"^[-a-zA-Z0-9_]+$"
_DEPARTMENT = re.compile(DEPARTMENT_PATTERN[1:-1])
# Free text may hold anything but NUL (PostgreSQL cannot store it); the schema says so with this pattern.
NO_NUL_PATTERN = r"^[^\x00]*$"
# ASCII digits only: Python's \d would also take other scripts' digits, which the schema's pattern does not.
_DECIMAL = re.compile(r"(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]+))?")
# The same rule as the coercer below (> 0, at most 18 + 6 digits besides leading zeros), as an ECMA
# pattern without lookaheads: a non-zero integer part, or a zero one with a non-zero fraction.
_FRACTION_NOT_ZERO = "|".join(f"0{{{zeros}}}[1-9][0-9]{{0,{5 - zeros}}}" for zeros in range(6))
AMOUNT_PATTERN = (
    rf"^0*[1-9][0-9]{{0,17}}(\.[0-9]{{1,6}})?$|^0+\.({_FRACTION_NOT_ZERO})$"
)
# The same with 0 allowed (MRR): at most 18 + 6 digits besides leading zeros.
AMOUNT_OR_ZERO_PATTERN = r"^0*[0-9]{1,18}(\.[0-9]{1,6})?$"
AMOUNT_INTEGER_MAX = 10**18 - 1
_INT_TEXT = re.compile(r"[+-]?\d+")
_TRUE, _FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})


@dataclass(frozen=True, slots=True)
class Invalid:
    code: str
    message: str


Coercer = Callable[[object], object]  # returns the typed value or an Invalid


def _text(spec: FieldSpec) -> Coercer:
    max_length = spec.max_length

    def coerce(value):
        if type(value) is not str:
            return Invalid("invalid_type", "Must be a string.")
        if not value:
            return Invalid("blank", "May not be empty.")
        if max_length is not None and len(value) > max_length:
            return Invalid("max_length", f"At most {max_length} characters.")
        if "\x00" in value:
            return Invalid("invalid_characters", "May not contain NUL characters.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return Invalid("invalid_characters", "Not valid Unicode text (lone surrogate).")
        return value

    return coerce


def _matching(spec: FieldSpec, pattern: re.Pattern, code: str, message: str) -> Coercer:
    """Text that must match `pattern` whole."""
    text = _text(spec)
    match = pattern.fullmatch

    def coerce(value):
        value = text(value)
        if type(value) is Invalid:
            return value
        if match(value) is None:
            return Invalid(code, message)
        return value

    return coerce


def _slug(spec: FieldSpec) -> Coercer:
    return _matching(spec, _SLUG, "invalid_slug",
                     "Lowercase letters, digits, '-' and '_', starting with a letter or digit.")


def _department(spec: FieldSpec) -> Coercer:
    """Shaped like a slug; whether it exists is checked against the department table."""
    return _matching(spec, _DEPARTMENT, "unknown_department",
                     "No such department: a slug holds letters, digits, '-' and '_'.")


def _datetime(spec: FieldSpec) -> Coercer:
    match = _DATETIME.fullmatch
    fromisoformat = datetime.fromisoformat

    def coerce(value):
        if type(value) is not str:
            return Invalid("invalid_type", "Must be an ISO 8601 string.")
        found = match(value)
        if found is None:
            return Invalid("invalid_datetime", "Not an ISO 8601 date-time such as 2026-03-02T09:00:00+07:00.")
        if found["offset"] is None:
            return Invalid("naive_datetime", "The time has no UTC offset; add one (e.g. +07:00 or Z).")
        try:
            moment = fromisoformat(value)
        except ValueError:
            return Invalid("invalid_datetime", "Not a valid date-time.")
        if not YEAR_MIN <= moment.year <= YEAR_MAX:
            return Invalid("invalid_datetime", f"The year must be from {YEAR_MIN:04} to {YEAR_MAX}.")
        return moment.astimezone(UTC)

    return coerce


def _number(value) -> float | Invalid:
    if type(value) is float:
        if not math.isfinite(value):
            return Invalid("invalid_number", "Must be a finite number.")
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            return Invalid("invalid_number", "Number too large.")
    return Invalid("invalid_type", "Must be a number.")


# Ten years: no wait, handle or response time is longer; bounded sums can never overflow a float.
DURATION_MAX_SECONDS = 315_576_000


def _duration(spec: FieldSpec) -> Coercer:
    def coerce(value):
        value = _number(value)
        if type(value) is Invalid:
            return value
        if value < 0:
            return Invalid("negative_duration", "A duration may not be negative.")
        if value > DURATION_MAX_SECONDS:
            return Invalid("duration_too_long",
                           f"At most {DURATION_MAX_SECONDS} seconds (10 years).")
        return value

    return coerce


def _score(spec: FieldSpec) -> Coercer:
    return _number


def _int(spec: FieldSpec) -> Coercer:
    low = spec.min_value

    def coerce(value):
        if type(value) is not int:
            return Invalid("invalid_type", "Must be a whole number.")
        if (low is not None and value < low) or value > PG_INT_MAX:
            return Invalid("out_of_range", f"Must be from {low} to {PG_INT_MAX}.")
        return value

    return coerce


def _bool(spec: FieldSpec) -> Coercer:
    def coerce(value):
        if type(value) is not bool:
            return Invalid("invalid_type", "Must be true or false.")
        return value

    return coerce


def _decimal(spec: FieldSpec) -> Coercer:
    match = _DECIMAL.fullmatch
    zero_allowed = spec.min_value == 0  # MRR may be 0; a payout amount may not
    bound = "greater than or equal to 0" if zero_allowed else "greater than 0"

    def coerce(value):
        if type(value) is int:
            value = str(value)
        elif type(value) is not str:
            return Invalid("invalid_amount", "Must be a decimal string such as \"1500.25\" (floats lose precision).")
        found = match(value)
        if found is None:
            return Invalid("invalid_amount", "Must be a decimal string such as \"1500.25\".")
        if len(found["int"].lstrip("0")) > AMOUNT_MAX_INTEGER_DIGITS or len(found["frac"] or "") > 6:
            return Invalid("invalid_amount", "At most 18 digits before the point and 6 after.")
        amount = Decimal(value)
        if amount < 0 or (amount == 0 and not zero_allowed):
            return Invalid("invalid_amount", f"Must be {bound}.")
        return amount.quantize(AMOUNT_PLACES)

    return coerce


def _currency(spec: FieldSpec) -> Coercer:
    def coerce(value):
        if type(value) is not str or value not in ISO_4217_CODES:
            return Invalid("invalid_currency", "Must be an ISO 4217 currency code such as VND or USD.")
        return value

    return coerce


def _choice(spec: FieldSpec) -> Coercer:
    choices = frozenset(spec.choices or ())
    listed = ", ".join(spec.choices or ())

    def coerce(value):
        if type(value) is not str or value not in choices:
            return Invalid("invalid_choice", f"Must be one of: {listed}.")
        return value

    return coerce


_BUILDERS: dict[FieldType, Callable[[FieldSpec], Coercer]] = {
    FieldType.STR: _text,
    FieldType.SLUG: _slug,
    FieldType.DEPARTMENT: _department,
    FieldType.DATETIME: _datetime,
    FieldType.DURATION: _duration,
    FieldType.SCORE: _score,
    FieldType.INT: _int,
    FieldType.BOOL: _bool,
    FieldType.DECIMAL: _decimal,
    FieldType.CURRENCY: _currency,
    FieldType.CHOICE: _choice,
}


def coercer_build(spec: FieldSpec) -> Coercer:
    return _BUILDERS[spec.type](spec)


def text_value_read(spec: FieldSpec, value: str):
    """CSV cell -> the JSON value it stands for (None when empty); unreadable text stays a string."""
    if value == "":
        return None
    kind = spec.type
    if kind is FieldType.INT:
        return int(value) if _INT_TEXT.fullmatch(value) else value
    if kind in (FieldType.DURATION, FieldType.SCORE):
        try:
            return float(value)
        except ValueError:
            return value
    if kind is FieldType.BOOL:
        lowered = value.strip().lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else value
    return value


def field_name_safe(name) -> str:
    """A field name fit to echo in an error: clipped, lone surrogates (valid JSON escapes, invalid
    UTF-8) escaped."""
    name = text_clip(name)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return name.encode("utf-8", "backslashreplace").decode("utf-8")
    return name


class BatchValidator:
    """Validates a list of raw items for one record type; every item checked, every error reported."""

    def __init__(self, spec: RecordSpec):
        self.spec = spec
        self.fields = [(f, f.name, f.target, coercer_build(f), f.required, f.default) for f in spec.fields]
        self.allowed = frozenset(f.name for f in spec.fields)
        self.department_field = next(f.name for f in spec.fields if f.type is FieldType.DEPARTMENT)
        self.currency_fields = [(f.name, f.target) for f in spec.fields if f.department_currency]

    def validate(
        self, items: Sequence, *, departments: Mapping[str, int], text: bool = False, error_limit: int | None = None,
        currencies: Mapping[int, str] | None = None,
    ) -> tuple[list[dict | None], list[dict]]:
        """-> (rows keyed by column, None for a bad item; errors as {index, field, code, message}).

        At most `error_limit` (default CSKPI_MAX_ERRORS) errors are listed; the rest are counted in
        the list's `not_listed`. `currencies` ({department id: reporting currency}) is what a field
        declared `department_currency` must match (not checked without it).
        """
        rows: list[dict | None] = []
        errors = CappedErrors(error_limit)
        for index, item in enumerate(items):
            row = self.item_validate(item, index, departments, text, errors, currencies)
            rows.append(row)
        return rows, errors

    def item_validate(self, item, index: int, departments: Mapping[str, int], text: bool, errors: list,
                      currencies: Mapping[int, str] | None = None):
        if type(item) is not dict:
            errors.append({"index": index, "field": None, "code": "not_an_object",
                           "message": "Each item must be a JSON object."})
            return None
        failed = False
        if not item.keys() <= self.allowed:
            unknown = item.keys() - self.allowed
            if getattr(errors, "full", False):
                errors.not_listed += len(unknown)
            else:
                for name in sorted(unknown):
                    name = field_name_safe(name)
                    errors.append({"index": index, "field": name, "code": "unknown_field",
                                   "message": f"Unknown field {name!r}."})
            failed = True
        row = {}
        get = item.get
        for spec, name, target, coerce, required, default in self.fields:
            value = get(name)
            if text and type(value) is str:
                value = text_value_read(spec, value)
            if value is None:
                if required:
                    errors.append({"index": index, "field": name, "code": "required",
                                   "message": "This field is required."})
                    failed = True
                row[target] = default
                continue
            value = coerce(value)
            if type(value) is Invalid:
                errors.append({"index": index, "field": name, "code": value.code, "message": value.message})
                failed = True
                continue
            row[target] = value
        if failed:
            return None
        slug = row[self.department_field]
        department_id = departments.get(slug)
        if department_id is None:
            errors.append({"index": index, "field": self.department_field, "code": "unknown_department",
                           "message": f"No department {text_clip(slug)!r}."})
            return None
        row["department_id"] = department_id
        if currencies is not None:
            for name, target in self.currency_fields:
                expected = currencies.get(department_id)
                if row[target] is not None and row[target] != expected:
                    errors.append({"index": index, "field": name, "code": "currency_mismatch",
                                   "message": f"Department {text_clip(slug)!r} reports in {expected}; got "
                                              f"{row[target]}."})
                    failed = True
        for rule in self.spec.rules:
            for field_name, code, message in rule(row):
                errors.append({"index": index, "field": field_name, "code": code, "message": message})
                failed = True
        if failed:
            return None
        if self.spec.derived is not None:
            row.update(self.spec.derived(row))
        return row


_VALIDATORS: dict[str, BatchValidator] = {}


def batch_validator_get(spec: RecordSpec) -> BatchValidator:
    validator = _VALIDATORS.get(spec.plural)
    if validator is None:
        validator = _VALIDATORS[spec.plural] = BatchValidator(spec)
    return validator
