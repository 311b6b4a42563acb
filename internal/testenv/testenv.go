// Package testenv gives tests the real services of this machine (PostgreSQL,
// MariaDB, Redis, RabbitMQ, NATS JetStream). A test that needs one calls the
// function for it: on a laptop without the service the test is skipped with a
// clear message; under CI=true it fails, because CI must run it.
package testenv

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// CI reports whether the tests run under CI (CI=true), where every service must be present.
func CI() bool { return os.Getenv("CI") == "true" }

// Require checks that a TCP service answers at addr, or skips (fails under CI).
func Require(t testing.TB, name, addr string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		_ = conn.Close()
		return
	}
	if CI() {
		t.Fatalf("%s is required under CI=true but %s does not answer: %v (.ci/run starts it)", name, addr, err)
	}
	t.Skipf("%s not available at %s: %v", name, addr, err)
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// PostgresDSN is a URL for the local PostgreSQL (trust auth, database test).
// Override with ROSEN_TEST_POSTGRES.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	Require(t, "PostgreSQL", env("ROSEN_TEST_POSTGRES_ADDR", "127.0.0.1:5432"))
	return env("ROSEN_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
}

// MySQLDSN is a go-sql-driver/mysql DSN for the local MariaDB (root, empty password, database test).
// Override with ROSEN_TEST_MYSQL.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	Require(t, "MariaDB", env("ROSEN_TEST_MYSQL_ADDR", "127.0.0.1:3306"))
	return env("ROSEN_TEST_MYSQL", "root@tcp(127.0.0.1:3306)/test?parseTime=true")
}

// RedisAddr is the local Redis (host:port).
func RedisAddr(t testing.TB) string {
	t.Helper()
	addr := env("ROSEN_TEST_REDIS", "127.0.0.1:6379")
	Require(t, "Redis", addr)
	return addr
}

// NATSURL is the local NATS server with JetStream.
func NATSURL(t testing.TB) string {
	t.Helper()
	Require(t, "NATS", env("ROSEN_TEST_NATS_ADDR", "127.0.0.1:4222"))
	return env("ROSEN_TEST_NATS", "nats://127.0.0.1:4222")
}

// RabbitMQURL is the local RabbitMQ (guest/guest).
func RabbitMQURL(t testing.TB) string {
	t.Helper()
	Require(t, "RabbitMQ", env("ROSEN_TEST_RABBITMQ_ADDR", "127.0.0.1:5672"))
	return env("ROSEN_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672/")
}

var seq atomic.Int64

// UniqueName returns a name (lower case, [a-z0-9_]) that no other test in
// this or a concurrent run uses, for tables, schemas, streams and queues.
func UniqueName(prefix string) string {
	n := seq.Add(1)
	return strings.ToLower(fmt.Sprintf("%s_%d_%d_%d", prefix, os.Getpid(), time.Now().UnixNano()%1_000_000_000, n))
}
