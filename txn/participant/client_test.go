package participant_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/participant"
	"github.com/rosenmesh/rosen/txn/rest"
	"github.com/rosenmesh/rosen/txn/store"
)

// Branches given to Begin are registered by the begin request itself: Try
// then only calls the participant, and the coordinator still confirms them
// (with their payload); a branch not given to Begin is registered by Try.
func TestBranchesRegisteredWithTheBegin(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "txn.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	co, err := coordinator.New(coordinator.Options{Store: st, Log: zaptest.NewLogger(t), Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = co.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()
	var mu sync.Mutex
	var coordCalls, partCalls []string
	restAPI := rest.New(co, nil)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		coordCalls = append(coordCalls, r.Method+" "+r.URL.Path)
		mu.Unlock()
		restAPI.ServeHTTP(w, r)
	}))
	defer api.Close()
	part := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body strings.Builder
		buf := make([]byte, 256)
		n, _ := r.Body.Read(buf)
		body.Write(buf[:n])
		mu.Lock()
		partCalls = append(partCalls, r.URL.Path+" "+r.Header.Get(coordinator.HeaderBranchID)+" "+r.Header.Get(coordinator.HeaderPhase)+" "+body.String())
		mu.Unlock()
	}))
	defer part.Close()

	cl := participant.NewClient(api.URL)
	defer cl.Close()
	branch := func(id string) participant.Branch {
		return participant.Branch{ID: id, Try: part.URL + "/try", Confirm: part.URL + "/confirm", Cancel: part.URL + "/cancel", Payload: map[string]int{"amount": 2}}
	}
	g, err := cl.Begin(ctx, participant.Options{Timeout: 30 * time.Second, Branches: []participant.Branch{branch("a"), branch("b")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := g.Try(ctx, branch(id)); err != nil {
			t.Fatal(err)
		}
	}
	state, err := g.Commit(ctx, 30*time.Second)
	if err != nil || state != "committed" {
		t.Fatalf("commit: %q %v", state, err)
	}
	mu.Lock()
	defer mu.Unlock()
	wantCoord := []string{"POST /api/txn/transactions", "POST /api/txn/transactions/" + g.ID + "/branches", "POST /api/txn/transactions/" + g.ID + "/commit"}
	if strings.Join(coordCalls, "\n") != strings.Join(wantCoord, "\n") {
		t.Fatalf("coordinator saw\n%s\nwant\n%s", strings.Join(coordCalls, "\n"), strings.Join(wantCoord, "\n"))
	}
	confirms := 0
	for _, c := range partCalls {
		if strings.HasPrefix(c, "/confirm ") {
			confirms++
			if !strings.HasSuffix(c, ` confirm {"amount":2}`) {
				t.Errorf("confirm call %q", c)
			}
		}
	}
	if len(partCalls) != 6 || confirms != 3 {
		t.Fatalf("participant saw %q", partCalls)
	}
}
