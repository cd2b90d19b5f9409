package metrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Register registers cs on r (prometheus.DefaultRegisterer in the server).
// A collector already registered with the same descriptors — one of etcd's
// packages registers its own at init when it is linked into the same
// binary, and a process registers ours once — is replaced, after checking
// that it reports the same type of metric. What cannot be registered (a
// series of the same name with other labels or help, another type, or
// descriptors overlapping another collector's) is reported in the joined
// error; the rest is registered all the same.
func Register(r prometheus.Registerer, cs ...prometheus.Collector) error {
	var errs []error
	for _, c := range cs {
		if err := register(r, c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Collectors returns every collector of this package, for Register.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		// etcd's series.
		rangeTotal, putTotal, deleteTotal, txnTotal, putSize,
		etcdWatchStreams, etcdWatchers, etcdSlowWatchers, etcdEvents,
		leaseGranted, leaseRevoked, leaseRenewed, leaseTTLs, leaseExpired,
		walFsync, backendCommit,
		// MetaStore's own.
		mailboxes, handleTime,
		shardBatch, writeQueue, coordinatorWrites, coordinatorShards,
		commitWrites, commitBytes, commitTime, commitQueue, revisionLag,
		watchActorStreams, watchActorWatchers, watchActorSlow, watchActorEvents,
		leasesHeld, leasesRevoking,
	}
}

func register(r prometheus.Registerer, c prometheus.Collector) error {
	err := r.Register(c)
	var dup prometheus.AlreadyRegisteredError
	if !errors.As(err, &dup) {
		return err
	}
	if dup.ExistingCollector == c {
		return nil
	}
	if err := sameType(dup.ExistingCollector, c); err != nil {
		return err
	}
	r.Unregister(dup.ExistingCollector)
	return r.Register(c)
}

// sameType checks that two collectors of the same descriptors report the
// same type of metric, as far as they report any (a vector without children
// reports nothing yet).
func sameType(existing, c prometheus.Collector) error {
	was, now := metricType(existing), metricType(c)
	if was != "" && now != "" && was != now {
		return fmt.Errorf("metrics: a %s of the same name is registered already, this one is a %s", was, now)
	}
	return nil
}

// metricType is the type of the first metric c reports: "counter",
// "gauge", "histogram", "summary" or "untyped"; "" if it reports none.
func metricType(c prometheus.Collector) string {
	ch := make(chan prometheus.Metric)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	typ := ""
	for m := range ch {
		if typ != "" {
			continue // drained, so that Collect returns
		}
		var d dto.Metric
		if m.Write(&d) != nil {
			continue
		}
		switch {
		case d.Counter != nil:
			typ = "counter"
		case d.Gauge != nil:
			typ = "gauge"
		case d.Histogram != nil:
			typ = "histogram"
		case d.Summary != nil:
			typ = "summary"
		default:
			typ = "untyped"
		}
	}
	return typ
}
