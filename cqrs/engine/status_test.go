package engine

import (
	"testing"

	"github.com/rosenmesh/rosen/cqrs/rules"
	"github.com/rosenmesh/rosen/cqrs/sink"
)

// Two rules of one event into one table (an upsert and a filtered delete)
// share one status entry, and it counts both; the entry of the first was
// left at zero when each rule had its own entry but only the last got counts.
func TestStatusCountsEveryRuleOfOneTable(t *testing.T) {
	up := &rules.Rule{Event: "user", Database: "db", Table: "users", Method: "upsert", Exporter: []string{"e1"}}
	del := &rules.Rule{Event: "user", Database: "db", Table: "users", Method: "delete", Exporter: []string{"e2"}}
	other := &rules.Rule{Event: "order", Database: "db", Table: "orders", Method: "insert"}
	b := newStatusBook([]*rules.Rule{up, del, other})
	b.record([]sink.Op{{Rule: up, Seq: 1}, {Rule: del, Seq: 2}, {Rule: up, Seq: 3}, {Rule: other, Seq: 4}}, nil, nil)
	if len(b.st.Rules) != 2 {
		t.Fatalf("entries %+v, want one per event and table", b.st.Rules)
	}
	users := b.st.Rules[0]
	if users.Events != 3 || users.LastSeq != 3 || users.Method != "upsert,delete" || len(users.Exporters) != 2 {
		t.Errorf("users entry %+v, want 3 events, last seq 3, methods upsert,delete, exporters e1 e2", users)
	}
	if o := b.st.Rules[1]; o.Events != 1 || o.LastSeq != 4 {
		t.Errorf("orders entry %+v", o)
	}
}
