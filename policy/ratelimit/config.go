// Package ratelimit is Rosen's global rate limit service
// (envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit). Its rules
// are written in the envoyproxy/ratelimit YAML format; counters live in
// memory (the embedded default) or in Redis.
package ratelimit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/rosenmesh/rosen/policy/folderwatch"
)

// ErrConfig is a rate-limit configuration that cannot be used; the message
// names the file and the descriptor path.
var ErrConfig = errors.New("ratelimit: bad configuration")

// Unit is a rate-limit window.
type Unit string

// Window lengths per unit, as envoyproxy/ratelimit divides time (a month is
// 30 days, a year 365), windows aligned to the Unix epoch.
var unitSeconds = map[Unit]int64{
	"second": 1, "minute": 60, "hour": 3600, "day": 86400,
	"week": 7 * 86400, "month": 30 * 86400, "year": 365 * 86400,
}

// Duration is the window length.
func (u Unit) Duration() time.Duration { return time.Duration(unitSeconds[u]) * time.Second }

// Replace names a limit that this one replaces when both match.
type Replace struct {
	Name string `json:"name"`
}

// RateLimit is a rate_limit block.
type RateLimit struct {
	Unit            Unit      `json:"unit"`
	RequestsPerUnit uint32    `json:"requests_per_unit"`
	Unlimited       bool      `json:"unlimited,omitempty"`
	Name            string    `json:"name,omitempty"`
	Replaces        []Replace `json:"replaces,omitempty"`
	// hasPerUnit records that requests_per_unit was written (0 is a
	// deliberate "reject all"; a missing one is an error).
	hasPerUnit bool
}

// UnmarshalJSON decodes strictly (unknown fields are errors) and notes
// whether requests_per_unit was given.
func (r *RateLimit) UnmarshalJSON(data []byte) error {
	type plain RateLimit
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return err
	}
	_, p.hasPerUnit = fields["requests_per_unit"]
	*r = RateLimit(p)
	return nil
}

// Descriptor is one node of a domain's descriptor tree.
type Descriptor struct {
	Key            string       `json:"key"`
	Value          string       `json:"value,omitempty"`
	RateLimit      *RateLimit   `json:"rate_limit,omitempty"`
	Descriptors    []Descriptor `json:"descriptors,omitempty"`
	ShadowMode     bool         `json:"shadow_mode,omitempty"`
	DetailedMetric bool         `json:"detailed_metric,omitempty"`
	ValueToMetric  bool         `json:"value_to_metric,omitempty"`
	ShareThreshold bool         `json:"share_threshold,omitempty"`
}

// Domain is one YAML file of the envoyproxy/ratelimit format.
type Domain struct {
	Domain      string       `json:"domain"`
	Descriptors []Descriptor `json:"descriptors"`
	file        string
}

// Config is every domain in force.
type Config struct {
	domains map[string]*node
	// Files are the files loaded, sorted.
	Files []string
	// Version identifies the files' contents (LoadDir; empty otherwise).
	Version string
}

// ParseDomain parses one file strictly: unknown keys, duplicate keys,
// duplicate descriptors at one level, unknown units, a limit without
// requests_per_unit or unlimited, and a replaces without a name are errors.
func ParseDomain(file string, data []byte) (*Domain, error) {
	var d Domain
	if err := yaml.UnmarshalStrict(data, &d); err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrConfig, file, cleanYAMLError(err))
	}
	d.file = file
	if d.Domain == "" {
		return nil, fmt.Errorf("%w: %s: domain: required", ErrConfig, file)
	}
	if err := checkDescriptors(d.Descriptors, "descriptors"); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, file, err)
	}
	return &d, nil
}

func cleanYAMLError(err error) string {
	msg := err.Error()
	for _, p := range []string{"error unmarshaling JSON: ", "while decoding JSON: ", "json: ", "error converting YAML to JSON: ", "yaml: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	return msg
}

func checkDescriptors(ds []Descriptor, path string) error {
	seen := map[string]int{}
	for i := range ds {
		d := &ds[i]
		at := fmt.Sprintf("%s[%d]", path, i)
		if d.Key == "" {
			return fmt.Errorf("%s.key: required", at)
		}
		id := d.Key + "\x00" + d.Value
		if j, ok := seen[id]; ok {
			return fmt.Errorf("%s: duplicate descriptor key %q value %q (first at %s[%d])", at, d.Key, d.Value, path, j)
		}
		seen[id] = i
		if rl := d.RateLimit; rl != nil {
			if _, ok := unitSeconds[Unit(strings.ToLower(string(rl.Unit)))]; !ok && !rl.Unlimited {
				return fmt.Errorf("%s.rate_limit.unit: unknown unit %q (second, minute, hour, day, week, month, year)", at, rl.Unit)
			}
			rl.Unit = Unit(strings.ToLower(string(rl.Unit)))
			if !rl.Unlimited && !rl.hasPerUnit {
				return fmt.Errorf("%s.rate_limit.requests_per_unit: required (0 rejects every request; unlimited: true allows all)", at)
			}
			for k, r := range rl.Replaces {
				if r.Name == "" {
					return fmt.Errorf("%s.rate_limit.replaces[%d].name: required", at, k)
				}
			}
		}
		if err := checkDescriptors(d.Descriptors, at+".descriptors"); err != nil {
			return err
		}
	}
	return nil
}

// NewConfig joins domains; a domain defined twice is an error naming both files.
func NewConfig(domains ...*Domain) (*Config, error) {
	c := &Config{domains: map[string]*node{}}
	files := map[string]string{}
	for _, d := range domains {
		if f, ok := files[d.Domain]; ok {
			return nil, fmt.Errorf("%w: %s: domain %q already defined in %s", ErrConfig, d.file, d.Domain, f)
		}
		files[d.Domain] = d.file
		c.domains[d.Domain] = buildTree(d.Descriptors, false)
		if d.file != "" {
			c.Files = append(c.Files, d.file)
		}
	}
	sort.Strings(c.Files)
	return c, nil
}

// LoadDir reads every *.yaml / *.yml file in dir (not recursive, hidden
// files skipped), or the one file dir names.
func LoadDir(dir string) (*Config, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	files := []string{dir}
	if info.IsDir() {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		files = files[:0]
		for _, e := range entries {
			n := e.Name()
			ext := strings.ToLower(filepath.Ext(n))
			if !e.IsDir() && !strings.HasPrefix(n, ".") && (ext == ".yaml" || ext == ".yml") {
				files = append(files, filepath.Join(dir, n))
			}
		}
	}
	var domains []*Domain
	h := sha256.New()
	for _, f := range files {
		data, err := folderwatch.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(data))
		h.Write(data)
		d, err := ParseDomain(f, data)
		if err != nil {
			return nil, err
		}
		domains = append(domains, d)
	}
	c, err := NewConfig(domains...)
	if err != nil {
		return nil, err
	}
	c.Version = hex.EncodeToString(h.Sum(nil))[:12]
	return c, nil
}
