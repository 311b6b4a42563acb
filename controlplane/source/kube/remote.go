package kube

import (
	"context"
	"crypto/sha256"
	"sort"
	"sync"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// LabelMultiCluster marks a Secret whose data holds kubeconfigs of remote
// clusters, one per key (the key is the cluster id), as Istio's
// `istioctl create-remote-secret` writes them.
const LabelMultiCluster = "istio/multiCluster"

// remoteCluster is a cluster added from a Secret.
type remoteCluster struct {
	c      *cluster
	hash   [32]byte // of its kubeconfig, to notice rotation
	cancel context.CancelFunc
}

// watchRemoteSecrets follows the primary cluster's remote secrets and adds,
// replaces or removes clusters as they change, without a restart.
func (s *Source) watchRemoteSecrets(ctx context.Context, wg *sync.WaitGroup) {
	primary := s.list()[0]
	lw := cache.NewFilteredListWatchFromClient(primary.cl.core, "secrets", s.opts.RemoteSecretNamespace, func(o *metav1.ListOptions) {
		o.LabelSelector = LabelMultiCluster + "=true"
	})
	inf := cache.NewSharedIndexInformer(lw, &corev1.Secret{}, 0, cache.Indexers{})
	resync := func() { s.syncRemote(ctx, wg, inf.GetStore()) }
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { resync() },
		UpdateFunc: func(any, any) { resync() },
		DeleteFunc: func(any) { resync() },
	})
	wg.Add(1)
	go func() { defer wg.Done(); inf.RunWithContext(ctx) }()
}

// remoteConfig is one kubeconfig found in a remote secret.
type remoteConfig struct {
	origin string
	data   []byte
}

// syncRemote makes the running remote clusters match the secrets.
func (s *Source) syncRemote(ctx context.Context, wg *sync.WaitGroup, store cache.Store) {
	want := map[string]remoteConfig{}
	for _, obj := range store.List() {
		sec, ok := obj.(*corev1.Secret)
		if !ok {
			continue
		}
		for id, data := range sec.Data {
			want[id] = remoteConfig{origin: "secret " + sec.Namespace + "/" + sec.Name, data: data}
		}
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	static := map[string]bool{}
	for _, c := range s.clusters {
		if _, remote := s.remote[c.ref.id]; !remote {
			static[c.ref.id] = true
		}
	}
	changed := false
	for id, r := range s.remote {
		if w, ok := want[id]; !ok || sha256.Sum256(w.data) != r.hash {
			s.log.Info("remote cluster removed or replaced", zap.String("cluster", id))
			r.cancel()
			s.removeLocked(r.c)
			delete(s.remote, id)
			changed = true
		}
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		w := want[id]
		if _, running := s.remote[id]; running {
			continue
		}
		if static[id] {
			s.log.Warn("remote secret names a cluster id given by --kubeconfig; ignored", zap.String("cluster", id), zap.String("origin", w.origin))
			continue
		}
		rc, err := clientcmd.RESTConfigFromKubeConfig(w.data)
		if err != nil {
			s.log.Error("remote secret holds no usable kubeconfig", zap.String("cluster", id), zap.String("origin", w.origin), zap.Error(err))
			continue
		}
		c, err := newCluster(ClusterConfig{ID: id, Origin: w.origin, REST: tune(rc)}, s.opts.ConfigFrom == ConfigFromAll, &s.opts, s.poke, s.pokeEndpoints)
		if err != nil {
			s.log.Error("remote cluster", zap.String("cluster", id), zap.Error(err))
			continue
		}
		cctx, cancel := context.WithCancel(ctx)
		r := &remoteCluster{c: c, hash: sha256.Sum256(w.data), cancel: cancel}
		s.remote[id] = r
		s.clusters = append(s.clusters, c)
		wg.Add(1)
		go func() { defer wg.Done(); c.run(cctx) }()
		s.log.Info("remote cluster added", zap.String("cluster", id), zap.String("origin", w.origin))
		changed = true
	}
	if changed {
		s.poke()
	}
}

// removeLocked drops c from the cluster list; s.cmu must be held.
func (s *Source) removeLocked(c *cluster) {
	c.mu.Lock()
	s.opts.metrics.state.WithLabelValues(c.ref.id, string(c.state)).Set(0)
	c.mu.Unlock()
	for i, x := range s.clusters {
		if x == c {
			s.clusters = append(s.clusters[:i:i], s.clusters[i+1:]...)
			return
		}
	}
}
