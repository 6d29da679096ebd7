-- test_helper_instances: live, draining and destroyed test helper hosts (rotation tool).
CREATE TABLE IF NOT EXISTS test_helper_instances
(
    `rdn` String,
    `dns_zone` String,
    `name` String,
    `provider` String,
    `region` String,
    `ipaddr` IPv4,
    `ipv6addr` IPv6,
    `draining_at` Nullable(DateTime('UTC')),
    `sign` Int8,
    `destroyed_at` Nullable(DateTime('UTC'))
)
ENGINE = CollapsingMergeTree(sign)
ORDER BY name
SETTINGS index_granularity = 8
