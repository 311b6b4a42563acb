package rules

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Files names the configuration files to load. Several rules files are
// merged (see mergeFragments); databases and exporters files are unioned.
type Files struct {
	Rules     []string
	Databases []string
	Exporters []string
}

// DirFiles finds the configuration in one folder: rules*.{json,yaml,yml},
// databases*.{…} and exporter*.{…}.
func DirFiles(dir string) (Files, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Files{}, fmt.Errorf("rules: read %s: %w", dir, err)
	}
	var f Files
	for _, e := range entries {
		name := e.Name()
		ext := strings.ToLower(filepath.Ext(name))
		if e.IsDir() || (ext != ".json" && ext != ".yaml" && ext != ".yml") {
			continue
		}
		p := filepath.Join(dir, name)
		switch {
		case strings.HasPrefix(name, "rules"):
			f.Rules = append(f.Rules, p)
		case strings.HasPrefix(name, "databases"):
			f.Databases = append(f.Databases, p)
		case strings.HasPrefix(name, "exporter"):
			f.Exporters = append(f.Exporters, p)
		}
	}
	sort.Strings(f.Rules)
	return f, nil
}

// LoadDir loads and validates the configuration in a folder.
func LoadDir(dir string) (*Config, error) {
	f, err := DirFiles(dir)
	if err != nil {
		return nil, err
	}
	return Load(f)
}

// Load reads, merges and validates the configuration files.
func Load(f Files) (*Config, error) {
	cfg := &Config{Databases: map[string]Database{}, Exporters: map[string]Exporter{}}
	dbFile := map[string]string{}
	for _, p := range f.Databases {
		var df DatabasesFile
		if err := readStrict(p, &df); err != nil {
			return nil, err
		}
		for name, db := range df.Databases {
			if prev, dup := dbFile[name]; dup {
				return nil, cfgErr(p, "$.databases."+name, fmt.Errorf("%w: database %q is also defined in %s", ErrInvalid, name, prev))
			}
			dbFile[name] = p
			if err := validateDatabase(p, "$.databases."+name, db); err != nil {
				return nil, err
			}
			cfg.Databases[name] = db
		}
	}
	for _, p := range f.Exporters {
		var ef ExportersFile
		if err := readStrict(p, &ef); err != nil {
			return nil, err
		}
		for name, ex := range ef.Exporter {
			if err := validateExporter(p, "$.exporter."+name, ex); err != nil {
				return nil, err
			}
			cfg.Exporters[name] = ex
		}
	}
	var all []*Rule
	for _, p := range f.Rules {
		var rf RulesFile
		if err := readStrict(p, &rf); err != nil {
			return nil, err
		}
		for i := range rf.Rules {
			r := rf.Rules[i]
			r.file, r.index = p, i
			all = append(all, &r)
		}
	}
	rules, err := mergeFragments(all, cfg.Databases)
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		if err := validateRule(r, cfg); err != nil {
			return nil, err
		}
	}
	if err := checkViews(rules); err != nil {
		return nil, err
	}
	shareKinds(rules)
	cfg.Rules = rules
	return cfg, nil
}

func readStrict(p string, out any) error {
	data, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	return decodeStrict(p, data, out)
}

// mergeFragments joins rules split over several files, as in the seed: a
// complete rule (table and mapping) is a template; a fragment with only event,
// database and exporters inherits the template of its event. A template
// without a database that fragments use is not a rule of its own; one that no
// fragment uses takes the only database there is. Rules that end up with the
// same event, database and table are one rule with the union of exporters.
func mergeFragments(all []*Rule, dbs map[string]Database) ([]*Rule, error) {
	templates := map[string][]*Rule{}
	for _, r := range all {
		if r.Event == "" {
			return nil, cfgErr(r.file, rulePath(r.index)+".event", ErrMissing)
		}
		if r.Table != "" || len(r.Mapping) > 0 {
			templates[r.Event] = append(templates[r.Event], r)
		}
	}
	used := map[*Rule]bool{}
	var out []*Rule
	for _, r := range all {
		if r.Table != "" || len(r.Mapping) > 0 {
			continue
		}
		ts := templates[r.Event]
		if len(ts) != 1 {
			return nil, cfgErr(r.file, rulePath(r.index), fmt.Errorf("%w: rule for %q has no table or mapping and %d complete rules for that event to inherit them from (want 1)", ErrMissing, r.Event, len(ts)))
		}
		t := ts[0]
		used[t] = true
		m := *t
		m.file, m.index = r.file, r.index
		if r.Database != "" {
			m.Database = r.Database
		}
		m.Exporter = append(append([]string(nil), t.Exporter...), r.Exporter...)
		if r.Name != "" {
			m.Name = r.Name
		}
		if r.Method != "" {
			m.Method = r.Method
		}
		if r.Filter != "" {
			m.Filter = r.Filter
		}
		out = append(out, &m)
	}
	for _, r := range all {
		if r.Table == "" && len(r.Mapping) == 0 {
			continue
		}
		if r.Database == "" && used[r] {
			continue
		}
		if r.Database == "" && len(dbs) == 1 {
			for name := range dbs {
				r.Database = name
			}
		}
		out = append(out, r)
	}
	// Union the exporters of rules that are the same but for them (a
	// fragment and its template naming the same database). Rules of one
	// event and table that differ (an upsert and a delete with exclusive
	// filters) stay apart: each event goes through both, in file order.
	seen := map[string][]*Rule{}
	var merged []*Rule
	for _, r := range out {
		k := r.Event + "\x00" + r.Database + "\x00" + r.Table + "\x00" + r.Name
		if prev := sameRule(seen[k], r); prev != nil {
			prev.Exporter = unionStrings(prev.Exporter, r.Exporter)
			continue
		}
		seen[k] = append(seen[k], r)
		merged = append(merged, r)
	}
	sort.SliceStable(merged, func(i, j int) bool {
		if merged[i].file != merged[j].file {
			return merged[i].file < merged[j].file
		}
		return merged[i].index < merged[j].index
	})
	return merged, nil
}

// sameRule is the rule of rs that does what r does (exporters aside): same
// event, database, table, view, method, filter, createTable and mapping.
func sameRule(rs []*Rule, r *Rule) *Rule {
	for _, p := range rs {
		if p.Event == r.Event && p.Database == r.Database && p.Table == r.Table && p.Name == r.Name &&
			methodOf(p) == methodOf(r) && p.Filter == r.Filter && p.CreateTable == r.CreateTable && slices.Equal(p.Mapping, r.Mapping) {
			return p
		}
	}
	return nil
}

func methodOf(r *Rule) string {
	if r.Method == "" {
		return MethodUpsert
	}
	return r.Method
}

func unionStrings(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, s := range b {
		found := false
		for _, x := range out {
			found = found || x == s
		}
		if !found {
			out = append(out, s)
		}
	}
	return out
}

// checkViews makes sure that the rules feeding one view of one database
// agree on its table and primary key (they share its offsets).
func checkViews(rs []*Rule) error {
	first := map[string]*Rule{}
	for _, r := range rs {
		k := r.Database + "\x00" + r.ViewName()
		f, ok := first[k]
		if !ok {
			first[k] = r
			continue
		}
		if f.Table != r.Table || strings.Join(f.PrimaryColumns(), ",") != strings.Join(r.PrimaryColumns(), ",") {
			return cfgErr(r.file, rulePath(r.index), fmt.Errorf("%w: view %q in database %q is %s(%s) in %s but %s(%s) here",
				ErrInvalid, r.ViewName(), r.Database, f.Table, strings.Join(f.PrimaryColumns(), ","), f.Where(), r.Table, strings.Join(r.PrimaryColumns(), ",")))
		}
	}
	return nil
}
