// Package rest serves the coordinator over HTTP (echo): Rosen's own API under
// /api/txn and Twist's shapes under /api/transactions, so Twist clients move
// over unchanged.
package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/jsontext"
	"github.com/rosenmesh/rosen/txn/store"
	"github.com/rosenmesh/rosen/txn/wire"
)

// Coordinator is what the handlers need.
type Coordinator interface {
	Begin(ctx context.Context, r coordinator.BeginRequest) (*store.Txn, error)
	Register(ctx context.Context, txnID string, b store.Branch) error
	// CheckBranch reports what Register would refuse in b, without a store.
	CheckBranch(b store.Branch) error
	Commit(ctx context.Context, id string, wait time.Duration) (*store.Txn, error)
	Abort(ctx context.Context, id, reason string, wait time.Duration) (*store.Txn, error)
	Retry(ctx context.Context, id string, wait time.Duration) (*store.Txn, error)
	Get(ctx context.Context, id string) (*store.Txn, error)
	List(ctx context.Context, f store.Filter) ([]*store.Txn, error)
}

// Paths the handler serves (mount both).
const (
	Prefix      = "/api/txn"
	TwistPrefix = "/api/transactions"
)

// maxWait bounds ?wait= so a request cannot hold a connection for ever.
const maxWait = 5 * time.Minute

// New returns the HTTP handler for both APIs.
func New(c Coordinator, log *zap.Logger) http.Handler {
	if log == nil {
		log = zap.NewNop()
	}
	h := &handler{c: c, log: log.Named("txn.rest")}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(middleware.BodyLimit("2M"))
	e.HTTPErrorHandler = h.errorHandler
	g := e.Group(Prefix + "/transactions")
	g.GET("", h.list)
	g.POST("", h.begin)
	g.GET("/:id", h.get)
	g.POST("/:id/branches", h.register)
	g.POST("/:id/commit", h.commit)
	g.POST("/:id/abort", h.abort)
	g.POST("/:id/retry", h.retry)
	tw := e.Group(TwistPrefix)
	tw.POST("", h.twistCreate)
	tw.PUT("/:id", h.twistRegister)
	tw.POST("/:id", h.twistConfirm)
	tw.DELETE("/:id", h.twistCancel)
	tw.GET("/:id", h.get)
	return e
}

type handler struct {
	c   Coordinator
	log *zap.Logger
}

// status maps coordinator and store errors to HTTP codes.
func status(err error) int {
	switch {
	case errors.Is(err, coordinator.ErrBadInput):
		return http.StatusBadRequest
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, store.ErrExists), errors.Is(err, store.ErrState), errors.Is(err, store.ErrDuplicateBranch), errors.Is(err, store.ErrTimedOut):
		return http.StatusConflict
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, coordinator.ErrClosed):
		return http.StatusServiceUnavailable
	}
	return http.StatusServiceUnavailable // the store did not answer: nothing was changed, try again
}

func (h *handler) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, msg := status(err), err.Error()
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		if m, ok := he.Message.(string); ok {
			msg = m
		}
	} else if code == http.StatusServiceUnavailable {
		h.log.Warn("request failed", zap.String("path", c.Path()), zap.Error(err))
	}
	_ = c.JSON(code, map[string]any{"error": msg, "success": false})
}

// bind reads a JSON body into v as json.Unmarshal does: one JSON value and
// nothing after it. An empty body sets nothing. The body must be JSON
// (application/json, any +json type, or no Content-Type): anything else is
// refused with 415 rather than bound field by field.
func bind(c echo.Context, v any) error {
	raw, err := readJSONBody(c.Request())
	if err != nil || len(raw) == 0 {
		return err
	}
	return decodeJSON(raw, v)
}

// bindStrict is bind for the native API, whose documents Rosen defines: a
// key it does not know is an error naming the key (a misspelt "timeot" was
// ignored and the transaction got the default timeout). Twist's shapes stay
// lenient, as its clients send fields of their own.
func bindStrict(c echo.Context, v any) error {
	raw, err := readJSONBody(c.Request())
	if err != nil || len(raw) == 0 {
		return err
	}
	return decodeStrictJSON(raw, v)
}

// decodeStrictJSON is decodeJSON refusing unknown object keys.
func decodeStrictJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			return echo.NewHTTPError(http.StatusBadRequest, "malformed body: "+strings.TrimPrefix(err.Error(), "json: "))
		}
		return decodeJSON(raw, v) // the same error, worded as the other endpoints word it
	}
	if _, err := dec.Token(); err != io.EOF {
		return decodeJSON(raw, v) // data after the value
	}
	return nil
}

// bindBranch is bind for a branch registration (two per transaction): a body
// in the shape clients write is read by wire.DecodeBranch, any other by
// encoding/json.
func bindBranch(c echo.Context, b *wire.Branch) error {
	raw, err := readJSONBody(c.Request())
	if err != nil || len(raw) == 0 {
		return err
	}
	if wire.DecodeBranch(raw, b) {
		return nil
	}
	return decodeStrictJSON(raw, b)
}

// readJSONBody reads the whole body (the BodyLimit middleware bounds it:
// 413 past the limit, with or without Content-Length) after checking that
// it is JSON. A body that ends early is the client's fault: 400.
func readJSONBody(req *http.Request) ([]byte, error) {
	if req.ContentLength == 0 {
		return nil, nil
	}
	if ct := req.Header.Get(echo.HeaderContentType); ct != "" && ct != echo.MIMEApplicationJSON {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != echo.MIMEApplicationJSON && !strings.HasSuffix(mt, "+json")) {
			return nil, echo.NewHTTPError(http.StatusUnsupportedMediaType,
				fmt.Sprintf("Content-Type %q: the body must be JSON (application/json)", ct))
		}
	}
	raw, err := io.ReadAll(req.Body)
	if err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) {
			return nil, he // 413 from the body limit
		}
		return nil, echo.NewHTTPError(http.StatusBadRequest, "malformed body: "+err.Error())
	}
	return raw, nil
}

// decodeJSON is json.Unmarshal with errors worded as echo's binder words them.
func decodeJSON(raw []byte, v any) error {
	err := json.Unmarshal(raw, v)
	if err == nil {
		return nil
	}
	msg := err.Error()
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		msg = fmt.Sprintf("Syntax error: offset=%v, error=%v", se.Offset, se.Error())
	case errors.As(err, &te):
		msg = fmt.Sprintf("Unmarshal type error: expected=%v, got=%v, field=%v, offset=%v", te.Type, te.Value, te.Field, te.Offset)
	}
	return echo.NewHTTPError(http.StatusBadRequest, "malformed body: "+msg)
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if e, ok := v.(error); ok {
		return e.Error()
	}
	return "unreadable"
}

func waitParam(c echo.Context, def time.Duration) (time.Duration, error) {
	s := c.QueryParam("wait")
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > maxWait {
		return 0, echo.NewHTTPError(http.StatusBadRequest, "wait: want a duration between 0 and "+maxWait.String())
	}
	return d, nil
}

// result answers 200 when the transaction has ended (final or stuck), 202 while phase two goes on.
func result(c echo.Context, t *store.Txn) error {
	code := http.StatusOK
	if !t.State.Final() && t.State != store.Stuck {
		code = http.StatusAccepted
	}
	return view(c, code, t)
}

// bufs holds response buffers: a transaction's JSON is a few hundred bytes.
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// view answers t as wire.View shows it: written by wire.AppendView, the same
// bytes encoding/json writes (and its final newline), unless ?pretty asks
// for indented output (echo's JSON does that).
func view(c echo.Context, code int, t *store.Txn) error {
	if q := c.Request().URL.RawQuery; q != "" && c.QueryParams().Has("pretty") {
		return c.JSON(code, wire.View(t))
	}
	bp := bufs.Get().(*[]byte)
	b := append(wire.AppendView((*bp)[:0], t), '\n')
	err := c.JSONBlob(code, b)
	if cap(b) <= 64<<10 {
		*bp = b[:0]
		bufs.Put(bp)
	}
	return err
}

func (h *handler) begin(c echo.Context) error {
	var b wire.Begin
	if err := bindStrict(c, &b); err != nil {
		return err
	}
	t, err := h.c.Begin(c.Request().Context(), b.Request())
	if err != nil {
		return err
	}
	return view(c, http.StatusCreated, t)
}

func (h *handler) get(c echo.Context) error {
	t, err := h.c.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return view(c, http.StatusOK, t)
}

func (h *handler) list(c echo.Context) error {
	f := store.Filter{State: store.State(c.QueryParam("state"))}
	if s := c.QueryParam("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return echo.NewHTTPError(http.StatusBadRequest, "limit: want 1..1000")
		}
		f.Limit = n
	}
	ts, err := h.c.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := make([]wire.TxnView, 0, len(ts))
	for _, t := range ts {
		out = append(out, wire.View(t))
	}
	return c.JSON(http.StatusOK, map[string]any{"transactions": out})
}

func (h *handler) register(c echo.Context) error {
	var b wire.Branch
	if err := bindBranch(c, &b); err != nil {
		return err
	}
	if err := h.c.Register(c.Request().Context(), c.Param("id"), b.Store()); err != nil {
		return err
	}
	// {"branch_id":…,"txn_id":…}, as encoding/json writes the map.
	id := c.Param("id")
	out := make([]byte, 0, 32+len(id)+len(b.ID))
	out = append(out, `{"branch_id":`...)
	out = jsontext.AppendString(out, b.ID)
	out = append(out, `,"txn_id":`...)
	out = jsontext.AppendString(out, id)
	out = append(out, "}\n"...)
	return c.JSONBlob(http.StatusCreated, out)
}

func (h *handler) commit(c echo.Context) error {
	wait, err := waitParam(c, 0)
	if err != nil {
		return err
	}
	t, err := h.c.Commit(c.Request().Context(), c.Param("id"), wait)
	if err != nil {
		return err
	}
	return result(c, t)
}

func (h *handler) abort(c echo.Context) error {
	wait, err := waitParam(c, 0)
	if err != nil {
		return err
	}
	var body struct {
		Reason string `json:"reason"`
	}
	if c.Request().ContentLength != 0 { // -1: chunked
		if err := bindStrict(c, &body); err != nil {
			return err
		}
	}
	t, err := h.c.Abort(c.Request().Context(), c.Param("id"), body.Reason, wait)
	if err != nil {
		return err
	}
	return result(c, t)
}

func (h *handler) retry(c echo.Context) error {
	wait, err := waitParam(c, 0)
	if err != nil {
		return err
	}
	t, err := h.c.Retry(c.Request().Context(), c.Param("id"), wait)
	if err != nil {
		return err
	}
	return result(c, t)
}
