package transfer_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/rosenmesh/rosen/internal/testenv"
	"github.com/rosenmesh/rosen/txn/barrier"
	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/examples/transfer"
	"github.com/rosenmesh/rosen/txn/participant"
	"github.com/rosenmesh/rosen/txn/rest"
	"github.com/rosenmesh/rosen/txn/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

// Transfers between two ledger services under a coordinator on PostgreSQL:
// committed, refused (not enough money), aborted by the caller, and abandoned
// (the caller never finishes; the timeout aborts). After all of them the money
// is conserved and nothing is left held.
func TestMoneyTransferConservesMoney(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	ctx := context.Background()
	prefix := testenv.UniqueName("tr")
	st, err := store.OpenPostgres(ctx, dsn, store.Options{Prefix: prefix, MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tables := []string{prefix + "_txn", prefix + "_txn_branch"}
	c, err := coordinator.New(coordinator.Options{Store: st, Log: zaptest.NewLogger(t), Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = c.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()
	api := httptest.NewServer(rest.New(c, nil))
	defer api.Close()

	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	defer func() {
		for _, tb := range tables {
			_, _ = db.Exec(`DROP TABLE IF EXISTS ` + tb)
		}
	}()
	var ledgers [2]*transfer.Ledger
	var urls [2]string
	for i := range ledgers {
		name := testenv.UniqueName(fmt.Sprintf("bank%d", i))
		tables = append(tables, name+"_accounts", name+"_barrier")
		l, err := transfer.New(ctx, db, barrier.Postgres, name)
		if err != nil {
			t.Fatal(err)
		}
		for a := range 4 {
			if err := l.Open(ctx, fmt.Sprintf("acct-%d", a), 100); err != nil {
				t.Fatal(err)
			}
		}
		srv := httptest.NewServer(l.Handler())
		defer srv.Close()
		ledgers[i], urls[i] = l, srv.URL
	}
	const total = 2 * 4 * 100
	client := participant.NewClient(api.URL)
	defer client.HTTP.CloseIdleConnections()

	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	ids := make([]string, 60)
	for i := range ids {
		wg.Go(func() {
			from, to := i%2, 1-i%2
			amount := int64(1 + rand.IntN(60))
			kind := i % 4 // 0,1: commit; 2: caller aborts; 3: caller abandons
			g, err := client.Begin(ctx, participant.Options{ID: fmt.Sprintf("xfer-%d", i), Timeout: 2 * time.Second})
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = g.ID
			tryErr := g.Try(ctx, participant.Branch{ID: "debit", Try: urls[from] + "/try", Confirm: urls[from] + "/confirm", Cancel: urls[from] + "/cancel",
				Payload: transfer.Move{Account: fmt.Sprintf("acct-%d", i%4), Amount: -amount}})
			if tryErr == nil {
				tryErr = g.Try(ctx, participant.Branch{ID: "credit", Try: urls[to] + "/try", Confirm: urls[to] + "/confirm", Cancel: urls[to] + "/cancel",
					Payload: transfer.Move{Account: fmt.Sprintf("acct-%d", (i+1)%4), Amount: amount}})
			}
			var state string
			switch {
			case kind == 3:
				state = "abandoned"
			case tryErr != nil || kind == 2:
				if tryErr != nil && !errors.Is(tryErr, participant.ErrTryFailed) {
					t.Error(tryErr)
				}
				state, err = g.Abort(ctx, 30*time.Second)
			default:
				state, err = g.Commit(ctx, 30*time.Second)
			}
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			outcomes[state]++
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, id := range ids {
		for {
			tx, err := c.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if tx.State.Final() {
				break
			}
			if tx.State == store.Stuck {
				t.Fatalf("%s stuck: %s", id, tx.LastError)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	var sum int64
	for _, l := range ledgers {
		bal, held, incoming, err := l.Totals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if held != 0 || incoming != 0 {
			t.Fatalf("reservations left behind: held %d incoming %d", held, incoming)
		}
		sum += bal
	}
	if sum != total {
		t.Fatalf("money not conserved: %d, want %d", sum, total)
	}
	t.Logf("outcomes %v; total %d conserved", outcomes, sum)
}
