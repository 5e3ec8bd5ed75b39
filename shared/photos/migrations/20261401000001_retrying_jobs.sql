-- The admin dashboard counts, per kind, the jobs waiting for their next attempt every few
-- seconds: an index of just those rows keeps that from scanning every job ever run.
CREATE INDEX image_jobs_retrying ON image_jobs (kind) WHERE state = 'retrying';
