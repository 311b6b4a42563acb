package kubeenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// TestHost is a host of the test's own: a network namespace the test makes,
// joined to this one by a veth pair. The API server refuses loopback
// addresses in EndpointSlices, so backends that Kubernetes must point at
// listen here, on an address that exists only inside this machine's sandbox.
type TestHost struct {
	// IP is the host's address (the namespace side of the veth pair).
	IP     string
	netns  string
	hostIf string
}

var testHostSeq atomic.Int32

// NewTestHost creates the namespace and the link, and removes both when the
// test ends. It needs root and iproute2 (`ip`); without them the test is
// skipped, or fails under CI=true.
func NewTestHost(t testing.TB) *TestHost {
	t.Helper()
	missing := func(why string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("a test host (network namespace) is required under CI=true: %s", why)
		}
		t.Skipf("no test host: %s", why)
	}
	if os.Geteuid() != 0 {
		missing("needs root to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		missing("iproute2's ip command is not installed")
	}
	n := int(testHostSeq.Add(1))
	id := (os.Getpid()*7 + n) % 250
	h := &TestHost{
		IP:     fmt.Sprintf("10.213.%d.2", id),
		netns:  fmt.Sprintf("rosen-t%d-%d", os.Getpid()%100000, n),
		hostIf: fmt.Sprintf("rkt%d", id),
	}
	peer := h.hostIf + "p"
	hostAddr := fmt.Sprintf("10.213.%d.1/30", id)
	steps := [][]string{
		{"netns", "add", h.netns},
		{"link", "add", h.hostIf, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", h.netns},
		{"addr", "add", hostAddr, "dev", h.hostIf},
		{"link", "set", h.hostIf, "up"},
		{"-n", h.netns, "addr", "add", h.IP + "/30", "dev", peer},
		{"-n", h.netns, "link", "set", peer, "up"},
		{"-n", h.netns, "link", "set", "lo", "up"},
	}
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", h.hostIf).Run()
		_ = exec.Command("ip", "netns", "del", h.netns).Run()
	})
	for _, args := range steps {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			missing(fmt.Sprintf("ip %s: %v: %s", strings.Join(args, " "), err, out))
		}
	}
	return h
}

// Listen opens a TCP listener inside the test host on a free port. The
// socket belongs to the namespace it was made in, so it can be served from
// any goroutine afterwards.
func (h *TestHost) Listen(t testing.TB) net.Listener {
	t.Helper()
	type result struct {
		ln  net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		// This OS thread enters the namespace and is never handed back
		// (no UnlockOSThread): it exits with the goroutine, so no other
		// goroutine ever runs in the test host's namespace by accident.
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/var/run/netns", h.netns))
		if err != nil {
			done <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(h.IP, "0"))
		done <- result{ln, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("listen in test host %s: %v", h.netns, r.err)
	}
	return r.ln
}
