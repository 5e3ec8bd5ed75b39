-- The photo app's data, shared by the producer and every worker.

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    -- The approved, processed image shown as the user's avatar; NULL until there is one.
    avatar_image_id UUID,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE images (
    id                  UUID PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES users (id),
    format              TEXT NOT NULL,
    width               INTEGER NOT NULL,
    height              INTEGER NOT NULL,
    byte_size           BIGINT NOT NULL,
    -- Storage keys: the original as uploaded (private) and its metadata-free public copy.
    original_key        TEXT NOT NULL,
    public_original_key TEXT NOT NULL,
    -- Size (px, as text) -> storage key, set once by the thumbnail job.
    thumbnails          JSONB,
    -- 'approved' or 'rejected', set once by the moderation job.
    moderation          TEXT CHECK (moderation IN ('approved', 'rejected')),
    moderation_reason   TEXT,
    -- The join: set by whichever of thumbnails and moderation finishes last, in the same
    -- transaction that publishes update_profile_url, so exactly one of them publishes it.
    profile_job_claimed BOOLEAN NOT NULL DEFAULT false,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX images_user_id ON images (user_id);

ALTER TABLE users ADD CONSTRAINT users_avatar_image_id_fkey
    FOREIGN KEY (avatar_image_id) REFERENCES images (id);

-- Each job of an image, as the app shows it.
CREATE TABLE image_jobs (
    image_id   UUID NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('queued', 'running', 'retrying', 'done', 'failed')),
    attempt    INTEGER NOT NULL DEFAULT 0,
    error      TEXT,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (image_id, kind)
);

-- One confirmation email per upload, whatever the number of deliveries.
CREATE TABLE sent_emails (
    image_id   UUID PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE,
    recipient  TEXT NOT NULL,
    sent_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
