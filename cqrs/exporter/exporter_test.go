package exporter

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rosenmesh/rosen/cqrs/rules"
)

var recs = []Record{{Event: "userCreated", Seq: 7, View: "users", Database: "db1", Table: "users", Method: "update", Key: "1",
	Row: map[string]any{"id": json.Number("9007199254740993"), "col_name": "Ann"}}}

func TestRESTConfirmsOnlyOn2xx(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 || r.Header.Get("X-Token") != "t" {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		var got []Record
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil || len(got) != 1 || got[0].Key != "1" {
			http.Error(w, "bad body", http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	x := NewREST(rules.Exporter{Type: rules.ExpREST, URL: srv.URL, Headers: map[string]string{"X-Token": "t"}})
	if err := x.Emit(context.Background(), recs); !errors.Is(err, ErrDelivery) {
		t.Fatalf("503 must not confirm: %v", err)
	}
	if err := x.Emit(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	down := NewREST(rules.Exporter{Type: rules.ExpREST, URL: "http://127.0.0.1:1/none"})
	if err := down.Emit(context.Background(), recs); !errors.Is(err, ErrDelivery) {
		t.Fatalf("unreachable: %v", err)
	}
}

func TestNATSWaitsForTheStreamAck(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats did not start")
	}
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OUT", Subjects: []string{"views.>"}})
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(ns.Addr().String())
	p, _ := strconv.Atoi(port)
	x, err := Open("n", rules.Exporter{Type: rules.ExpNATS, Host: host, Port: p, Subject: "views"})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if err := x.Emit(ctx, recs); err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetLastMsgForSubject(ctx, "views.users")
	if err != nil {
		t.Fatal(err)
	}
	if want := `"id":9007199254740993`; !json.Valid(msg.Data) || !strings.Contains(string(msg.Data), want) {
		t.Fatalf("stored %s", msg.Data)
	}
}

func TestKafkaProducesKeyedRecords(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	host, port, _ := net.SplitHostPort(c.ListenAddrs()[0])
	p, _ := strconv.Atoi(port)
	x, err := Open("k", rules.Exporter{Type: rules.ExpKafka, Host: host, Port: p, Topic: "out"})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if err := x.Emit(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	cl, _ := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("out"))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) == 0 && ctx.Err() == nil {
		got = append(got, cl.PollFetches(ctx).Records()...)
	}
	if len(got) != 1 || string(got[0].Key) != "1" {
		t.Fatalf("records = %v", got)
	}
}

// TestRESTPermanentFailures: 4xx other than 408/429 and a record that cannot
// be encoded are permanent (the engine dead-letters them instead of retrying
// forever); 5xx, 408, 429 and an unreachable endpoint stay transient.
func TestRESTPermanentFailures(t *testing.T) {
	var code atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "refused: column x", int(code.Load()))
	}))
	defer srv.Close()
	x := NewREST(rules.Exporter{Type: rules.ExpREST, URL: srv.URL})
	for _, c := range []int{400, 401, 404, 413, 422} {
		code.Store(int32(c))
		if err := x.Emit(context.Background(), recs); !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "refused: column x") {
			t.Errorf("%d: %v", c, err)
		}
	}
	for _, c := range []int{408, 429, 500, 503} {
		code.Store(int32(c))
		if err := x.Emit(context.Background(), recs); errors.Is(err, ErrPermanent) || !errors.Is(err, ErrDelivery) {
			t.Errorf("%d: %v", c, err)
		}
	}
	down := NewREST(rules.Exporter{Type: rules.ExpREST, URL: "http://127.0.0.1:1/none"})
	if err := down.Emit(context.Background(), recs); errors.Is(err, ErrPermanent) {
		t.Errorf("unreachable is transient: %v", err)
	}
	inf := []Record{{Event: "e", View: "v", Key: "1", Row: map[string]any{"x": math.Inf(1)}}}
	if err := x.Emit(context.Background(), inf); !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "+Inf") {
		t.Errorf("+Inf: %v", err)
	}
}
