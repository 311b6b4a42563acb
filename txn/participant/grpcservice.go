package participant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/rosenmesh/rosen/txn/barrier"
	"github.com/rosenmesh/rosen/txn/coordinator"
)

// RegisterGRPC serves s as the gRPC service name (e.g. "bank.v1.Ledger") with
// the methods Try, Confirm and Cancel, each taking and returning a
// google.protobuf.Struct — register its branches with the coordinator as
// grpc://host:port/<name>/Confirm and grpc://host:port/<name>/Cancel. The
// method is the phase; the txn and branch ids come from the rosen-txn-id and
// rosen-branch-id metadata, and a rosen-txn-phase that names another phase is
// refused (a misregistered endpoint must not confirm what it should cancel).
// The business functions get the payload as JSON, as over HTTP. Answers: OK
// {"status":"SUCCESS"}; FAILED_PRECONDITION when the call can never succeed
// (ErrRefused, a hanging Try, a Confirm without Try); UNAVAILABLE to be retried.
func RegisterGRPC(reg grpc.ServiceRegistrar, name string, s *Service) {
	desc := &grpc.ServiceDesc{ServiceName: name, HandlerType: (*any)(nil)}
	for _, phase := range []string{coordinator.PhaseTry, coordinator.PhaseConfirm, coordinator.PhaseCancel} {
		method := strings.ToUpper(phase[:1]) + phase[1:]
		full := "/" + name + "/" + method
		desc.Methods = append(desc.Methods, grpc.MethodDesc{MethodName: method,
			Handler: func(_ any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
				in := new(structpb.Struct)
				if err := dec(in); err != nil {
					return nil, err
				}
				handle := func(ctx context.Context, req any) (any, error) {
					return s.serveGRPC(ctx, phase, req.(*structpb.Struct))
				}
				if icpt == nil {
					return handle(ctx, in)
				}
				return icpt(ctx, in, &grpc.UnaryServerInfo{Server: s, FullMethod: full}, handle)
			}})
	}
	reg.RegisterService(desc, s)
}

func (s *Service) serveGRPC(ctx context.Context, phase string, in *structpb.Struct) (*structpb.Struct, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	first := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	if p := first(strings.ToLower(coordinator.HeaderPhase)); p != "" && p != phase {
		return nil, status.Errorf(codes.FailedPrecondition, "participant: %s metadata says %q but the method is %s", coordinator.HeaderPhase, p, phase)
	}
	payload, err := json.Marshal(in.AsMap())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "participant: payload: %v", err)
	}
	c := Call{Phase: phase, Payload: payload, Branch: barrier.Branch{
		TxnID: first(strings.ToLower(coordinator.HeaderTxnID)), BranchID: first(strings.ToLower(coordinator.HeaderBranchID))}}
	err = s.run(ctx, c)
	switch {
	case err == nil:
		return structpb.NewStruct(map[string]any{"status": "SUCCESS"})
	case refused(err):
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil, status.FromContextError(err).Err()
	default:
		return nil, status.Error(codes.Unavailable, fmt.Sprintf("participant: %v", err))
	}
}
