package xds

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	grpcxds "google.golang.org/grpc/xds"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// TestGRPCGoXDSClient drives a real grpc-go xDS client (proxyless) through
// Rosen's translation, gate and server to a local backend.
func TestGRPCGoXDSClient(t *testing.T) {
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := grpc.NewServer()
	healthpb.RegisterHealthServer(hs, health.NewServer())
	go func() { _ = hs.Serve(backend) }()
	defer hs.Stop()
	port := uint32(backend.Addr().(*net.TCPAddr).Port)

	srv := New(zaptest.NewLogger(t), MeshGenerator{}, Options{Registry: prometheus.NewRegistry()})
	defer srv.Close()
	host := "greeter.default.svc.cluster.local"
	m := &model.Mesh{Services: []*model.Service{{
		Host: host, Namespace: "default", Resolution: model.ResolutionStatic,
		Ports: []model.ServicePort{{Number: port, Name: "grpc", Protocol: "GRPC"}},
		Endpoints: []model.Endpoint{{Address: "127.0.0.1", Weight: 1, Healthy: true, Locality: model.Locality{Region: "r1"},
			Source: model.Source{Kind: "WorkloadEntry", Namespace: "default", Name: "greeter-1"}}},
		Source: model.Source{File: "greeter.yaml", Kind: "Service", Namespace: "default", Name: "greeter"},
	}}}
	if err := srv.Update(m); err != nil {
		t.Fatalf("Update: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(ServerOptions()...)
	srv.Register(g)
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()

	bootstrap := fmt.Sprintf(`{
		"xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
		"node": {"id": "greeter-client", "metadata": {"GENERATOR": "grpc"}, "locality": {}}
	}`, lis.Addr().String())
	resolver, err := grpcxds.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(fmt.Sprintf("xds:///%s:%d", host, port), grpc.WithResolvers(resolver),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("call through xDS: %v", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("status = %v", resp.GetStatus())
	}
	// Endpoint-only change: move the service to a second backend that says
	// NOT_SERVING. Only EDS is rebuilt; the client follows.
	backend2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs2 := grpc.NewServer()
	h2 := health.NewServer()
	h2.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(hs2, h2)
	go func() { _ = hs2.Serve(backend2) }()
	defer hs2.Stop()
	full := value(t, srv.metrics.translations.WithLabelValues("full"))
	moved := *m.Services[0]
	moved.Endpoints = []model.Endpoint{{Address: "127.0.0.1", Weight: 1, Healthy: true, Locality: model.Locality{Region: "r1"},
		Ports: map[string]uint32{"grpc": uint32(backend2.Addr().(*net.TCPAddr).Port)}}}
	if err := srv.Update(&model.Mesh{Services: []*model.Service{&moved}}); err != nil {
		t.Fatalf("endpoint update: %v", err)
	}
	if got := value(t, srv.metrics.translations.WithLabelValues("full")); got != full {
		t.Fatalf("full translations %v → %v on an endpoint-only change", full, got)
	}
	for {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatalf("call after endpoint change: %v", err)
		}
		if resp.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Every type the client watched is ACKed, none NACKed.
	deadline := time.Now().Add(2 * time.Second)
	for {
		st := srv.Status()
		ok := len(st.Nodes) == 1
		if ok {
			for _, typ := range []string{"LDS", "RDS", "CDS", "EDS"} {
				ts := st.Nodes[0].Types[typ]
				if ts.Nacks != 0 {
					t.Fatalf("%s NACKed: %+v", typ, ts.LastNack)
				}
				ok = ok && ts.Acks > 0 && ts.AckedVersion == ts.SentVersion
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not all types ACKed: %+v", st.Nodes)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
