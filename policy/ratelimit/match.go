package ratelimit

import (
	"sort"
	"strings"
)

// limit is a rate_limit block resolved onto its descriptor node.
type limit struct {
	unit      Unit
	perUnit   uint32
	unlimited bool
	shadow    bool
	name      string
	replaces  []string
	// path is "key=value.key2" for logs and metrics.
	path string
}

type wildcardChild struct {
	key, prefix string
	n           *node
}

// node is one level of a domain's descriptor tree.
type node struct {
	exact     map[Entry]*node  // key and value
	keyOnly   map[string]*node // key (no value: one counter per request value)
	wildcards []wildcardChild  // value "prefix*", longest prefix first
	limit     *limit
}

func buildTree(ds []Descriptor, _ bool) *node {
	return buildLevel(ds, "")
}

func buildLevel(ds []Descriptor, parent string) *node {
	n := &node{exact: map[Entry]*node{}, keyOnly: map[string]*node{}}
	for _, d := range ds {
		path := d.Key
		if d.Value != "" {
			path += "=" + d.Value
		}
		if parent != "" {
			path = parent + "." + path
		}
		child := buildLevel(d.Descriptors, path)
		if rl := d.RateLimit; rl != nil {
			l := &limit{unit: rl.Unit, perUnit: rl.RequestsPerUnit, unlimited: rl.Unlimited, shadow: d.ShadowMode, name: rl.Name, path: path}
			for _, r := range rl.Replaces {
				l.replaces = append(l.replaces, r.Name)
			}
			child.limit = l
		}
		switch {
		case d.Value == "":
			n.keyOnly[d.Key] = child
		case strings.HasSuffix(d.Value, "*"):
			n.wildcards = append(n.wildcards, wildcardChild{d.Key, strings.TrimSuffix(d.Value, "*"), child})
		default:
			n.exact[Entry{d.Key, d.Value}] = child
		}
	}
	sort.SliceStable(n.wildcards, func(i, j int) bool { return len(n.wildcards[i].prefix) > len(n.wildcards[j].prefix) })
	return n
}

// Entry is one key/value of a request descriptor.
type Entry struct{ Key, Value string }

// match walks the tree with the request descriptor's entries, as
// envoyproxy/ratelimit does: at each level an exact key=value child wins,
// then a "prefix*" value, then a key-only child. The limit of the node
// reached by the last entry applies (nil: not limited).
func (n *node) match(entries []Entry) *limit {
	cur := n
	for _, e := range entries {
		next := cur.exact[e]
		if next == nil {
			for _, w := range cur.wildcards {
				if w.key == e.Key && strings.HasPrefix(e.Value, w.prefix) {
					next = w.n
					break
				}
			}
		}
		if next == nil {
			next = cur.keyOnly[e.Key]
		}
		if next == nil {
			return nil
		}
		cur = next
	}
	return cur.limit
}

// limits returns the limit of each request descriptor (nil where none), with
// limits named in another matched limit's replaces dropped.
func (c *Config) limits(domain string, descriptors [][]Entry) []*limit {
	root := c.domains[domain]
	out := make([]*limit, len(descriptors))
	if root == nil {
		return out
	}
	var replaced map[string]bool // made only when a matched limit replaces another
	for i, d := range descriptors {
		out[i] = root.match(d)
		if out[i] != nil {
			for _, r := range out[i].replaces {
				if replaced == nil {
					replaced = map[string]bool{}
				}
				replaced[r] = true
			}
		}
	}
	if replaced == nil {
		return out
	}
	for i, l := range out {
		if l != nil && l.name != "" && replaced[l.name] {
			out[i] = nil
		}
	}
	return out
}

// HasDomain reports whether the domain is configured.
func (c *Config) HasDomain(d string) bool { return c.domains[d] != nil }
