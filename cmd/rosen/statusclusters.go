package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// clusterRow mirrors the parts of /debug/clusters that `rosen status` shows.
type clusterRow struct {
	ID      string            `json:"id"`
	Config  bool              `json:"config"`
	State   string            `json:"state"`
	Since   time.Time         `json:"since"`
	Error   string            `json:"error"`
	Kinds   map[string]string `json:"kinds"`
	Objects map[string]int    `json:"objects"`
	Resyncs int               `json:"resyncs"`
}

// printClusters adds each Kubernetes cluster's sync state to `rosen status`;
// it prints nothing when Rosen reads no cluster (/debug/clusters is absent).
func printClusters(w io.Writer, client *http.Client, addr string) error {
	resp, err := client.Get("http://" + addr + "/debug/clusters")
	if err != nil {
		return fmt.Errorf("GET /debug/clusters: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	var doc struct {
		Clusters     []clusterRow       `json:"clusters"`
		StatusWriter bool               `json:"statusWriter"`
		LeftOut      []model.FieldError `json:"leftOut"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return fmt.Errorf("reading /debug/clusters: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tCONFIG\tSTATE\tSINCE\tOBJECTS\tRESYNCS\tPROBLEMS")
	for _, c := range doc.Clusters {
		n := 0
		for _, v := range c.Objects {
			n += v
		}
		var problems []string
		if c.Error != "" {
			problems = append(problems, c.Error)
		}
		for _, k := range sortedKinds(c.Kinds) {
			if st := c.Kinds[k]; st != "synced" {
				problems = append(problems, k+": "+st)
			}
		}
		p := "-"
		if len(problems) > 0 {
			p = strings.Join(problems, "; ")
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%d\t%d\t%s\n", printable(c.ID), c.Config, c.State,
			time.Since(c.Since).Round(time.Second), n, c.Resyncs, printable(p))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, e := range doc.LeftOut {
		fmt.Fprintf(w, "  LEFT OUT %s\n", printable(e.Error()))
	}
	return nil
}

func sortedKinds(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
