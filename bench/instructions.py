"""Instructions per /metrics request, counted by valgrind's callgrind: a figure that does not move with
the machine's load, for weighing a change to the request path on a noisy VM.

    .venv/bin/python bench/instructions.py [--records 5000000] [--requests 20] [--shape hour] [--params JSON]
    .venv/bin/python bench/instructions.py --ingest new|mixed [--requests 5]

Runs itself under `valgrind --tool=callgrind` (Debian's valgrind) with instrumentation off, makes the
request a few times to warm up (compiled SQL, prepared statements), switches instrumentation on for
`--requests` requests of the shape (bench/peers.py's shapes, chosen by a piece of their name; or any
query string given as JSON with `--params`), and prints the instructions per request. Counted: this
process only (test client, middleware, DRF, auth, engine, JSON), not PostgreSQL. The same code and data
count the same within ~0.1 % run to run; times on this machine move ±15 % (docs/metrics.md).
Data: bench/query_data.py's database of that size (made on first use, as bench/peers.py does).

`--ingest`: instructions per POST of 1000 interactions instead (bench/ingest.py's records and database,
emptied first; the recompute queued to Redis, not run): `new` batches after 8 warm-up batches, or `mixed`
batches (1/3 new, 1/3 changed, 1/3 the same, 10 stale, as bench/ingest.py's mixed pass) once the batches
they revisit are stored. Counted: the server side in-process (test client, DRF, validation, upsert's
Python, psycopg), not PostgreSQL.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

_UNDER = "CSKPI_UNDER_CALLGRIND"


def _counted(args) -> None:
    """Inside valgrind: warm up, then count `args.requests` requests."""
    os.environ["BENCH_RECORDS"] = str(args.records)
    os.environ.setdefault("BENCH_QUERY_DB", "cskpi_bench_q" if args.records == 5_000_000
                          else f"cskpi_bench_q_{args.records}")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from peers import shape_params, shapes
    from query_data import bench_data_ensure

    bench_data_ensure()
    from rest_framework.test import APIClient

    from cskpi.models import Department
    from cskpi.runtime import gc_tune
    from cskpi.services import token_issue, user_grants_upsert

    department = Department.objects.get(slug="bench-03")
    if args.params:
        params = json.loads(args.params)
    else:
        found = [s for s in shapes(department.id) if args.shape in s["name"]]
        if len(found) != 1:
            names = "; ".join(s["name"] for s in shapes(department.id))
            raise SystemExit(f"{len(found)} shapes named like {args.shape!r}; the shapes: {names}")
        [shape] = found
        params = shape_params(shape, department.slug, list(
            Department.objects.filter(slug__startswith="bench-").order_by("slug").values_list("slug", flat=True)))
    user = user_grants_upsert(username="bench-peers", staff=True, grants=[], agent="")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_issue(user=user)}")
    gc_tune()
    for _ in range(5):
        response = client.get("/api/v1/metrics", params)
        assert response.status_code == 200, response.content[:300]
    _counting(lambda: [client.get("/api/v1/metrics", params) for _ in range(args.requests)])


def _counted_ingest(args) -> None:
    """Inside valgrind: warm up, then count `args.requests` batches of the `args.ingest` pass."""
    import random

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import ingest

    ingest.database_ensure()
    ingest.django_setup(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/1"))
    token = ingest.fixtures_reset()
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")
    rng, warm, counted = random.Random(7), 8, args.requests
    build = ingest.interaction
    new = [json.dumps([build(b * ingest.BATCH + i, rng) for i in range(ingest.BATCH)]).encode()
           for b in range(warm + counted)]
    stored = new[:warm] if args.ingest == "new" else new
    bodies = new[warm:] if args.ingest == "new" else [ingest.mixed_body(build, b, warm + counted, rng)
                                                      for b in range(counted)]
    for body in stored:
        response = client.post("/api/v1/interactions", body, content_type="application/json")
        assert response.status_code == 200, response.content[:300]
    responses = _counting(lambda: [client.post("/api/v1/interactions", body, content_type="application/json")
                                   for body in bodies])
    assert responses[-1].status_code == 200, responses[-1].content[:300]


def _counting(work):
    """`work()`, with callgrind's instrumentation of this process on while it runs."""
    control = ["callgrind_control", "-i"]
    subprocess.run([*control, "on", str(os.getpid())], check=True, capture_output=True)
    try:
        return work()
    finally:
        subprocess.run([*control, "off", str(os.getpid())], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=5_000_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--shape", default="hour", help="a piece of a bench/peers.py shape's name")
    parser.add_argument("--params", help="the query string as a JSON object, instead of a shape")
    parser.add_argument("--ingest", choices=["new", "mixed"], help="count ingest batches of this pass instead")
    args = parser.parse_args()
    if os.environ.get(_UNDER):
        return _counted_ingest(args) if args.ingest else _counted(args)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        run = subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
                              sys.executable, __file__, *sys.argv[1:]],
                             env={**os.environ, _UNDER: "1"}, capture_output=True, text=True)
        if run.returncode != 0:
            sys.stderr.write(run.stdout + run.stderr)
            raise SystemExit(run.returncode)
        collected = re.search(r"Collected : (\d+)", run.stderr)
        if collected is None:
            raise SystemExit("callgrind printed no count:\n" + run.stderr[-2000:])
    per = int(collected.group(1)) // args.requests
    if args.ingest:
        print(f"ingest, {args.ingest} batches of 1000 interactions: {per:,} instructions per batch "
              f"({args.requests} batches)")
        return
    label = args.params or f"shape '{args.shape}'"
    print(f"{args.records:,} records, {label}: {per:,} instructions per request ({args.requests} requests)")


if __name__ == "__main__":
    main()
