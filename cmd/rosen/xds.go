package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rosenmesh/rosen/controlplane/xds/dump"
)

func newXDSCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "xds",
		Short: "Talk xDS to a Rosen server as a proxy would",
	}
	cmd.AddCommand(newXDSDumpCommand())
	return cmd
}

func newXDSDumpCommand() *cobra.Command {
	var (
		server    string
		node      string
		labels    string
		namespace string
		proxyless bool
		delta     bool
		timeout   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "dump",
		Short: "Connect as a node and print what it receives, as Envoy's config_dump JSON",
		Example: `  rosen xds dump --node router~10.0.0.1~gw.istio-system~istio-system.svc.cluster.local --labels istio=ingressgateway
  rosen xds dump --node my-grpc-client --delta`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("server") {
				if v := os.Getenv("ROSEN_GRPC_ADDR"); v != "" {
					server = v
				}
			}
			server = dialAddr(server)
			lbls, err := parseLabels(labels)
			if err != nil {
				return err
			}
			if node == "" {
				return fmt.Errorf("--node is required")
			}
			n := dump.Node(node, lbls, namespace, proxyless)
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			cd, dumpErr := dump.Dump(ctx, server, n, delta, timeout)
			if cd == nil {
				return dumpErr
			}
			if st, ok := status.FromError(dumpErr); dumpErr != nil && ok && st.Code() != codes.DeadlineExceeded {
				// The server refused the node (a bad id, a group limit):
				// an empty dump on stdout would read as "no configuration".
				return dumpErr
			}
			// On a timeout, print what arrived, then report what is missing.
			out, err := dump.JSON(cd)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintln(cmd.OutOrStdout(), string(out)); err != nil {
				return err
			}
			return dumpErr
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&server, "server", "127.0.0.1:15010", "Rosen's gRPC address [ROSEN_GRPC_ADDR]")
	fs.StringVar(&node, "node", "", "xDS node id (router~…, sidecar~…, or a plain id for a proxyless gRPC client)")
	fs.StringVar(&labels, "labels", "", "node metadata LABELS as k=v,k=v (matched by Gateway selectors)")
	fs.StringVar(&namespace, "namespace", "", "node metadata NAMESPACE (defaults to the namespace in the node id)")
	fs.BoolVar(&proxyless, "proxyless", false, "send GENERATOR=grpc, as Istio's proxyless bootstrap does")
	fs.BoolVar(&delta, "delta", false, "use incremental (delta) xDS instead of state of the world")
	fs.DurationVar(&timeout, "timeout", 15*time.Second, "give up after this long")
	return cmd
}

func parseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--labels: %q is not k=v", kv)
		}
		out[k] = v
	}
	return out, nil
}
