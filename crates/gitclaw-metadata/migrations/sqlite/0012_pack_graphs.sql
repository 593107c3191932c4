-- A pack compaction wrote may have a commit-graph of its commits beside it in
-- the store (`pack-{hash}.graph`): its size here, NULL when it has none.
ALTER TABLE packs ADD COLUMN graph_bytes INTEGER;
