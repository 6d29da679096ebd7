-- Measurement counters for prioritization, kept up to date by ClickHouse on every INSERT
-- into fastpath (materialized views over fastpath joined with citizenlab; only the last
-- 8 days of web_connectivity measurements are counted, as upstream). Needs 0001 and 0003.
-- counters_test_list: per day, probe_cc and URL.
CREATE MATERIALIZED VIEW IF NOT EXISTS counters_test_list
(
    `day` DateTime,
    `probe_cc` String,
    `input` String,
    `msmt_cnt` UInt64
)
ENGINE = SummingMergeTree
PARTITION BY day
ORDER BY (probe_cc, input)
SETTINGS index_granularity = 8192
AS SELECT
    toDate(measurement_start_time) AS day,
    probe_cc,
    input,
    count() AS msmt_cnt
FROM fastpath
INNER JOIN citizenlab ON fastpath.input = citizenlab.url
WHERE (measurement_start_time < now())
    AND (measurement_start_time > (now() - toIntervalDay(8)))
    AND (test_name = 'web_connectivity')
GROUP BY day, probe_cc, input
;
-- counters_asn_test_list: per week (toStartOfWeek), probe_cc, probe_asn and URL; read by
-- the check-in / test-list URL prioritization.
CREATE MATERIALIZED VIEW IF NOT EXISTS counters_asn_test_list
(
    `week` DateTime,
    `probe_cc` String,
    `probe_asn` UInt32,
    `input` String,
    `msmt_cnt` UInt64
)
ENGINE = SummingMergeTree
ORDER BY (probe_cc, probe_asn, input)
SETTINGS index_granularity = 8192
AS SELECT
    toStartOfWeek(measurement_start_time) AS week,
    probe_cc,
    probe_asn,
    input,
    count() AS msmt_cnt
FROM fastpath
INNER JOIN citizenlab ON fastpath.input = citizenlab.url
WHERE (measurement_start_time < now())
    AND (measurement_start_time > (now() - toIntervalDay(8)))
    AND (test_name = 'web_connectivity')
GROUP BY week, probe_cc, probe_asn, input
