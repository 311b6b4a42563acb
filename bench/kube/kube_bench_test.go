// Package kube benchmarks Rosen's Kubernetes-sourced endpoint path: a real
// kube-apiserver (integration/kubeenv) holds S Services with two
// EndpointSlices each; `rosen serve --kubeconfig` watches it; P proxyless
// ADS streams subscribe to one service's EDS cluster and ACK every
// response. Each round moves that cluster's endpoint to a new address with
// one EndpointSlice update on the API server and measures, per proxy, the
// time from the update until the proxy ACKed EDS with the new address.
//
//	go test ./bench/kube -run '^$' -bench EndpointChurn -benchtime 1x -timeout 30m
//
// ROSEN_BENCH_SERVICES (default 1000), ROSEN_BENCH_PROXIES (500) and
// ROSEN_BENCH_ROUNDS (20) size the run. Everything talks to 127.0.0.1.
package kube

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	discoveryv1client "k8s.io/client-go/kubernetes/typed/discovery/v1"

	"github.com/rosenmesh/rosen/integration/kubeenv"
)

const namespace = "bench"

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

// populate creates n Services with slices v1 and v2 (one address each).
func populate(b *testing.B, core *corev1client.CoreV1Client, disc *discoveryv1client.DiscoveryV1Client, n int) {
	ctx := context.Background()
	if _, err := core.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			name := fmt.Sprintf("svc-%d", i)
			_, err := core.Services(namespace).Create(ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "grpc", Port: 9080}}},
			}, metav1.CreateOptions{})
			for j, v := range []string{"v1", "v2"} {
				if err == nil {
					_, err = disc.EndpointSlices(namespace).Create(ctx, slice(name, v, fmt.Sprintf("10.%d.%d.%d", 1+j, i/250, 1+i%250)), metav1.CreateOptions{})
				}
			}
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}

func slice(svc, version, addr string) *discoveryv1.EndpointSlice {
	port, pname, ready := int32(9080), "grpc", true
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: svc + "-" + version, Labels: map[string]string{
			discoveryv1.LabelServiceName: svc, "version": version,
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &pname, Port: &port}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
	}
}

func freeAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startRosen builds and runs `rosen serve --kubeconfig`.
func startRosen(b *testing.B, kubeconfig string) (grpcAddr, httpAddr string, pid int) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "rosen")
	build := exec.Command("go", "build", "-o", bin, "./cmd/rosen")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	grpcAddr, httpAddr = freeAddr(b), freeAddr(b)
	log, err := os.Create(filepath.Join(dir, "rosen.log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--kubeconfig", kubeconfig, "--grpc-addr", grpcAddr, "--http-addr", httpAddr,
		"--data", dir, "--log-format", "json", "--log-level", "warn", "--kube-status=false")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() })
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return grpcAddr, httpAddr, cmd.Process.Pid
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("rosen not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func BenchmarkEndpointChurn(b *testing.B) {
	services := envInt("ROSEN_BENCH_SERVICES", 1000)
	proxies := envInt("ROSEN_BENCH_PROXIES", 500)
	rounds := envInt("ROSEN_BENCH_ROUNDS", 20)
	bin := kubeenv.Require(b)
	etcd := kubeenv.StartEtcd(b, bin)
	api := kubeenv.StartAPIServer(b, bin, etcd, "bench")
	core, err := corev1client.NewForConfig(api.Config())
	if err != nil {
		b.Fatal(err)
	}
	disc, err := discoveryv1client.NewForConfig(api.Config())
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	populate(b, core, disc, services)
	b.Logf("created %d Services and %d EndpointSlices in %v", services, 2*services, time.Since(start).Round(time.Millisecond))

	grpcAddr, httpAddr, pid := startRosen(b, api.WriteKubeconfig(b, b.TempDir(), kubeenv.AdminToken))
	const cluster = "outbound|9080||svc-0.bench.svc.cluster.local"
	f, err := connect(grpcAddr, proxies, cluster)
	if err != nil {
		b.Fatal(err)
	}
	defer f.close()
	if err := f.waitAll("10.1.0.1", time.Now(), 2*time.Minute); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d proxies hold EDS for %s", proxies, cluster)

	var all []time.Duration
	if out := os.Getenv("ROSEN_BENCH_CPUPROFILE"); out != "" {
		profile(b, httpAddr, out, time.Duration(rounds)*400*time.Millisecond)
	}
	cpu0 := cpuSeconds(pid)
	b.ResetTimer()
	for range b.N {
		for r := range rounds {
			addr := fmt.Sprintf("10.200.%d.%d", r/250, 1+r%250)
			s, err := disc.EndpointSlices(namespace).Get(context.Background(), "svc-0-v1", metav1.GetOptions{})
			if err != nil {
				b.Fatal(err)
			}
			s.Endpoints[0].Addresses = []string{addr}
			t0 := time.Now()
			if _, err := disc.EndpointSlices(namespace).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
				b.Fatal(err)
			}
			if err := f.waitAll(addr, t0, time.Minute); err != nil {
				b.Fatal(err)
			}
			all = append(all, f.latencies(addr, t0)...)
			time.Sleep(200 * time.Millisecond)
		}
	}
	b.StopTimer()
	slices.Sort(all)
	pct := func(p float64) time.Duration { return all[min(len(all)-1, int(p*float64(len(all))))] }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(all[len(all)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric((cpuSeconds(pid)-cpu0)/float64(rounds*b.N), "rosen-cpu-s/change")
	b.Logf("services=%d proxies=%d rounds=%d samples=%d: p50 %v p99 %v max %v, rosen RSS %d MiB",
		services, proxies, rounds*b.N, len(all), pct(0.5), pct(0.99), all[len(all)-1], rssMiB(pid))
}

// profile saves Rosen's CPU profile over the next d (ROSEN_BENCH_CPUPROFILE).
func profile(b *testing.B, httpAddr, out string, d time.Duration) {
	done := make(chan struct{})
	b.Cleanup(func() { <-done })
	go func() {
		defer close(done)
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", httpAddr, max(1, int(d.Seconds()))))
		if err != nil {
			b.Logf("profile: %v", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(out)
		if err != nil {
			b.Logf("profile: %v", err)
			return
		}
		defer f.Close()
		_, _ = io.Copy(f, resp.Body)
	}()
}
