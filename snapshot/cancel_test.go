package snapshot

import (
	"context"
	"errors"
	"testing"
)

// TestScansStopWithContext: every scan of the history gives up with its
// context's error once the context ends, so that the view it holds does
// not keep the data dir from closing.
func TestScansStopWithContext(t *testing.T) {
	v := view(t, playStore(t, histories[1], true).db) // compacted at 5, at revision 9
	tests := []struct {
		name string
		scan func(context.Context) error
	}{
		{"HashKV", func(ctx context.Context) error { _, err := HashKV(ctx, v, 0, 9); return err }},
		{"CompactionHash", func(ctx context.Context) error { _, err := CompactionHash(ctx, v, 5, 9); return err }},
		{"Build", func(ctx context.Context) error {
			img, err := Build(ctx, v, Info{MemberID: 1}, t.TempDir())
			if err == nil {
				img.Close()
			}
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.scan(t.Context()); err != nil {
				t.Fatalf("with a live context: %v", err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			if err := tc.scan(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("with a canceled context: %v, want %v", err, context.Canceled)
			}
		})
	}
}

// TestHashesGetStopsWithContext: Get gives up waiting for a hash being
// computed once its context ends, and answers it once computed.
func TestHashesGetStopsWithContext(t *testing.T) {
	var h Hashes
	release := make(chan struct{})
	want := KVHash{Hash: 7, CompactRevision: -1, Revision: 3}
	h.Compute(3, func() (KVHash, error) {
		<-release
		return want, nil
	})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, ok, err := h.Get(ctx, 3); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("Get(3) while computing, canceled: ok %v, %v; want %v", ok, err, context.Canceled)
	}
	close(release)
	if got, ok, err := h.Get(t.Context(), 3); !ok || err != nil || got != want {
		t.Errorf("Get(3) = %+v, %v, %v; want %+v", got, ok, err, want)
	}
}
