-- Each job's W3C trace context, copied into its `traceparent` header when it is published:
-- the request that wrote it and the workers that run it share one trace id. Null on rows
-- written before it existed (they are published without one, and start their own trace).
ALTER TABLE job_outbox ADD COLUMN traceparent text;
