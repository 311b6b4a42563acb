package rules

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ValidIdent reports whether s is a safe table or column name.
func ValidIdent(s string) bool { return identRE.MatchString(s) }

var columnTypes = regexp.MustCompile(`^(string|text|int|integer|bigint|decimal|numeric(\(\d{1,2},\d{1,2}\))?|boolean|bool|float|double|timestamp|json)$`)

func validateRule(r *Rule, cfg *Config) error {
	p := rulePath(r.index)
	if r.Table == "" {
		return cfgErr(r.file, p+".table", ErrMissing)
	}
	if !ValidIdent(r.Table) {
		return cfgErr(r.file, p+".table", fmt.Errorf("%w: %q is not a plain identifier", ErrInvalid, r.Table))
	}
	if r.Name != "" && !ValidIdent(r.Name) {
		return cfgErr(r.file, p+".name", fmt.Errorf("%w: %q is not a plain identifier", ErrInvalid, r.Name))
	}
	switch r.Method {
	case "":
		r.Method = MethodUpsert
	case MethodInsert, MethodUpsert, MethodUpdate, MethodDelete:
	default:
		return cfgErr(r.file, p+".method", fmt.Errorf("%w: %q (want insert, update, upsert or delete)", ErrInvalid, r.Method))
	}
	if r.Database == "" {
		return cfgErr(r.file, p+".database", fmt.Errorf("%w (and there is not exactly one database to default to)", ErrMissing))
	}
	if _, ok := cfg.Databases[r.Database]; !ok {
		return cfgErr(r.file, p+".database", fmt.Errorf("%w: database %q is not in the databases config", ErrUnknownRef, r.Database))
	}
	for i, e := range r.Exporter {
		if _, ok := cfg.Exporters[e]; !ok {
			return cfgErr(r.file, p+".exporter["+strconv.Itoa(i)+"]", fmt.Errorf("%w: exporter %q is not in the exporter config", ErrUnknownRef, e))
		}
	}
	if len(r.Mapping) == 0 {
		return cfgErr(r.file, p+".mapping", ErrMissing)
	}
	targets := map[string]bool{}
	primary := 0
	for i, m := range r.Mapping {
		mp := p + ".mapping[" + strconv.Itoa(i) + "]"
		if m.Target == "" {
			return cfgErr(r.file, mp+".target", ErrMissing)
		}
		if !ValidIdent(m.Target) {
			return cfgErr(r.file, mp+".target", fmt.Errorf("%w: %q is not a plain identifier", ErrInvalid, m.Target))
		}
		if targets[strings.ToLower(m.Target)] {
			return cfgErr(r.file, mp+".target", fmt.Errorf("%w: column %q is mapped twice", ErrInvalid, m.Target))
		}
		targets[strings.ToLower(m.Target)] = true
		if (m.Source == "") == (m.Expr == "") {
			return cfgErr(r.file, mp, fmt.Errorf("%w: exactly one of source and expr is required", ErrMissing))
		}
		if m.Primary && m.Expr != "" {
			return cfgErr(r.file, mp+".expr", fmt.Errorf("%w: a primary-key column takes a source path, not an expression", ErrInvalid))
		}
		if m.Type != "" && !columnTypes.MatchString(strings.ToLower(m.Type)) {
			return cfgErr(r.file, mp+".type", fmt.Errorf("%w: column type %q", ErrInvalid, m.Type))
		}
		if r.CreateTable && m.Type == "" {
			return cfgErr(r.file, mp+".type", fmt.Errorf("%w: createTable needs a type for every column", ErrMissing))
		}
		if m.Primary {
			primary++
		}
	}
	if primary == 0 {
		return cfgErr(r.file, p+".mapping", fmt.Errorf("%w: no mapping is marked primary", ErrMissing))
	}
	prog, err := compileRule(r)
	if err != nil {
		return err
	}
	r.prog = prog
	r.setKinds()
	return nil
}

func validateDatabase(file, path string, db Database) error {
	switch db.Type {
	case DBPostgres, DBMySQL:
		if db.DSN == "" && db.Host == "" {
			return cfgErr(file, path+".host", ErrMissing)
		}
		if db.DSN == "" && db.DBName == "" {
			return cfgErr(file, path+".dbName", ErrMissing)
		}
	case DBSQLite:
		if db.DSN == "" && db.DBName == "" {
			return cfgErr(file, path+".dbName", fmt.Errorf("%w: the database file", ErrMissing))
		}
	case "":
		return cfgErr(file, path+".type", ErrMissing)
	default:
		return cfgErr(file, path+".type", fmt.Errorf("%w: database type %q (want postgres, mysql or sqlite)", ErrInvalid, db.Type))
	}
	if db.Port < 0 || db.Port > 65535 {
		return cfgErr(file, path+".port", fmt.Errorf("%w: port %d", ErrInvalid, db.Port))
	}
	return nil
}

func validateExporter(file, path string, ex Exporter) error {
	switch ex.Type {
	case ExpKafka:
		if ex.Host == "" || ex.Port == 0 {
			return cfgErr(file, path+".host", fmt.Errorf("%w: kafka needs host and port", ErrMissing))
		}
		if ex.Topic == "" {
			return cfgErr(file, path+".topic", ErrMissing)
		}
	case ExpNATS:
		if ex.URL == "" && ex.Host == "" {
			return cfgErr(file, path+".url", fmt.Errorf("%w: nats needs url or host", ErrMissing))
		}
		if ex.Subject == "" {
			return cfgErr(file, path+".subject", ErrMissing)
		}
	case ExpREST:
		if ex.URL == "" {
			return cfgErr(file, path+".url", ErrMissing)
		}
		u, err := url.Parse(ex.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cfgErr(file, path+".url", fmt.Errorf("%w: %q is not an http(s) URL", ErrInvalid, ex.URL))
		}
	case "":
		return cfgErr(file, path+".type", ErrMissing)
	default:
		return cfgErr(file, path+".type", fmt.Errorf("%w: exporter type %q (want kafka, nats or restful_api)", ErrInvalid, ex.Type))
	}
	return nil
}
