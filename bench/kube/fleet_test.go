package kube

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
)

const edsType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"

// fleet is P proxyless ADS streams (50 per connection) subscribed to one EDS cluster.
type fleet struct {
	conns   []*grpc.ClientConn
	cancel  context.CancelFunc
	streams []*edsStream
}

// edsStream records when it ACKed the first response holding each address.
type edsStream struct {
	mu   sync.Mutex
	acks map[string]time.Time
	err  error
}

func connect(addr string, n int, cluster string) (*fleet, error) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fleet{cancel: cancel}
	var cc *grpc.ClientConn
	for i := range n {
		if i%50 == 0 {
			var err error
			cc, err = grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				f.close()
				return nil, err
			}
			f.conns = append(f.conns, cc)
		}
		st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(cc).StreamAggregatedResources(ctx)
		if err != nil {
			f.close()
			return nil, err
		}
		md, _ := structpb.NewStruct(map[string]any{"GENERATOR": "grpc"})
		node := &corev3.Node{Id: fmt.Sprintf("bench-%d", i), Metadata: md}
		s := &edsStream{acks: map[string]time.Time{}}
		f.streams = append(f.streams, s)
		go s.run(st, node, cluster)
	}
	return f, nil
}

func (s *edsStream) run(st discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient, node *corev3.Node, cluster string) {
	req := &discoveryv3.DiscoveryRequest{Node: node, TypeUrl: edsType, ResourceNames: []string{cluster}}
	if err := st.Send(req); err != nil {
		s.fail(err)
		return
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			s.fail(err)
			return
		}
		addrs, err := addresses(resp)
		if err != nil {
			s.fail(err)
			return
		}
		ack := &discoveryv3.DiscoveryRequest{Node: node, TypeUrl: edsType, ResourceNames: []string{cluster},
			VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}
		if err := st.Send(ack); err != nil {
			s.fail(err)
			return
		}
		now := time.Now()
		s.mu.Lock()
		for _, a := range addrs {
			if _, ok := s.acks[a]; !ok {
				s.acks[a] = now
			}
		}
		s.mu.Unlock()
	}
}

// addresses lists the endpoint addresses of an EDS response.
func addresses(resp *discoveryv3.DiscoveryResponse) ([]string, error) {
	var out []string
	for _, a := range resp.GetResources() {
		var cla endpointv3.ClusterLoadAssignment
		if err := a.UnmarshalTo(&cla); err != nil {
			return nil, err
		}
		for _, l := range cla.GetEndpoints() {
			for _, e := range l.GetLbEndpoints() {
				out = append(out, e.GetEndpoint().GetAddress().GetSocketAddress().GetAddress())
			}
		}
	}
	return out, nil
}

func (s *edsStream) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

// waitAll waits until every stream has ACKed addr.
func (f *fleet) waitAll(addr string, since time.Time, timeout time.Duration) error {
	deadline := since.Add(timeout)
	for {
		missing := 0
		for _, s := range f.streams {
			s.mu.Lock()
			_, ok := s.acks[addr]
			err := s.err
			s.mu.Unlock()
			if err != nil {
				return fmt.Errorf("stream: %w", err)
			}
			if !ok {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d proxies have not ACKed %s after %v", missing, len(f.streams), addr, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (f *fleet) latencies(addr string, since time.Time) []time.Duration {
	out := make([]time.Duration, 0, len(f.streams))
	for _, s := range f.streams {
		s.mu.Lock()
		out = append(out, s.acks[addr].Sub(since))
		s.mu.Unlock()
	}
	return out
}

func (f *fleet) close() {
	f.cancel()
	for _, c := range f.conns {
		c.Close()
	}
}

// cpuSeconds is a process's user+system CPU time.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// rssMiB is a process's resident memory.
func rssMiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return kb / 1024
		}
	}
	return 0
}
