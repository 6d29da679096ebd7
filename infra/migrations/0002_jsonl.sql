-- jsonl: where each measurement body lives in the S3 data bucket, written by the uploader
-- after a JSONL file is stored and read by raw_measurement / measurement / measurement_meta
-- (full=true). Upstream columns and production engine and key, plus three columns of ours
-- for seeking into a multi-member ("seekable") gzip file without inflating it from the start:
-- the body is line member_line (0-based) of the gzip member that starts at byte member_offset
-- and is member_length bytes long. Rows from upstream (no member_*) keep 0s and are read
-- the upstream way: inflate the whole object and take line linenum.
CREATE TABLE IF NOT EXISTS jsonl
(
    `report_id` String,
    `input` String,
    `s3path` String,
    `linenum` Int32,
    `measurement_uid` String,
    `date` Date,
    `source` String,
    `update_time` DateTime64(3) MATERIALIZED now64(),
    `member_offset` UInt64 DEFAULT 0 COMMENT 'byte offset of the gzip member holding the body',
    `member_length` UInt32 DEFAULT 0 COMMENT 'compressed length of that gzip member, 0 = unknown',
    `member_line` UInt32 DEFAULT 0 COMMENT '0-based line of the body inside that member'
)
ENGINE = ReplacingMergeTree(update_time)
ORDER BY (report_id, input, measurement_uid)
SETTINGS index_granularity = 8192
