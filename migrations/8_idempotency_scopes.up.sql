-- Idempotency keys belong to a caller and an operation, as Stripe scopes them per account: the same
-- key sent by two API keys, or to two endpoints, names two different requests. `scope` is the API
-- key's id ('anonymous' when authentication is off); `operation` is the method and route.
--
-- Rows written before this migration cannot tell their caller or operation (the fingerprint is a
-- hash). They stay as the legacy lane ('', ''), matched by key and fingerprint only, until they
-- expire (IDEMPOTENCY_TTL_HOURS): a retry that spans the upgrade still finds its first answer,
-- and the ids it derives from its key stay those of its first attempt (core/idempotency.ts).
ALTER TABLE idempotency_keys
    ADD COLUMN scope TEXT NOT NULL DEFAULT '',
    ADD COLUMN operation TEXT NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys ALTER COLUMN scope DROP DEFAULT, ALTER COLUMN operation DROP DEFAULT;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (scope, operation, key);

-- When keys got lanes. For a key's lifetime after it, a caller's request may be the retry of one
-- it sent before, whose effects carry ids derived from the bare key even if its key's record is
-- gone (a failed attempt's record is deleted): the use cases look for those first.
CREATE TABLE idempotency_lanes (since TIMESTAMPTZ NOT NULL);
INSERT INTO idempotency_lanes (since) VALUES (now());
