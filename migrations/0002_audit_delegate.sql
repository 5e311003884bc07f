-- Delegated calls (auth::Authenticator::authenticate_acting): the caller that acted for
-- `principal` (a chatops bot granted `delegate`); NULL when the principal called itself.
ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS delegate TEXT;
