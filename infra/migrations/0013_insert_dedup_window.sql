-- Insert deduplication for the tables the fastpath writes (fastpath, obs_openvpn,
-- faulty_measurements). The Scorer sends each INSERT with insert_deduplication_token derived
-- from the uids of its rows, so a batch that SQS redelivers while its first INSERT is still in
-- flight (or whose answer was lost) is dropped by the server instead of stored twice. A
-- non-replicated MergeTree only honours the token when non_replicated_deduplication_window
-- is set: remember the last 10000 inserts per table (about half an hour of scorer traffic at
-- the 50 msm/s peak in batches of 10). Replicated tables deduplicate by default
-- (replicated_deduplication_window); setting this one there is harmless.
-- See shared/fastpath/src/lib.rs for the whole design.
ALTER TABLE fastpath MODIFY SETTING non_replicated_deduplication_window = 10000
;
ALTER TABLE obs_openvpn MODIFY SETTING non_replicated_deduplication_window = 10000
;
ALTER TABLE faulty_measurements MODIFY SETTING non_replicated_deduplication_window = 10000
