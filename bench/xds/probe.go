package main

import (
	"slices"
	"sync/atomic"
	"time"
)

// probe waits for every stream to ACK a response after which it holds the
// named resource (and, for endpoints, the given address).
type probe struct {
	typeURL string
	name    string
	addr    string // when set, the resource must list this endpoint address (EDS) or domain (RDS)
	start   time.Time
	done    []atomic.Int64 // per stream: nanoseconds from start to the ACK; 0 = not yet
	left    atomic.Int64
	all     chan struct{}
}

func newProbe(streams int, typeURL, name, addr string) *probe {
	p := &probe{typeURL: typeURL, name: name, addr: addr, done: make([]atomic.Int64, streams), all: make(chan struct{})}
	p.left.Store(int64(streams))
	return p
}

// matches reports whether set s satisfies the probe.
func (p *probe) matches(s *rset) bool {
	it, ok := s.items[p.name]
	if !ok {
		return false
	}
	return p.addr == "" || slices.Contains(it.info.addrs, p.addr)
}

// record notes that stream i has ACKed at time now; the first record wins.
func (p *probe) record(i int, now time.Time) {
	d := now.Sub(p.start).Nanoseconds()
	if d <= 0 {
		d = 1
	}
	if p.done[i].CompareAndSwap(0, d) && p.left.Add(-1) == 0 {
		close(p.all)
	}
}

// probes is the set of probes a change waits for; streams check each.
type probes []*probe

// record checks every probe of url against the stream's new set.
func (ps probes) record(i int, url string, s *rset, now time.Time) {
	for _, p := range ps {
		if p.typeURL == url && p.matches(s) {
			p.record(i, now)
		}
	}
}

// latencies returns the recorded latencies and how many streams never got there.
func (p *probe) latencies() (lat []time.Duration, missing int) {
	for i := range p.done {
		if d := p.done[i].Load(); d > 0 {
			lat = append(lat, time.Duration(d))
		} else {
			missing++
		}
	}
	return lat, missing
}
