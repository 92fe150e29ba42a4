"""The PostgreSQL sketch functions of migrations 0019–0022, when every stored sketch was the wide layout (a
pair of big-endian 16-bit integers (bin, count) per bin): made by 0019, replaced by 0023's (a sketch may be
compact since), made again by 0023 backwards. Frozen here (not imported from `metrics.measures`, which holds
the current ones): a migration's SQL must not change with the code after it."""

PAIR_MAX = 32767  # as metrics.measures.PAIR_MAX

# The PostgreSQL merge aggregate, on the stored form (pairs of big-endian 16-bit bin
# and count). A merge concatenates the rows' pairs (PL/pgSQL: called once per merged row, where a
# SQL-language function costs ~40 % more) and folds equal bins whenever the state grows past 16 kB and
# at the end, so merging n sketches costs O(total pairs), not O(n²). A state that concatenated two
# sketches starts with the pair (-1, -1) (bins are never negative), so the final step folds only those:
# a group of one row (a day read from the day cube) is returned as stored.
_PAIRS_FOLDED = f"""
  SELECT string_agg(int2send(b::int2) || int2send(least(total - part::bigint * {PAIR_MAX}, {PAIR_MAX})::int2), ''
                    ORDER BY b, part)
  FROM (%s) grouped CROSS JOIN LATERAL generate_series(0, ((total - 1) / {PAIR_MAX})::int) part
"""
PG_SKETCH_SQL_V2 = (
    # Raw values' bins (int[], from array_agg) -> the stored form.
    "CREATE OR REPLACE FUNCTION cskpi_sketch_of_bins(bins int[]) RETURNS bytea "
    "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$"
    + _PAIRS_FOLDED % "SELECT b, count(*) AS total FROM unnest(bins) AS b WHERE b IS NOT NULL GROUP BY b"
    + "$$",
    # Pairs in any order, a bin more than once, markers (-1, -1) anywhere -> the stored form.
    "CREATE OR REPLACE FUNCTION cskpi_sketch_fold(pairs bytea) RETURNS bytea "
    "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$"
    + _PAIRS_FOLDED % ("SELECT get_byte(pairs, i) * 256 + get_byte(pairs, i + 1) AS b, "
                       "sum(get_byte(pairs, i + 2) * 256 + get_byte(pairs, i + 3)) AS total "
                       "FROM generate_series(0, length(pairs) - 4, 4) AS i "
                       "WHERE get_byte(pairs, i) < 128 GROUP BY 1")
    + "$$",
    """CREATE OR REPLACE FUNCTION cskpi_sketch_cat(state bytea, pairs bytea) RETURNS bytea
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
    BEGIN
      IF pairs IS NULL OR length(pairs) = 0 THEN RETURN state; END IF;
      IF state IS NULL OR length(state) = 0 THEN RETURN pairs; END IF;
      IF length(state) + length(pairs) > 16384 THEN
        RETURN '\\xffffffff'::bytea || cskpi_sketch_fold(state || pairs);
      END IF;
      IF get_byte(state, 0) < 128 THEN RETURN '\\xffffffff'::bytea || state || pairs; END IF;
      RETURN state || pairs;
    END $$""",
    """CREATE OR REPLACE FUNCTION cskpi_sketch_final(state bytea) RETURNS bytea
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
    BEGIN
      IF length(state) > 0 AND get_byte(state, 0) >= 128 THEN RETURN cskpi_sketch_fold(state); END IF;
      RETURN state;
    END $$""",
    "DROP AGGREGATE IF EXISTS cskpi_sketch_merge(bytea)",
    """CREATE AGGREGATE cskpi_sketch_merge(bytea) (
      SFUNC = cskpi_sketch_cat, STYPE = bytea, FINALFUNC = cskpi_sketch_final, PARALLEL = SAFE
    )""",
)
PG_SKETCH_DROP_SQL_V2 = (
    "DROP AGGREGATE IF EXISTS cskpi_sketch_merge(bytea)",
    "DROP FUNCTION IF EXISTS cskpi_sketch_final(bytea)",
    "DROP FUNCTION IF EXISTS cskpi_sketch_cat(bytea, bytea)",
    "DROP FUNCTION IF EXISTS cskpi_sketch_fold(bytea)",
    "DROP FUNCTION IF EXISTS cskpi_sketch_of_bins(int[])",
)
