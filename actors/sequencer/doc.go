// Package sequencer owns the revision counter and the commit order: it
// stamps every write with its revision, makes it durable, and says when it
// may be seen.
//
// The pipeline every write goes through, in order:
//
//  1. stamp    a shard (or the coordinator) sends msg.Stamp with the
//     write sets of its batch; the sequencer answers msg.Stamped with
//     consecutive revisions at once, one per write that changes something,
//     and queues the writes for the committer.
//  2. install  the shard applies the writes at their revisions to its store,
//     publishes its new view and sends msg.Installed with the replies its
//     clients wait for (msg.Deliver for replies with nothing to install).
//  3. sync     the committer goroutine writes every group queued while the
//     last sync ran as one storage batch with one sync (group commit), in
//     revision order, and reports back.
//  4. publish  the visible revision moves over the contiguous prefix of
//     revisions that are both installed everywhere they write and durable,
//     the way pebble publishes sequence numbers.
//  5. release  the replies of revisions up to the visible one are sent.
//
// Invariants: revisions are stamped without gaps and committed in order; a
// revision is visible only once it is installed and durable; a client gets
// no answer before every reader can see its revision (so reads are
// linearizable without a message); after a commit fails nothing more is
// committed and no write is acknowledged (Revisions.Failed).
//
// Messages in: msg.Stamp, msg.Installed, msg.Deliver, msg.Compact,
// msg.LogLeases, msg.LogAuth, msg.Alarm. Out: msg.Stamped, the replies'
// sends, msg.CompactResult, msg.AlarmResult. Published for lock-free
// readers, with the sequencer as their single writer: Revisions (visible
// and compact revisions, the NOSPACE alarm, the log's failure).
//
// The pure state machine of steps 1, 2, 4 and 5 is core, tested without an
// actor system; actor.go is the shell around it, with the committer and
// the quota, free-space and memory checks.
package sequencer
