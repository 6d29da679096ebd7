-- asnmeta: ASN -> organisation name and country, with change history. The updater loads
-- asnmeta_tmp, then EXCHANGE TABLES asnmeta AND asnmeta_tmp.
CREATE TABLE IF NOT EXISTS asnmeta
(
    `asn` UInt32,
    `org_name` String,
    `cc` String,
    `changed` Date,
    `aut_name` String,
    `source` String
)
ENGINE = MergeTree
ORDER BY (asn, changed)
SETTINGS index_granularity = 8192
;
CREATE TABLE IF NOT EXISTS asnmeta_tmp AS asnmeta
