-- faulty_measurements: submissions whose claimed CC/ASN disagree with the GeoIP lookup of
-- the client address (upstream issue #1070). `details` is a JSON object: submission_cc,
-- submission_asn, measurement_uid, software_name, software_version, platform. Writers use
-- async_insert=1, wait_for_async_insert=0 per INSERT, as upstream.
CREATE TABLE IF NOT EXISTS faulty_measurements
(
    `ts` DateTime64(3, 'UTC') DEFAULT now64(),
    `type` String,
    `uid` UUID DEFAULT generateUUIDv4(),
    `probe_cc` String,
    `probe_asn` UInt32,
    `details` String
)
ENGINE = ReplacingMergeTree
ORDER BY (ts, type, probe_cc, probe_asn, uid)
SETTINGS index_granularity = 8192
