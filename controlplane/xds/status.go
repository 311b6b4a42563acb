package xds

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/translate"
)

// Status is what the server serves and what each connected proxy has
// accepted or rejected. It marshals to the JSON of GET /debug/syncz.
type Status struct {
	// Ready is true once a first good mesh has been published.
	Ready bool `json:"ready"`
	// Version counts the meshes accepted so far ("0" before the first).
	Version string `json:"version"`
	// ConfigError is why the last mesh was rejected (nil when it was accepted).
	ConfigError []*model.FieldError `json:"configError,omitempty"`
	Groups      []GroupStatus       `json:"groups"`
	// Nodes has one entry per open xDS stream, sorted by node id then stream.
	Nodes []NodeStatus `json:"nodes"`
}

// GroupStatus describes one proxy group (proxies that share a configuration).
type GroupStatus struct {
	Key       string              `json:"key"`
	Kind      translate.ProxyKind `json:"kind"`
	Namespace string              `json:"namespace,omitempty"`
	Labels    map[string]string   `json:"labels,omitempty"`
	// Streams is the number of xDS streams open for this group.
	Streams int `json:"streams"`
	// Resources counts the resources served, by type (LDS, RDS, CDS, EDS, SDS).
	Resources map[string]int `json:"resources"`
	// Error is why the group has no configuration, if it has none.
	Error string `json:"error,omitempty"`
}

// NodeStatus is one xDS stream of one proxy.
type NodeStatus struct {
	ID        string              `json:"id"`
	Stream    int64               `json:"stream"`
	Kind      translate.ProxyKind `json:"kind"`
	Namespace string              `json:"namespace,omitempty"`
	ClusterID string              `json:"clusterID,omitempty"`
	Group     string              `json:"group"`
	// Protocol is "sotw" or "delta".
	Protocol string `json:"protocol"`
	// Service is "ADS", or the type (LDS, CDS...) of a per-type stream.
	Service        string    `json:"service"`
	ConnectedSince time.Time `json:"connectedSince"`
	// Types by short name (LDS, RDS, CDS, EDS, SDS, or the type URL).
	Types map[string]TypeStatus `json:"types"`
}

// TypeStatus is the exchange of one resource type on one stream.
type TypeStatus struct {
	SentVersion  string      `json:"sentVersion,omitempty"`
	SentNonce    string      `json:"sentNonce,omitempty"`
	AckedVersion string      `json:"ackedVersion,omitempty"`
	AckedNonce   string      `json:"ackedNonce,omitempty"`
	Acks         uint64      `json:"acks"`
	Nacks        uint64      `json:"nacks"`
	LastNack     *NackStatus `json:"lastNack,omitempty"`
}

// NackStatus is a response the proxy rejected, with Envoy's error_detail.
type NackStatus struct {
	Version string    `json:"version"`
	Nonce   string    `json:"nonce"`
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
}

// SynczHandler serves Status as JSON (GET /debug/syncz).
func (s *Server) SynczHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s.Status())
	})
}
