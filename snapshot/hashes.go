package snapshot

import (
	"cmp"
	"context"
	"slices"
	"sync"
)

// keptHashes is how many compaction hashes Hashes keeps, as etcd's
// hashStorage (hashStorageMaxSize).
const keptHashes = 10

// Hashes keeps the hashes compactions computed (CompactionHash), the
// newest keptHashes by revision, as etcd keeps them: etcd's HashKV at a
// revision it holds a hash for answers that hash, before any other check,
// even if a later compaction passed the revision. Like etcd's, it lives in
// memory only. Its methods may be called from any goroutine.
type Hashes struct {
	mu     sync.Mutex
	hashes []KVHash
	// pending are the revisions whose hash is being computed, each with a
	// channel closed once it is stored (or failed).
	pending map[int64]chan struct{}
}

// Compute computes the hash of revision rev with fn on a goroutine of its
// own and keeps it. Until it is done, Get of rev waits for it. A hash that
// fails is not kept: HashKV then hashes the revision afresh, as etcd does
// when it has no hash stored.
func (h *Hashes) Compute(rev int64, fn func() (KVHash, error)) {
	done := make(chan struct{})
	h.mu.Lock()
	if h.pending == nil {
		h.pending = make(map[int64]chan struct{})
	}
	h.pending[rev] = done
	h.mu.Unlock()
	go func() {
		defer close(done)
		kh, err := fn()
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.pending[rev] == done {
			delete(h.pending, rev)
		}
		if err == nil {
			h.store(kh)
		}
	}()
}

// store keeps kh, and the newest keptHashes hashes by revision.
func (h *Hashes) store(kh KVHash) {
	h.hashes = append(h.hashes, kh)
	slices.SortStableFunc(h.hashes, func(a, b KVHash) int { return cmp.Compare(a.Revision, b.Revision) })
	if len(h.hashes) > keptHashes {
		h.hashes = h.hashes[len(h.hashes)-keptHashes:]
	}
}

// Get returns the hash kept for revision rev, waiting for one being
// computed; it fails with ctx.Err() if ctx ends first.
func (h *Hashes) Get(ctx context.Context, rev int64) (KVHash, bool, error) {
	h.mu.Lock()
	done := h.pending[rev]
	h.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return KVHash{}, false, ctx.Err()
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, kh := range h.hashes {
		if kh.Revision == rev {
			return kh, true, nil
		}
	}
	return KVHash{}, false, nil
}
