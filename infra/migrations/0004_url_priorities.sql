-- url_priorities: test-list prioritization rules; an edit inserts the old rule with sign=-1
-- and the new one with sign=1. Readers that need exact rules use FINAL.
CREATE TABLE IF NOT EXISTS url_priorities
(
    `sign` Int8,
    `category_code` String,
    `cc` String,
    `domain` String,
    `url` String,
    `priority` Int32
)
ENGINE = CollapsingMergeTree(sign)
ORDER BY (category_code, cc, domain, url, priority)
SETTINGS index_granularity = 1024
