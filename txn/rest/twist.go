package rest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/store"
	"github.com/rosenmesh/rosen/txn/wire"
)

// Twist's REST shapes: POST /api/transactions creates (the id comes back in
// the body and in the Twist-Transaction-ID header, or the client sends its
// own in that header), PUT /api/transactions/:id registers tasks with their
// confirm and cancel actions, POST confirms, DELETE cancels.

// TwistCreate is the body of POST /api/transactions (all optional).
type TwistCreate struct {
	Mode    string        `json:"mode,omitempty"` // "tcc" (the only mode)
	Timeout wire.Duration `json:"timeout,omitempty"`
}

// TwistAction is a task's confirm or cancel call.
type TwistAction struct {
	URL    string          `json:"url"`
	Method string          `json:"method,omitempty"`
	Body   json.RawMessage `json:"body,omitempty"`
}

// TwistTask is one participant's part.
type TwistTask struct {
	ID      string      `json:"id,omitempty"`
	Confirm TwistAction `json:"confirm"`
	Cancel  TwistAction `json:"cancel"`
}

// TwistTasks is the body of PUT /api/transactions/:id.
type TwistTasks struct {
	Tasks []TwistTask `json:"tasks"`
}

// twistWait is how long POST/DELETE wait for the outcome, as Twist answered synchronously.
const twistWait = 30 * time.Second

func (h *handler) twistCreate(c echo.Context) error {
	var b TwistCreate
	if c.Request().ContentLength != 0 {
		if err := bind(c, &b); err != nil {
			return err
		}
	}
	if b.Mode != "" && b.Mode != "tcc" && b.Mode != "TCC" {
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("mode %q: only tcc is supported", b.Mode))
	}
	t, err := h.c.Begin(c.Request().Context(), coordinator.BeginRequest{
		ID: c.Request().Header.Get(coordinator.HeaderTwistID), Timeout: time.Duration(b.Timeout)})
	if err != nil {
		return err
	}
	c.Response().Header().Set(coordinator.HeaderTwistID, t.ID)
	return c.JSON(http.StatusCreated, map[string]any{"success": true, "transactionID": t.ID})
}

func (h *handler) twistRegister(c echo.Context) error {
	var b TwistTasks
	if err := bind(c, &b); err != nil {
		return err
	}
	if len(b.Tasks) == 0 {
		return echo.NewHTTPError(http.StatusBadRequest, "tasks: want at least one")
	}
	ctx := c.Request().Context()
	id := c.Param("id")
	branches := make([]store.Branch, len(b.Tasks))
	for i, task := range b.Tasks {
		if task.ID == "" {
			task.ID = fmt.Sprintf("task-%d", i)
		}
		branches[i] = store.Branch{ID: task.ID,
			Confirm: store.Action{URL: task.Confirm.URL, Method: task.Confirm.Method, Body: task.Confirm.Body},
			Cancel:  store.Action{URL: task.Cancel.URL, Method: task.Cancel.Method, Body: task.Cancel.Body}}
		// Every task is checked before any is registered, so a bad one
		// leaves none of the others behind.
		if err := h.c.CheckBranch(branches[i]); err != nil {
			return fmt.Errorf("tasks[%d]: %w", i, err)
		}
	}
	for _, br := range branches {
		if err := h.c.Register(ctx, id, br); err != nil {
			return err
		}
	}
	c.Response().Header().Set(coordinator.HeaderTwistID, id)
	return c.JSON(http.StatusOK, map[string]any{"success": true, "transactionID": id})
}

func (h *handler) twistConfirm(c echo.Context) error {
	t, err := h.c.Commit(c.Request().Context(), c.Param("id"), twistWait)
	if err != nil {
		return err
	}
	return twistResult(c, t, store.Committed)
}

func (h *handler) twistCancel(c echo.Context) error {
	t, err := h.c.Abort(c.Request().Context(), c.Param("id"), "cancelled by request", twistWait)
	if err != nil {
		return err
	}
	return twistResult(c, t, store.Aborted)
}

func twistResult(c echo.Context, t *store.Txn, want store.State) error {
	c.Response().Header().Set(coordinator.HeaderTwistID, t.ID)
	code := http.StatusOK
	if !t.State.Final() && t.State != store.Stuck {
		code = http.StatusAccepted
	}
	return c.JSON(code, map[string]any{"success": t.State == want, "transactionID": t.ID, "state": t.State})
}
