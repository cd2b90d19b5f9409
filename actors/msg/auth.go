package msg

import "github.com/metastore/metastore/storage"

// The auth protocol. The auth actor owns the users, roles and the enabled
// flag; a change takes no revision (etcd keeps auth apart from the key
// space and counts its changes with an auth revision of its own), so the
// actor hands its records to the sequencer with LogAuth and answers the
// request once they are durable, in commit order with the writes around
// it.

// LogAuth asks the sequencer to make auth changes durable, in commit order
// with the writes (they take no revision); Reply is called on the
// sequencer's goroutine once they are (nil) or will never be (the log's
// failure). It must not block.
type LogAuth struct {
	Records []storage.AuthRecord
	Reply   func(err error)
}
