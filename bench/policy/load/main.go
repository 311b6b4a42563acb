// Command load measures Rosen's ext_authz from a separate process: it
// starts the server (itself with -serve, a child process: 20-rule Rego
// policy + RS256 JWT verification) or uses -addr, then sends CheckRequests
// shaped as Envoy's over loopback gRPC at fixed rates, open loop (each
// request is sent at its scheduled time whatever the previous ones do, and
// its latency counts from that time), for a bounded duration, and prints
// p50/p90/p99/max per rate.
//
//	go run ./bench/policy/load -rates 1000,5000 -duration 20s
//
// With -rls it sends ShouldRateLimit requests instead, to any RLS on
// loopback (-target: Rosen or envoyproxy/ratelimit), see rls.go.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // the "proto" codec rawCodec falls back on
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

func main() {
	serveMode := flag.Bool("serve", false, "run the ext_authz server (used by the load process itself)")
	addr := flag.String("addr", "", "ext_authz address on 127.0.0.1 (empty: start the server as a child process)")
	token := flag.String("token", "", "bearer token to send with -addr")
	rates := flag.String("rates", "1000,5000", "requests per second, comma-separated")
	duration := flag.Duration("duration", 20*time.Second, "measuring time per rate (after 2s of warm-up)")
	conns := flag.Int("conns", 4, "gRPC connections")
	rls := flag.Bool("rls", false, "send ShouldRateLimit (envoy.service.ratelimit.v3) to -target instead of ext_authz")
	target := flag.String("target", "", "RLS address on 127.0.0.1 (with -rls)")
	domain := flag.String("domain", "rlbench", "RLS domain (with -rls)")
	users := flag.Int("users", 1000, "distinct users: ext_authz: one signed token each (role and path vary with the user); -rls: one counter each")
	tokens := flag.String("tokens", "", "file of bearer tokens, one a line, to send with -addr (instead of -token)")
	serverPID := flag.Int("server-pid", 0, "with -addr: the server's pid, to report its CPU per request")
	gogc := flag.String("serve-gogc", "", "GOGC for the child server (empty: inherit)")
	workers := flag.Int("serve-workers", 0, "grpc.NumStreamWorkers for the child server (0: grpc-go's default, a goroutine per stream)")
	floor := flag.Bool("grpc-floor", false, "the child server answers every Check with an empty OK and runs no policy: gRPC's own cost and latency here, the floor under any handler")
	flag.Parse()
	if *rls {
		if err := runRLS(*target, *domain, *users, *serverPID, *rates, *duration, *conns); err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			os.Exit(1)
		}
		return
	}
	if *serveMode {
		if err := serve(*users, *workers, *floor); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if *token != "" && *tokens != "" {
		fmt.Fprintln(os.Stderr, "load: -token and -tokens exclude each other")
		os.Exit(2)
	}
	var toks []string
	if *token != "" {
		toks = []string{*token}
	}
	if *tokens != "" {
		b, err := os.ReadFile(*tokens)
		if err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			os.Exit(1)
		}
		toks = strings.Fields(string(b))
	}
	if f := os.Getenv("AUTHZLOAD_LOAD_CPUPROFILE"); f != "" { // profile of the load process itself
		out, err := os.Create(f)
		if err == nil {
			err = pprof.StartCPUProfile(out)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			os.Exit(1)
		}
		defer func() { pprof.StopCPUProfile(); _ = out.Close() }()
	}
	if err := run(*addr, toks, *serverPID, *users, *workers, *floor, *gogc, *rates, *duration, *conns); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(addr string, tokens []string, serverPID, users, workers int, floor bool, gogc, rates string, duration time.Duration, nconns int) error {
	if addr == "" {
		child := exec.Command(os.Args[0], "-serve", "-users", strconv.Itoa(users), "-serve-workers", strconv.Itoa(workers), "-grpc-floor="+strconv.FormatBool(floor))
		child.Stderr = os.Stderr
		if gogc != "" {
			child.Env = append(os.Environ(), "GOGC="+gogc)
		}
		stdin, err := child.StdinPipe()
		if err != nil {
			return err
		}
		stdout, err := child.StdoutPipe()
		if err != nil {
			return err
		}
		if err := child.Start(); err != nil {
			return err
		}
		defer func() { _ = stdin.Close(); _ = child.Wait() }()
		out := bufio.NewReader(stdout)
		line, err := out.ReadString('\n')
		if err != nil {
			return fmt.Errorf("server did not start: %w", err)
		}
		f := strings.Fields(line)
		n := 0
		if len(f) == 2 {
			n, err = strconv.Atoi(f[1])
		}
		if len(f) != 2 || err != nil {
			return fmt.Errorf("server said %q", line)
		}
		addr, tokens = f[0], make([]string, n)
		for i := range tokens {
			if tokens[i], err = out.ReadString('\n'); err != nil {
				return fmt.Errorf("server's tokens: %w", err)
			}
			tokens[i] = strings.TrimSpace(tokens[i])
		}
		serverPID = child.Process.Pid
		fmt.Printf("server pid %d on %s, %d stream workers, GOGC %q, grpc floor (empty OK, no policy) %v\n", serverPID, addr, workers, gogc, floor)
	}
	if !strings.HasPrefix(addr, "127.") && !strings.HasPrefix(addr, "localhost:") {
		return fmt.Errorf("-addr %s: only loopback targets", addr)
	}
	if len(tokens) == 0 {
		return fmt.Errorf("no tokens: give -token or -tokens with -addr")
	}
	conns := make([]*grpc.ClientConn, nconns)
	for i := range conns {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
		if err != nil {
			return err
		}
		defer cc.Close()
		conns[i] = cc
	}
	// One request per user, built and marshalled beforehand (the load
	// process shares the server's cores, so it does as little per call as
	// it can; the server decodes every request as usual): user u carries
	// token u and asks for /svc<u mod 20>/items, which the 20-rule policy
	// allows for the role r<u mod 20> in that user's token. Request i is
	// user i mod users, so every token is reused once per len(reqs) requests.
	reqs := make([]preEncoded, len(tokens))
	for u, tok := range tokens {
		path := fmt.Sprintf("/svc%d/items?page=2", u%20)
		b, err := proto.Marshal(&authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: strconv.Itoa(u), Method: "GET", Path: path, Host: "shop.example.com", Scheme: "http", Protocol: "HTTP/1.1",
			Headers: map[string]string{":path": path, ":method": "GET", ":authority": "shop.example.com",
				"authorization": "Bearer " + tok, "x-request-id": "r" + strconv.Itoa(u), "user-agent": "load"},
		}}}})
		if err != nil {
			return err
		}
		reqs[u] = b
	}
	fmt.Printf("GOMAXPROCS %d, %d connections, %d users (distinct tokens), %s per rate\n", runtime.GOMAXPROCS(0), nconns, len(reqs), duration)
	fmt.Println("rate/s  sent  errors  denied  p50  p90  p99  max  achieved  rpc_p50  rpc_p99  rpc_max  srv_cpu/req  load_cpu/req   (p*: from the due time, 1 ms send ticks included; rpc_*: call → answer; cpu: user+sys over the measured phase)")
	for _, r := range strings.Split(rates, ",") {
		rate, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || rate <= 0 {
			return fmt.Errorf("rate %q", r)
		}
		send := func(ctx context.Context, i int) (bool, error) {
			resp := new(authv3.CheckResponse)
			err := conns[i%len(conns)].Invoke(ctx, authv3.Authorization_Check_FullMethodName, reqs[i%len(reqs)], resp)
			return err == nil && resp.GetOkResponse() != nil, err
		}
		fmt.Println(measuredPhase(send, rate, duration, serverPID))
	}
	return nil
}

// selfCPU is this process's user+system time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is a process's user+system time from /proc (clock ticks of
// 10 ms: over a phase of tens of thousands of requests the error per
// request is a fraction of a microsecond); -1 if unknown.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return -1
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // field 3 onwards
	if len(f) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

type result struct {
	rate                 int
	lat                  []time.Duration // from each request's due time (schedule included)
	rpc                  []time.Duration // from the call to the answer (the server and the transport)
	errors, denied, sent int
	elapsed              time.Duration // from the first due time to the last answer
	srvCPU, loadCPU      time.Duration // per request over the phase (srvCPU 0: unknown)
}

// perSecond is the achieved rate: answers that were not errors over the
// time they took.
func (r result) perSecond() float64 { return float64(r.sent-r.errors) / r.elapsed.Seconds() }

func (r result) String() string {
	quantiles := func(d []time.Duration) func(float64) time.Duration {
		slices.Sort(d)
		return func(p float64) time.Duration {
			if len(d) == 0 {
				return 0
			}
			return d[min(len(d)-1, int(p*float64(len(d))))].Round(time.Microsecond)
		}
	}
	q, c := quantiles(r.lat), quantiles(r.rpc)
	cpu := func(d time.Duration) string {
		if d == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	}
	return fmt.Sprintf("%d  %d  %d  %d  %s  %s  %s  %s  %.0f/s  %s  %s  %s  %s  %s", r.rate, r.sent, r.errors, r.denied,
		q(0.5), q(0.9), q(0.99), q(1), r.perSecond(), c(0.5), c(0.99), c(1), cpu(r.srvCPU), cpu(r.loadCPU))
}

// measuredPhase runs a 2 s warm-up (not reported), then a phase of d at
// rate, with the CPU time of the server (serverPID, 0 if unknown) and of
// this process per request sent.
func measuredPhase(send func(ctx context.Context, i int) (bool, error), rate int, d time.Duration, serverPID int) result {
	phase(send, rate, 2*time.Second)
	srv0, self0 := procCPU(serverPID), selfCPU()
	res := phase(send, rate, d)
	srv1, self1 := procCPU(serverPID), selfCPU()
	if serverPID != 0 && srv0 >= 0 && srv1 >= 0 {
		res.srvCPU = (srv1 - srv0) / time.Duration(res.sent)
	}
	res.loadCPU = (self1 - self0) / time.Duration(res.sent)
	return res
}

// phase calls send rate times a second for d, open loop: request i is due
// at start + i/rate and its latency is measured from then. The sender wakes
// every millisecond and hands what has come due to a pool of long-lived
// caller goroutines (cheaper than a goroutine per call: their stacks stay
// grown), so its own sleeps do not slow the schedule down; a request waits
// for a caller only when maxOutstanding calls are already out, and that
// wait counts in its latency. Calls share one deadline (the phase plus
// callTimeout) rather than a timer each. send reports whether the answer was
// a pass (allowed / not over the limit).
func phase(send func(ctx context.Context, i int) (bool, error), rate int, d time.Duration) result {
	n := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	lat := make([]time.Duration, n)
	rpc := make([]time.Duration, n)
	var mu sync.Mutex
	res := result{rate: rate, sent: n}
	ctx, cancel := context.WithTimeout(context.Background(), d+callTimeout)
	defer cancel()
	type call struct {
		i   int
		due time.Time
	}
	calls := make(chan call, n)
	var wg sync.WaitGroup
	for w := 0; w < min(n, maxOutstanding); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range calls {
				called := time.Now()
				ok, err := send(ctx, c.i)
				rpc[c.i] = time.Since(called)
				lat[c.i] = time.Since(c.due)
				if err != nil || !ok {
					mu.Lock()
					if err != nil {
						res.errors++
					} else {
						res.denied++
					}
					mu.Unlock()
				}
			}
		}()
	}
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := 0; i < n; {
		now := <-tick.C
		for ; i < n; i++ {
			due := start.Add(time.Duration(i) * interval)
			if due.After(now) {
				break
			}
			calls <- call{i, due}
		}
	}
	close(calls)
	wg.Wait()
	res.elapsed = time.Since(start)
	res.lat, res.rpc = lat, rpc
	return res
}

// maxOutstanding bounds the calls in flight (the caller goroutines); past
// it, due requests queue in the load process.
const maxOutstanding = 1024

// callTimeout is how long after the phase's last due time calls may still
// be answered; later ones are errors.
const callTimeout = 5 * time.Second

// preEncoded is a request marshalled once; rawCodec sends its bytes as
// they are and leaves everything else to the proto codec.
type preEncoded []byte

type rawCodec struct{}

var protoCodec = encoding.GetCodecV2("proto")

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(preEncoded); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil // SliceBuffer's Free is a no-op: reusable
	}
	return protoCodec.Marshal(v)
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error { return protoCodec.Unmarshal(data, v) }
