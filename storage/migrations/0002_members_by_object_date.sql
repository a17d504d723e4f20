-- 0002: order members_by_object by date_added within an object, so that
-- match[id] and the object/versions endpoints read one id's memberships
-- already in listing order (no temporary sort b-tree per request).
DROP INDEX members_by_object;
CREATE INDEX members_by_object ON members (cid, oid, date_added);
