package translate

import (
	"slices"
	"strings"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// meshHosts indexes the hosts of the VirtualServices bound to the mesh
// gateway, so that finding the VirtualServices of a service is a map
// lookup (plus a scan of the wildcard hosts only) rather than a scan of
// every VirtualService for every service port. Built once per Translate
// call and passed along in index.
type meshHosts struct {
	vss       []*model.VirtualService
	exact     map[string][]int // lower-cased host → positions in vss
	wildcards []meshWildcard   // "*" and "*.example.com", lower-cased
}

type meshWildcard struct {
	pattern string
	vs      int
}

func newMeshHosts(m *model.Mesh) meshHosts {
	mh := meshHosts{exact: map[string][]int{}}
	for _, vs := range m.VirtualServices {
		if !contains(vs.Gateways, model.MeshGateway) {
			continue
		}
		i := len(mh.vss)
		mh.vss = append(mh.vss, vs)
		for _, h := range vs.Hosts {
			h = strings.ToLower(h)
			if strings.HasPrefix(h, "*") {
				mh.wildcards = append(mh.wildcards, meshWildcard{h, i})
			} else if list := mh.exact[h]; len(list) == 0 || list[len(list)-1] != i {
				mh.exact[h] = append(list, i)
			}
		}
	}
	return mh
}

// covering returns the mesh VirtualServices with a host covering host (as
// hostCovers), in the mesh's order, each once.
func (mh meshHosts) covering(host string) []*model.VirtualService {
	host = strings.ToLower(host)
	idx := mh.exact[host]
	if len(mh.wildcards) > 0 {
		idx = slices.Clone(idx)
		for _, w := range mh.wildcards {
			if hostCovers(w.pattern, host) {
				idx = append(idx, w.vs)
			}
		}
		slices.Sort(idx)
		idx = slices.Compact(idx)
	}
	out := make([]*model.VirtualService, len(idx))
	for k, i := range idx {
		out[k] = mh.vss[i]
	}
	return out
}
