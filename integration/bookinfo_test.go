package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	reviews = "reviews.default.svc.cluster.local:9080"
	ratings = "ratings.default.svc.cluster.local:9080"
)

// bookinfoWith serves Istio's destination-rule-all.yaml plus one routing
// sample over the bookinfo backends, and connects a proxyless client.
func bookinfoWith(t *testing.T, sample, clientID string) (string, *rosen, *xdsClient) {
	t.Helper()
	dir := t.TempDir()
	bookinfoBackends(t, dir)
	copySample(t, dir, "destination-rule-all.yaml")
	copySample(t, dir, sample)
	r := startRosen(t, dir)
	return dir, r, newXDSClient(t, r, clientID)
}

func mustCall(t *testing.T, c *xdsClient, target string, md ...string) string {
	t.Helper()
	got, err := c.call(t, target, md...)
	if err != nil {
		t.Fatalf("call %s %v: %v", target, md, err)
	}
	return got
}

// Istio's own files: jason goes to reviews v2, everyone else to v3.
func TestBookinfoJasonV2OthersV3(t *testing.T) {
	_, _, c := bookinfoWith(t, "virtual-service-reviews-jason-v2-v3.yaml", "jason-test")

	for i := 0; i < 20; i++ {
		if got := mustCall(t, c, reviews, "end-user", "jason"); got != "reviews-v2" {
			t.Fatalf("jason call %d went to %s, want reviews-v2", i, got)
		}
		if got := mustCall(t, c, reviews); got != "reviews-v3" {
			t.Fatalf("anonymous call %d went to %s, want reviews-v3", i, got)
		}
		if got := mustCall(t, c, reviews, "end-user", "alice"); got != "reviews-v3" {
			t.Fatalf("alice call %d went to %s, want reviews-v3", i, got)
		}
	}
}

// Istio's 80/20 file: 2,000 calls split 80/20 within ±5 points.
func TestBookinfoWeighted8020(t *testing.T) {
	_, _, c := bookinfoWith(t, "virtual-service-reviews-80-20.yaml", "weights-test")

	counts := map[string]int{}
	const n = 2000
	for i := 0; i < n; i++ {
		counts[mustCall(t, c, reviews)]++
	}
	v1 := float64(counts["reviews-v1"]) * 100 / n
	v2 := float64(counts["reviews-v2"]) * 100 / n
	t.Logf("split over %d calls: %v (v1 %.1f%%, v2 %.1f%%)", n, counts, v1, v2)
	if v1 < 75 || v1 > 85 || v2 < 15 || v2 > 25 || counts["reviews-v3"] != 0 {
		t.Fatalf("split %v is not 80/20 within ±5 points", counts)
	}
}

// Istio's abort file: jason gets the fault, everyone else reaches ratings v1.
func TestBookinfoAbortForJasonOnly(t *testing.T) {
	_, _, c := bookinfoWith(t, "virtual-service-ratings-test-abort.yaml", "abort-test")

	for i := 0; i < 10; i++ {
		_, err := c.call(t, ratings, "end-user", "jason")
		if err == nil {
			t.Fatalf("jason call %d succeeded, want the injected abort", i)
		}
		// grpc-go maps the injected HTTP 500 to a gRPC status as Envoy does.
		if st := status.Convert(err); st.Code() == codes.OK || st.Code() == codes.DeadlineExceeded {
			t.Fatalf("jason call %d: unexpected status %v", i, st)
		}
		if got := mustCall(t, c, ratings, "end-user", "alice"); got != "ratings-v1" {
			t.Fatalf("alice call %d went to %s", i, got)
		}
	}
}

// Switching the folder from all-v1 to reviews-v3 moves live clients, with no restart.
func TestBookinfoLiveSwitch(t *testing.T) {
	dir, _, c := bookinfoWith(t, "virtual-service-all-v1.yaml", "switch-test")

	for i := 0; i < 10; i++ {
		if got := mustCall(t, c, reviews); got != "reviews-v1" {
			t.Fatalf("before the switch, call went to %s", got)
		}
	}
	// all-v1 also routes productpage, details and ratings; keep those hosts
	// routed (to v1) and move reviews to v3, as the bookinfo task does.
	allV1, err := os.ReadFile(filepath.Join(dir, "virtual-service-all-v1.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var others []string
	for _, doc := range strings.Split(string(allV1), "---") {
		if !strings.Contains(doc, "name: reviews") && strings.TrimSpace(doc) != "" {
			others = append(others, doc)
		}
	}
	start := time.Now()
	writeFile(t, filepath.Join(dir, "virtual-service-all-v1.yaml"), strings.Join(others, "---"))
	copySample(t, dir, "virtual-service-reviews-v3.yaml")
	eventually(t, 10*time.Second, func() error {
		if got := mustCall(t, c, reviews); got != "reviews-v3" {
			return fmt.Errorf("after the switch, call went to %s", got)
		}
		return nil
	})
	t.Logf("live client moved to v3 %s after the edit", time.Since(start).Round(time.Millisecond))
	for i := 0; i < 20; i++ {
		if got := mustCall(t, c, reviews); got != "reviews-v3" {
			t.Fatalf("after the switch settled, call went to %s", got)
		}
	}
}

// An invalid edit is rejected as a whole, reported with file and field, and
// clients keep routing by the previous config.
func TestInvalidEditKeepsLastGoodConfig(t *testing.T) {
	dir, r, c := bookinfoWith(t, "virtual-service-reviews-jason-v2-v3.yaml", "invalid-edit-test")
	if got := mustCall(t, c, reviews, "end-user", "jason"); got != "reviews-v2" {
		t.Fatalf("jason went to %s", got)
	}

	cases := []struct {
		name, file, content, want string
	}{
		{"bad regex", "bad-regex.yaml", `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts: [ratings]
  http:
  - match:
    - uri:
        regex: "/ratings/(["
    route:
    - destination:
        host: ratings
`, "bad-regex.yaml:10: spec.http[0].match[0].uri.regex"},
		{"unknown field", "typo.yaml", `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: details
spec:
  hosts: [details]
  htp:
  - route:
    - destination:
        host: details
`, "typo.yaml:7: spec: unknown field \"htp\""},
		{"dangling subset", "dangling.yaml", `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: details
spec:
  hosts: [details]
  http:
  - route:
    - destination:
        host: details
        subset: v9
`, "dangling.yaml:11: spec.http[0].route[0].destination.subset"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			writeFile(t, path, tc.content)
			eventually(t, 10*time.Second, func() error {
				errs := r.configErrors(t)
				for _, e := range errs {
					if strings.Contains(e, tc.want) {
						return nil
					}
				}
				return fmt.Errorf("config errors %q do not mention %q", errs, tc.want)
			})
			// The previous config still routes.
			for i := 0; i < 5; i++ {
				if got := mustCall(t, c, reviews, "end-user", "jason"); got != "reviews-v2" {
					t.Fatalf("after the rejected edit, jason went to %s", got)
				}
				if got := mustCall(t, c, reviews); got != "reviews-v3" {
					t.Fatalf("after the rejected edit, anonymous went to %s", got)
				}
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, func() error {
				if errs := r.configErrors(t); len(errs) > 0 {
					return fmt.Errorf("errors remain after removing the bad file: %q", errs)
				}
				return nil
			})
		})
	}
	if !strings.Contains(r.logs.String(), "configuration rejected") {
		t.Error("the rejection was not logged")
	}
}
