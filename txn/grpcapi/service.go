// Package grpcapi serves the coordinator over gRPC without generated code:
// the service rosen.txn.v1.Coordinator is a hand-written grpc.ServiceDesc
// whose requests and replies are google.protobuf.Struct messages (real
// protobuf on the wire) carrying the same JSON documents as the REST API
// (package wire). Any gRPC client that has the well-known Struct type can call
// it: method /rosen.txn.v1.Coordinator/Begin with {"id":…, "timeout":"30s"}.
package grpcapi

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/rest"
	"github.com/rosenmesh/rosen/txn/store"
	"github.com/rosenmesh/rosen/txn/wire"
)

// ServiceName is the full gRPC service name.
const ServiceName = "rosen.txn.v1.Coordinator"

// Register adds the service to s.
func Register(s grpc.ServiceRegistrar, c rest.Coordinator) {
	svc := &service{c: c}
	desc := grpc.ServiceDesc{ServiceName: ServiceName, HandlerType: (*any)(nil), Metadata: "rosen/txn/v1 (google.protobuf.Struct messages)"}
	for name, fn := range map[string]func(context.Context, []byte) (any, error){
		"Begin": svc.begin, "Register": svc.register, "Commit": svc.commit, "Abort": svc.abort,
		"Retry": svc.retry, "Get": svc.get, "List": svc.list,
	} {
		desc.Methods = append(desc.Methods, grpc.MethodDesc{MethodName: name, Handler: unary(name, fn)})
	}
	s.RegisterService(&desc, svc)
}

type service struct{ c rest.Coordinator }

func unary(name string, fn func(context.Context, []byte) (any, error)) grpc.MethodHandler {
	return func(_ any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := new(structpb.Struct)
		if err := dec(in); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "request: %v", err)
		}
		call := func(ctx context.Context, req any) (any, error) {
			raw, err := json.Marshal(req.(*structpb.Struct).AsMap())
			if err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "request: %v", err)
			}
			out, err := fn(ctx, raw)
			if err != nil {
				return nil, toStatus(err)
			}
			return toStruct(out)
		}
		if interceptor == nil {
			return call(ctx, in)
		}
		return interceptor(ctx, in, &grpc.UnaryServerInfo{FullMethod: "/" + ServiceName + "/" + name}, call)
	}
}

func toStruct(v any) (*structpb.Struct, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "reply: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, status.Errorf(codes.Internal, "reply: %v", err)
	}
	s, err := structpb.NewStruct(m)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "reply: %v", err)
	}
	return s, nil
}

func toStatus(err error) error {
	if _, ok := status.FromError(err); ok {
		return err // already a status (request decoding)
	}
	var code codes.Code
	switch {
	case errors.Is(err, coordinator.ErrBadInput):
		code = codes.InvalidArgument
	case errors.Is(err, store.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, store.ErrExists):
		code = codes.AlreadyExists
	case errors.Is(err, store.ErrState), errors.Is(err, store.ErrDuplicateBranch), errors.Is(err, store.ErrTimedOut):
		code = codes.FailedPrecondition
	default:
		code = codes.Unavailable
	}
	return status.Error(code, err.Error())
}

func decode(raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return status.Errorf(codes.InvalidArgument, "request: %v", err)
	}
	return nil
}

// target names a transaction and how long to wait for its outcome.
type target struct {
	ID     string        `json:"id"`
	Wait   wire.Duration `json:"wait"`
	Reason string        `json:"reason"`
}

func (t target) wait() (time.Duration, error) {
	d := time.Duration(t.Wait)
	if d < 0 || d > 5*time.Minute {
		return 0, status.Error(codes.InvalidArgument, "wait: want 0..5m")
	}
	return d, nil
}

func (s *service) begin(ctx context.Context, raw []byte) (any, error) {
	var b wire.Begin
	if err := decode(raw, &b); err != nil {
		return nil, err
	}
	t, err := s.c.Begin(ctx, b.Request())
	if err != nil {
		return nil, err
	}
	return wire.View(t), nil
}

func (s *service) register(ctx context.Context, raw []byte) (any, error) {
	var b struct {
		TxnID string `json:"txn_id"`
		wire.Branch
	}
	if err := decode(raw, &b); err != nil {
		return nil, err
	}
	if err := s.c.Register(ctx, b.TxnID, b.Store()); err != nil {
		return nil, err
	}
	return map[string]string{"txn_id": b.TxnID, "branch_id": b.ID}, nil
}

func (s *service) finish(ctx context.Context, raw []byte, fn func(context.Context, target, time.Duration) (*store.Txn, error)) (any, error) {
	var t target
	if err := decode(raw, &t); err != nil {
		return nil, err
	}
	wait, err := t.wait()
	if err != nil {
		return nil, err
	}
	tx, err := fn(ctx, t, wait)
	if err != nil {
		return nil, err
	}
	return wire.View(tx), nil
}

func (s *service) commit(ctx context.Context, raw []byte) (any, error) {
	return s.finish(ctx, raw, func(ctx context.Context, t target, w time.Duration) (*store.Txn, error) {
		return s.c.Commit(ctx, t.ID, w)
	})
}

func (s *service) abort(ctx context.Context, raw []byte) (any, error) {
	return s.finish(ctx, raw, func(ctx context.Context, t target, w time.Duration) (*store.Txn, error) {
		return s.c.Abort(ctx, t.ID, t.Reason, w)
	})
}

func (s *service) retry(ctx context.Context, raw []byte) (any, error) {
	return s.finish(ctx, raw, func(ctx context.Context, t target, w time.Duration) (*store.Txn, error) {
		return s.c.Retry(ctx, t.ID, w)
	})
}

func (s *service) get(ctx context.Context, raw []byte) (any, error) {
	return s.finish(ctx, raw, func(ctx context.Context, t target, _ time.Duration) (*store.Txn, error) { return s.c.Get(ctx, t.ID) })
}

func (s *service) list(ctx context.Context, raw []byte) (any, error) {
	var f struct {
		State string `json:"state"`
		Limit int    `json:"limit"`
	}
	if err := decode(raw, &f); err != nil {
		return nil, err
	}
	ts, err := s.c.List(ctx, store.Filter{State: store.State(f.State), Limit: f.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]wire.TxnView, 0, len(ts))
	for _, t := range ts {
		out = append(out, wire.View(t))
	}
	return map[string]any{"transactions": out}, nil
}

// Call invokes one method on a connection: a small client for Go callers and tests.
func Call(ctx context.Context, cc grpc.ClientConnInterface, method string, req any, reply any) error {
	in, err := toStruct(req)
	if err != nil {
		return err
	}
	out := new(structpb.Struct)
	if err := cc.Invoke(ctx, "/"+ServiceName+"/"+method, in, out); err != nil {
		return err
	}
	raw, err := json.Marshal(out.AsMap())
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, reply)
}
