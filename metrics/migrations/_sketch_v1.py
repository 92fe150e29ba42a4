"""The PostgreSQL sketch functions of migrations 0003–0018, when a sketch was a bigint[] of (bin << 32 |
count): made by 0003, replaced by 0019's (the stored form is bytes since), made again by 0019 backwards.
Frozen here (not imported from `metrics.measures`, which holds the current ones): a migration's SQL must
not change with the code after it."""

# The PostgreSQL merge aggregate: concatenate, and fold equal bins whenever the state grows past a
# few thousand entries and at the end, so merging n sketches costs O(total entries), not O(n²).
PG_SKETCH_SQL_V1 = (
    """CREATE OR REPLACE FUNCTION cskpi_sketch_regroup(packed bigint[]) RETURNS bigint[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT array_agg((b << 32) | c ORDER BY b)
      FROM (SELECT e >> 32 AS b, sum(e & 4294967295)::bigint AS c FROM unnest(packed) AS e GROUP BY 1) s
    $$""",
    # PL/pgSQL: called once per merged row, where a SQL-language function costs ~40 % more. A state
    # that concatenated two sketches starts with -1 (entries are never negative), so the final step
    # regroups only those: a group of one row (a day read from the day cube) is returned as stored.
    """CREATE OR REPLACE FUNCTION cskpi_sketch_cat(state bigint[], packed bigint[]) RETURNS bigint[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
    BEGIN
      IF packed IS NULL THEN RETURN state; END IF;
      IF state IS NULL THEN RETURN packed; END IF;
      IF NOT state[1] < 0 THEN state := ARRAY[-1]::bigint[] || state; END IF;
      IF cardinality(state) + cardinality(packed) > 4096 THEN
        RETURN ARRAY[-1]::bigint[] || cskpi_sketch_regroup(state[2:] || packed);
      END IF;
      RETURN state || packed;
    END $$""",
    """CREATE OR REPLACE FUNCTION cskpi_sketch_fold(packed bigint[]) RETURNS bigint[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
    BEGIN
      IF packed[1] < 0 THEN RETURN cskpi_sketch_regroup(packed[2:]); END IF;
      RETURN packed;
    END $$""",
    "DROP AGGREGATE IF EXISTS cskpi_sketch_merge(bigint[])",
    """CREATE AGGREGATE cskpi_sketch_merge(bigint[]) (
      SFUNC = cskpi_sketch_cat, STYPE = bigint[], FINALFUNC = cskpi_sketch_fold, PARALLEL = SAFE
    )""",
)
PG_SKETCH_DROP_SQL_V1 = (
    "DROP AGGREGATE IF EXISTS cskpi_sketch_merge(bigint[])",
    "DROP FUNCTION IF EXISTS cskpi_sketch_cat(bigint[], bigint[])",
    "DROP FUNCTION IF EXISTS cskpi_sketch_fold(bigint[])",
    "DROP FUNCTION IF EXISTS cskpi_sketch_regroup(bigint[])",
)
