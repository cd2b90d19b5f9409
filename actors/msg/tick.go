package msg

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Tick sends m to pid every interval, from a goroutine of its own, until
// the returned stop is called (stop may be called more than once). The
// actors use it for their periodic work instead of protoactor-go's
// scheduler, whose timer reads its state without synchronisation when
// cancelled as it fires (a data race the race detector reports).
func Tick(root actor.SenderContext, pid *actor.PID, interval time.Duration, m any) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				root.Send(pid, m)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}
