package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// dist is a latency distribution in milliseconds.
type dist struct {
	Count   int     `json:"count"`
	Missing int     `json:"missing"` // streams that never got there before the deadline
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted)) + 0.999999)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func newDist(lat []time.Duration, missing int) dist {
	s := slices.Clone(lat)
	slices.Sort(s)
	d := dist{Count: len(s), Missing: missing}
	if len(s) > 0 {
		d.P50, d.P99, d.Max = ms(percentile(s, 50)), ms(percentile(s, 99)), ms(s[len(s)-1])
	}
	return d
}

// changeRun is one measured change.
type changeRun struct {
	What       string           `json:"what"`
	Latency    dist             `json:"latency"`
	CPUSeconds float64          `json:"rosen_cpu_seconds"`
	Responses  map[string]int64 `json:"responses"` // responses the fleet received per type during the change
	// LastResponseMS is when the last response of the change (any type,
	// any proxy) arrived: full convergence, including LDS/RDS after CDS.
	LastResponseMS float64 `json:"last_response_ms"`
	// FirstResponseMS is when the first response of the change arrived at
	// any proxy: rosen's reaction (file watch, reload, translation, gate,
	// publish); the rest of the latency is the fan-out to the fleet.
	FirstResponseMS float64 `json:"first_response_ms"`
	// PushDelayMeanMS is rosen's own rosen_xds_push_delay_seconds over the
	// change: the mean time from publishing to sending, per stream.
	PushDelayMeanMS float64 `json:"push_delay_mean_ms,omitempty"`
	// Complete (new service only): per proxy, until it has ACKed the new
	// cluster, its endpoints and the route to it (gateway: the domain in
	// RDS http.8080; proxyless: the route config host:9080).
	Complete *dist `json:"complete,omitempty"`
}

type changeResult struct {
	Runs          []changeRun `json:"runs"`
	All           dist        `json:"all"` // every proxy's latency, pooled over the runs
	Complete      *dist       `json:"complete,omitempty"`
	CPUPerPush    float64     `json:"rosen_cpu_seconds_per_push"`
	NonEDSPushes  int64       `json:"non_eds_responses"` // endpoint change only
	WindowSeconds float64     `json:"settle_seconds"`    // the fleet was quiet this long before a change was closed
}

type result struct {
	Kind      string `json:"kind"`
	Mode      string `json:"mode"`
	Proxies   int    `json:"proxies"`
	Services  int    `json:"services"`
	PerConn   int    `json:"streams_per_connection"`
	Files     int    `json:"config_files"`
	Debounce  string `json:"debounce"`
	Repeats   int    `json:"repeats"`
	Rosen     string `json:"rosen_binary"`
	GoVersion string `json:"go_version"`
	NumCPU    int    `json:"num_cpu"`
	Load      string `json:"loadavg_before"`
	LoadAfter string `json:"loadavg_after"`
	Started   string `json:"started"`

	ValidateSeconds float64 `json:"validate_seconds"`
	ReadySeconds    float64 `json:"ready_seconds"` // rosen start → /readyz 200

	Initial struct {
		AllSyncedSeconds float64          `json:"all_synced_seconds"`
		PerProxy         dist             `json:"per_proxy"`
		Responses        map[string]int64 `json:"responses"`
		ResourceBytes    int64            `json:"resource_bytes"`
		CPUSeconds       float64          `json:"rosen_cpu_seconds"`
	} `json:"initial_connect"`

	RSS struct {
		Before   int64 `json:"before_bytes"`
		After    int64 `json:"after_bytes"`
		PerProxy int64 `json:"per_proxy_bytes"`
		// From rosen's /metrics: live heap and goroutines, before and after.
		HeapBefore       float64 `json:"heap_inuse_before_bytes"`
		HeapAfter        float64 `json:"heap_inuse_after_bytes"`
		HeapPerProxy     float64 `json:"heap_inuse_per_proxy_bytes"`
		GoroutinesBefore float64 `json:"goroutines_before"`
		GoroutinesAfter  float64 `json:"goroutines_after"`
	} `json:"rss"`

	ConfigChange   changeResult `json:"config_change"`
	EndpointChange changeResult `json:"endpoint_change"`

	ClientCPUSeconds float64  `json:"client_cpu_seconds"`
	StreamErrors     int      `json:"stream_errors"`
	FirstError       string   `json:"first_error,omitempty"`
	Notes            []string `json:"notes,omitempty"`
}

func countsMap(before, after [nTypes]int64) map[string]int64 {
	out := map[string]int64{}
	for i := range before {
		if d := after[i] - before[i]; d != 0 {
			out[typeNames[i]] = d
		}
	}
	return out
}

func summarise(runs []changeRun, pooled []time.Duration, missing int) changeResult {
	c := changeResult{Runs: runs, All: newDist(pooled, missing)}
	if len(runs) > 0 {
		var cpu float64
		for _, r := range runs {
			cpu += r.CPUSeconds
		}
		c.CPUPerPush = cpu / float64(len(runs))
	}
	return c
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// printTable writes the human summary.
func (r *result) printTable(w io.Writer) {
	fmt.Fprintf(w, "\nrosen xDS benchmark: %d %s proxies (%s), %d services, debounce %s, %d streams/conn, %d CPUs, load %s → %s\n",
		r.Proxies, r.Kind, r.Mode, r.Services, r.Debounce, r.PerConn, r.NumCPU, r.Load, r.LoadAfter)
	line := strings.Repeat("-", 118)
	fmt.Fprintln(w, line)
	fmt.Fprintf(w, "%-42s %10s %10s %10s %8s %10s %10s %10s %10s\n", "measure", "p50", "p99", "max", "missing", "CPU s", "first resp", "last resp", "push mean")
	fmt.Fprintln(w, line)
	ip := r.Initial.PerProxy
	fmt.Fprintf(w, "%-42s %8.0fms %8.0fms %8.0fms %8d %10.2f\n", "initial connect → all resources ACKed", ip.P50, ip.P99, ip.Max, ip.Missing, r.Initial.CPUSeconds)
	for _, c := range []struct {
		name string
		res  changeResult
	}{{"new service → CDS with it ACKed", r.ConfigChange}, {"endpoint edit → EDS with it ACKed", r.EndpointChange}} {
		for i, run := range c.res.Runs {
			fmt.Fprintf(w, "  %-40s %8.1fms %8.1fms %8.1fms %8d %10.3f %8.0fms %8.0fms %8.0fms\n", fmt.Sprintf("%s #%d", c.name, i+1), run.Latency.P50, run.Latency.P99, run.Latency.Max, run.Latency.Missing, run.CPUSeconds, run.FirstResponseMS, run.LastResponseMS, run.PushDelayMeanMS)
		}
		if c.res.Complete != nil {
			cp := c.res.Complete
			fmt.Fprintf(w, "%-42s %8.1fms %8.1fms %8.1fms %8d\n", "  … + its EDS and route ACKed (all)", cp.P50, cp.P99, cp.Max, cp.Missing)
		}
		a := c.res.All
		fmt.Fprintf(w, "%-42s %8.1fms %8.1fms %8.1fms %8d %10.3f\n", c.name+" (all)", a.P50, a.P99, a.Max, a.Missing, c.res.CPUPerPush)
	}
	fmt.Fprintln(w, line)
	fmt.Fprintf(w, "all %d proxies synced after %.2fs (%s of resources received; responses %v)\n",
		r.Proxies, r.Initial.AllSyncedSeconds, mib(r.Initial.ResourceBytes), r.Initial.Responses)
	fmt.Fprintf(w, "RSS of rosen: %s before proxies, %s after → %.1f KiB per connected proxy\n",
		mib(r.RSS.Before), mib(r.RSS.After), float64(r.RSS.PerProxy)/1024)
	fmt.Fprintf(w, "Go heap in use (rosen /metrics): %s before, %s after → %.1f KiB per proxy; goroutines %.0f → %.0f\n",
		mib(int64(r.RSS.HeapBefore)), mib(int64(r.RSS.HeapAfter)), r.RSS.HeapPerProxy/1024, r.RSS.GoroutinesBefore, r.RSS.GoroutinesAfter)
	fmt.Fprintf(w, "non-EDS responses pushed during endpoint-only changes: %d\n", r.EndpointChange.NonEDSPushes)
	fmt.Fprintf(w, "load client CPU: %.1fs; stream errors: %d %s\n", r.ClientCPUSeconds, r.StreamErrors, r.FirstError)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func (r *result) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
