package actors

import (
	"context"
	"log/slog"
	"os"

	"github.com/asynkron/protoactor-go/actor"
)

// fatalStrategy supervises the core actors. protoactor-go's default would
// restart a failed actor by running its producer again, and a shard would
// come back empty; instead the failure is reported and the actor stopped.
type fatalStrategy struct {
	onFatal func(who string, reason any)
}

func (s *fatalStrategy) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason, _ any) {
	s.onFatal(child.Id, reason)
	sup.StopChildren(child)
}

func exitOnFatal(logger *slog.Logger) func(string, any) {
	return func(who string, reason any) {
		logger.Error("core actor failed; exiting", "actor", who, "reason", reason)
		os.Exit(2)
	}
}

// levelAtLeast drops records below a level: protoactor-go logs every start
// at info level, which is noise in a server's log.
type levelAtLeast struct {
	slog.Handler
	min slog.Level
}

func (h levelAtLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelAtLeast) WithAttrs(as []slog.Attr) slog.Handler {
	return levelAtLeast{h.Handler.WithAttrs(as), h.min}
}

func (h levelAtLeast) WithGroup(name string) slog.Handler {
	return levelAtLeast{h.Handler.WithGroup(name), h.min}
}
