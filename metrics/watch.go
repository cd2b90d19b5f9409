package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Each watch actor's streams, watchers and events; etcd's
// etcd_debugging_mvcc_watch_stream_total, watcher_total, slow_watcher_total
// and events_total are their sums.
var (
	watchActorStreams = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "metastore_watch_streams",
		Help: "Watch streams a watch actor serves.",
	}, []string{"actor"})
	watchActorWatchers = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "metastore_watch_watchers",
		Help: "Watchers a watch actor matches changes against or catches up (synced and unsynced).",
	}, []string{"actor"})
	watchActorSlow = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "metastore_watch_slow_watchers",
		Help: "Watchers of a watch actor that are behind the feed: catching up from history, or set aside because their stream's outbox was full.",
	}, []string{"actor"})
	watchActorEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metastore_watch_events_total",
		Help: "Events a watch actor queued for its streams.",
	}, []string{"actor"})
)

// Watch reports one watch actor. It is the actor's own (each actor makes
// one): it remembers what it last reported and adds only the difference to
// the gauges, which actors of the same name in other nodes of the process
// share.
type Watch struct {
	streams, watchers, slow prometheus.Gauge
	events                  prometheus.Counter
	last                    struct{ streams, watchers, slow int }
}

// NewWatch returns a reporter for the watch actor named name.
func NewWatch(name string) *Watch {
	return &Watch{
		streams:  watchActorStreams.WithLabelValues(name),
		watchers: watchActorWatchers.WithLabelValues(name),
		slow:     watchActorSlow.WithLabelValues(name),
		events:   watchActorEvents.WithLabelValues(name),
	}
}

// Update records the actor's streams, watchers and slow watchers now; it
// costs three comparisons when nothing changed.
func (w *Watch) Update(streams, watchers, slow int) {
	if d := streams - w.last.streams; d != 0 {
		w.streams.Add(float64(d))
		etcdWatchStreams.Add(float64(d))
		w.last.streams = streams
	}
	if d := watchers - w.last.watchers; d != 0 {
		w.watchers.Add(float64(d))
		etcdWatchers.Add(float64(d))
		w.last.watchers = watchers
	}
	if d := slow - w.last.slow; d != 0 {
		w.slow.Add(float64(d))
		etcdSlowWatchers.Add(float64(d))
		w.last.slow = slow
	}
}

// Events records n events queued for the actor's streams.
func (w *Watch) Events(n int) {
	w.events.Add(float64(n))
	etcdEvents.Add(float64(n))
}
