package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// The lease actor's leases; etcd's lease counters are in etcd.go.
var (
	leasesHeld = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "metastore_lease_leases",
		Help: "Leases the lease actor holds (granted, not yet revoked).",
	})
	leasesRevoking = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "metastore_lease_revoking",
		Help: "Lease revokes under way at the coordinator (asked for or on expiry).",
	})
)

// Leases records the leases held and the revokes under way.
func Leases(held, revoking int) {
	leasesHeld.Set(float64(held))
	leasesRevoking.Set(float64(revoking))
}
