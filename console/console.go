// Package console is Rosen's HTTP face: health and readiness probes,
// Prometheus metrics, and the debug endpoints that show what the control
// plane serves. It reads every module through the small interfaces declared
// here and never reaches into their internals.
package console

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// ControlPlane is what the console needs from the xDS control plane.
type ControlPlane interface {
	// Ready reports whether a first good configuration is being served.
	Ready() bool
	// Syncz is the per-node xDS status document served at /debug/syncz.
	Syncz() any
	// ConfigErrors lists why the latest configuration was rejected (empty when it was accepted).
	ConfigErrors() []*model.FieldError
}

// Rejections is what the console needs from a module that loads files of
// its own beside --config (the policy folder, the rate-limit config).
type Rejections interface {
	// Rejections lists the module's loads that are refused right now (a
	// file that does not compile, a folder that became unreadable); empty
	// when its last loads were accepted.
	Rejections() []ModuleError
}

// ModuleError is one refused load of a module's files. What was in force
// before it stays in force.
type ModuleError struct {
	// Source is the module and its files: "policy", "ratelimit".
	Source string `json:"source"`
	Path   string `json:"path"`
	// Message is the loader's error (file:line where it has them).
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
	// InForce is the version still in force ("none" when nothing loaded).
	InForce string `json:"inForce"`
}

// Options configure the console.
type Options struct {
	Addr         string
	Log          *zap.Logger
	Gatherer     prometheus.Gatherer
	ControlPlane ControlPlane
	Version      string
}

// Server is the HTTP server.
type Server struct {
	opts Options
	echo *echo.Echo

	mu         sync.Mutex
	rejections []Rejections
}

// New builds the HTTP routes.
func New(opts Options) *Server {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		code := http.StatusInternalServerError
		msg := err.Error()
		var he *echo.HTTPError
		if errors.As(err, &he) {
			code = he.Code
			if m, ok := he.Message.(string); ok {
				msg = m
			}
		}
		if !c.Response().Committed {
			_ = c.JSON(code, map[string]string{"error": msg})
		}
	}
	s := &Server{opts: opts, echo: e}
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", s.readyz)
	// Load balancers' health checks often send HEAD.
	e.HEAD("/healthz", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	e.HEAD("/readyz", s.readyz)
	e.GET("/version", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"version": opts.Version})
	})
	if opts.Gatherer != nil {
		e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{})))
	}
	e.GET("/debug/syncz", s.syncz)
	// Go's profiler, for the performance work the benchmarks call for.
	e.GET("/debug/pprof/*", echo.WrapHandler(http.HandlerFunc(pprof.Index)))
	// Not /debug/pprof/cmdline: the command line may hold database URLs
	// with their passwords, and this port has no authentication.
	e.GET("/debug/pprof/cmdline", func(c echo.Context) error {
		return echo.NewHTTPError(http.StatusNotFound, "the command line is not served (it may hold credentials)")
	})
	e.GET("/debug/pprof/profile", echo.WrapHandler(http.HandlerFunc(pprof.Profile)))
	e.GET("/debug/pprof/symbol", echo.WrapHandler(http.HandlerFunc(pprof.Symbol)))
	e.GET("/debug/pprof/trace", echo.WrapHandler(http.HandlerFunc(pprof.Trace)))
	e.GET("/debug/config-errors", s.configErrors)
	e.GET("/", s.index)
	return s
}

// index answers GET / with what this server serves, so that a newcomer who
// opens the HTTP address in a browser sees where to go instead of a 404.
func (s *Server) index(c echo.Context) error {
	seen := map[string]bool{}
	var paths []string
	for _, r := range s.echo.Routes() {
		p := strings.TrimSuffix(r.Path, "/*")
		if p == "" || p == "/" || strings.HasPrefix(p, "/debug/pprof/") || seen[p] {
			continue
		}
		seen[p] = true
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return c.JSON(http.StatusOK, map[string]any{"name": "rosen", "version": s.opts.Version, "paths": paths})
}

// Mount serves h under prefix (e.g. "/api/txn"), for the modules beside the
// control plane. The handler sees the full path.
func (s *Server) Mount(prefix string, h http.Handler) {
	wrapped := echo.WrapHandler(h)
	s.echo.Any(prefix, wrapped)
	s.echo.Any(strings.TrimSuffix(prefix, "/")+"/*", wrapped)
}

// AddRejections adds a module's refused loads to /debug/config-errors
// (under "moduleErrors").
func (s *Server) AddRejections(r Rejections) {
	s.mu.Lock()
	s.rejections = append(s.rejections, r)
	s.mu.Unlock()
}

// ModuleErrors lists every module's refused loads, never nil.
func (s *Server) ModuleErrors() []ModuleError {
	s.mu.Lock()
	rs := append([]Rejections(nil), s.rejections...)
	s.mu.Unlock()
	out := []ModuleError{}
	for _, r := range rs {
		out = append(out, r.Rejections()...)
	}
	return out
}

// Echo exposes the router to modules that are written as echo handlers.
func (s *Server) Echo() *echo.Echo { return s.echo }

// Handler returns the routes as an http.Handler (for tests).
func (s *Server) Handler() http.Handler { return s.echo }

func (s *Server) readyz(c echo.Context) error {
	if s.opts.ControlPlane == nil || !s.opts.ControlPlane.Ready() {
		return c.JSON(http.StatusServiceUnavailable, map[string]any{
			"ready":        false,
			"configErrors": s.errorsOrEmpty(),
		})
	}
	return c.JSON(http.StatusOK, map[string]any{"ready": true})
}

func (s *Server) syncz(c echo.Context) error {
	if s.opts.ControlPlane == nil {
		return echo.NewHTTPError(http.StatusNotFound, "no control plane")
	}
	return c.JSONPretty(http.StatusOK, s.opts.ControlPlane.Syncz(), "  ")
}

// configErrors answers why the last --config edit was rejected ("errors",
// the control plane's; empty when it was accepted) and which of the
// modules' own files are refused right now ("moduleErrors": policy,
// rate limits), so that either kind of bad edit shows here.
func (s *Server) configErrors(c echo.Context) error {
	return c.JSONPretty(http.StatusOK, map[string]any{"errors": s.errorsOrEmpty(), "moduleErrors": s.ModuleErrors()}, "  ")
}

func (s *Server) errorsOrEmpty() []*model.FieldError {
	if s.opts.ControlPlane == nil {
		return []*model.FieldError{}
	}
	errs := s.opts.ControlPlane.ConfigErrors()
	if errs == nil {
		errs = []*model.FieldError{}
	}
	return errs
}

// Serve listens on opts.Addr until ctx is done.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Timeouts bound what one client can hold: idle keep-alive connections
	// are closed so they cannot use up the process's file descriptors.
	srv := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    1 << 20,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}
