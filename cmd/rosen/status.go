package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/rosenmesh/rosen/console"
	"github.com/rosenmesh/rosen/controlplane/model"
)

func newStatusCommand() *cobra.Command {
	var (
		httpAddr string
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the proxies connected to a running Rosen and what each ACKed or NACKed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("http-addr") {
				if v := os.Getenv("ROSEN_HTTP_ADDR"); v != "" {
					httpAddr = v
				}
			}
			addr := dialAddr(httpAddr)
			client := &http.Client{Timeout: 10 * time.Second}
			resp, err := client.Get("http://" + addr + "/debug/syncz")
			if err != nil {
				return fmt.Errorf("is rosen serve running? %w", err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET /debug/syncz: %s: %s", resp.Status, body)
			}
			if asJSON {
				_, err = cmd.OutOrStdout().Write(body)
				return err
			}
			if err := printStatus(cmd.OutOrStdout(), body); err != nil {
				return err
			}
			if err := printModuleErrors(cmd.OutOrStdout(), client, addr); err != nil {
				return err
			}
			return printClusters(cmd.OutOrStdout(), client, addr) // statusclusters.go
		},
	}
	cmd.Flags().StringVar(&httpAddr, "http-addr", "127.0.0.1:8080", "Rosen's HTTP address [ROSEN_HTTP_ADDR]")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the raw /debug/syncz JSON")
	return cmd
}

// syncz mirrors the parts of /debug/syncz that the table shows.
type syncz struct {
	Config struct {
		Accepted int                `json:"accepted"`
		Rejected int                `json:"rejected"`
		Errors   []model.FieldError `json:"errors"`
	} `json:"config"`
	XDS struct {
		Ready bool `json:"ready"`
		Nodes []struct {
			ID             string    `json:"id"`
			Kind           string    `json:"kind"`
			ConnectedSince time.Time `json:"connectedSince"`
			Types          map[string]struct {
				SentVersion  string `json:"sentVersion"`
				AckedVersion string `json:"ackedVersion"`
				LastNack     *struct {
					Version string `json:"version"`
					Message string `json:"message"`
				} `json:"lastNack"`
			} `json:"types"`
		} `json:"nodes"`
	} `json:"xds"`
}

func printStatus(w io.Writer, body []byte) error {
	var s syncz
	if err := json.Unmarshal(body, &s); err != nil {
		return fmt.Errorf("reading /debug/syncz: %w", err)
	}
	// The counts are since start; say what holds now, so that old
	// rejections do not read as a current failure.
	now := "the last change was accepted"
	switch {
	case !s.XDS.Ready:
		now = "NO good configuration yet: proxies get no answer"
	case len(s.Config.Errors) > 0:
		now = "the last change was REJECTED; the last good configuration is served"
	}
	fmt.Fprintf(w, "config: %d accepted, %d rejected since start; %s\n", s.Config.Accepted, s.Config.Rejected, now)
	for _, e := range s.Config.Errors {
		fmt.Fprintf(w, "  REJECTED %s\n", printable(e.Error()))
	}
	if len(s.XDS.Nodes) == 0 {
		fmt.Fprintln(w, "no proxies connected")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tKIND\tCONNECTED\tTYPE\tSENT\tACKED\tLAST NACK")
	for _, n := range s.XDS.Nodes {
		types := make([]string, 0, len(n.Types))
		for t := range n.Types {
			types = append(types, t)
		}
		sort.Strings(types)
		for i, t := range types {
			ts := n.Types[t]
			nack := "-"
			if ts.LastNack != nil {
				nack = ts.LastNack.Version + ": " + ts.LastNack.Message
			}
			id, kind, since := n.ID, n.Kind, time.Since(n.ConnectedSince).Round(time.Second).String()
			if i > 0 {
				id, kind, since = "", "", ""
			}
			short := t[strings.LastIndex(t, ".")+1:]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", printable(id), printable(kind), since, printable(short),
				printable(ts.SentVersion), printable(ts.AckedVersion), printable(nack))
		}
		if len(types) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t-\n", printable(n.ID), printable(n.Kind), time.Since(n.ConnectedSince).Round(time.Second))
		}
	}
	return tw.Flush()
}

// printModuleErrors adds the modules' refused loads (a policy that does not
// compile, a bad rate-limit config: "moduleErrors" of /debug/config-errors)
// to `rosen status`; it prints nothing when there are none.
func printModuleErrors(w io.Writer, client *http.Client, addr string) error {
	resp, err := client.Get("http://" + addr + "/debug/config-errors")
	if err != nil {
		return fmt.Errorf("GET /debug/config-errors: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /debug/config-errors: %s", resp.Status)
	}
	var doc struct {
		ModuleErrors []console.ModuleError `json:"moduleErrors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return fmt.Errorf("reading /debug/config-errors: %w", err)
	}
	for _, e := range doc.ModuleErrors {
		fmt.Fprintf(w, "%s: REJECTED %s (%s ago; in force: %s): %s\n", printable(e.Source), printable(e.Path),
			time.Since(e.Time).Round(time.Second), printable(e.InForce), printable(e.Message))
	}
	return nil
}

// dialAddr turns a listen address (":8080", "http://host:port/") into host:port to dial.
func dialAddr(addr string) string {
	addr = strings.TrimPrefix(strings.TrimPrefix(addr, "http://"), "https://")
	addr = strings.TrimSuffix(addr, "/")
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	if strings.HasPrefix(addr, "0.0.0.0:") {
		addr = "127.0.0.1" + strings.TrimPrefix(addr, "0.0.0.0")
	}
	return addr
}

// printable makes text from the network safe for a terminal: node ids and
// NACK messages come from proxies, and an escape sequence in them could
// forge table rows or clear the operator's screen. Long values are cut.
func printable(s string) string {
	const maxLen = 1000 // a config error names file, resource and field before its message
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxLen {
			b.WriteString("…")
			break
		}
		n++
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case unicode.IsControl(r) || r == utf8.RuneError || unicode.Is(unicode.Bidi_Control, r):
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
