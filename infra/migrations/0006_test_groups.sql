-- test_groups: test name -> group, for joinGet('test_groups', 'test_group', test_name).
CREATE TABLE IF NOT EXISTS test_groups
(
    `test_name` String,
    `test_group` String
)
ENGINE = Join(ANY, LEFT, test_name)
;
-- The groups as upstream. Join(ANY, ...) keeps the first row per test_name and ignores
-- later duplicates, so re-running this INSERT is a no-op. (A Join table cannot be read by
-- the INSERT that writes it, so a NOT IN guard is not possible.)
INSERT INTO test_groups (test_name, test_group) VALUES
    ('bridge_reachability', 'circumvention'),
    ('meek_fronted_requests_test', 'circumvention'),
    ('psiphon', 'circumvention'),
    ('riseupvpn', 'circumvention'),
    ('tcp_connect', 'circumvention'),
    ('tor', 'circumvention'),
    ('torsf', 'circumvention'),
    ('vanilla_tor', 'circumvention'),
    ('dnscheck', 'experimental'),
    ('urlgetter', 'experimental'),
    ('facebook_messenger', 'im'),
    ('signal', 'im'),
    ('telegram', 'im'),
    ('whatsapp', 'im'),
    ('dns_consistency', 'legacy'),
    ('http_host', 'legacy'),
    ('http_requests', 'legacy'),
    ('multi_protocol_traceroute', 'legacy'),
    ('http_header_field_manipulation', 'middlebox'),
    ('http_invalid_request_line', 'middlebox'),
    ('dash', 'performance'),
    ('ndt', 'performance'),
    ('web_connectivity', 'websites')
