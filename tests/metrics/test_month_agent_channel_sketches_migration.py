"""metrics 0021 marks one quarter per local month holding records, for each record type with sketches,
so the worker builds the month × agent × channel sketches the code now keeps."""

from datetime import UTC, datetime

import pytest

from tests.metrics.migrating import migrate, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("metrics", "0020_quarter_cube_key")]
AFTER = [("metrics", "0021_month_agent_channel_sketches")]
# Local month starts in Asia/Ho_Chi_Minh (UTC+7).
MARCH, APRIL = datetime(2026, 2, 28, 17, tzinfo=UTC), datetime(2026, 3, 31, 17, tzinfo=UTC)


def test_one_quarter_per_local_month_is_marked_for_each_type_with_sketches():
    apps = migrate(BEFORE)
    try:
        department = apps.get_model("cskpi", "Department").objects.create(slug="mig21", name="Mig",
                                                                          timezone="Asia/Ho_Chi_Minh")
        for name, months in (("InteractionBucket", [MARCH, APRIL]), ("CashoutBucket", [APRIL]),
                             ("SurveyBucket", [MARCH])):  # surveys keep no sketch: not marked
            for month in months:
                apps.get_model("metrics", name).objects.create(cube="month", department_id=department.id,
                                                               bucket_start=month)
            apps.get_model("metrics", name).objects.create(cube="day", department_id=department.id,
                                                           bucket_start=MARCH)

        apps = migrate(AFTER)
        marks = apps.get_model("ingestion", "RecordChange").objects.filter(department_id=department.id)
        assert sorted(marks.values_list("record_type", "quarter_start", "scope")) == [
            ("cashout", APRIL, "all"), ("interaction", MARCH, "all"), ("interaction", APRIL, "all")]
    finally:
        migrate_to_latest()
