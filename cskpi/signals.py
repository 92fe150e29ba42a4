"""Hooks cskpi offers the apps built on it, so that cskpi never imports them.

cskpi is the base of the dependency chain cskpi → ingestion → metrics: it cannot call into the
apps that aggregate records, so it announces what they may need to react to and lets them connect.
"""

from django.dispatch import Signal

# Sent inside the transaction that changed a department's zone, with `department`. Anything cut at
# local midnights (the KPI day cubes) must be cut again; a receiver's writes join the transaction.
department_timezone_changed = Signal()

# Sent by the health check once the database answered; each receiver returns a dict of figures to
# report (e.g. {"pending_buckets": 12}). An exception counts as the database being down.
health_collected = Signal()

# Sent inside the transaction that changed a department's calendar or SLA policy, with `department`
# and `since` (the earliest instant whose records may measure differently; None: every record).
# Whoever stores numbers measured with them (ingestion's per-record SLA columns) recomputes those.
department_service_levels_changed = Signal()
