package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/rosenmesh/rosen/console"
	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/runner"
	"github.com/rosenmesh/rosen/controlplane/source/kube"
)

// kubeFlags are `rosen serve`'s Kubernetes flags. Without --kubeconfig
// Rosen reads only its config folder, as before.
type kubeFlags struct {
	kubeconfigs    []string
	clusterID      string
	configFrom     string
	grace          time.Duration
	probe          time.Duration
	debounce       time.Duration
	epDebounce     time.Duration
	selector       string
	remoteSecrets  string
	status         bool
	leaseNamespace string
	identity       string
}

var kubeOpts = &kubeFlags{}

func init() {
	// The source itself is wired in serve.go (it feeds the pipeline);
	// this module only adds the flags.
	registerServeModule(serveModule{name: "kube", flags: kubeOpts.register, start: noStart})
}

func (f *kubeFlags) register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&f.kubeconfigs, "kubeconfig", nil, "clusters to read (repeat, or comma-separate; the first is the primary): a kubeconfig file, ID=FILE, a folder of kubeconfigs, or in-cluster [ROSEN_KUBECONFIG]")
	fs.StringVar(&f.clusterID, "kube-cluster-id", "Kubernetes", "cluster id of --kubeconfig in-cluster [ROSEN_KUBE_CLUSTER_ID]")
	fs.StringVar(&f.configFrom, "kube-config-from", kube.ConfigFromPrimary, "read Istio and Rosen config from the primary cluster or from all [ROSEN_KUBE_CONFIG_FROM]")
	fs.DurationVar(&f.grace, "kube-grace", kube.DefaultGrace, "how long an unreachable cluster keeps its endpoints [ROSEN_KUBE_GRACE]")
	fs.DurationVar(&f.probe, "kube-probe", kube.DefaultProbe, "how often each API server's /readyz is checked [ROSEN_KUBE_PROBE]")
	fs.DurationVar(&f.debounce, "kube-debounce", kube.DefaultDebounce, "quiet time after a cluster change before it is applied (at most 10x later under constant change) [ROSEN_KUBE_DEBOUNCE]")
	fs.DurationVar(&f.epDebounce, "kube-endpoint-debounce", kube.DefaultEndpointDebounce, "quiet time after EndpointSlice and Pod changes alone (the endpoint path; at most --kube-debounce) [ROSEN_KUBE_ENDPOINT_DEBOUNCE]")
	fs.StringVar(&f.selector, "kube-discovery-selector", "", "label selector of the namespaces to read (Istio's discoverySelectors); empty: all [ROSEN_KUBE_DISCOVERY_SELECTOR]")
	fs.StringVar(&f.remoteSecrets, "kube-remote-secrets", "", "namespace of the primary cluster whose Secrets labelled istio/multiCluster=true hold kubeconfigs of more clusters (Istio's remote secrets); empty: none [ROSEN_KUBE_REMOTE_SECRETS]")
	fs.BoolVar(&f.status, "kube-status", true, "write status back to the Istio and Rosen objects Rosen leaves out (one replica, holding a Lease) [ROSEN_KUBE_STATUS]")
	fs.StringVar(&f.leaseNamespace, "kube-lease-namespace", envOr("POD_NAMESPACE", "rosen-system"), "namespace of the status-writer Lease in the primary cluster [ROSEN_KUBE_LEASE_NAMESPACE]")
	fs.StringVar(&f.identity, "kube-identity", envOr("POD_NAME", hostname()), "this replica's name in the Lease [ROSEN_KUBE_IDENTITY]")
}

func noStart(context.Context, *moduleEnv) (func(context.Context) error, error) { return nil, nil }

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "rosen"
	}
	return h
}

func (f *kubeFlags) enabled() bool { return len(f.kubeconfigs) > 0 }

// kubeWiring is what the Kubernetes source adds to `rosen serve`.
type kubeWiring struct {
	src    *kube.Source
	status *kube.StatusWriter

	mu      sync.Mutex
	leftOut []*model.FieldError // objects the last build left out
}

// newKubeWiring builds the Kubernetes source (nil without --kubeconfig).
func (f *kubeFlags) newKubeWiring(log *zap.Logger, reg prometheus.Registerer) (*kubeWiring, error) {
	if !f.enabled() {
		return nil, nil
	}
	clusters, err := kube.LoadKubeconfigs(f.kubeconfigs, f.clusterID)
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig: %w", err)
	}
	var sel labels.Selector
	if f.selector != "" {
		if sel, err = labels.Parse(f.selector); err != nil {
			return nil, fmt.Errorf("--kube-discovery-selector: %w", err)
		}
	}
	src, err := kube.New(kube.Options{
		Clusters: clusters, ConfigFrom: f.configFrom, Grace: f.grace, Probe: f.probe,
		Debounce: f.debounce, MaxDelay: 10 * f.debounce, EndpointDebounce: f.epDebounce, NamespaceSelector: sel, RemoteSecretNamespace: f.remoteSecrets,
		Log: log, Registry: reg,
	})
	if err != nil {
		return nil, err
	}
	w := &kubeWiring{src: src}
	if f.status {
		if w.status, err = src.NewStatusWriter(f.leaseNamespace, "rosen-status", f.identity, 15*time.Second); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// attach isolates cluster objects in the pipeline (one bad object is left
// out, not the whole change), feeds the status writer, and serves
// /debug/clusters.
func (w *kubeWiring) attach(pipeline *runner.Runner, httpServer *console.Server) {
	pipeline.SetIsolation(runner.Isolation{
		Isolatable: func(o *config.Object) bool { return kube.FromCluster(o) },
		Report: func(errs []*model.FieldError) {
			w.mu.Lock()
			w.leftOut = errs
			w.mu.Unlock()
			if w.status != nil {
				w.status.Report(errs)
			}
		},
	})
	httpServer.Mount("/debug/clusters", http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		w.mu.Lock()
		left := append(append([]*model.FieldError{}, w.leftOut...), w.src.Rejected()...)
		w.mu.Unlock()
		writeJSON(rw, map[string]any{
			"clusters":     w.src.Clusters(),
			"statusWriter": w.status != nil && w.status.Leader(),
			"leftOut":      left,
		})
	}))
}

// run runs the status writer (the source itself runs inside the pipeline).
func (w *kubeWiring) run(ctx context.Context) error {
	if w.status == nil {
		return nil
	}
	return w.status.Run(ctx)
}
