-- The admin dashboard counts, per kind, the jobs waiting for their next attempt every few
-- seconds: an index of just those rows keeps that from scanning every job ever run.
CREATE INDEX order_jobs_retrying ON order_jobs (kind) WHERE state = 'retrying';
