package dump

import (
	"context"
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// update is one response, whatever the protocol.
type update struct {
	typeURL string
	version string // response version (SotW) or system version (delta)
	nonce   string
	res     []resource
	removed []string
}

type resource struct {
	name    string
	version string
	any     *anypb.Any
}

// transport is one ADS stream, state of the world or delta.
type transport interface {
	// subscribe asks for names of a type (nil: wildcard), acknowledging the
	// last response of that type if there was one.
	subscribe(typeURL string, all, added []string, ack *update) error
	recv() (*update, error)
}

type sotwTransport struct {
	node   *corev3.Node
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
}

func (t *sotwTransport) subscribe(typeURL string, all, _ []string, ack *update) error {
	req := &discoveryv3.DiscoveryRequest{TypeUrl: typeURL, ResourceNames: all, Node: t.node}
	t.node = nil // like Envoy with set_node_on_first_message_only
	if ack != nil {
		req.VersionInfo, req.ResponseNonce = ack.version, ack.nonce
	}
	return t.stream.Send(req)
}

func (t *sotwTransport) recv() (*update, error) {
	r, err := t.stream.Recv()
	if err != nil {
		return nil, err
	}
	u := &update{typeURL: r.GetTypeUrl(), version: r.GetVersionInfo(), nonce: r.GetNonce()}
	for _, a := range r.GetResources() {
		name, err := resourceName(a)
		if err != nil {
			return nil, err
		}
		u.res = append(u.res, resource{name: name, version: r.GetVersionInfo(), any: a})
	}
	return u, nil
}

type deltaTransport struct {
	node   *corev3.Node
	stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
}

func (t *deltaTransport) subscribe(typeURL string, _, added []string, ack *update) error {
	req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: typeURL, ResourceNamesSubscribe: added, Node: t.node}
	t.node = nil
	if ack != nil {
		req.ResponseNonce = ack.nonce
	}
	return t.stream.Send(req)
}

func (t *deltaTransport) recv() (*update, error) {
	r, err := t.stream.Recv()
	if err != nil {
		return nil, err
	}
	u := &update{typeURL: r.GetTypeUrl(), version: r.GetSystemVersionInfo(), nonce: r.GetNonce(), removed: r.GetRemovedResources()}
	for _, x := range r.GetResources() {
		name := x.GetName()
		if name == "" && x.GetResource() != nil {
			if name, err = resourceName(x.GetResource()); err != nil {
				return nil, err
			}
		}
		u.res = append(u.res, resource{name: name, version: x.GetVersion(), any: x.GetResource()})
	}
	return u, nil
}

func openTransport(ctx context.Context, c discoveryv3.AggregatedDiscoveryServiceClient, node *corev3.Node, delta bool) (transport, error) {
	if delta {
		s, err := c.DeltaAggregatedResources(ctx)
		if err != nil {
			return nil, fmt.Errorf("dump: open delta ADS stream: %w", err)
		}
		return &deltaTransport{node: node, stream: s}, nil
	}
	s, err := c.StreamAggregatedResources(ctx)
	if err != nil {
		return nil, fmt.Errorf("dump: open ADS stream: %w", err)
	}
	return &sotwTransport{node: node, stream: s}, nil
}
