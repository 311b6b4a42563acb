package source

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rosenmesh/rosen/internal/testenv"
)

// expectAckAfterCommit checks a source's contract: a batch that was not
// committed comes again after a reopen; a committed one does not.
func expectAckAfterCommit(t *testing.T, open func() Source, want int) {
	t.Helper()
	ctx := context.Background()
	read := func(src Source) Batch {
		t.Helper()
		var all Batch
		for len(all.Msgs) < want {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			b, err := src.Next(rctx, 100)
			cancel()
			if err != nil {
				t.Fatalf("after %d messages: %v", len(all.Msgs), err)
			}
			all.Msgs = append(all.Msgs, b.Msgs...)
			all.Commit = b.Commit
		}
		return all
	}
	src := open()
	first := read(src)
	_ = src.Close() // no commit: everything must come again
	src = open()
	again := read(src)
	if a, b := bodies(first), bodies(again); a != b {
		t.Fatalf("redelivered %s, first time %s", b, a)
	}
	if err := again.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	_ = src.Close()
	src = open()
	defer src.Close()
	qctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	if b, err := src.Next(qctx, 100); err == nil {
		t.Fatalf("committed messages came again: %d", len(b.Msgs))
	}
}

// bodies is a batch's messages in a stable order (partitions interleave freely).
func bodies(b Batch) string {
	var s []string
	for _, m := range b.Msgs {
		s = append(s, string(m.Data))
	}
	slices.Sort(s)
	return strings.Join(s, "\n")
}

func TestRabbitMQAckAfterCommit(t *testing.T) {
	url := testenv.RabbitMQURL(t)
	queue := testenv.UniqueName("cqrs_q")
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = ch.QueueDelete(queue, false, false, false) }()
	for i := range 5 {
		body := fmt.Sprintf(`{"type":"t","payload":{"id":%d}}`, i)
		if err := ch.PublishWithContext(context.Background(), "", queue, false, false, amqp.Publishing{Body: []byte(body), DeliveryMode: amqp.Persistent}); err != nil {
			t.Fatal(err)
		}
	}
	expectAckAfterCommit(t, func() Source {
		src, err := NewRabbitMQ(RabbitMQConfig{URL: url, Queue: queue}, 100)
		if err != nil {
			t.Fatal(err)
		}
		return src
	}, 5)
	if _, err := NewRabbitMQ(RabbitMQConfig{URL: url}, 1); !errors.Is(err, ErrConfig) {
		t.Fatalf("missing queue: %v", err)
	}
}

func TestKafkaAckAfterCommit(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("events"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := range 6 {
		r := &kgo.Record{Key: []byte(fmt.Sprint(i % 3)), Value: fmt.Appendf(nil, `{"type":"t","payload":{"id":%d}}`, i)}
		if err := prod.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	expectAckAfterCommit(t, func() Source {
		src, err := NewKafka(KafkaConfig{Brokers: cluster.ListenAddrs(), Topic: "events", Group: "rosen"})
		if err != nil {
			t.Fatal(err)
		}
		return src
	}, 6)
}
