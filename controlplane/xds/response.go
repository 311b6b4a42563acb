package xds

import (
	"time"

	"google.golang.org/protobuf/proto"
)

// response is a built response without its nonce. Streams that are due the
// same thing (same subscription, same versions) share one.
type response struct {
	typeURL string
	version string
	body    []byte // the response marshalled, see wire
	// changedAt is when the change it carries was published (zero for a
	// stream's first response), for rosen_xds_push_delay_seconds.
	changedAt time.Time
}

func newResponse(typeURL, version string, msg proto.Message) (*response, error) {
	body, err := marshalBody(msg)
	if err != nil {
		return nil, err
	}
	return &response{typeURL: typeURL, version: version, body: body}, nil
}

// memoKey is what, besides the subscription and the type's version, decides
// a watch's response.
type memoKey struct {
	delta   bool
	first   bool
	from    uint64  // the version the client holds
	pending *string // the newly subscribed names (shared slices compare by address)
	npend   int
}

func pendingKey(w *watch) memoKey {
	k := memoKey{delta: w.s.delta, first: w.first, npend: len(w.pending)}
	if !w.first {
		k.from = w.sent
	}
	if len(w.pending) > 0 {
		k.pending = &w.pending[0]
	}
	return k
}

// maxMemo bounds the responses memoised on one subscription at one version:
// a fleet due the same push shares a handful of keys, but a client moving a
// stream back and forth between subscriptions makes a new key (a new slice
// of added names) at each return, and the memo would otherwise keep every
// one of those responses until the type's next version.
const maxMemo = 64

// memo returns the response of key k on subscription s at the current
// version, building it once (nil: nothing to send). Called with the
// group's lock held.
func (tc *typeCache) memo(s *subscription, k memoKey, build func() proto.Message) (*response, error) {
	if s.memo == nil || s.memoVersion != tc.version {
		s.memo, s.memoVersion = map[memoKey]*response{}, tc.version
	}
	if r, ok := s.memo[k]; ok {
		return r, nil
	}
	var r *response
	if m := build(); m != nil {
		var err error
		if r, err = newResponse(tc.typeURL, tc.versionString(tc.version), m); err != nil {
			return nil, err
		}
		if !k.first {
			r.changedAt = tc.changedAt
		}
	}
	if len(s.memo) >= maxMemo {
		s.memo = map[memoKey]*response{}
	}
	s.memo[k] = r
	return r, nil
}

// msgSender is what both kinds of grpc stream offer.
type msgSender interface{ SendMsg(any) error }

// send writes r with the stream's next nonce and records it in the status.
func (st *stream) send(conn msgSender, r *response) (string, error) {
	nonce := st.nextNonce()
	st.srv.tracker.response(st.id, r.typeURL, r.version, nonce)
	if !r.changedAt.IsZero() {
		st.srv.metrics.pushDelay.Observe(time.Since(r.changedAt).Seconds())
	}
	return nonce, conn.SendMsg(&wire{body: r.body, nonce: nonce})
}
