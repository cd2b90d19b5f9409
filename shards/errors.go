package shards

import "errors"

// errNeedsRevision is internal: a request compares a create or mod
// revision of a key that an earlier request of the same batch wrote, whose
// revision is not stamped yet. The batch is cut before it.
var errNeedsRevision = errors.New("shards: compare needs a revision not yet stamped")
