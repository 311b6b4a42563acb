package source

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rosenmesh/rosen/cqrs/event"
)

// JetStreamConfig describes the event store.
type JetStreamConfig struct {
	// URL of an external NATS cluster; empty runs an embedded server under DataDir.
	URL string
	// DataDir holds the embedded server's JetStream files.
	DataDir string
	// Listen is the embedded server's client address ("127.0.0.1:0" picks a
	// port); empty means in-process connections only.
	Listen string
	// Stream and Subject name the event store; events go to Subject.<partition>.<type>.
	Stream  string
	Subject string
	// Partitions splits the subjects by key for scale-out (default 1).
	Partitions int
	// DeadLetterStream holds rejected events under DeadLetterSubject.<rule>.
	DeadLetterStream  string
	DeadLetterSubject string
}

func (c *JetStreamConfig) defaults() {
	if c.Stream == "" {
		c.Stream = "ROSEN_CQRS"
	}
	if c.Subject == "" {
		c.Subject = "rosen.cqrs.events"
	}
	if c.Partitions < 1 {
		c.Partitions = 1
	}
	if c.DeadLetterStream == "" {
		c.DeadLetterStream = c.Stream + "_DLQ"
	}
	if c.DeadLetterSubject == "" {
		c.DeadLetterSubject = c.Subject + "_dlq"
	}
}

// EventStore is the JetStream stream that keeps every event (the log that
// views are folds of), with its dead-letter stream.
type EventStore struct {
	cfg    JetStreamConfig
	ns     *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	id     string // the stream's identity (ID)
	// dlqMax and storeMax are the streams' own message size limits (≤ 0: none).
	dlqMax, storeMax int32
}

// OpenEventStore connects (or starts the embedded server) and makes sure both streams exist.
func OpenEventStore(ctx context.Context, cfg JetStreamConfig) (*EventStore, error) {
	cfg.defaults()
	s := &EventStore{cfg: cfg}
	var err error
	if cfg.URL == "" {
		if s.ns, err = startEmbedded(cfg); err != nil {
			return nil, err
		}
		s.nc, err = nats.Connect("", nats.InProcessServer(s.ns), nats.Name("rosen-cqrs"))
	} else {
		s.nc, err = nats.Connect(cfg.URL, nats.Name("rosen-cqrs"), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("source: connect to NATS: %w", err)
	}
	if s.js, err = jetstream.New(s.nc); err != nil {
		s.Close()
		return nil, fmt.Errorf("source: jetstream: %w", err)
	}
	meta, err := s.storeMetadata(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.stream, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: cfg.Stream, Subjects: []string{cfg.Subject + ".*.*"}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, Duplicates: 2 * time.Minute, Metadata: meta,
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("source: event store stream %s: %w", cfg.Stream, err)
	}
	info := s.stream.CachedInfo()
	if s.id = info.Config.Metadata[storeIDKey]; s.id == "" { // a server before 2.10 keeps no metadata
		s.id = "created-" + info.Created.UTC().Format(time.RFC3339Nano)
	}
	dlq, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: cfg.DeadLetterStream, Subjects: []string{cfg.DeadLetterSubject + ".>"}, Storage: jetstream.FileStorage,
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("source: dead-letter stream %s: %w", cfg.DeadLetterStream, err)
	}
	s.dlqMax = dlq.CachedInfo().Config.MaxMsgSize
	s.storeMax = s.stream.CachedInfo().Config.MaxMsgSize
	return s, nil
}

// storeIDKey is the event store stream's metadata key holding its identity.
const storeIDKey = "rosen-store-id"

// storeMetadata is the stream's metadata as it is (an update replaces it),
// with an identity made up when the stream is new or has none yet.
func (s *EventStore) storeMetadata(ctx context.Context) (map[string]string, error) {
	meta := map[string]string{}
	st, err := s.js.Stream(ctx, s.cfg.Stream)
	switch {
	case err == nil:
		for k, v := range st.CachedInfo().Config.Metadata {
			if !strings.HasPrefix(k, "_nats.") { // the server's own
				meta[k] = v
			}
		}
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, fmt.Errorf("source: event store stream %s: %w", s.cfg.Stream, err)
	}
	if meta[storeIDKey] == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		meta[storeIDKey] = hex.EncodeToString(b[:])
	}
	return meta, nil
}

// ID is the event store stream's identity: made up when the stream is
// created and kept in its metadata, so a stream recreated under the same
// name (a new --data) has another. Views record it beside their offsets,
// which are sequences of one stream and mean nothing in another.
func (s *EventStore) ID() string { return s.id }

func startEmbedded(cfg JetStreamConfig) (*server.Server, error) {
	dir := cfg.DataDir
	if dir == "" {
		return nil, fmt.Errorf("%w: the embedded event store needs a data folder", ErrConfig)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	opts := &server.Options{ServerName: "rosen-cqrs", JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true, DontListen: cfg.Listen == ""}
	if cfg.Listen != "" {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("%w: listen %q: %w", ErrConfig, cfg.Listen, err)
		}
		opts.Host = host
		if opts.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("%w: listen %q: %w", ErrConfig, cfg.Listen, err)
		}
		if opts.Port == 0 {
			opts.Port = server.RANDOM_PORT
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("source: embedded NATS: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("source: embedded NATS did not start")
	}
	return ns, nil
}

// ClientURL is the embedded server's address when it listens ("" otherwise).
func (s *EventStore) ClientURL() string {
	if s.ns == nil || s.cfg.Listen == "" {
		return s.cfg.URL
	}
	return s.ns.ClientURL()
}

// Conn is the NATS connection (exporters of type nats may share it).
func (s *EventStore) Conn() *nats.Conn { return s.nc }

// Config is the effective configuration.
func (s *EventStore) Config() JetStreamConfig { return s.cfg }

// Close drains the connection and stops the embedded server.
func (s *EventStore) Close() {
	if s.nc != nil {
		s.nc.Close()
	}
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	}
}

var tokenRE = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// SubjectFor is the subject an event of this type and key is stored under.
func (s *EventStore) SubjectFor(typ, key string) string {
	return s.cfg.Subject + "." + strconv.Itoa(Partition(key, s.cfg.Partitions)) + "." + tokenRE.ReplaceAllString(typ, "_")
}

// ErrTooLarge is an event larger than the event store takes in one message.
var ErrTooLarge = errors.New("source: event too large for the event store")

// Check validates an envelope as Publish would store it: it decodes, and
// with its headers it fits the connection's maximum payload and the
// stream's maximum message size (else ErrTooLarge).
func (s *EventStore) Check(data []byte) (*event.Event, error) {
	ev, err := event.Decode(data)
	if err != nil {
		return nil, err
	}
	if size, limit := s.messageSize(ev, data), s.MaxEventSize(); size > limit {
		return nil, fmt.Errorf("%w: its message would be %d bytes, the event store takes at most %d (NATS max_payload)", ErrTooLarge, size, limit)
	}
	return ev, nil
}

// MaxEventSize is the largest message the event store takes (headers included).
func (s *EventStore) MaxEventSize() int64 {
	limit := s.nc.MaxPayload()
	if s.storeMax > 0 && int64(s.storeMax) < limit {
		limit = int64(s.storeMax)
	}
	return limit
}

// messageSize is the event's message size as Publish sends it: data and the
// Nats-Msg-Id header.
func (s *EventStore) messageSize(ev *event.Event, data []byte) int64 {
	if ev.ID == "" {
		return int64(len(data))
	}
	m := nats.Msg{Header: nats.Header{jetstream.MsgIDHeader: []string{ev.ID}}, Data: data}
	return int64(m.Size())
}

// Publish validates an envelope (Check) and stores it; it returns the
// stream sequence. An event id makes the publish idempotent within two minutes.
func (s *EventStore) Publish(ctx context.Context, data []byte) (uint64, error) {
	ev, err := s.Check(data)
	if err != nil {
		return 0, err
	}
	key := ev.Key
	if key == "" {
		key = ev.ID
	}
	var opts []jetstream.PublishOpt
	if ev.ID != "" {
		opts = append(opts, jetstream.WithMsgID(ev.ID))
	}
	ack, err := s.js.Publish(ctx, s.SubjectFor(ev.Type, key), data, opts...)
	if errors.Is(err, nats.ErrMaxPayload) {
		return 0, fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	if err != nil {
		return 0, fmt.Errorf("source: publish: %w", err)
	}
	return ack.Sequence, nil
}

// LastSeq is the event store's last sequence.
func (s *EventStore) LastSeq(ctx context.Context) (uint64, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("source: stream info: %w", err)
	}
	return info.State.LastSeq, nil
}

// MaxReason bounds a dead letter's reason header: a database error may quote
// the whole rejected value (a 600 KB number), and reason plus event must fit
// in one NATS message.
const MaxReason = 4 << 10

// TruncateReason cuts a reason to at most MaxReason bytes (on a UTF-8
// boundary), marking the cut.
func TruncateReason(reason string) string {
	const mark = "… (truncated)"
	if len(reason) <= MaxReason {
		return reason
	}
	cut := MaxReason - len(mark)
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut] + mark
}

// DeadLetter stores a rejected event with its reason, waiting for the
// server's ack. The reason is cut to MaxReason. When the letter would still
// exceed the connection's maximum payload (an event accepted at just under
// it), the event's data is left out and the letter names it instead
// (Rosen-Omitted, Rosen-Size, and the event's id, type and key when it
// decodes): the event itself stays in the event store at Rosen-Seq
// (Rosen-Stream), so nothing vanishes and the pipeline is not blocked by a
// letter that can never be stored.
func (s *EventStore) DeadLetter(ctx context.Context, rule string, seq uint64, reason string, data []byte) error {
	if rule == "" {
		rule = "_"
	}
	msg := nats.NewMsg(s.cfg.DeadLetterSubject + "." + tokenRE.ReplaceAllString(rule, "_"))
	msg.Data = data
	msg.Header.Set("Rosen-Reason", TruncateReason(reason))
	msg.Header.Set("Rosen-Seq", strconv.FormatUint(seq, 10))
	msg.Header.Set("Rosen-Rule", rule)
	if int64(msg.Size()-len(msg.Subject)) > s.maxLetter() {
		msg.Data = nil
		msg.Header.Set("Rosen-Omitted", "event data too large for a dead letter; read it from the event store at Rosen-Seq")
		msg.Header.Set("Rosen-Size", strconv.Itoa(len(data)))
		msg.Header.Set("Rosen-Stream", s.cfg.Stream)
		if ev, err := event.Decode(data); err == nil {
			for k, v := range map[string]string{"Rosen-Event-Id": ev.ID, "Rosen-Event-Type": ev.Type, "Rosen-Event-Key": ev.Key} {
				if v != "" {
					msg.Header.Set(k, TruncateReason(v))
				}
			}
		}
	}
	if _, err := s.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("source: dead letter: %w", err)
	}
	return nil
}

// maxLetter is the largest dead letter (headers and data) the connection
// and the dead-letter stream take.
func (s *EventStore) maxLetter() int64 {
	limit := s.nc.MaxPayload()
	if s.dlqMax > 0 && int64(s.dlqMax) < limit {
		limit = int64(s.dlqMax)
	}
	return limit
}

// DeadLetterCount is how many dead letters are stored.
func (s *EventStore) DeadLetterCount(ctx context.Context) (uint64, error) {
	st, err := s.js.Stream(ctx, s.cfg.DeadLetterStream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// JetStream is the jetstream context (tests read dead letters through it).
func (s *EventStore) JetStream() jetstream.JetStream { return s.js }

// Letter is one stored dead letter, as DeadLetters lists it.
type Letter struct {
	Seq      uint64          `json:"seq"`      // in the dead-letter stream
	EventSeq uint64          `json:"eventSeq"` // the event's sequence in the event store (Rosen-Seq)
	Rule     string          `json:"rule"`
	Reason   string          `json:"reason"`
	Time     time.Time       `json:"time"`
	Omitted  string          `json:"omitted,omitempty"` // why Event is absent (too large to store twice)
	Event    json.RawMessage `json:"event,omitempty"`   // the event as published, when it is JSON
}

// MaxLetterScan bounds how many stored letters one DeadLetters call reads
// (newest first) looking for those of a view.
const MaxLetterScan = 100_000

// DeadLetters returns up to limit dead letters, newest first, of view (as
// DeadLetter files them; any when empty) stored before the dead-letter
// sequence before (0: from the newest).
func (s *EventStore) DeadLetters(ctx context.Context, view string, limit int, before uint64) ([]Letter, error) {
	st, err := s.js.Stream(ctx, s.cfg.DeadLetterStream)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	last := info.State.LastSeq
	if before > 0 && before-1 < last {
		last = before - 1
	}
	subject := ""
	if view != "" {
		subject = s.cfg.DeadLetterSubject + "." + tokenRE.ReplaceAllString(view, "_")
	}
	out := []Letter{}
	for seq, scanned := last, 0; seq >= info.State.FirstSeq && seq > 0 && len(out) < limit && scanned < MaxLetterScan; seq, scanned = seq-1, scanned+1 {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted
		}
		if err != nil {
			return out, err
		}
		if subject != "" && m.Subject != subject {
			continue
		}
		l := Letter{Seq: m.Sequence, Rule: m.Header.Get("Rosen-Rule"), Reason: m.Header.Get("Rosen-Reason"), Time: m.Time,
			Omitted: m.Header.Get("Rosen-Omitted")}
		l.EventSeq, _ = strconv.ParseUint(m.Header.Get("Rosen-Seq"), 10, 64)
		if json.Valid(m.Data) {
			l.Event = json.RawMessage(m.Data)
		}
		out = append(out, l)
	}
	return out, nil
}
