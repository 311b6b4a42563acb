package kubeenv

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
)

// FaultProxy is a plain-HTTP proxy in front of an API server that a test
// can tell to cut watches and to answer resumed watches with 410 Gone, as
// an API server does when the resource version a client resumes from has
// been compacted out of etcd. Everything else passes through.
type FaultProxy struct {
	URL string // http://127.0.0.1:PORT

	mu      sync.Mutex
	watches map[*openWatch]struct{}
	expired map[string]GoneMode // by resource: answer resumed watches with 410 until the next list
	lists   map[string]int      // list requests (and watch-lists that send initial events) by resource
	gone    map[string]int      // 410 answers by resource
}

type openWatch struct {
	resource string
	cancel   context.CancelFunc
}

// GoneMode is how FaultProxy answers a watch with 410 Gone.
type GoneMode int

const (
	// GoneInStream answers the watch with 200 and one ERROR event holding a
	// Status 410 Expired, as an API server does for a compacted resource version.
	GoneInStream GoneMode = iota + 1
	// GoneStatus answers the watch request itself with HTTP 410 and a Status.
	GoneStatus
)

// NewFaultProxy proxies api until the test ends.
func NewFaultProxy(t testing.TB, api *APIServer) *FaultProxy {
	t.Helper()
	target, err := url.Parse(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1 // watch events pass at once
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	rp.ErrorLog = log.New(io.Discard, "", 0) // cut watches are the point
	p := &FaultProxy{watches: map[*openWatch]struct{}{}, expired: map[string]GoneMode{}, lists: map[string]int{}, gone: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.URL = "http://" + ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serve(rp, w, r) })}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { p.DropWatches(""); _ = srv.Close() })
	return p
}

// Config is an admin client configuration through the proxy.
func (p *FaultProxy) Config() *rest.Config {
	return &rest.Config{Host: p.URL, BearerToken: AdminToken, QPS: 200, Burst: 400}
}

// collection returns the resource a list or watch of every namespace (or
// of one) asks for: the last path segment of /api/v1/pods,
// /apis/g/v/namespaces/ns/things; "" for anything else.
func collection(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) == 3 && parts[0] == "api", len(parts) == 4 && parts[0] == "apis":
		return parts[len(parts)-1]
	case len(parts) == 5 && parts[0] == "api" && parts[2] == "namespaces", len(parts) == 6 && parts[0] == "apis" && parts[3] == "namespaces":
		return parts[len(parts)-1]
	}
	return ""
}

func (p *FaultProxy) serve(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
	res := collection(r.URL.Path)
	q := r.URL.Query()
	isWatch := q.Get("watch") == "true" || q.Get("watch") == "1"
	if res == "" || r.Method != http.MethodGet {
		rp.ServeHTTP(w, r)
		return
	}
	if !isWatch || q.Get("sendInitialEvents") == "true" {
		p.mu.Lock()
		p.lists[res]++
		delete(p.expired, res) // the client re-listed: its next watch starts from a fresh version
		p.mu.Unlock()
		if !isWatch {
			rp.ServeHTTP(w, r)
			return
		}
	} else {
		p.mu.Lock()
		mode := p.expired[res]
		if mode != 0 {
			p.gone[res]++
		}
		p.mu.Unlock()
		if mode != 0 {
			writeGone(w, mode, q.Get("resourceVersion"))
			return
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	ow := &openWatch{resource: res, cancel: cancel}
	p.mu.Lock()
	p.watches[ow] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.watches, ow)
		p.mu.Unlock()
		cancel()
	}()
	rp.ServeHTTP(w, r.WithContext(ctx))
}

func writeGone(w http.ResponseWriter, mode GoneMode, rv string) {
	status := fmt.Sprintf(`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: %s (compacted by the test proxy)","reason":"Expired","code":410}`, rv)
	w.Header().Set("Content-Type", "application/json")
	if mode == GoneStatus {
		w.WriteHeader(http.StatusGone)
		_, _ = w.Write([]byte(status))
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprintf(w, `{"type":"ERROR","object":%s}`+"\n", status)
}

// DropWatches cuts every open watch of resource ("" for all) and returns
// how many it cut; clients resume from their last resource version.
func (p *FaultProxy) DropWatches(resource string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for ow := range p.watches {
		if resource == "" || ow.resource == resource {
			ow.cancel()
			delete(p.watches, ow)
			n++
		}
	}
	return n
}

// Expire cuts resource's watches and answers every watch that resumes from
// a resource version with 410 Gone (in mode) until the client lists again.
func (p *FaultProxy) Expire(resource string, mode GoneMode) int {
	p.mu.Lock()
	p.expired[resource] = mode
	p.mu.Unlock()
	return p.DropWatches(resource)
}

// Lists counts resource's list requests (including watch-lists that send
// initial events), the first one included.
func (p *FaultProxy) Lists(resource string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lists[resource]
}

// Gone counts the 410 answers given for resource.
func (p *FaultProxy) Gone(resource string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gone[resource]
}
