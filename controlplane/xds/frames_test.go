package xds

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"
)

// A request cut anywhere into HTTP/2 DATA frames (the codec then reads it
// in the pieces grpc received) is answered as the request whole, on a raw
// HTTP/2 connection where the test chooses every frame boundary.
func TestRequestSplitAcrossHTTP2Frames(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	headers := func() []byte {
		hbuf.Reset()
		for _, f := range [][2]string{
			{":method", "POST"}, {":scheme", "http"}, {":authority", e.addr},
			{":path", "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"},
			{"content-type", "application/grpc"}, {"te", "trailers"},
		} {
			_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		return append([]byte(nil), hbuf.Bytes()...)
	}
	msg, err := proto.Marshal(&discoveryv3.DiscoveryRequest{
		Node: gatewayNode("gw"), TypeUrl: resourcev3.EndpointType, ResourceNames: []string{detailsCluster, wildcardName, reviewsCluster},
	})
	if err != nil {
		t.Fatal(err)
	}
	frame := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
	frame = append(frame, msg...)

	// answer reads frames until stream id has a whole gRPC message or ends.
	answer := func(id uint32) (*discoveryv3.DiscoveryResponse, error) {
		var data []byte
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return nil, err
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					_ = fr.WriteSettingsAck()
				}
			case *http2.PingFrame:
				if !f.IsAck() {
					_ = fr.WritePing(true, f.Data)
				}
			case *http2.DataFrame:
				if n := len(f.Data()); n > 0 {
					_ = fr.WriteWindowUpdate(0, uint32(n))
				}
				if f.StreamID != id {
					continue
				}
				data = append(data, f.Data()...)
				if len(data) >= 5 && len(data) >= 5+int(binary.BigEndian.Uint32(data[1:])) {
					var r discoveryv3.DiscoveryResponse
					return &r, proto.Unmarshal(data[5:5+int(binary.BigEndian.Uint32(data[1:]))], &r)
				}
			case *http2.MetaHeadersFrame:
				if f.StreamID == id && f.StreamEnded() {
					t.Fatalf("stream %d ended: %v", id, f.Fields)
				}
			case *http2.GoAwayFrame:
				t.Fatalf("GOAWAY: %v", f.ErrCode)
			}
		}
	}
	id := uint32(1)
	try := func(cuts ...int) {
		t.Helper()
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: headers(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		from := 0
		for _, c := range append(cuts, len(frame)) {
			if err := fr.WriteData(id, false, frame[from:c]); err != nil {
				t.Fatal(err)
			}
			from = c
		}
		r, err := answer(id)
		if err != nil {
			t.Fatalf("cuts %v: %v", cuts, err)
		}
		if len(r.GetResources()) != 2 || r.GetTypeUrl() != resourcev3.EndpointType {
			t.Fatalf("cuts %v: %v", cuts, r)
		}
		_ = fr.WriteRSTStream(id, http2.ErrCodeCancel)
		id += 2
	}
	for i := 1; i < len(frame); i++ {
		try(i)
	}
	for i := 1; i < len(frame); i += 3 {
		try(i, min(i+1, len(frame)), min(i+2, len(frame)))
	}
}
