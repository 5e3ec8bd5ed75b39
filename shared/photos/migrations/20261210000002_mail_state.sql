-- A confirmation mail is recorded as `sending` before the SMTP exchange and `sent` after it,
-- each in a statement of its own: no transaction stays open while a mail server answers.
-- Rows from before were committed after their mail went out.
ALTER TABLE sent_emails
    ADD COLUMN state TEXT NOT NULL DEFAULT 'sent' CHECK (state IN ('sending', 'sent'));
