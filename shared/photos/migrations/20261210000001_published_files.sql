-- An upload's served copy and thumbnails are held back under `pending/` until moderation
-- approves it; `published_at` is when they were moved to `public/` and may be listed.
ALTER TABLE images ADD COLUMN published_at TIMESTAMPTZ;

-- Uploads from before this rule were written straight to `public/`.
UPDATE images SET published_at = created_at WHERE public_original_key LIKE 'public/%';
