package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// baseline writes the same number of rows straight into the database from
// one client: COPY into PostgreSQL, multi-row INSERTs of 1000 into MariaDB.
// (Plain inserts of distinct keys: no upsert, no watermark, no event store.)
// cpu holds the meter at the start on entry and the phase's CPU on return.
func baseline(ctx context.Context, c config, target, table string, cpu *cpuMeter) (time.Duration, error) {
	rows := make([][]any, c.events)
	for i := range rows {
		rows[i] = []any{int64(i + 1), fmt.Sprintf("user %d", i), fmt.Sprintf("u%d@example.com", i), fmt.Sprintf("%d.%02d", i%1_000_000, i%100), i%2 == 0}
	}
	if target == "postgres" {
		conn, err := pgx.Connect(ctx, c.pgURL)
		if err != nil {
			return 0, err
		}
		defer conn.Close(ctx)
		start := time.Now()
		_, err = conn.CopyFrom(ctx, pgx.Identifier{table}, []string{"id", "name", "email", "balance", "active"}, pgx.CopyFromRows(rows))
		took := time.Since(start)
		*cpu = readCPU().since(*cpu) // before the backend exits with its CPU time
		return took, err
	}
	db, err := sql.Open("mysql", c.myDSN+"?interpolateParams=true")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	start := time.Now()
	for lo := 0; lo < len(rows); lo += 1000 {
		hi := min(len(rows), lo+1000)
		args := make([]any, 0, 5*(hi-lo))
		for _, r := range rows[lo:hi] {
			args = append(args, r...)
		}
		q := "INSERT INTO " + table + " (id, name, email, balance, active) VALUES " + strings.TrimSuffix(strings.Repeat("(?,?,?,?,?),", hi-lo), ",")
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			return 0, err
		}
	}
	took := time.Since(start)
	*cpu = readCPU().since(*cpu)
	return took, nil
}
