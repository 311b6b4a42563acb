// Package exporter emits committed projections to Kafka, NATS or a REST
// endpoint. Emit returns only when the destination confirmed every record;
// the engine retries a failed Emit and acknowledges the source after it,
// except an ErrPermanent one (retrying cannot help): those records are
// dead-lettered and the pipeline goes on.
package exporter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/rosenmesh/rosen/cqrs/rules"
)

// Sentinel errors.
var (
	ErrDelivery = errors.New("exporter: delivery not confirmed")
	ErrConfig   = errors.New("exporter: bad configuration")
	// ErrPermanent is a failure that the same records would meet again: a
	// record that cannot be encoded, a REST answer 4xx other than 408 and
	// 429, a record larger than the destination takes.
	ErrPermanent = errors.New("exporter: permanent failure")
)

// Record is one committed projection: what happened to which row.
type Record struct {
	EventID  string         `json:"eventId,omitempty"`
	Event    string         `json:"event"`
	Seq      uint64         `json:"seq,omitempty"`
	View     string         `json:"view"`
	Database string         `json:"database"`
	Table    string         `json:"table"`
	Method   string         `json:"method"`
	Key      string         `json:"key"`
	Row      map[string]any `json:"row"`
}

// Marshal is the record's JSON (numbers keep their exact text).
func (r Record) Marshal() ([]byte, error) { return json.Marshal(r) }

// Exporter delivers records at least once.
type Exporter interface {
	Emit(ctx context.Context, recs []Record) error
	Close() error
}

// Open builds an exporter from its config.
func Open(name string, cfg rules.Exporter) (Exporter, error) {
	switch cfg.Type {
	case rules.ExpREST:
		return NewREST(cfg), nil
	case rules.ExpNATS:
		return NewNATS(cfg)
	case rules.ExpKafka:
		return NewKafka(cfg)
	}
	return nil, fmt.Errorf("%w: exporter %s: type %q", ErrConfig, name, cfg.Type)
}
