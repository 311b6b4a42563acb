package participant_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/rosenmesh/rosen/txn/barrier"
	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/participant"
)

func TestServiceAnswersInTheStatusProtocol(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "p.db")+"?_pragma=busy_timeout(5000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b, err := barrier.New(context.Background(), db, barrier.SQLite, "")
	if err != nil {
		t.Fatal(err)
	}
	svc := &participant.Service{Barrier: b,
		Try: func(_ context.Context, _ *sql.Tx, c participant.Call) error {
			switch string(c.Payload) {
			case `"poor"`:
				return participant.ErrRefused
			case `"flaky"`:
				return errors.New("db hiccup")
			}
			return nil
		},
		Confirm: func(context.Context, *sql.Tx, participant.Call) error { return nil },
		Cancel:  func(context.Context, *sql.Tx, participant.Call) error { return nil },
	}
	srv := httptest.NewServer(svc)
	defer srv.Close()
	call := func(txn, phase, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		req.Header.Set(coordinator.HeaderTxnID, txn)
		req.Header.Set(coordinator.HeaderBranchID, "b")
		req.Header.Set(coordinator.HeaderPhase, phase)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var sb strings.Builder
		buf := make([]byte, 512)
		n, _ := resp.Body.Read(buf)
		sb.Write(buf[:n])
		return resp.StatusCode, sb.String()
	}
	for _, tc := range []struct {
		txn, phase, body string
		code             int
		status           string
	}{
		{"t1", "try", `"ok"`, 200, "SUCCESS"},
		{"t1", "confirm", `"ok"`, 200, "SUCCESS"},
		{"t2", "try", `"poor"`, 409, "FAILURE"},
		{"t3", "try", `"flaky"`, 500, "ONGOING"},
		{"t4", "cancel", ``, 200, "SUCCESS"},      // empty compensation
		{"t4", "try", `"ok"`, 409, "FAILURE"},     // hanging Try refused
		{"t5", "confirm", `"ok"`, 409, "FAILURE"}, // confirm without try
		{"t6", "", ``, 400, "FAILURE"},
		{"bad id", "try", ``, 409, "FAILURE"},
	} {
		code, body := call(tc.txn, tc.phase, tc.body)
		if code != tc.code || !strings.Contains(body, tc.status) {
			t.Errorf("%s %s %s: %d %s, want %d %s", tc.txn, tc.phase, tc.body, code, body, tc.code, tc.status)
		}
	}
}

func TestTryFailureIsReportedToTheCaller(t *testing.T) {
	coord := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"g1"}`))
	}))
	defer coord.Close()
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"status":"FAILURE"}`)) // a 200 that says failure
	}))
	defer refusing.Close()
	c := participant.NewClient(coord.URL)
	g, err := c.Begin(context.Background(), participant.Options{})
	if err != nil || g.ID != "g1" {
		t.Fatalf("begin %v %+v", err, g)
	}
	err = g.Try(context.Background(), participant.Branch{ID: "b", Try: refusing.URL, Confirm: refusing.URL, Cancel: refusing.URL})
	if !errors.Is(err, participant.ErrTryFailed) {
		t.Fatalf("try: %v", err)
	}
}
