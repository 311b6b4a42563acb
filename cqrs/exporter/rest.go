package exporter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/rosenmesh/rosen/cqrs/rules"
)

// REST posts a JSON array of records; only a 2xx answer confirms delivery.
type REST struct {
	url     string
	headers map[string]string
	client  *http.Client
}

func NewREST(cfg rules.Exporter) *REST {
	return &REST{url: cfg.URL, headers: cfg.Headers, client: &http.Client{Timeout: 30 * time.Second}}
}

func (r *REST) Emit(ctx context.Context, recs []Record) error {
	body, err := json.Marshal(recs)
	if err != nil {
		return fmt.Errorf("%w: encode: %w", ErrPermanent, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: POST %s: %w", ErrDelivery, r.url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if permanentStatus(resp.StatusCode) {
		return fmt.Errorf("%w: POST %s: %s: %s", ErrPermanent, r.url, resp.Status, msg)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w: POST %s: %s: %s", ErrDelivery, r.url, resp.Status, msg)
	}
	return nil
}

func (r *REST) Close() error { return nil }

// permanentStatus: a 4xx answer other than 408 (timeout) and 429 (too many
// requests) refuses the records themselves; sending them again cannot help.
func permanentStatus(code int) bool {
	return code/100 == 4 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}
