// Command worker is a bare CQRS worker for the crash test: the same
// service that `rosen cqrs serve` runs, without the rest of Rosen, so that
// the test can SIGKILL and restart it quickly.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/cqrs/rules"
	"github.com/rosenmesh/rosen/cqrs/service"
	"github.com/rosenmesh/rosen/cqrs/source"
)

func main() {
	var (
		dir        = flag.String("rules-dir", "", "folder with rules, databases, exporter files")
		data       = flag.String("data", "", "data folder")
		natsURL    = flag.String("nats-url", "", "NATS JetStream URL (empty: embedded under --data)")
		stream     = flag.String("stream", "ROSEN_CQRS", "event store stream")
		subject    = flag.String("subject", "rosen.cqrs.events", "event store subject prefix")
		partitions = flag.Int("partitions", 1, "event store partitions")
		worker     = flag.Int("worker", 0, "worker index")
		workers    = flag.Int("workers", 1, "workers")
		batch      = flag.Int("batch", 2000, "batch size")
	)
	flag.Parse()
	log, _ := zap.NewProduction()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	files, err := rules.DirFiles(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	svc, err := service.Open(ctx, service.Options{
		Files: files, DataDir: *data, Worker: *worker, Workers: *workers, BatchSize: *batch, Log: log,
		JetStream: source.JetStreamConfig{URL: *natsURL, Stream: *stream, Subject: *subject, Partitions: *partitions},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer svc.Close()
	if err := svc.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
