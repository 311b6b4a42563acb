package source

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// jsPull reads a durable AckAll consumer with plain pull requests on one
// subscription, without the jetstream iterator's per-message timers and
// metadata: messages are appended to a buffer as they arrive, the stream
// and delivery sequences are read straight from the reply subject, and a
// batch costs one acknowledgement (of its last message, which AckAll
// extends to everything before it) and one timer.
//
// A message lost between the server and this client (a reconnect, for one)
// shows as a gap in the delivery sequence. Acknowledging anything past it
// would acknowledge the lost message too, so delivery stops at the gap; once
// every batch handed out before it is acknowledged, the consumer is created
// again from its ack floor and the rest comes again.
type jsPull struct {
	store      *EventStore
	name       string
	partitions []int
	linger     time.Duration
	lanes      []string
	window     int           // messages asked for and not yet received, at most
	expires    time.Duration // of a pull request
	heartbeat  time.Duration // idle heartbeat the server sends while a request waits

	wake chan struct{} // a message, status or acknowledgement arrived

	mu        sync.Mutex
	sub       *nats.Subscription
	api       string // the consumer's next-message subject
	buf       []Msg
	replies   []string // ack subjects, by buf index
	asked     int      // messages requested and not yet delivered or expired
	want      int      // the batch size Next waits for
	active    bool     // something arrived since the heartbeat watchdog last looked
	lastDSeq  uint64   // the last delivery (consumer) sequence
	gap       bool     // a delivery sequence was skipped: stop there, then start again
	delivered uint64   // the last stream sequence handed out in a batch
	acked     uint64   // the last stream sequence acknowledged
	err       error    // terminal
	closed    bool
}

// Pull request sizes: the window keeps the server a batch ahead of the engine.
const (
	pullWindow    = 16384
	pullExpires   = 30 * time.Second
	pullHeartbeat = 5 * time.Second
)

func (s *EventStore) pullConsumer(ctx context.Context, name string, partitions []int, linger time.Duration) (*jsPull, error) {
	j := &jsPull{store: s, name: name, partitions: partitions, linger: linger, lanes: s.lanes(), window: pullWindow,
		expires: pullExpires, heartbeat: pullHeartbeat, wake: make(chan struct{}, 1)}
	if err := j.reset(ctx); err != nil {
		return nil, err
	}
	return j, nil
}

// reset (re)creates the consumer from its partitions' ack floor and
// subscribes a fresh inbox for its messages.
func (j *jsPull) reset(ctx context.Context) error {
	cons, err := j.store.createConsumer(ctx, j.name, j.partitions)
	if err != nil {
		return err
	}
	info := cons.CachedInfo()
	nc := j.store.nc
	inbox := nc.NewInbox()
	j.mu.Lock()
	old := j.sub
	j.mu.Unlock()
	if old != nil {
		_ = old.Unsubscribe()
	}
	sub, err := nc.Subscribe(inbox, j.onMsg)
	if err != nil {
		return fmt.Errorf("source: subscribe for %s: %w", j.name, err)
	}
	// No slow-consumer drops: the window bounds what is in flight.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("source: subscribe for %s: %w", j.name, err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.sub, j.api = sub, "$JS.API.CONSUMER.MSG.NEXT."+info.Stream+"."+info.Name
	j.buf, j.replies = nil, nil
	j.asked, j.lastDSeq, j.gap = 0, 0, false
	return nil
}

func (j *jsPull) signal() {
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// onMsg runs on the subscription's goroutine.
func (j *jsPull) onMsg(m *nats.Msg) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if m.Sub != j.sub {
		return // for a subscription replaced since
	}
	j.active = true
	if len(m.Data) == 0 && len(m.Header) > 0 {
		if st := m.Header.Get("Status"); st != "" {
			j.status(m, st)
			j.signal()
			return
		}
	}
	sseq, dseq, ok := ackSeqs(m.Reply)
	if !ok {
		j.err = fmt.Errorf("source: %s: not a JetStream message (reply %q)", j.name, m.Reply)
		j.signal()
		return
	}
	if j.asked > 0 {
		j.asked--
		if j.asked == j.window/2 {
			j.signal() // time to ask for more
		}
	}
	if j.gap || (j.lastDSeq != 0 && dseq != j.lastDSeq+1) {
		j.gap = true
		j.signal()
		return
	}
	j.lastDSeq = dseq
	p := subjectPartition(m.Subject)
	msg := Msg{Data: m.Data, Seq: sseq, Partition: p}
	if p >= 0 && p < len(j.lanes) {
		msg.Lane = j.lanes[p]
	}
	if len(j.buf) == cap(j.buf) { // room for a window at once, not doubling
		j.buf = append(make([]Msg, 0, len(j.buf)+j.window), j.buf...)
		j.replies = append(make([]string, 0, len(j.replies)+j.window), j.replies...)
	}
	j.buf = append(j.buf, msg)
	j.replies = append(j.replies, m.Reply)
	if len(j.buf) == 1 || len(j.buf) >= j.want {
		j.signal()
	}
}

// status handles a status message (heartbeat, expired or rejected request).
func (j *jsPull) status(m *nats.Msg, st string) {
	switch st {
	case "100": // idle heartbeat
	case "400":
		j.err = fmt.Errorf("source: %s: pull request rejected: %s", j.name, m.Header.Get("Description"))
	case "409":
		if strings.Contains(strings.ToLower(m.Header.Get("Description")), "consumer deleted") {
			j.gap = true // made again once what was handed out is acknowledged
		}
		j.requestEnded(m)
	default: // 404, 408: a request ended
		j.requestEnded(m)
	}
}

// requestEnded takes the messages a request will not deliver off asked; when
// the status does not say how many, every request counts as ended (at worst
// the server is asked for more than the window: nothing is dropped).
func (j *jsPull) requestEnded(m *nats.Msg) {
	n, err := strconv.Atoi(m.Header.Get("Nats-Pending-Messages"))
	if err != nil {
		j.asked = 0
		return
	}
	j.asked = max(0, j.asked-n)
}

// Next returns what is buffered or arrives within the linger of the
// batch's first message, up to limit (see jsSource.Next).
func (j *jsPull) Next(ctx context.Context, limit int) (Batch, error) {
	var deadline time.Time
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		j.mu.Lock()
		switch {
		case j.closed:
			j.mu.Unlock()
			return Batch{}, ErrClosed
		case j.err != nil:
			err := j.err
			j.mu.Unlock()
			return Batch{}, err
		case j.gap && len(j.buf) == 0 && j.acked >= j.delivered:
			j.mu.Unlock()
			if err := j.reset(ctx); err != nil {
				return Batch{}, err
			}
			continue
		}
		j.want = limit
		j.window = max(pullWindow, limit) // a batch can fill without waiting for a new request
		n := len(j.buf)
		if n >= limit || (n > 0 && (j.gap || (!deadline.IsZero() && !time.Now().Before(deadline)))) {
			b := j.take(min(n, limit))
			j.mu.Unlock()
			return b, nil
		}
		if n > 0 && deadline.IsZero() {
			deadline = time.Now().Add(j.linger)
		}
		var pull int
		if !j.gap && j.asked <= j.window/2 {
			pull = j.window - j.asked
			j.asked = j.window
		}
		sub, api := j.sub, j.api
		j.mu.Unlock()
		if pull > 0 {
			body := fmt.Appendf(nil, `{"batch":%d,"expires":%d,"idle_heartbeat":%d}`, pull, j.expires.Nanoseconds(), j.heartbeat.Nanoseconds())
			if err := j.store.nc.PublishRequest(api, sub.Subject, body); err != nil {
				j.mu.Lock()
				j.asked = 0
				j.mu.Unlock()
				return Batch{}, fmt.Errorf("source: pull %s: %w", j.name, err)
			}
		}
		wait := 2 * j.heartbeat // the watchdog: requests the server no longer holds are asked again
		if !deadline.IsZero() {
			wait = max(time.Until(deadline), 0)
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-j.wake:
		case <-ctx.Done():
			return Batch{}, ctx.Err()
		case <-timer.C:
			if deadline.IsZero() {
				j.mu.Lock()
				if !j.active {
					j.asked = 0
				}
				j.active = false
				j.mu.Unlock()
			}
		}
	}
}

// take hands out the first n buffered messages as a batch (j.mu held).
func (j *jsPull) take(n int) Batch {
	b := Batch{Msgs: j.buf[:n:n]}
	reply, seq := j.replies[n-1], j.buf[n-1].Seq
	j.buf, j.replies = j.buf[n:], j.replies[n:]
	if len(j.buf) == 0 {
		j.buf, j.replies = nil, nil
	}
	j.delivered = seq
	b.Commit = func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
		}
		// AckAll: acknowledging the last message acknowledges the batch.
		if _, err := j.store.nc.RequestWithContext(ctx, reply, []byte("+ACK")); err != nil {
			return fmt.Errorf("source: acknowledge %s: %w", j.name, err)
		}
		j.mu.Lock()
		j.acked = max(j.acked, seq)
		j.mu.Unlock()
		j.signal()
		return nil
	}
	return b
}

func (j *jsPull) Close() error {
	j.mu.Lock()
	j.closed = true
	sub := j.sub
	j.mu.Unlock()
	j.signal()
	if sub != nil {
		return sub.Unsubscribe()
	}
	return nil
}

// ackSeqs reads the stream and delivery sequences from a JetStream reply
// subject: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<time>.<pending>
// or, with domain and account, $JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<time>.<pending>[.<token>].
func ackSeqs(reply string) (sseq, dseq uint64, ok bool) {
	if !strings.HasPrefix(reply, "$JS.ACK.") {
		return 0, 0, false
	}
	var tokens [12]string
	n := 0
	for rest := reply; ; n++ {
		if n == len(tokens) {
			return 0, 0, false
		}
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			tokens[n] = rest
			n++
			break
		}
		tokens[n], rest = rest[:i], rest[i+1:]
	}
	var s, d string
	switch {
	case n == 9:
		s, d = tokens[5], tokens[6]
	case n >= 11:
		s, d = tokens[7], tokens[8]
	default:
		return 0, 0, false
	}
	var err1, err2 error
	sseq, err1 = strconv.ParseUint(s, 10, 64)
	dseq, err2 = strconv.ParseUint(d, 10, 64)
	return sseq, dseq, err1 == nil && err2 == nil
}
