package engine

import (
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rosenmesh/rosen/cqrs/rules"
	"github.com/rosenmesh/rosen/cqrs/sink"
	"github.com/rosenmesh/rosen/cqrs/source"
)

// RuleStatus is one rule's counters (for `rosen cqrs status` and the console).
type RuleStatus struct {
	Rule        string   `json:"rule"`
	View        string   `json:"view"`
	Event       string   `json:"event"`
	Database    string   `json:"database"`
	Table       string   `json:"table"`
	Method      string   `json:"method"`
	Exporters   []string `json:"exporters,omitempty"`
	Events      uint64   `json:"events"`
	DeadLetters uint64   `json:"deadLetters"`
	LastSeq     uint64   `json:"lastSeq"`
}

// Status is the engine's state.
type Status struct {
	Batches     uint64       `json:"batches"`
	Events      uint64       `json:"events"`
	DeadLetters uint64       `json:"deadLetters"`
	LastSeq     uint64       `json:"lastSeq"`
	LastBatchAt time.Time    `json:"lastBatchAt,omitzero"`
	LastError   string       `json:"lastError,omitempty"`
	Rules       []RuleStatus `json:"rules"`
}

type statusBook struct {
	mu    sync.Mutex
	st    Status
	index map[*rules.Rule]int
}

func newStatusBook(rs []*rules.Rule) *statusBook {
	b := &statusBook{index: map[*rules.Rule]int{}}
	byLabel := map[string]int{}
	for _, r := range rs {
		i, seen := byLabel[ruleLabel(r)]
		if !seen {
			i = len(b.st.Rules)
			byLabel[ruleLabel(r)] = i
			b.st.Rules = append(b.st.Rules, RuleStatus{Rule: ruleLabel(r), View: r.ViewName(), Event: r.Event, Database: r.Database,
				Table: r.Table, Method: r.Method})
		} else if e := &b.st.Rules[i]; !slices.Contains(strings.Split(e.Method, ","), r.Method) {
			e.Method += "," + r.Method // e.g. an upsert and a filtered delete of one event into one table
		}
		e := &b.st.Rules[i]
		for _, x := range r.Exporter {
			if !slices.Contains(e.Exporters, x) {
				e.Exporters = append(e.Exporters, x)
			}
		}
		b.index[r] = i // rules of one event and table share one entry: it counts them all
	}
	return b
}

func (b *statusBook) record(ops []sink.Op, letters []letter, msgs []source.Msg) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.st.Batches++
	b.st.Events += uint64(len(msgs))
	b.st.DeadLetters += uint64(len(letters))
	b.st.LastBatchAt = time.Now().UTC()
	for _, m := range msgs {
		b.st.LastSeq = max(b.st.LastSeq, m.Seq)
	}
	for _, op := range ops {
		rs := &b.st.Rules[b.index[op.Rule]]
		rs.Events++
		rs.LastSeq = max(rs.LastSeq, op.Seq)
	}
	for _, l := range letters {
		for i := range b.st.Rules {
			if l.rule != "" && b.st.Rules[i].View == l.rule {
				b.st.Rules[i].DeadLetters++
				break
			}
		}
	}
}

func (b *statusBook) setError(s string) {
	b.mu.Lock()
	b.st.LastError = s
	b.mu.Unlock()
}

// Status is a copy of the engine's counters.
func (e *Engine) Status() Status {
	e.status.mu.Lock()
	defer e.status.mu.Unlock()
	st := e.status.st
	st.Rules = append([]RuleStatus(nil), st.Rules...)
	sort.Slice(st.Rules, func(i, j int) bool { return st.Rules[i].Rule < st.Rules[j].Rule })
	return st
}
