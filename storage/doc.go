// Package storage is MetaStore's data dir: an embedded pebble database
// holding every key's uncompacted history and the member's metadata.
//
// Layout (all integers big-endian unless noted):
//
//	m/format            "3": the layout version; "2" (records without their
//	                    sub revision) is read and upgraded on its first
//	                    open for writing; any other is refused
//	m/subfrom           in a dir upgraded from "2", the first revision whose
//	                    records carry their sub revision (8 bytes)
//	m/ids               cluster ID, member ID (8 bytes each)
//	m/shards            the shard count last used (uvarint)
//	m/compact           the compact revision (8 bytes)
//	m/alarm             "nospace" while the NOSPACE alarm is raised
//	c/peerurls          the member's peer URLs as a MemberUpdate set them (JSON array); absent until one does
//	r/<rev><key>        one record of one key: create, version (0 for a
//	                    tombstone), lease and sub revision (its place among
//	                    its revision's changes, which watchers are sent in)
//	                    as varints, then the value
//	l/<id>              one lease (8-byte ID): its TTL in seconds (uvarint);
//	                    written by its grant, deleted by its revoke, in the
//	                    commit group of that change
//	a/<key>             one record of the auth state, in etcd's encoding:
//	                    u/<user> (authpb.User), r/<role> (authpb.Role),
//	                    enabled (1 byte), revision (8 bytes); written, or
//	                    deleted, in the commit group of the auth request
//	                    that changed it
//
// The prefix c/ (membership) is reserved for more of the member's own
// state, so it can grow without a format break; readers of one prefix
// bound their iterators to it and never see another's keys.
//
// Records are keyed by revision first, as etcd keys its bbolt bucket, so
// that writes append at the end of the key space, and no metadata is
// written with them: the store's revision is the newest record's, or the
// compact revision if compaction removed every record above it (a
// compaction never removes a record newer than the compact revision).
// pebble can then move new tables down its levels without rewriting older
// ones. Keyed by key, random writes overlapped every table; and a revision
// counter written in every commit group did the same on its own (it made
// every new table span from m/ to the newest record). Either way each
// compaction rewrote the whole bottom level, which cost a quarter of a
// durable put's CPU (profile in docs/benchmarks.md). Compaction still
// deletes exactly the records it drops, since each names its (revision,
// key).
//
// Each commit group is one pebble batch written with one sync: a restart
// sees a prefix of the commit order, never half a revision.
//
// History reads the records of a run of revisions back in commit order: a
// watcher starting in the past is caught up from it.
//
// Single writer: the sequencer's committer writes records and the compact
// revision; shards delete compacted records (Drop); anyone may read. Faults
// (faults.go): a damaged write-ahead log is refused at Open with the file
// and offset named; a file system short of its free-space reserve is
// reported (LowSpace) so that the sequencer raises the NOSPACE alarm; a
// commit that fails returns an error after which nothing may be written;
// opening and closing are bounded in time.
package storage
