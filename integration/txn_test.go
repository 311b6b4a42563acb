package integration

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/rosenmesh/rosen/internal/testenv"
	"github.com/rosenmesh/rosen/txn/barrier"
	"github.com/rosenmesh/rosen/txn/examples/transfer"
)

// coordinatorProc is one `rosen txn serve` replica that the test can SIGKILL and restart.
type coordinatorProc struct {
	t     *testing.T
	name  string
	addr  string
	args  []string
	mu    sync.Mutex
	cmd   *exec.Cmd
	logs  *syncBuffer
	alive bool
}

func (p *coordinatorProc) start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(rosenBin, p.args...)
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd, p.alive = cmd, true
	for range 200 { // up to 10 s for the listener
		if resp, err := http.Get("http://" + p.addr + "/healthz"); err == nil {
			_ = resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("%s did not start:\n%s", p.name, p.logs.String())
}

func (p *coordinatorProc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.alive {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
	p.alive = false
}

func (p *coordinatorProc) isAlive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.alive
}

// post sends JSON to the first live replica that answers, starting at a random one.
func post(reps []*coordinatorProc, path string, body any) (int, map[string]any, error) {
	raw, _ := json.Marshal(body)
	start := rand.IntN(len(reps))
	var lastErr error
	for i := range reps {
		r := reps[(start+i)%len(reps)]
		resp, err := http.Post("http://"+r.addr+path, "application/json", bytes.NewReader(raw))
		if err != nil {
			lastErr = err
			continue
		}
		out := map[string]any{}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		_ = json.Unmarshal(b, &out)
		if resp.StatusCode == http.StatusServiceUnavailable {
			lastErr = fmt.Errorf("%s: 503 %s", path, b)
			continue
		}
		return resp.StatusCode, out, nil
	}
	return 0, nil, lastErr
}

// retryPost posts with no body while no replica answers, as a client would.
func retryPost(reps []*coordinatorProc, path string) (int, error) {
	var err error
	for range 60 {
		var code int
		if code, _, err = post(reps, path, nil); err == nil {
			return code, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, err
}

func tryBranch(url, txnID, branch string, m transfer.Move) error {
	raw, _ := json.Marshal(m)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(raw))
	req.Header.Set("Rosen-Txn-Id", txnID)
	req.Header.Set("Rosen-Branch-Id", branch)
	req.Header.Set("Rosen-Txn-Phase", "try")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("try %s: %d %s", branch, resp.StatusCode, b)
	}
	return nil
}

// TestTxnCrashRecovery runs 1,000 concurrent money transfers through two
// coordinator processes on one PostgreSQL store while replica A is SIGKILLed
// at random moments and restarted, and replica B is killed for good half-way.
// Afterwards every transaction is committed (both branches confirmed) or
// aborted (both cancelled), no branch was both, and the ledgers balance.
func TestTxnCrashRecovery(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	ctx := context.Background()
	n := 1000
	if testing.Short() {
		n = 200
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(40)
	prefix := testenv.UniqueName("crash")
	tables := []string{prefix + "_txn", prefix + "_txn_branch"}
	defer func() {
		for _, tb := range tables {
			_, _ = db.Exec(`DROP TABLE IF EXISTS ` + tb)
		}
	}()
	var ledgers [2]*transfer.Ledger
	var urls [2]string
	var names [2]string
	for i := range ledgers {
		names[i] = testenv.UniqueName(fmt.Sprintf("crashbank%d", i))
		tables = append(tables, names[i]+"_accounts", names[i]+"_barrier")
		l, err := transfer.New(ctx, db, barrier.Postgres, names[i])
		if err != nil {
			t.Fatal(err)
		}
		for a := range 10 {
			if err := l.Open(ctx, fmt.Sprintf("acct-%d", a), 1_000_000); err != nil {
				t.Fatal(err)
			}
		}
		srv := httptest.NewServer(l.Handler())
		defer srv.Close()
		ledgers[i], urls[i] = l, srv.URL
	}
	const total = 2 * 10 * 1_000_000

	reps := make([]*coordinatorProc, 2)
	for i, name := range []string{"A", "B"} {
		addr := freeAddr(t)
		reps[i] = &coordinatorProc{t: t, name: name, addr: addr, logs: &syncBuffer{}, args: []string{"txn", "serve",
			"--http-addr", addr, "--grpc-addr", "", "--txn-store", "postgres", "--txn-postgres", dsn, "--txn-table-prefix", prefix,
			"--txn-lease", "2s", "--txn-call-timeout", "1s", "--txn-owner", name, "--log-level", "warn"}}
		reps[i].start()
		defer reps[i].kill()
	}

	var kills, begun, commitAsked, abortAsked, abandoned atomic.Int64
	var acked sync.Map
	stopChaos := make(chan struct{})
	chaosDone := make(chan struct{})
	go func() { // replica A: SIGKILL at random moments, restart
		defer close(chaosDone)
		for {
			select {
			case <-stopChaos:
				return
			case <-time.After(time.Duration(200+rand.IntN(600)) * time.Millisecond):
			}
			reps[0].kill()
			kills.Add(1)
			time.Sleep(time.Duration(50+rand.IntN(200)) * time.Millisecond)
			reps[0].start()
		}
	}()

	ids := make([]string, n)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range work {
				if i == n/2 {
					reps[1].kill() // B dies for good with whatever it holds
					kills.Add(1)
				}
				id := fmt.Sprintf("%s-%d", prefix, i)
				// A client retries its begin while no replica answers (A restarting, B dead).
				var code int
				var err error
				for range 100 {
					code, _, err = post(reps, "/api/txn/transactions", map[string]any{"id": id, "timeout": "3s"})
					if err == nil {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				if err != nil || (code != http.StatusCreated && code != http.StatusConflict) {
					t.Logf("begin %d: %d %v", i, code, err)
					continue // never begun (or the begin is unknown: a reused-id 409 on retry means it was)
				}
				ids[i] = id
				begun.Add(1)
				amount := int64(1 + rand.IntN(10))
				from, to := i%2, 1-i%2
				ok := true
				for _, br := range []struct {
					name, url string
					m         transfer.Move
				}{
					{"debit", urls[from], transfer.Move{Account: fmt.Sprintf("acct-%d", i%10), Amount: -amount}},
					{"credit", urls[to], transfer.Move{Account: fmt.Sprintf("acct-%d", (i+3)%10), Amount: amount}},
				} {
					code, _, err := post(reps, "/api/txn/transactions/"+id+"/branches",
						map[string]any{"branch_id": br.name, "confirm": br.url + "/confirm", "cancel": br.url + "/cancel", "payload": br.m})
					if err != nil || code != http.StatusCreated {
						ok = false
						break
					}
					if err := tryBranch(br.url+"/try", id, br.name, br.m); err != nil {
						ok = false
						break
					}
				}
				switch {
				case i%10 == 9:
					abandoned.Add(1) // the caller dies: the timeout must abort it
				case ok:
					commitAsked.Add(1)
					if code, _ := retryPost(reps, "/api/txn/transactions/"+id+"/commit"); code/100 == 2 {
						acked.Store(id, true) // acknowledged: it must end committed, whatever crashes follow
					}
				default:
					abortAsked.Add(1)
					_, _ = retryPost(reps, "/api/txn/transactions/"+id+"/abort")
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(stopChaos)
	<-chaosDone
	if !reps[0].isAlive() {
		reps[0].start()
	}

	// Every begun transaction ends; A alone finishes what the dead B held.
	committed, aborted := 0, 0
	for _, id := range ids {
		if id == "" {
			continue
		}
		var tx struct {
			State    string
			Branches []struct {
				State string `json:"state"`
			}
		}
		for tries := 0; ; tries++ {
			if tries > 1200 { // a watchdog of about a minute
				t.Fatalf("%s never ended: %+v\nA logs:\n%s", id, tx, reps[0].logs.String())
			}
			resp, err := http.Get("http://" + reps[0].addr + "/api/txn/transactions/" + id)
			if err == nil {
				_ = json.NewDecoder(resp.Body).Decode(&tx)
				_ = resp.Body.Close()
				if tx.State == "committed" || tx.State == "aborted" {
					break
				}
				if tx.State == "stuck" {
					t.Fatalf("%s stuck: %+v", id, tx)
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, ok := acked.Load(id); ok && tx.State != "committed" {
			t.Fatalf("%s: commit was acknowledged but it ended %s", id, tx.State)
		}
		want := "confirmed"
		if tx.State == "committed" {
			committed++
		} else {
			aborted++
			want = "cancelled"
		}
		for _, b := range tx.Branches {
			if b.State != want {
				t.Fatalf("%s is %s but a branch is %s", id, tx.State, b.State)
			}
		}
	}
	// No branch was both confirmed and cancelled at the participants.
	for _, name := range names {
		var both int
		if err := db.QueryRow(`SELECT COUNT(*) FROM ` + name + `_barrier c JOIN ` + name + `_barrier k
			ON c.txn_id = k.txn_id AND c.branch_id = k.branch_id WHERE c.op = 'confirm' AND k.op = 'cancel'`).Scan(&both); err != nil {
			t.Fatal(err)
		}
		if both != 0 {
			t.Fatalf("%s: %d branches both confirmed and cancelled", name, both)
		}
	}
	var sum int64
	for _, l := range ledgers {
		bal, held, incoming, err := l.Totals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if held != 0 || incoming != 0 {
			t.Fatalf("reservations left behind: held %d, incoming %d", held, incoming)
		}
		sum += bal
	}
	if sum != total {
		t.Fatalf("ledgers do not balance: %d, want %d", sum, total)
	}
	fmt.Fprintf(os.Stderr, "txn crash test: %d transactions, %d begun, %d committed, %d aborted (%d commit asked, %d abort asked, %d abandoned by the caller); %d SIGKILLs (replica B for good); ledgers balance at %d\n",
		n, begun.Load(), committed, aborted, commitAsked.Load(), abortAsked.Load(), abandoned.Load(), kills.Load(), sum)
}
