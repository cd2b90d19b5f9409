package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// etcdPutTotal is etcd's own etcd_mvcc_put_total, as its mvcc package
// registers it at init.
func etcdPutTotal() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "etcd", Subsystem: "mvcc", Name: "put_total",
		Help: "Total number of puts seen by this member.",
	})
}

func TestRegisterReplacesWhatAnotherPackageRegistered(t *testing.T) {
	tests := []struct {
		name string
		// existing is registered first, as etcd's packages do at init.
		existing prometheus.Collector
		wantErr  string // "" for success
	}{
		{name: "none"},
		{name: "etcd's own counter", existing: etcdPutTotal()},
		{name: "other help", existing: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcd_mvcc_put_total", Help: "Puts.",
		}), wantErr: "different label names or a different help string"},
		{name: "other labels", existing: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcd_mvcc_put_total", Help: "Total number of puts seen by this member.",
		}, []string{"type"}), wantErr: "different label names or a different help string"},
		{name: "a gauge", existing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "etcd_mvcc_put_total", Help: "Total number of puts seen by this member.",
		}), wantErr: "a gauge of the same name is registered already, this one is a counter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			if tt.existing != nil {
				reg.MustRegister(tt.existing)
			}
			ours := etcdPutTotal()
			err := Register(reg, ours)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Register: %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Register: %v", err)
			}
			ours.Add(3)
			if got := gatherValue(t, reg, "etcd_mvcc_put_total", nil); got != 3 {
				t.Fatalf("etcd_mvcc_put_total = %v, want ours, 3", got)
			}
			if err := Register(reg, ours); err != nil {
				t.Fatalf("registering the same collector again: %v", err)
			}
		})
	}
}

// TestCollectorsRegister registers every collector on an empty registry:
// no two describe the same series, and each is valid.
func TestCollectorsRegister(t *testing.T) {
	if err := Register(prometheus.NewRegistry(), Collectors()...); err != nil {
		t.Fatal(err)
	}
}

// gatherValue returns the value of the series name with labels (a counter,
// a gauge, or a histogram's count), failing the test if it is not there.
func gatherValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}
