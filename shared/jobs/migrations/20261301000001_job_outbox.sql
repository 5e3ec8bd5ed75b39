-- The transactional outbox: jobs written in the caller's own transaction, published by the
-- relay afterwards. A row is the job exactly as it goes on the wire (its envelope), so the
-- relay needs nothing of the domain that wrote it.
CREATE TABLE job_outbox (
    -- Identity (not serial): inserting needs no right on a sequence, and ids give the
    -- relay's publishing order.
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      uuid        NOT NULL,
    kind        text        NOT NULL,
    body        bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Set once the broker confirmed the job; sent rows are pruned after a while.
    sent_at     timestamptz,
    -- A job the broker refused (unroutable, too large) waits until then, and says why.
    not_before  timestamptz NOT NULL DEFAULT now(),
    attempts    integer     NOT NULL DEFAULT 0,
    last_error  text
);

-- What the relay scans: the unsent rows, in order. Small however large the table grows.
CREATE INDEX job_outbox_unsent ON job_outbox (id) WHERE sent_at IS NULL;
-- What pruning scans.
CREATE INDEX job_outbox_sent ON job_outbox (sent_at) WHERE sent_at IS NOT NULL;

-- Relays LISTEN on this channel, so a committed job waits milliseconds, not a poll period.
-- NOTIFY is sent at commit, once per transaction and payload.
CREATE FUNCTION job_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('job_outbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER job_outbox_inserted AFTER INSERT ON job_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION job_outbox_notify();
