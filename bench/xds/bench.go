package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// bench runs the measured phases against one started rosen.
type bench struct {
	o      options
	r      *result
	spec   meshSpec
	cfgDir string
	proc   *rosenProc
	fleet  *fleet
}

// rssSettle is how long the steady-state RSS is watched (its minimum kept).
const rssSettle = 10 * time.Second

func (b *bench) measure(ctx context.Context) error {
	pid := b.proc.pid()
	// (d) RSS before any proxy connects, once the config is served and idle.
	sleep(ctx, time.Second)
	if err := b.proc.collect(); err != nil {
		return err
	}
	sleep(ctx, time.Second)
	before, err := rssBytes(pid)
	if err != nil {
		return err
	}
	b.r.RSS.Before = before
	b.r.RSS.HeapBefore, _ = b.proc.metric("go_memstats_heap_inuse_bytes")
	b.r.RSS.GoroutinesBefore, _ = b.proc.metric("go_goroutines")

	// (a) initial connect.
	fctx, fcancel := context.WithCancel(ctx)
	defer fcancel()
	b.fleet = newFleet(fleetConfig{
		addr: b.proc.grpcAddr, kind: b.o.kind, delta: b.o.mode == "delta", proxies: b.o.proxies, perConn: b.o.perConn,
	})
	defer func() { fcancel(); b.fleet.close() }()
	cpu0, _ := cpuSeconds(pid)
	if err := b.fleet.connect(fctx); err != nil {
		return err
	}
	cctx, ccancel := context.WithTimeout(ctx, b.o.connectTimeout)
	select {
	case <-b.fleet.allSynced:
	case <-cctx.Done():
	}
	ccancel()
	cpu1, _ := cpuSeconds(pid)
	lat, missing := syncLatencies(b.fleet)
	b.r.Initial.PerProxy = newDist(lat, missing)
	b.r.Initial.CPUSeconds = cpu1 - cpu0
	if missing == 0 {
		b.r.Initial.AllSyncedSeconds = b.r.Initial.PerProxy.Max / 1000
	}
	b.r.Initial.Responses = countsMap([nTypes]int64{}, b.fleet.counts())
	b.r.Initial.ResourceBytes = b.fleet.bytes.Load()
	b.noteErrors()
	if missing > 0 {
		return fmt.Errorf("%d of %d proxies did not sync within %s", missing, b.o.proxies, b.o.connectTimeout)
	}

	// (d) RSS with every proxy connected and synced: the lowest reading
	// over rssSettle after a collection. The initial sync pushes ~1 GB
	// through rosen; the memory of that burst is freed at once but given
	// back to the OS only by the runtime's background scavenger, so one
	// early reading swings by 3× between runs of the same binary.
	sleep(ctx, 2*time.Second)
	if err := b.proc.collect(); err != nil {
		return err
	}
	var after int64
	for i := 0; i < int(rssSettle/time.Second) && ctx.Err() == nil; i++ {
		sleep(ctx, time.Second)
		rss, err := rssBytes(pid)
		if err != nil {
			return err
		}
		if after == 0 || rss < after {
			after = rss
		}
	}
	b.r.RSS.After = after
	b.r.RSS.PerProxy = (after - before) / int64(b.o.proxies)
	b.r.RSS.HeapAfter, _ = b.proc.metric("go_memstats_heap_inuse_bytes")
	b.r.RSS.GoroutinesAfter, _ = b.proc.metric("go_goroutines")
	b.r.RSS.HeapPerProxy = (b.r.RSS.HeapAfter - b.r.RSS.HeapBefore) / float64(b.o.proxies)
	if b.o.heapProfile != "" {
		if err := b.proc.saveHeapProfile(b.o.heapProfile); err != nil {
			return err
		}
	}
	if err := b.checkTargets(); err != nil {
		return err
	}

	// (b) add one service, R times.
	b.quiet(ctx, b.o.changeTimeout)
	if b.o.cpuProfile != "" {
		done := make(chan error, 1)
		go func() { done <- b.proc.saveCPUProfile(b.o.cpuProfile, b.o.cpuProfileFor) }()
		defer func() {
			if err := <-done; err != nil {
				fmt.Fprintln(os.Stderr, "xds bench:", err)
			}
		}()
	}
	var runs []changeRun
	var pooled []time.Duration
	var lost, completeLost int
	var complete []time.Duration
	serviceRepeats := b.o.repeats
	if b.o.serviceRepeats >= 0 {
		serviceRepeats = b.o.serviceRepeats
	}
	for i := 0; i < serviceRepeats && ctx.Err() == nil; i++ {
		idx := b.o.services + i
		name := serviceName(idx)
		p := newProbe(b.o.proxies, typeURLs[tCDS], clusterName(name, "v1"), "")
		// Complete: the new cluster's endpoints and the route to it.
		eds := newProbe(b.o.proxies, typeURLs[tEDS], clusterName(name, "v1"), endpointAddr(idx, "v1"))
		rds := newProbe(b.o.proxies, typeURLs[tRDS], "http.8080", name+".bench.example.com")
		if b.o.kind == kindProxyless {
			rds = newProbe(b.o.proxies, typeURLs[tRDS], serviceHost(name)+":9080", "")
		}
		path := filepath.Join(b.cfgDir, fmt.Sprintf("added-%03d.yaml", i))
		run, err := b.change(ctx, probes{p, eds, rds}, fmt.Sprintf("add service %s", name), func() error {
			return writeAtomic(path, addedServiceYAML(b.o.kind, name, idx))
		})
		if err != nil {
			return err
		}
		l, m := p.latencies()
		pooled, lost = append(pooled, l...), lost+m
		l, m = completeLatencies(probes{p, eds, rds})
		complete, completeLost = append(complete, l...), completeLost+m
		runs = append(runs, run)
	}
	b.r.ConfigChange = summarise(runs, pooled, lost)
	cd := newDist(complete, completeLost)
	b.r.ConfigChange.Complete = &cd
	b.r.ConfigChange.WindowSeconds = b.o.settle.Seconds()

	// (c) edit one EndpointSlice address, R times (a different service each time).
	runs, pooled, lost = nil, nil, 0
	overrides := map[int]string{}
	var nonEDS int64
	for i := 0; i < b.o.repeats && ctx.Err() == nil; i++ {
		svc := i % b.o.services
		addr := fmt.Sprintf("127.3.0.%d", i+1)
		overrides[svc] = addr
		f := b.spec.fileOf(svc)
		data := b.spec.fileYAML(f, overrides)
		p := newProbe(b.o.proxies, typeURLs[tEDS], clusterName(serviceName(svc), "v1"), addr)
		run, err := b.change(ctx, probes{p}, fmt.Sprintf("endpoint %s v1 → %s", serviceName(svc), addr), func() error {
			return writeAtomic(filepath.Join(b.cfgDir, fileName(f)), data)
		})
		if err != nil {
			return err
		}
		for t, n := range run.Responses {
			if t != typeNames[tEDS] {
				nonEDS += n
			}
		}
		l, m := p.latencies()
		pooled, lost = append(pooled, l...), lost+m
		runs = append(runs, run)
	}
	b.r.EndpointChange = summarise(runs, pooled, lost)
	b.r.EndpointChange.NonEDSPushes = nonEDS
	b.r.EndpointChange.WindowSeconds = b.o.settle.Seconds()
	b.noteErrors()
	if lost > 0 || b.r.ConfigChange.All.Missing > 0 {
		return fmt.Errorf("some proxies never received a change (see missing)")
	}
	return nil
}

// change applies one edit and waits until every proxy has ACKed it, then
// until the fleet has received nothing for the settle time, counting the
// responses and rosen's CPU over the whole window.
// The first probe gives the measured latency; the change lasts until every
// probe is satisfied (Complete is the slowest proxy's last probe).
func (b *bench) change(ctx context.Context, ps probes, what string, edit func() error) (changeRun, error) {
	pid := b.proc.pid()
	runtime.GC() // keep the client's own collection out of the window
	counts0 := b.fleet.counts()
	pushSum0, _ := b.proc.metric("rosen_xds_push_delay_seconds_sum")
	pushN0, _ := b.proc.metric("rosen_xds_push_delay_seconds_count")
	cpu0, _ := cpuSeconds(pid)
	start := time.Now()
	for _, p := range ps {
		p.start = start
	}
	b.fleet.probes.Store(&ps)
	b.fleet.firstResp.Store(0)
	if err := edit(); err != nil {
		return changeRun{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, b.o.changeTimeout)
	for _, p := range ps {
		select {
		case <-p.all:
		case <-wctx.Done():
		}
	}
	cancel()
	b.quiet(ctx, b.o.changeTimeout)
	cpu1, _ := cpuSeconds(pid)
	b.fleet.probes.Store(nil)
	p := ps[0]
	lat, missing := p.latencies()
	run := changeRun{
		What: what, Latency: newDist(lat, missing), CPUSeconds: cpu1 - cpu0,
		Responses: countsMap(counts0, b.fleet.counts()),
	}
	if len(ps) > 1 {
		run.Complete = completeDist(ps)
	}
	if last := time.Unix(0, b.fleet.lastResp.Load()); last.After(p.start) {
		run.LastResponseMS = ms(last.Sub(p.start))
	}
	pushSum1, err1 := b.proc.metric("rosen_xds_push_delay_seconds_sum")
	pushN1, err2 := b.proc.metric("rosen_xds_push_delay_seconds_count")
	if err1 == nil && err2 == nil && pushN1 > pushN0 {
		run.PushDelayMeanMS = 1000 * (pushSum1 - pushSum0) / (pushN1 - pushN0)
	}
	if first := b.fleet.firstResp.Load(); first != 0 {
		run.FirstResponseMS = ms(time.Unix(0, first).Sub(p.start))
	}
	return run, nil
}

// quiet waits until no proxy has received a response for the settle time
// (or the deadline passes), so that one change's pushes (LDS and RDS after
// CDS, say) are over before the next change is measured.
func (b *bench) quiet(ctx context.Context, deadline time.Duration) {
	end := time.Now().Add(deadline)
	for ctx.Err() == nil && time.Now().Before(end) {
		last := time.Unix(0, b.fleet.lastResp.Load())
		if idle := time.Since(last); idle >= b.o.settle {
			return
		} else {
			sleep(ctx, b.o.settle-idle)
		}
	}
}

// checkTargets makes sure the resources the probes look for exist, so that a
// naming mismatch fails fast instead of timing out.
func (b *bench) checkTargets() error {
	s := b.fleet.streams[0]
	want := clusterName(serviceName(0), "v1")
	if _, ok := s.sets[tCDS].Load().items[want]; !ok {
		return fmt.Errorf("proxies hold no cluster %q (CDS has %d clusters, e.g. %v)", want, len(s.sets[tCDS].Load().items), sample(s.sets[tCDS].Load()))
	}
	if _, ok := s.sets[tEDS].Load().items[want]; !ok {
		return fmt.Errorf("proxies hold no endpoints %q (EDS has %d, e.g. %v)", want, len(s.sets[tEDS].Load().items), sample(s.sets[tEDS].Load()))
	}
	return nil
}

func sample(s *rset) []string {
	var out []string
	for n := range s.items {
		if out = append(out, n); len(out) == 3 {
			break
		}
	}
	return out
}

func (b *bench) noteErrors() {
	n, err := b.fleet.errors()
	b.r.StreamErrors = n
	if err != nil {
		b.r.FirstError = err.Error()
	}
}

// completeDist is, per proxy, the latest of its probes' latencies.
func completeDist(ps probes) *dist {
	d := newDist(completeLatencies(ps))
	return &d
}

func completeLatencies(ps probes) (lat []time.Duration, missing int) {
	for i := range ps[0].done {
		var worst int64
		for _, p := range ps {
			d := p.done[i].Load()
			if d == 0 {
				worst = 0
				break
			}
			worst = max(worst, d)
		}
		if worst == 0 {
			missing++
			continue
		}
		lat = append(lat, time.Duration(worst))
	}
	return lat, missing
}

func syncLatencies(f *fleet) (lat []time.Duration, missing int) {
	for i := range f.syncedAt {
		if d := f.syncedAt[i].Load(); d > 0 {
			lat = append(lat, time.Duration(d))
		} else {
			missing++
		}
	}
	return lat, missing
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
