package xds

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// structureHash hashes everything in the mesh except the endpoints of
// services whose endpoints are served over EDS. Two meshes with the same hash
// differ at most in EDS endpoints, so only ClusterLoadAssignments need to be
// rebuilt. Endpoints of DNS services are kept: they are inlined in clusters.
func structureHash(m *model.Mesh) ([32]byte, error) {
	blank := *m
	blank.Services = make([]*model.Service, len(m.Services))
	for i, svc := range m.Services {
		c := *svc
		if c.Resolution != model.ResolutionDNS {
			c.Endpoints = nil
		}
		blank.Services[i] = &c
	}
	h := sha256.New()
	if err := json.NewEncoder(h).Encode(&blank); err != nil {
		return [32]byte{}, fmt.Errorf("xds: hashing mesh: %w", err)
	}
	// Key material is not part of the JSON form.
	for _, s := range m.Secrets {
		for _, b := range [][]byte{[]byte(s.Name), s.CertificateChain, s.PrivateKey, s.CACertificate} {
			fmt.Fprintf(h, "%d:", len(b))
			h.Write(b)
		}
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out, nil
}
