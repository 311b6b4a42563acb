package model

import "testing"

func hashMesh(t *testing.T, m *Mesh) [32]byte {
	t.Helper()
	h, err := StructureHash(m)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestStructureHashIgnoresOnlyEDSEndpoints(t *testing.T) {
	mk := func(staticAddr, dnsAddr string, port uint32, key string) *Mesh {
		return &Mesh{
			Services: []*Service{
				{Host: "a.default.svc.cluster.local", Resolution: ResolutionStatic, Ports: []ServicePort{{Number: port}},
					Endpoints: []Endpoint{{Address: staticAddr, Weight: 1, Healthy: true}}},
				{Host: "ext.example.com", Resolution: ResolutionDNS, Ports: []ServicePort{{Number: 443}},
					Endpoints: []Endpoint{{Address: dnsAddr, Weight: 1, Healthy: true}}},
			},
			Secrets: []*Secret{{Name: "cert", PrivateKey: []byte(key)}},
		}
	}
	base := hashMesh(t, mk("10.0.0.1", "a.example.com", 80, "k1"))
	if hashMesh(t, mk("10.0.0.2", "a.example.com", 80, "k1")) != base {
		t.Error("a STATIC endpoint change changed the structure hash")
	}
	for name, m := range map[string]*Mesh{
		"DNS endpoint (inlined in clusters)": mk("10.0.0.1", "b.example.com", 80, "k1"),
		"service port":                       mk("10.0.0.1", "a.example.com", 81, "k1"),
		"secret key material":                mk("10.0.0.1", "a.example.com", 80, "k2"),
	} {
		if hashMesh(t, m) == base {
			t.Errorf("%s changed but the structure hash did not", name)
		}
	}
	m := mk("10.0.0.1", "a.example.com", 80, "k1")
	hashMesh(t, m)
	if len(m.Services[0].Endpoints) != 1 {
		t.Error("StructureHash modified the mesh")
	}
	if _, err := StructureHash(nil); err == nil {
		t.Error("nil mesh hashed")
	}
}
