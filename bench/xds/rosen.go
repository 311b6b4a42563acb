package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat; it is
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// buildRosen compiles ./cmd/rosen into dir and returns the binary's path.
func buildRosen(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "rosen")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/rosen")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/rosen: %w\n%s", err, stderr.String())
	}
	return out, nil
}

// validateConfig runs `rosen validate DIR`.
func validateConfig(ctx context.Context, bin, dir string) (time.Duration, error) {
	start := time.Now()
	out, err := exec.CommandContext(ctx, bin, "validate", dir).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("rosen validate %s: %w\n%s", dir, err, out)
	}
	return time.Since(start), nil
}

// freeLoopbackAddr returns a loopback address whose port was free a moment ago.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// rosenProc is a running `rosen serve`.
type rosenProc struct {
	cmd      *exec.Cmd
	grpcAddr string
	httpAddr string
	logPath  string
	exited   chan struct{}
}

// startRosen starts `rosen serve` on free loopback ports, its output in work/rosen.log.
func startRosen(bin, configDir, work string, debounce time.Duration) (*rosenProc, error) {
	grpcAddr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(work, "rosen.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve",
		"--config", configDir,
		"--grpc-addr", grpcAddr,
		"--http-addr", httpAddr,
		"--data", filepath.Join(work, "data"),
		"--debounce", debounce.String(),
		"--log-format", "json")
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &rosenProc{cmd: cmd, grpcAddr: grpcAddr, httpAddr: httpAddr, logPath: logPath, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	return p, nil
}

// waitReady polls GET /readyz until it answers 200.
func (p *rosenProc) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	url := "http://" + p.httpAddr + "/readyz"
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rosen not ready at %s (see %s): %w", url, p.logPath, ctx.Err())
		case <-p.exited:
			return fmt.Errorf("rosen exited before it was ready (see %s)", p.logPath)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends SIGINT and, after a grace period, kills the process.
func (p *rosenProc) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *rosenProc) pid() int { return p.cmd.Process.Pid }

// rssBytes reads VmRSS from /proc/PID/status.
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, err
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// cpuSeconds reads utime+stime from /proc/PID/stat (pid 0: this process).
func cpuSeconds(pid int) (float64, error) {
	path := "/proc/self/stat"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: fields start after ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state is field 3, so utime (14) and stime (15) are f[11], f[12].
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return float64(ut+st) / clockTicks, nil
}

// loadAvg returns the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// metric reads one unlabelled sample from rosen's Prometheus /metrics.
func (p *rosenProc) metric(name string) (float64, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + p.httpAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return 0, err
	}
	for _, line := range strings.Split(buf.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, fmt.Errorf("no metric %s", name)
}

// collect makes rosen run two garbage collections (GET
// /debug/pprof/heap?gc=1, twice), so that a memory reading that follows
// counts live data, not garbage that happens not to be collected yet: the
// buffers grpc pools (sync.Pool) outlive one collection in the pool's
// victim cache and are freed by the second.
func (p *rosenProc) collect() error {
	client := &http.Client{Timeout: 30 * time.Second}
	for range 2 {
		resp, err := client.Get("http://" + p.httpAddr + "/debug/pprof/heap?gc=1")
		if err != nil {
			return fmt.Errorf("gc: %w", err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// saveHeapProfile writes rosen's heap profile (GET /debug/pprof/heap) to path.
func (p *rosenProc) saveHeapProfile(path string) error {
	return p.saveProfile(path, "heap", 30*time.Second)
}

// saveCPUProfile records rosen's CPU for d (GET /debug/pprof/profile) into path.
func (p *rosenProc) saveCPUProfile(path string, d time.Duration) error {
	return p.saveProfile(path, fmt.Sprintf("profile?seconds=%d", int(d.Seconds())), d+30*time.Second)
}

func (p *rosenProc) saveProfile(path, what string, timeout time.Duration) error {
	client := &http.Client{Timeout: timeout}
	resp, err := client.Get("http://" + p.httpAddr + "/debug/pprof/" + what)
	if err != nil {
		return fmt.Errorf("profile %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: GET /debug/pprof/%s: %s", what, resp.Status)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return fmt.Errorf("profile %s: %w", what, err)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
