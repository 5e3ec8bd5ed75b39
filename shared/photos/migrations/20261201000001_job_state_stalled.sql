-- A job whose retry or dead-letter copy its worker could not publish is `stalled`: the
-- broker delivers it again, so its image is still processing.

ALTER TABLE image_jobs DROP CONSTRAINT image_jobs_state_check;
ALTER TABLE image_jobs ADD CONSTRAINT image_jobs_state_check
    CHECK (state IN ('queued', 'running', 'retrying', 'done', 'failed', 'stalled'));
