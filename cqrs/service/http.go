package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/rosenmesh/rosen/cqrs/engine"
	"github.com/rosenmesh/rosen/cqrs/sink"
	"github.com/rosenmesh/rosen/cqrs/source"
)

// MaxPublishBody is the largest request body the publish endpoint reads.
const MaxPublishBody = 16 << 20

// StatusReport is GET /api/cqrs/status.
type StatusReport struct {
	engine.Status
	StoreLastSeq uint64 `json:"storeLastSeq"`
	StoredDead   uint64 `json:"storedDeadLetters"`
	Partitions   []int  `json:"partitions"`
	EventStore   string `json:"eventStore"`
}

// Handler serves, under /api/cqrs:
//
//	POST /api/cqrs/events   one envelope, or a JSON array of them → {"seqs":[…]}
//	GET  /api/cqrs/status   engine and event-store counters
//	GET  /api/cqrs/dead-letters?view=users&limit=50&before=<seq>   newest first
//	POST /api/cqrs/replay?view=users&from=<seq|RFC3339|snapshot>
//	POST /api/cqrs/snapshot?view=users
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range []struct {
		method, path string
		h            http.HandlerFunc
	}{
		{http.MethodPost, "/api/cqrs/events", s.handlePublish},
		{http.MethodGet, "/api/cqrs/status", s.handleStatus},
		{http.MethodGet, "/api/cqrs/dead-letters", s.handleDeadLetters},
		{http.MethodPost, "/api/cqrs/replay", s.handleReplay},
		{http.MethodPost, "/api/cqrs/snapshot", s.handleSnapshot},
	} {
		mux.HandleFunc(r.method+" "+r.path, r.h)
		// Other methods: 405 in JSON, as every other answer here (the
		// mux's own 405 is plain text).
		mux.HandleFunc(r.path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Allow", r.method)
			httpError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s takes %s", r.path, r.method))
		})
	}
	mux.HandleFunc("/api/cqrs/", func(w http.ResponseWriter, req *http.Request) {
		httpError(w, http.StatusNotFound, fmt.Errorf("no such endpoint: %s (see /api/cqrs/events, /status, /replay, /snapshot)", req.URL.Path))
	})
	return mux
}

func (s *Service) handlePublish(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		// As the transaction API: a form body (curl -d without -H) is not
		// read as JSON by accident.
		if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			httpError(w, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Type %q: the body must be JSON (application/json)", ct))
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxPublishBody))
	if err != nil {
		httpError(w, http.StatusRequestEntityTooLarge, err)
		return
	}
	var items []json.RawMessage
	if trimmed := strings.TrimSpace(string(body)); strings.HasPrefix(trimmed, "[") {
		if err := json.Unmarshal(body, &items); err != nil {
			httpError(w, http.StatusBadRequest, err)
			return
		}
	} else {
		items = []json.RawMessage{body}
	}
	// Validate every envelope, its size included, before storing any, so a
	// bad array stores nothing.
	for i, it := range items {
		if _, err := s.store.Check(it); errors.Is(err, source.ErrTooLarge) {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("event %d: %w (nothing stored)", i, err))
			return
		} else if err != nil {
			httpError(w, http.StatusBadRequest, fmt.Errorf("event %d: %w", i, err))
			return
		}
	}
	seqs := make([]uint64, 0, len(items))
	for i, it := range items {
		seq, err := s.store.Publish(r.Context(), it)
		if err != nil {
			// What was stored before the failure is named, so a client can
			// retry only the rest (or all of it, deduplicated by event ids).
			code := http.StatusServiceUnavailable
			if errors.Is(err, source.ErrTooLarge) {
				code = http.StatusRequestEntityTooLarge
			}
			writeJSON(w, code, map[string]any{"error": fmt.Sprintf("event %d: %v", i, err), "seqs": seqs})
			return
		}
		seqs = append(seqs, seq)
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"seqs": seqs})
}

func (s *Service) handleStatus(w http.ResponseWriter, r *http.Request) {
	rep := StatusReport{Status: s.engine.Status(), Partitions: s.Partitions(), EventStore: s.store.Config().Stream}
	rep.StoreLastSeq, _ = s.store.LastSeq(r.Context())
	rep.StoredDead, _ = s.store.DeadLetterCount(r.Context())
	writeJSON(w, http.StatusOK, rep)
}

func (s *Service) handleReplay(w http.ResponseWriter, r *http.Request) {
	view := r.URL.Query().Get("view")
	if view == "" {
		httpError(w, http.StatusBadRequest, errors.New("view is required"))
		return
	}
	var res ReplayResult
	var err error
	if f := r.URL.Query().Get("from"); f == "snapshot" {
		res, err = s.ReplayFromSnapshot(r.Context(), view)
	} else {
		from, since, perr := ParseFrom(f)
		if perr != nil {
			httpError(w, http.StatusBadRequest, perr)
			return
		}
		res, err = s.Replay(r.Context(), view, from, since)
	}
	if errors.Is(err, sink.ErrNoSnapshot) {
		httpError(w, http.StatusNotFound, err)
		return
	}
	if errors.Is(err, ErrUnknownView) {
		httpError(w, http.StatusNotFound, err)
		return
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Service) handleDeadLetters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 50
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			httpError(w, http.StatusBadRequest, fmt.Errorf("limit %q: want 1..1000", v))
			return
		}
		limit = n
	}
	var before uint64
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			httpError(w, http.StatusBadRequest, fmt.Errorf("before %q: want a dead-letter sequence (> 0)", v))
			return
		}
		before = n
	}
	view := q.Get("view")
	if view != "" {
		if dbs, _ := s.viewDatabases(view); len(dbs) == 0 {
			httpError(w, http.StatusNotFound, fmt.Errorf("%w %q", ErrUnknownView, view))
			return
		}
	}
	letters, err := s.store.DeadLetters(r.Context(), view, limit, before)
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deadLetters": letters})
}

func httpError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func (s *Service) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	view := r.URL.Query().Get("view")
	seq, err := s.Snapshot(r.Context(), view)
	if errors.Is(err, ErrUnknownView) {
		httpError(w, http.StatusNotFound, err)
		return
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"view": view, "seq": seq})
}
