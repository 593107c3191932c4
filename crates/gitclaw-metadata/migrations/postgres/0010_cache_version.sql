-- Every change to a repository's refs, packs or loose objects bumps its
-- cache_version in the same transaction (these triggers, so no write path can
-- forget it). A shared metadata cache (Redis) keys what it holds of a repository
-- by (id, cache_version): a request that reads the repository row after a push
-- committed asks for the new version, which nothing filled before the push can be.
ALTER TABLE repositories ADD COLUMN cache_version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION gitclaw_bump_cache_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE repositories SET cache_version = cache_version + 1
     WHERE id IN (SELECT DISTINCT repo_id FROM changed);
    RETURN NULL;
END
$$;

CREATE TRIGGER refs_insert_bumps_cache_version AFTER INSERT ON refs
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION gitclaw_bump_cache_version();
CREATE TRIGGER refs_update_bumps_cache_version AFTER UPDATE ON refs
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION gitclaw_bump_cache_version();
CREATE TRIGGER refs_delete_bumps_cache_version AFTER DELETE ON refs
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION gitclaw_bump_cache_version();
CREATE TRIGGER packs_insert_bumps_cache_version AFTER INSERT ON packs
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION gitclaw_bump_cache_version();
CREATE TRIGGER packs_update_bumps_cache_version AFTER UPDATE ON packs
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION gitclaw_bump_cache_version();
CREATE TRIGGER packs_delete_bumps_cache_version AFTER DELETE ON packs
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION gitclaw_bump_cache_version();
CREATE TRIGGER loose_insert_bumps_cache_version AFTER INSERT ON loose_objects
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION gitclaw_bump_cache_version();
CREATE TRIGGER loose_update_bumps_cache_version AFTER UPDATE ON loose_objects
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION gitclaw_bump_cache_version();
CREATE TRIGGER loose_delete_bumps_cache_version AFTER DELETE ON loose_objects
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION gitclaw_bump_cache_version();
