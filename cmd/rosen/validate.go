package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/istio"
	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/validate"
	"github.com/rosenmesh/rosen/examples"
)

func newValidateCommand(_ *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "validate [DIR...]",
		Short: "Check configuration folders exactly as serve would; exit 1 with every error on failure",
		Long: `Check configuration folders (or files) exactly as serve would: parse, build
the mesh, translate for every gateway and proxy kind, and validate every
generated Envoy resource. Folders may be given as arguments or comma-separated
(as serve's --config); with none, ROSEN_CONFIG or examples/bookinfo.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			defaulted := len(args) == 0 && os.Getenv("ROSEN_CONFIG") == ""
			args = splitDirs(args)
			label := strings.Join(args, ",")
			if _, err := os.Stat(args[0]); defaulted && errors.Is(err, os.ErrNotExist) {
				// As serve does outside the repo: the example built into the binary.
				dir, err := os.MkdirTemp("", "rosen-validate-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				if err := examples.WriteBookinfo(filepath.Join(dir, "bookinfo")); err != nil {
					return err
				}
				fmt.Fprintln(cmd.ErrOrStderr(), "examples/bookinfo not found here; checking the built-in example")
				args, label = []string{filepath.Join(dir, "bookinfo")}, "built-in examples/bookinfo"
			}
			out := cmd.OutOrStdout()
			mesh, skipped, err := checkConfig(args)
			if err != nil {
				errs := model.AsFieldErrors(err)
				for _, fe := range errs {
					fmt.Fprintln(cmd.ErrOrStderr(), fe.Error())
				}
				return &exitError{code: 1, err: fmt.Errorf("%d error(s) in %v", len(errs), args)}
			}
			subsets := 0
			for _, svc := range mesh.Services {
				subsets += len(svc.Subsets)
			}
			fmt.Fprintf(out, "ok: %s: %d service(s), %d subset(s), %d gateway(s), %d virtual service(s), %d secret(s)\n",
				label, len(mesh.Services), subsets, len(mesh.Gateways), len(mesh.VirtualServices), len(mesh.Secrets))
			for _, o := range skipped {
				fmt.Fprintf(out, "skipped %s: %s %s/%s (nothing for the mesh to read)\n", o.File, o.Kind, o.Namespace, o.Name)
			}
			return nil
		},
	}
}

// checkConfig runs the whole gate: parse, build the model, translate for every
// gateway and proxy kind, and validate every generated resource.
func checkConfig(dirs []string) (*model.Mesh, []*config.Object, error) {
	set, err := config.LoadDirs(dirs...)
	if err != nil {
		return nil, nil, err
	}
	mesh, err := istio.Build(set)
	if err != nil {
		return nil, nil, set.Locate(err)
	}
	if mesh == nil {
		return nil, nil, errors.New("no configuration")
	}
	if err := validate.Mesh(mesh); err != nil {
		return nil, nil, err
	}
	return mesh, set.Skipped, nil
}

// splitDirs accepts "a b" and "a,b" alike; no argument means serve's default.
func splitDirs(args []string) []string {
	var out []string
	for _, a := range args {
		for _, d := range strings.Split(a, ",") {
			if d = strings.TrimSpace(d); d != "" {
				out = append(out, d)
			}
		}
	}
	if len(out) == 0 {
		if v := os.Getenv("ROSEN_CONFIG"); v != "" {
			return splitDirs([]string{v})
		}
		out = []string{"examples/bookinfo"}
	}
	return out
}
