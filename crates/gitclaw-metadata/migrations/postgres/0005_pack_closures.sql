-- A pack that holds exactly the objects reachable from a set of tips, and nothing
-- else, records a digest of that set (compaction writes such packs): a full clone
-- of those tips is then answered by streaming the pack, without walking history.
-- What a pack holds never changes, so the record never goes stale.
ALTER TABLE packs ADD COLUMN closure_of TEXT CHECK (closure_of IS NULL OR length(closure_of) = 40);
