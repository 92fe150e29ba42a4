"""The record types, their models and the anchor time that places each record in a period."""

from dataclasses import dataclass

from django.db import models

from ingestion.choices import RecordType
from ingestion.models import Cashout, Interaction, SurveyResponse


@dataclass(frozen=True)
class RecordKind:
    record_type: RecordType
    model: type[models.Model]
    anchor: str  # the field whose time decides the period a record counts in


RECORD_KINDS: dict[str, RecordKind] = {
    RecordType.INTERACTION: RecordKind(RecordType.INTERACTION, Interaction, "created_at"),
    RecordType.SURVEY: RecordKind(RecordType.SURVEY, SurveyResponse, "submitted_at"),
    RecordType.CASHOUT: RecordKind(RecordType.CASHOUT, Cashout, "requested_at"),
}
