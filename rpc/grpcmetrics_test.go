package rpc

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// value reads a counter's or a histogram's count.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Histogram != nil {
		return float64(d.Histogram.GetSampleCount())
	}
	return d.Counter.GetValue()
}

// TestCountGRPC checks the counting points of go-grpc-middleware's
// provider, which etcd serves: a unary call is started, receives and sends
// one message and is handled under its code, whether it fails or not.
func TestCountGRPC(t *testing.T) {
	tests := []struct {
		err      error
		wantCode string
	}{
		{nil, "OK"},
		{status.Error(codes.NotFound, "no"), "NotFound"},
		{context.Canceled, "Canceled"},
		{context.DeadlineExceeded, "DeadlineExceeded"},
		{errors.New("plain"), "Unknown"},
	}
	info := &grpc.UnaryServerInfo{FullMethod: "/test.Service/Unary"}
	m := grpcMethodOf("unary", info.FullMethod)
	for _, tt := range tests {
		t.Run(tt.wantCode, func(t *testing.T) {
			handled := grpcHandled.WithLabelValues("unary", "test.Service", "Unary", tt.wantCode)
			before := []float64{value(t, m.started), value(t, m.received), value(t, m.sent), value(t, handled), value(t, m.handling.(prometheus.Metric))}
			_, err := measure(context.Background(), nil, info, func(context.Context, any) (any, error) { return nil, tt.err })
			if err != tt.err {
				t.Fatalf("error %v, want the handler's %v", err, tt.err)
			}
			after := []float64{value(t, m.started), value(t, m.received), value(t, m.sent), value(t, handled), value(t, m.handling.(prometheus.Metric))}
			for i, name := range []string{"started", "received", "sent", "handled " + tt.wantCode, "timed"} {
				if after[i]-before[i] != 1 {
					t.Errorf("%s moved by %v, want 1", name, after[i]-before[i])
				}
			}
		})
	}
}

// fakeStream receives two messages, then io.EOF.
type fakeStream struct {
	grpc.ServerStream
	left int
}

func (s *fakeStream) RecvMsg(any) error {
	if s.left == 0 {
		return io.EOF
	}
	s.left--
	return nil
}

func (s *fakeStream) SendMsg(any) error { return nil }

// TestCountGRPCStream: every RecvMsg counts, io.EOF included, and every
// SendMsg; the call is handled once it returns.
func TestCountGRPCStream(t *testing.T) {
	info := &grpc.StreamServerInfo{FullMethod: "/test.Service/Bidi", IsClientStream: true, IsServerStream: true}
	m := grpcMethodOf("bidi_stream", info.FullMethod)
	handled := grpcHandled.WithLabelValues("bidi_stream", "test.Service", "Bidi", "OK")
	before := []float64{value(t, m.started), value(t, m.received), value(t, m.sent), value(t, handled)}
	err := countGRPCStream(nil, &fakeStream{left: 2}, info, func(_ any, ss grpc.ServerStream) error {
		for ss.RecvMsg(nil) == nil {
			if err := ss.SendMsg(nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	after := []float64{value(t, m.started), value(t, m.received), value(t, m.sent), value(t, handled)}
	for i, c := range []struct {
		name string
		want float64
	}{{"started", 1}, {"received", 3}, {"sent", 2}, {"handled OK", 1}} {
		if got := after[i] - before[i]; got != c.want {
			t.Errorf("%s moved by %v, want %v", c.name, got, c.want)
		}
	}
}
