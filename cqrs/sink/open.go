package sink

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"

	"github.com/go-sql-driver/mysql"

	"github.com/rosenmesh/rosen/cqrs/rules"
)

// Open connects to one configured database. A relative SQLite path is under dataDir.
func Open(ctx context.Context, db rules.Database, dataDir string) (Store, error) {
	switch db.Type {
	case rules.DBPostgres:
		return OpenPostgres(ctx, PostgresDSN(db))
	case rules.DBMySQL:
		return OpenMySQL(ctx, MySQLDSN(db))
	case rules.DBSQLite:
		p := db.DSN
		if p == "" {
			p = db.DBName
		}
		if !filepath.IsAbs(p) && dataDir != "" {
			p = filepath.Join(dataDir, p)
		}
		return OpenSQLite(ctx, p)
	}
	return nil, fmt.Errorf("%w: type %q", ErrConfig, db.Type)
}

// PostgresDSN builds a URL from Gravity's fields (or returns DSN).
func PostgresDSN(db rules.Database) string {
	if db.DSN != "" {
		return db.DSN
	}
	u := url.URL{Scheme: "postgres", Host: hostPort(db.Host, db.Port, 5432), Path: "/" + db.DBName}
	if db.Username != "" {
		u.User = url.UserPassword(db.Username, db.Password)
		if db.Password == "" {
			u.User = url.User(db.Username)
		}
	}
	q := url.Values{}
	q.Set("sslmode", "disable")
	if db.Secure {
		q.Set("sslmode", "require")
	}
	if db.Schema != "" {
		q.Set("search_path", db.Schema)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// MySQLDSN builds a go-sql-driver DSN from Gravity's fields (or returns DSN).
func MySQLDSN(db rules.Database) string {
	if db.DSN != "" {
		return db.DSN
	}
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = db.Username, db.Password, "tcp", hostPort(db.Host, db.Port, 3306), db.DBName
	if db.Secure {
		c.TLSConfig = "true"
	}
	return c.FormatDSN()
}

func hostPort(host string, port, def int) string {
	if port == 0 {
		port = def
	}
	return host + ":" + strconv.Itoa(port)
}
