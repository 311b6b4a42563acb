package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestPrintClusters(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/clusters", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"clusters":[
 {"id":"east","config":true,"state":"Synced","since":"` + time.Now().Format(time.RFC3339) + `","kinds":{"Service":"synced","Secret":"secrets is forbidden"},"objects":{"Service":3,"EndpointSlice":4},"resyncs":0},
 {"id":"west\u001b[2J","config":false,"state":"Dropped","since":"` + time.Now().Format(time.RFC3339) + `","error":"dial tcp: connection refused","kinds":{"Service":"synced"},"objects":{},"resyncs":2}
],"statusWriter":true,"leftOut":[{"source":{"file":"kube://east","kind":"VirtualService","namespace":"shop","name":"broken"},"field":"spec.http[0]","message":"unknown host"}]}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var out bytes.Buffer
	if err := printClusters(&out, srv.Client(), strings.TrimPrefix(srv.URL, "http://")); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"CLUSTER", "east", "Synced", "7", "Secret: secrets is forbidden", "Dropped", "connection refused",
		"LEFT OUT kube://east: VirtualService shop/broken: spec.http[0]: unknown host"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "\x1b") {
		t.Errorf("escape sequence from the network reached the terminal:\n%q", got)
	}

	// Without clusters (no --kubeconfig) nothing is printed.
	out.Reset()
	empty := httptest.NewServer(http.NotFoundHandler())
	defer empty.Close()
	if err := printClusters(&out, empty.Client(), strings.TrimPrefix(empty.URL, "http://")); err != nil || out.Len() != 0 {
		t.Fatalf("no clusters: %v %q", err, out.String())
	}
}
