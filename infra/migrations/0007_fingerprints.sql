-- Blocking fingerprints used by the fastpath scoring to mark measurements confirmed.
-- The updater loads fingerprints_{dns,http}_tmp, then EXCHANGE TABLES with the live table.
CREATE TABLE IF NOT EXISTS fingerprints_dns
(
    `name` String,
    `scope` Enum8('nat' = 1, 'isp' = 2, 'prod' = 3, 'inst' = 4, 'vbw' = 5, 'fp' = 6),
    `other_names` String,
    `location_found` String,
    `pattern_type` Enum8('full' = 1, 'prefix' = 2, 'contains' = 3, 'regexp' = 4),
    `pattern` String,
    `confidence_no_fp` UInt8,
    `expected_countries` String,
    `source` String,
    `exp_url` String,
    `notes` String
)
ENGINE = EmbeddedRocksDB
PRIMARY KEY name
;
CREATE TABLE IF NOT EXISTS fingerprints_dns_tmp AS fingerprints_dns
;
CREATE TABLE IF NOT EXISTS fingerprints_http
(
    `name` String,
    `scope` Enum8('nat' = 1, 'isp' = 2, 'prod' = 3, 'inst' = 4, 'vbw' = 5, 'fp' = 6, 'injb' = 7, 'prov' = 8),
    `other_names` String,
    `location_found` String,
    `pattern_type` Enum8('full' = 1, 'prefix' = 2, 'contains' = 3, 'regexp' = 4),
    `pattern` String,
    `confidence_no_fp` UInt8,
    `expected_countries` String,
    `source` String,
    `exp_url` String,
    `notes` String
)
ENGINE = EmbeddedRocksDB
PRIMARY KEY name
;
CREATE TABLE IF NOT EXISTS fingerprints_http_tmp AS fingerprints_http
