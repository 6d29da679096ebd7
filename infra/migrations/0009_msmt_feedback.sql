-- msmt_feedback: one status per (measurement, account); the last write wins (read with FINAL).
-- Production has update_time MATERIALIZED and a version-less ReplacingMergeTree, which keeps
-- the last *inserted* row; here update_time is a DEFAULT and the version column, so the
-- newest row wins even if two writes land in different parts, and tests can set it.
CREATE TABLE IF NOT EXISTS msmt_feedback
(
    `measurement_uid` String,
    `account_id` String,
    `status` String,
    `update_time` DateTime64(3) DEFAULT now64(),
    `comment` String
)
ENGINE = ReplacingMergeTree(update_time)
ORDER BY (measurement_uid, account_id)
SETTINGS index_granularity = 4
