package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/istio"
	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/validate"
)

func newValidateCommand(_ *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "validate DIR...",
		Short: "Check configuration folders exactly as serve would; exit 1 with every error on failure",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			mesh, err := checkConfig(args)
			if err != nil {
				errs := model.AsFieldErrors(err)
				for _, fe := range errs {
					fmt.Fprintln(cmd.ErrOrStderr(), fe.Error())
				}
				return &exitError{code: 1, err: fmt.Errorf("%d error(s) in %v", len(errs), args)}
			}
			fmt.Fprintf(out, "ok: %d services, %d gateways, %d virtual services\n",
				len(mesh.Services), len(mesh.Gateways), len(mesh.VirtualServices))
			return nil
		},
	}
}

// checkConfig runs the whole gate: parse, build the model, translate for every
// gateway and proxy kind, and validate every generated resource.
func checkConfig(dirs []string) (*model.Mesh, error) {
	set, err := config.LoadDirs(dirs...)
	if err != nil {
		return nil, err
	}
	mesh, err := istio.Build(set)
	if err != nil {
		return nil, err
	}
	if mesh == nil {
		return nil, errors.New("no configuration")
	}
	if err := validate.Mesh(mesh); err != nil {
		return nil, err
	}
	return mesh, nil
}
