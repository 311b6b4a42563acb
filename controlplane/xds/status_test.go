package xds

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
)

func TestDeltaAckAndNackInSyncz(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	d := e.delta(t)
	d.send(&discoveryv3.DeltaDiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ClusterType})
	r := d.next()
	if len(r.GetResources()) != 2 || r.GetResources()[0].GetVersion() == "" {
		t.Fatalf("delta CDS = %v", r)
	}
	// Later requests carry no node: the stream's first node is kept.
	d.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: r.GetNonce()})
	d.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ListenerType})
	l := d.next()
	d.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ListenerType, ResponseNonce: l.GetNonce(),
		ErrorDetail: &rpcstatus.Status{Code: 3, Message: "bad listener"}})
	time.Sleep(100 * time.Millisecond)
	select {
	case x := <-d.resp:
		t.Fatalf("response after NACK: %v", x)
	default:
	}

	rec := httptest.NewRecorder()
	e.srv.SynczHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/syncz", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("syncz: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	var st Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Ready || st.Version != "1" || len(st.Nodes) != 1 || len(st.Groups) != 1 {
		t.Fatalf("syncz = %s", rec.Body.String())
	}
	n := st.Nodes[0]
	if n.Protocol != "delta" || n.Service != "ADS" || n.Kind != "router" || n.Namespace != "istio-system" || n.ConnectedSince.IsZero() {
		t.Fatalf("node = %+v", n)
	}
	if cds := n.Types["CDS"]; cds.Acks != 1 || cds.AckedNonce != r.GetNonce() || cds.AckedVersion != r.GetSystemVersionInfo() {
		t.Fatalf("CDS = %+v", cds)
	}
	if lds := n.Types["LDS"]; lds.Nacks != 1 || lds.LastNack == nil || lds.LastNack.Message != "bad listener" || lds.LastNack.Nonce != l.GetNonce() {
		t.Fatalf("LDS = %+v", lds)
	}
	if g := st.Groups[0]; g.Streams != 1 || g.Resources["CDS"] != 2 || g.Resources["LDS"] != 1 {
		t.Fatalf("group = %+v", g)
	}

	rec = httptest.NewRecorder()
	e.srv.SynczHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/debug/syncz", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", rec.Code)
	}
}

func TestIdleGroupsAreDropped(t *testing.T) {
	e := start(t, Options{GroupIdleTimeout: time.Nanosecond})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	c := e.sotw(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.ClusterType})
	c.next()
	c.stream.CloseSend()
	if err := c.failure(); err == nil {
		t.Fatal("no end of stream")
	}
	// Connected: kept. Wait until the server has seen the stream close.
	deadline := time.Now().Add(2 * time.Second)
	for len(e.srv.Status().Nodes) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Millisecond)
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	if n := len(e.srv.Status().Groups); n != 0 {
		t.Fatalf("%d groups after idle timeout, want 0", n)
	}
}
