"""The customer tables of the distinct-set measures (kept apart from `metrics.models` because the
measure kinds, which the cube models are made from, read them)."""

from django.db import models

from cskpi.models import Department


class CustomerKey(models.Model):
    """A dense integer id per customer string (the same in every department): distinct-set states
    hold these ids. Assigned by `metrics.customers.customer_ids_get` (idempotent, concurrency-safe)."""

    id = models.AutoField(primary_key=True)  # 32 bits: what a roaring bitmap (pyroaring.BitMap) holds
    customer = models.CharField(max_length=128, unique=True)


class CustomerFirstContact(models.Model):
    """The first interaction of a customer with a department (its anchor time, over every record the
    service holds): what `new_customers` compares a range with. Kept by the recompute."""

    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(CustomerKey, on_delete=models.CASCADE, related_name="+", db_index=False)
    first_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["department", "customer"], name="customer_first_contact_key")]
