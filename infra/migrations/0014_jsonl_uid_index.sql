-- jsonl: a bloom-filter skip index on measurement_uid, so a body lookup by uid that cannot go
-- through fastpath (report_id, input are the sort key prefix) reads only the granules that may
-- hold the uid instead of scanning the table. Applies to parts written from now on; existing
-- parts gain it as they merge (or run ALTER TABLE jsonl MATERIALIZE INDEX jsonl_uid_idx, a
-- mutation over the whole table, at a quiet time).
ALTER TABLE jsonl ADD INDEX IF NOT EXISTS jsonl_uid_idx measurement_uid TYPE bloom_filter(0.001) GRANULARITY 1
