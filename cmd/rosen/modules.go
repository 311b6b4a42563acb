package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/rosenmesh/rosen/console"
	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/source/kube"
)

// A serveModule is a part of Rosen that `rosen serve` runs beside the xDS
// control plane: the data-path services (ext_authz, rate limits), the TCC
// coordinator, the CQRS engine. Each lives in its own file here and registers
// itself from init(), so modules never edit each other's wiring.
type serveModule struct {
	name string
	// flags adds the module's flags to `rosen serve` (may be nil).
	flags func(fs *pflag.FlagSet)
	// start builds the module, registers its gRPC services and HTTP routes,
	// and returns the function that runs it until ctx is done (may be nil).
	start func(ctx context.Context, env *moduleEnv) (run func(context.Context) error, err error)
}

// moduleEnv is what `rosen serve` hands every module.
type moduleEnv struct {
	Log      *zap.Logger
	Registry prometheus.Registerer
	GRPC     *grpc.Server    // Rosen's one gRPC port (:15010)
	HTTP     *console.Server // Rosen's one HTTP port (:8080); mount routes with HTTP.Mount
	DataDir  string          // --data
	Config   []string        // --config folders (modules may read their own kinds from them)
	// OnMesh registers a function called with every mesh the control plane
	// publishes, so modules follow the one config path instead of re-reading
	// the sources.
	OnMesh func(func(*model.Mesh))
	// Kube, with --kubeconfig, hands a module its own kinds read from the
	// clusters (CQRSRule, TCCPolicy; kube.ModuleHandler). Nil without.
	Kube kubeModules
}

// kubeModules is what modules use of the Kubernetes source (*kube.Source).
type kubeModules interface {
	HandleModuleKind(kind string, h kube.ModuleHandler) error
}

var serveModules []serveModule

func registerServeModule(m serveModule) { serveModules = append(serveModules, m) }

// extraCommands are top-level commands added by module files (policy, txn, cqrs).
var extraCommands []func(g *globalFlags) *cobra.Command

func registerCommand(f func(g *globalFlags) *cobra.Command) { extraCommands = append(extraCommands, f) }
