-- 0005: edges, the index of references by target, keeps no rows for
-- targets nobody asks about (edges.go reverseIndexed): references to
-- identities and marking definitions, origins of relationships and marking
-- definitions. They were about half of its rows. refs still lists every
-- edge; Referrers of such a target reads refs. The Go step (migrate5)
-- deletes the rows, by the same rule the program writes them with.
SELECT 1;
