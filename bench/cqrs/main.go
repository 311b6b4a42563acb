// Command cqrs measures the CQRS engine: events/s from the JetStream event
// store (embedded, in-process) into PostgreSQL and into MariaDB, p99
// end-to-end lag at a steady publish rate, and the raw baseline of each
// database from one client (COPY for PostgreSQL, multi-row INSERT for
// MariaDB). It talks only to 127.0.0.1 and stops by itself.
//
//	go run ./bench/cqrs -events 200000 -rate 20000 -lag-seconds 10
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

type config struct {
	events     int
	keys       int
	rate       int
	lagSeconds int
	partitions int
	batch      int
	pgURL      string
	myDSN      string
	targets    string
	cpuProfile string
	memProfile string
	repeat     int
}

func main() {
	var c config
	flag.IntVar(&c.events, "events", 200_000, "events for the throughput runs")
	flag.IntVar(&c.keys, "keys", 50_000, "distinct row keys")
	flag.IntVar(&c.rate, "rate", 20_000, "publish rate (events/s) for the lag run")
	flag.IntVar(&c.lagSeconds, "lag-seconds", 10, "duration of the lag run")
	flag.IntVar(&c.partitions, "partitions", 2, "event-store partitions (one consumer each)")
	flag.IntVar(&c.repeat, "repeat", 3, "rounds of (raw baseline, engine) per database; the median is reported")
	flag.IntVar(&c.batch, "batch", 0, "engine batch size (0: the engine default)")
	flag.StringVar(&c.pgURL, "postgres", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL URL")
	flag.StringVar(&c.myDSN, "mysql", "root@tcp(127.0.0.1:3306)/test", "MariaDB DSN")
	flag.StringVar(&c.targets, "targets", "postgres,mysql", "databases to measure")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the first engine throughput phase here")
	flag.StringVar(&c.memProfile, "memprofile", "", "write an allocation profile (since the start of the first engine throughput phase) here")
	flag.Parse()
	if c.memProfile != "" {
		runtime.MemProfileRate = 64 << 10
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
