-- An upload whose jobs could not all be queued is withdrawn (the client was told to try
-- again), but the jobs queued before the failure still arrive: they find its id here and
-- have nothing to do, instead of failing on an image that does not exist.
CREATE TABLE withdrawn_uploads (
    image_id     UUID PRIMARY KEY,
    withdrawn_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
