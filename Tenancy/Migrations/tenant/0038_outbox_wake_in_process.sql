-- The outbox relay is woken by the committing process itself (OutboxWake), not by NOTIFY:
-- PostgreSQL serializes every committing transaction that has notified, across the cluster, on
-- one lock held through the commit's WAL flush, which capped outbox writes of all tenants
-- together at about 1,000 a second on this machine (pgbench, 64 clients). Device commands and
-- whitelists keep their NOTIFY (a gateway must hear about them from any process).
DROP TRIGGER outbox_wake ON outbox;
DROP FUNCTION outbox_wake();
