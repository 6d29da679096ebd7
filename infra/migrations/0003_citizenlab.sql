-- citizenlab: the Citizen Lab test lists (cc is lowercase for countries, 'ZZ' for global).
-- The updater fills citizenlab_flip, then runs EXCHANGE TABLES citizenlab AND citizenlab_flip.
CREATE TABLE IF NOT EXISTS citizenlab
(
    `domain` String,
    `url` String,
    `cc` FixedString(32),
    `category_code` String
)
ENGINE = ReplacingMergeTree
ORDER BY (domain, url, cc, category_code)
SETTINGS index_granularity = 4
;
CREATE TABLE IF NOT EXISTS citizenlab_flip AS citizenlab
