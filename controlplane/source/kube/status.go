package kube

import "time"

// ClusterStatus is one cluster's entry in /debug/clusters and `rosen status`.
type ClusterStatus struct {
	ID     string    `json:"id"`
	Origin string    `json:"origin"`
	Config bool      `json:"config"` // Istio and Rosen config is read from it
	State  State     `json:"state"`
	Since  time.Time `json:"since"`
	Error  string    `json:"error,omitempty"`
	// Kinds maps each kind to "synced", "listing", or why it cannot be read.
	Kinds map[string]string `json:"kinds"`
	// Objects counts what the cluster put in the last set, by kind.
	Objects map[string]int `json:"objects"`
	// Resyncs counts full re-lists after the cluster came back.
	Resyncs int `json:"resyncs"`
}

// Clusters reports every cluster's sync state, primary first.
func (s *Source) Clusters() []ClusterStatus {
	s.mu.Lock()
	counts := s.counts
	s.mu.Unlock()
	clusters := s.list()
	out := make([]ClusterStatus, 0, len(clusters))
	for _, c := range clusters {
		c.mu.Lock()
		st := ClusterStatus{
			ID: c.ref.id, Origin: c.origin, Config: c.readConfig,
			State: c.state, Since: c.since, Error: c.lastErr, Kinds: map[string]string{},
			Objects: map[string]int{}, Resyncs: c.resyncs,
		}
		ws := c.current
		if ws == nil {
			ws = c.pending
		}
		for _, k := range c.kinds {
			switch err := c.kindErr[k.Kind]; {
			case err != nil && unavailable(err):
				st.Kinds[k.Kind] = err.Error()
			case ws != nil && ws.informers[k.Kind] != nil && ws.informers[k.Kind].HasSynced():
				st.Kinds[k.Kind] = "synced"
			default:
				st.Kinds[k.Kind] = "listing"
			}
		}
		c.mu.Unlock()
		for k, n := range counts[c.ref.id] {
			st.Objects[k] = n
		}
		out = append(out, st)
	}
	return out
}
